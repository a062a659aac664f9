package main

import (
	"flag"
	"fmt"
	"io"
	"slices"

	"gohsm/token"
	"gohsm/token/store"
)

// Backup and restore of the selected slot's token (docs/backup.md).

func init() {
	at := len(commands)
	for i, c := range commands {
		if c.name() == "token reset" {
			at = i + 1
		}
	}
	commands = slices.Insert(commands, at,
		command{path: []string{"token", "backup"}, args: "--out FILE", need: needCO,
			help: "write a consistent snapshot of the token (sealed as at rest) to FILE while others use it", setup: tokenBackup},
		command{path: []string{"token", "restore"}, args: "--from FILE [--yes]", need: needNone,
			help: "put a backup into the slot's token directory (--yes: replace the token there); no process may have it open", setup: tokenRestore},
		command{path: []string{"token", "export"}, args: "--out FILE", need: needCO,
			help: "write every record of the token (sealed as at rest) to FILE, in the backup format, from either backend", setup: tokenExport},
		command{path: []string{"token", "import"}, args: "FILE [--replace]", operands: []string{"FILE"}, need: needNone,
			help: "put the token of an export or backup FILE into the slot's token, SQLite or PostgreSQL (--replace: in place of the one there)", setup: tokenImport},
	)
}

func backupJSON(slot any, file string, info store.BackupInfo) map[string]any {
	return map[string]any{"slot": slot, "file": file, "label": info.Label, "serial": info.Serial,
		"created": info.Created, "token_format": info.TokenFormat, "size": info.Size, "sha256": info.SHA256}
}

// tokenBackup needs an officer's PIN: the backup is recorded in the audit
// log under the officer's name (token/backup.go says why).
func tokenBackup(fs *flag.FlagSet) func(*env) error {
	return tokenWrite(fs, "the backup `file` to write (replaced if it exists)", "backed up", (*token.Slot).Backup)
}

// tokenWrite is token backup and token export: an officer's PIN, --out,
// and write's BackupInfo reported as done ("backed up", "exported").
func tokenWrite(fs *flag.FlagSet, usage, done string, write func(s *token.Slot, pin []byte, path string) (store.BackupInfo, error)) func(*env) error {
	out := fs.String("out", "", usage)
	return func(e *env) error {
		if *out == "" {
			return usagef("--out is required")
		}
		pin, err := e.pin()
		if err != nil {
			return err
		}
		s, err := e.slot()
		if err != nil {
			return err
		}
		info, err := write(s, pin, *out)
		if err != nil {
			return err
		}
		return e.emit(backupJSON(s.ID(), *out, info), func(w io.Writer) {
			fmt.Fprintf(w, "%s token %q (serial %s) of slot %d to %s (%d bytes, sha256 %s)\n",
				done, info.Label, info.Serial, s.ID(), *out, info.Size, info.SHA256)
		})
	}
}

// tokenRestore needs no PIN, like token reset: it replaces what whoever
// may write the token directory could replace anyway, and refuses an
// initialised token without --yes.
func tokenRestore(fs *flag.FlagSet) func(*env) error {
	from := fs.String("from", "", "the backup `file` to restore (or a token.db copied from a closed token)")
	yes := fs.Bool("yes", false, "replace the token in the slot's directory (its users and keys are lost)")
	return func(e *env) error {
		if *from == "" {
			return usagef("--from is required")
		}
		s, err := e.slot()
		if err != nil {
			return err
		}
		ti, err := s.TokenInfo()
		if err == nil && ti.Initialized && !*yes {
			return usagef("slot %d holds token %q: restoring replaces every user and key; pass --yes", s.ID(), ti.Label)
		}
		info, err := s.Restore(*from, *yes)
		if err != nil {
			return err
		}
		return e.emit(backupJSON(s.ID(), *from, info), func(w io.Writer) {
			fmt.Fprintf(w, "restored token %q (serial %s, taken %s) into slot %d\n", info.Label, info.Serial, info.Created, s.ID())
		})
	}
}

// tokenExport needs an officer's PIN, as token backup: the export is
// recorded in the audit log under the officer's name.
func tokenExport(fs *flag.FlagSet) func(*env) error {
	return tokenWrite(fs, "the `file` to write (replaced if it is a backup already)", "exported", (*token.Slot).Export)
}

// tokenImport needs no PIN, as token restore; it refuses an initialised
// token without --replace.
func tokenImport(fs *flag.FlagSet) func(*env) error {
	replace := fs.Bool("replace", false, "replace the slot's token (its users and keys are lost)")
	return func(e *env) error {
		from := e.operands[0]
		s, err := e.slot()
		if err != nil {
			return err
		}
		ti, err := s.TokenInfo()
		if err == nil && ti.Initialized && !*replace {
			return usagef("slot %d holds token %q: importing replaces every user and key; pass --replace", s.ID(), ti.Label)
		}
		info, err := s.Import(from, *replace)
		if err != nil {
			return err
		}
		return e.emit(backupJSON(s.ID(), from, info), func(w io.Writer) {
			fmt.Fprintf(w, "imported token %q (serial %s, taken %s) into slot %d\n", info.Label, info.Serial, info.Created, s.ID())
		})
	}
}
