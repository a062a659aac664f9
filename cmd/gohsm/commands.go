package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"gohsm/internal/admin"
	"gohsm/internal/ck"
	"gohsm/token"
	"gohsm/token/cluster"
)

// commands is the command table. A command is a path of words, a synopsis,
// the login it needs and a setup that defines its flags and returns its run
// function; adding a command (or a CloudHSM-CLI-shaped alias) is adding a
// row.
var commands = []command{
	{path: []string{"token", "init"}, args: "--label L [--yes]", need: needNone,
		help: "initialise the slot's token; the PIN becomes its first crypto officer", setup: tokenInit},
	{path: []string{"token", "list"}, need: needNone,
		help: "list the slots and their tokens", setup: tokenList},
	{path: []string{"token", "delete"}, args: "--yes", need: needCO,
		help: "delete the slot's token (every user and key) so that it is uninitialised", setup: tokenDelete},
	{path: []string{"token", "reset"}, args: "--yes", need: needNone,
		help: "erase the slot's token without a PIN (every user and key; for locked-out or forgotten officers), like softhsm2-util --delete-token", setup: tokenReset},

	{path: []string{"user", "list"}, need: needNone,
		help: "list the token's users (no login)", setup: userList},
	{path: []string{"user", "create"}, args: "--username U --role crypto-user|crypto-officer [--password P|-|--password-file F] [--approval FILE]", need: needCO,
		help: "create a user (as a crypto officer)", setup: userCreate},
	{path: []string{"user", "delete"}, args: "--username U [--approval FILE]", need: needCO,
		help: "delete a user that owns no keys (as a crypto officer)", setup: userDelete},
	{path: []string{"user", "change-password"}, args: "--username U [--password P|-|--password-file F] [--approval FILE]", need: needAny,
		help: "set a password: a crypto officer any user's (this also unlocks it), a crypto user its own", setup: userChangePassword},

	{path: []string{"key", "list"}, args: "[--label L] [--class C] [--key-type T] [--owner U]", need: needCU,
		help: "list the keys a crypto user sees: its own, those shared with it, public ones", setup: keyList},
	{path: []string{"key", "generate", "aes"}, args: "--bits 128|192|256 --label L [--id HEX] [--session]", need: needCU,
		help: "generate an AES key", setup: keyGenerate("aes")},
	{path: []string{"key", "generate", "ec"}, args: "--curve P-256|P-384 --label L [--id HEX] [--session]", need: needCU,
		help: "generate an EC key pair", setup: keyGenerate("ec")},
	{path: []string{"key", "generate", "ml-dsa"}, args: "--parameter-set 44|65|87 --label L [--id HEX] [--session]", need: needCU,
		help: "generate an ML-DSA key pair (FIPS 204)", setup: keyGenerate("ml-dsa")},
	{path: []string{"key", "generate", "ml-kem"}, args: "--parameter-set 512|768|1024 --label L [--id HEX] [--session]", need: needCU,
		help: "generate an ML-KEM key pair (PKCS #11 3.2)", setup: keyGenerate("ml-kem")},
	{path: []string{"key", "generate", "rsa"}, args: "--bits 2048|3072|4096 --label L [--id HEX] [--session]", need: needCU,
		help: "generate an RSA key pair (public exponent 65537)", setup: keyGenerate("rsa")},
	{path: []string{"key", "import"}, args: "--label L [--id HEX] (--pem FILE | --aes-key-hex HEX)", need: needCU,
		help: "import a key: a PEM private key (with its public key) or public key, EC P-256/P-384 or RSA 2048-4096, or a raw AES key", setup: keyImport},
	{path: []string{"key", "delete"}, args: "--handle H | --label L [--class C]", need: needCU,
		help: "delete a key the crypto user owns", setup: keyDelete},
	{path: []string{"key", "share"}, args: "--handle H | --label L [--class C] --username U", need: needCU,
		help: "share an owned key with another crypto user, who may use it", setup: keyShare(true)},
	{path: []string{"key", "unshare"}, args: "--handle H | --label L [--class C] --username U", need: needCU,
		help: "stop sharing an owned key with a crypto user", setup: keyShare(false)},
	{path: []string{"key", "set-trusted"}, args: "--handle H [--trusted=false]", need: needCO,
		help: "mark a key trusted (it may then wrap keys that require a trusted wrapping key)", setup: keySetTrusted},

	// audit.go
	{path: []string{"audit", "show"}, args: "[--stream S] [--since SEQ] [--opcode NAME] [--user U] [--limit N] [--json]", need: needNone,
		help: "print the audit log as CloudHSM does (or JSON lines)", setup: auditShow},
	{path: []string{"audit", "verify"}, args: "[--stream S] [--archive FILE]... [--anchor SEQ:MAC]...", need: needNone,
		help: "check the audit log's chain; names the first bad record", setup: auditVerify},
	{path: []string{"audit", "rotate"}, args: "--out FILE [--keep N] [--stream S]", need: needNone,
		help: "move the audit log's older records to an archive file, keeping the chain", setup: auditRotate},
	{path: []string{"audit", "head"}, args: "[--stream S]", need: needNone,
		help: "print each stream's last sequence number and MAC (an anchor for audit verify)", setup: auditHead},

	// cluster.go: the emulated cluster's control plane (no login).
	{path: []string{"cluster", "status"}, need: needNone,
		help: "show the emulated HSMs, their states, budgets and counters, and the fault plan's steps", setup: clusterStatus},
	{path: []string{"cluster", "hsm", "down"}, args: "K", operands: []string{"K"}, need: needNone,
		help: "take HSM K down: nothing is routed to it, its session keys are lost", setup: clusterHSM(cluster.Down)},
	{path: []string{"cluster", "hsm", "up"}, args: "K", operands: []string{"K"}, need: needNone,
		help: "bring HSM K up", setup: clusterHSM(cluster.Up)},
	{path: []string{"cluster", "hsm", "degrade"}, args: "K", operands: []string{"K"}, need: needNone,
		help: "degrade HSM K: it answers, degraded_latency later", setup: clusterHSM(cluster.Degraded)},
	{path: []string{"cluster", "plan", "load"}, args: "FILE", operands: []string{"FILE"}, need: needNone,
		help: "load a fault plan (JSON) that every process follows, its clock starting now", setup: clusterPlanLoad},
	{path: []string{"cluster", "plan", "clear"}, need: needNone,
		help: "remove the fault plan (HSM states stay)", setup: clusterPlanClear},
	{path: []string{"cluster", "plan", "show"}, need: needNone,
		help: "print the loaded fault plan", setup: clusterPlanShow},
	{path: []string{"cluster", "reset"}, need: needNone,
		help: "bring every HSM up, zero the counters and budgets, remove the fault plan", setup: clusterReset},

	// console.go: the local web UI and JSON API (docs/console.md).
	{path: []string{"console"}, args: "[--listen ADDR] [--tls-cert F --tls-key F] [--session-idle D] [--session-max D]", need: needNone,
		help: "serve the web console and its JSON API (127.0.0.1:8611) until interrupted", setup: consoleCmd},
}

func table(w io.Writer, header string, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// --- token ---

func tokenInit(fs *flag.FlagSet) func(*env) error {
	label := fs.String("label", "", "token `label` (up to 32 bytes)")
	yes := fs.Bool("yes", false, "re-initialise an initialised token, erasing every user and key")
	return func(e *env) error {
		if *label == "" {
			return usagef("--label is required")
		}
		if len(*label) > 32 {
			return usagef("--label: at most 32 bytes (CK_TOKEN_INFO.label)")
		}
		pin, err := e.newPIN()
		if err != nil {
			return err
		}
		s, err := e.slot()
		if err != nil {
			return err
		}
		ti, err := s.TokenInfo()
		if err != nil {
			return err
		}
		if ti.Initialized && !*yes {
			return cliErrorf(codeTokenInitialized, "slot %d holds token %q: re-initialising erases every user and key; pass --yes", s.ID(), ti.Label)
		}
		if err := s.InitToken(pin, *label); err != nil {
			return err
		}
		if ti, err = s.TokenInfo(); err != nil {
			return err
		}
		officer, _, named := strings.Cut(string(pin), ":")
		if !named {
			officer = token.DefaultCO
		}
		officer = strings.ToLower(officer)
		return e.emit(map[string]any{"slot": s.ID(), "label": ti.Label, "serial": ti.SerialNumber, "crypto_officer": officer},
			func(w io.Writer) {
				fmt.Fprintf(w, "initialised token %q in slot %d (serial %s), crypto officer %q\n", ti.Label, s.ID(), ti.SerialNumber, officer)
			})
	}
}

func tokenList(fs *flag.FlagSet) func(*env) error {
	return func(e *env) error {
		m, err := e.module()
		if err != nil {
			return err
		}
		ids := m.SlotIDs()
		if e.g.slotSet || e.g.label != "" {
			s, err := e.slot()
			if err != nil {
				return err
			}
			ids = []ck.ULong{s.ID()}
		}
		rows := []admin.TokenStatus{}
		for _, id := range ids {
			r, err := admin.Status(m, id)
			if err != nil {
				return err
			}
			rows = append(rows, r)
		}
		return e.emit(map[string]any{"slots": rows}, func(w io.Writer) {
			var t [][]string
			for _, r := range rows {
				label, serial, users := r.Label, r.Serial, fmt.Sprint(r.Users)
				switch {
				case r.Damaged:
					label, serial, users = "(damaged)", "-", "-"
				case !r.Initialized:
					label, serial, users = "(uninitialised)", "-", "-"
				}
				t = append(t, []string{fmt.Sprint(r.Slot), label, serial, users,
					orDash(strings.Join(r.LockedUsers, ",")), orDash(strings.Join(r.Flags, ","))})
			}
			table(w, "SLOT\tLABEL\tSERIAL\tUSERS\tLOCKED\tFLAGS", t)
		})
	}
}

func tokenDelete(fs *flag.FlagSet) func(*env) error {
	yes := fs.Bool("yes", false, "confirm: every user and key of the token is erased")
	return func(e *env) error {
		if !*yes {
			return usagef("deleting a token erases every user and key: pass --yes")
		}
		pin, err := e.pin()
		if err != nil {
			return err
		}
		s, err := e.slot()
		if err != nil {
			return err
		}
		if err := s.DeleteToken(pin); err != nil {
			return notInitialized(s, err)
		}
		return e.emit(map[string]any{"slot": s.ID()}, func(w io.Writer) {
			fmt.Fprintf(w, "deleted the token of slot %d\n", s.ID())
		})
	}
}

// tokenReset erases the token with no login: whoever may write the token
// directory could remove its files anyway.
func tokenReset(fs *flag.FlagSet) func(*env) error {
	yes := fs.Bool("yes", false, "confirm: every user and key of the token is erased")
	return func(e *env) error {
		if !*yes {
			return usagef("resetting a token erases every user and key: pass --yes")
		}
		s, err := e.slot()
		if err != nil {
			return err
		}
		if err := s.ResetToken(); err != nil {
			return err
		}
		return e.emit(map[string]any{"slot": s.ID()}, func(w io.Writer) {
			fmt.Fprintf(w, "reset the token of slot %d: it is uninitialised\n", s.ID())
		})
	}
}

// --- user ---

func userList(fs *flag.FlagSet) func(*env) error {
	return func(e *env) error {
		h, err := e.session()
		if err != nil {
			return err
		}
		users, err := e.m.Users(h)
		if err != nil {
			return err
		}
		return e.emit(map[string]any{"users": users}, func(w io.Writer) {
			var t [][]string
			for _, u := range users {
				t = append(t, []string{u.Name, u.Role, fmt.Sprint(u.Locked), fmt.Sprint(u.Failures), fmt.Sprint(u.HasPIN)})
			}
			table(w, "USERNAME\tROLE\tLOCKED\tFAILED-LOGINS\tPASSWORD-SET", t)
		})
	}
}

func userCreate(fs *flag.FlagSet) func(*env) error {
	name := fs.String("username", "", "user `name` (letters, digits, underscore; up to 31)")
	roleS := fs.String("role", "", "crypto-user or crypto-officer")
	password := newPasswordFlags(fs, "the new user's")
	approval := addApprovalFlag(fs)
	return func(e *env) error {
		if *name == "" || *roleS == "" {
			return usagef("--username and --role are required")
		}
		role, err := token.ParseRole(*roleS)
		if err != nil {
			return usagef("--role %q: want crypto-user or crypto-officer", *roleS)
		}
		err = e.approvedUserOp(&password, approval, func(h ck.ULong, pw []byte) error {
			return e.m.CreateUser(h, *name, role, pw)
		})
		if err != nil {
			return err
		}
		n, r := strings.ToLower(*name), token.RoleString(role)
		return e.emit(map[string]any{"username": n, "role": r}, func(w io.Writer) {
			fmt.Fprintf(w, "created %s %q\n", r, n)
		})
	}
}

// approvedUserOp is the sequence the user commands share: the new
// password's source checked (password nil: none), the quorum approval
// file read, the session opened, the password read, the approval applied
// to the session, then op. A mistake in the flags is found before the
// token is touched; the password is cleared after op.
func (e *env) approvedUserOp(password *newPassword, approval approvalFlag, op func(h ck.ULong, pw []byte) error) error {
	if password != nil {
		if err := password.check(e); err != nil {
			return err
		}
	}
	signed, err := approval.read()
	if err != nil {
		return err
	}
	h, err := e.session()
	if err != nil {
		return err
	}
	var pw []byte
	if password != nil {
		if pw, err = password.get(e); err != nil {
			return err
		}
		defer clear(pw)
	}
	if err := approval.approve(e, h, signed); err != nil {
		return err
	}
	return op(h, pw)
}

func userDelete(fs *flag.FlagSet) func(*env) error {
	name := fs.String("username", "", "user `name`")
	approval := addApprovalFlag(fs)
	return func(e *env) error {
		if *name == "" {
			return usagef("--username is required")
		}
		err := e.approvedUserOp(nil, approval, func(h ck.ULong, _ []byte) error {
			return e.m.DeleteUser(h, *name)
		})
		if err != nil {
			return err
		}
		n := strings.ToLower(*name)
		return e.emit(map[string]any{"username": n}, func(w io.Writer) {
			fmt.Fprintf(w, "deleted user %q\n", n)
		})
	}
}

func userChangePassword(fs *flag.FlagSet) func(*env) error {
	name := fs.String("username", "", "user `name`")
	password := newPasswordFlags(fs, "the new")
	approval := addApprovalFlag(fs)
	return func(e *env) error {
		if *name == "" {
			return usagef("--username is required")
		}
		err := e.approvedUserOp(&password, approval, func(h ck.ULong, pw []byte) error {
			return e.m.ChangePassword(h, *name, pw)
		})
		if err != nil {
			return err
		}
		n := strings.ToLower(*name)
		return e.emit(map[string]any{"username": n}, func(w io.Writer) {
			fmt.Fprintf(w, "changed the password of %q\n", n)
		})
	}
}
