package main

import (
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"gohsm/internal/admin"
	"gohsm/token/audit"
	"gohsm/token/store"
)

// The audit commands (docs/audit.md). They need no login: CloudHSM's
// audit log goes to CloudWatch, for the account rather than for the
// HSM's users; whoever can read the token file can read its audit table
// anyway (sqlite3 token.db); and a login would add records to the log
// being read, or be impossible for the locked-out users whose failed
// logins one wants to read. The file's permissions (token_group) decide
// who reads and rotates.

// listFlag is a flag that may be given more than once.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// auditStreams is the selected slot's store, and the stream asked for or
// every stream of the token (admin.AuditStreams).
func (e *env) auditStreams(stream string) (store.Store, []string, error) {
	s, err := e.slot()
	if err != nil {
		return nil, nil, err
	}
	return admin.AuditStreams(s, stream)
}

func auditShow(fs *flag.FlagSet) func(*env) error {
	stream := fs.String("stream", "", "only this `stream` (default: every stream)")
	since := fs.Uint64("since", 0, "from sequence number `SEQ` on")
	opcode := fs.String("opcode", "", "only events of this opcode (`NAME` like CN_LOGIN, or 0xd)")
	user := fs.String("user", "", "only events naming this `user` (acted on, or acting)")
	limit := fs.Int("limit", 0, "only each stream's last `N` matching records (0: all)")
	return func(e *env) error {
		q := admin.AuditQuery{Stream: *stream, Since: *since, Opcode: *opcode, User: *user, Limit: *limit}
		if err := q.Check(); err != nil {
			return usageOf(err)
		}
		s, err := e.slot()
		if err != nil {
			return err
		}
		out, streams, err := admin.QueryAudit(s, q)
		if err != nil {
			return err
		}
		if e.g.json {
			// JSON lines, one record each (the format of rotation
			// archives), not the envelope: a log is read line by line.
			return audit.WriteLines(e.stdout, out)
		}
		for i, r := range out {
			if i > 0 {
				fmt.Fprintln(e.stdout)
			}
			if len(streams) > 1 {
				fmt.Fprintf(e.stdout, "Stream : %s\n", r.Stream)
			}
			fmt.Fprint(e.stdout, r.Text())
		}
		return nil
	}
}

func auditVerify(fs *flag.FlagSet) func(*env) error {
	stream := fs.String("stream", "", "only this `stream` (default: every stream)")
	var archives, anchors listFlag
	fs.Var(&archives, "archive", "an archive `FILE` written by audit rotate (repeat for each)")
	fs.Var(&anchors, "anchor", "`SEQ:MAC` printed earlier by audit head: the records up to SEQ must be unchanged (repeatable)")
	return func(e *env) error {
		var marks []store.AuditMark
		for _, a := range anchors {
			m, err := audit.ParseAnchor(a)
			if err != nil {
				return usagef("--anchor: %v", err)
			}
			marks = append(marks, m)
		}
		if len(marks) > 0 && *stream == "" {
			*stream = store.DefaultStream
		}
		var arch []audit.Record
		for _, f := range archives {
			recs, err := readArchive(f)
			if err != nil {
				return err
			}
			arch = append(arch, recs...)
		}
		s, err := e.slot()
		if err != nil {
			return err
		}
		v, err := admin.VerifyAudit(s, admin.VerifyOptions{Stream: *stream, Archive: arch, Anchors: marks})
		if err != nil {
			return err
		}
		if err := v.Err(); err != nil {
			return err
		}
		reps := []audit.Report{}
		for _, r := range v.Streams {
			reps = append(reps, r.Report)
		}
		return e.emit(map[string]any{"verified": true, "streams": reps}, func(w io.Writer) {
			if len(reps) == 0 {
				fmt.Fprintln(w, "no audit records")
			}
			for _, r := range reps {
				from := fmt.Sprintf("from %d", r.First)
				if r.Unchecked {
					from += " (earlier records rotated out; give --archive to check them)"
				}
				fmt.Fprintf(w, "stream %s: %d records verified, %s to %d", r.Stream, r.Count, from, r.Last)
				if r.Archived > 0 {
					fmt.Fprintf(w, ", %d from archives", r.Archived)
				}
				if r.Anchors > 0 {
					fmt.Fprintf(w, ", %d anchors match", r.Anchors)
				}
				fmt.Fprintln(w)
			}
		})
	}
}

func readArchive(name string) ([]audit.Record, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	defer f.Close()
	recs, err := audit.ReadLines(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return recs, nil
}

func auditRotate(fs *flag.FlagSet) func(*env) error {
	out := fs.String("out", "", "archive `FILE` to write (must not exist)")
	keep := fs.Int("keep", 0, "keep the last `N` records of each stream in the token")
	stream := fs.String("stream", "", "only this `stream` (default: every stream)")
	return func(e *env) error {
		if *out == "" {
			return usagef("--out is required")
		}
		if *keep < 0 {
			return usagef("--keep: not a count")
		}
		st, streams, err := e.auditStreams(*stream)
		if err != nil {
			return err
		}
		type cut struct {
			stream string
			last   audit.Record
		}
		var recs []audit.Record
		var cuts []cut
		for _, s := range streams {
			rs, err := st.AuditRecords(s, 0, 0)
			if err != nil {
				return err
			}
			if len(rs) <= *keep {
				continue
			}
			rs = rs[:len(rs)-*keep]
			for _, r := range rs {
				d, _ := audit.Decode(r)
				recs = append(recs, d)
			}
			cuts = append(cuts, cut{s, recs[len(recs)-1]})
		}
		rotated := map[string]int{}
		if len(cuts) > 0 {
			// The archive is on disk, complete and synced, before any
			// record leaves the token.
			f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return fmt.Errorf("archive: %w", err)
			}
			werr := audit.WriteLines(f, recs)
			if werr == nil {
				werr = f.Sync()
			}
			if cerr := f.Close(); werr == nil {
				werr = cerr
			}
			if werr != nil {
				os.Remove(*out)
				return fmt.Errorf("archive %s: %w", *out, werr)
			}
			for _, c := range cuts {
				n, err := st.RotateAudit(c.stream, c.last.Seq, c.last.MAC)
				if err != nil {
					return fmt.Errorf("rotate %s (the archive %s was written): %w", c.stream, *out, err)
				}
				rotated[c.stream] = n
			}
		}
		return e.emit(map[string]any{"archive": *out, "rotated": rotated}, func(w io.Writer) {
			if len(cuts) == 0 {
				fmt.Fprintln(w, "nothing to rotate")
				return
			}
			for _, c := range cuts {
				fmt.Fprintf(w, "stream %s: %d records up to %d archived to %s\n", c.stream, rotated[c.stream], c.last.Seq, *out)
			}
		})
	}
}

type headRow struct {
	Stream string `json:"stream"`
	Seq    uint64 `json:"seq"`
	MAC    string `json:"mac"`
	Anchor string `json:"anchor"`
}

func auditHead(fs *flag.FlagSet) func(*env) error {
	stream := fs.String("stream", "", "only this `stream` (default: every stream)")
	return func(e *env) error {
		st, streams, err := e.auditStreams(*stream)
		if err != nil {
			return err
		}
		rows := []headRow{}
		for _, s := range streams {
			state, err := st.AuditState(s)
			if err != nil {
				return err
			}
			if state.Head == nil {
				if *stream != "" {
					return errors.New("stream " + strconv.Quote(s) + " has no records")
				}
				continue
			}
			rows = append(rows, headRow{Stream: s, Seq: state.Head.Seq, MAC: hex.EncodeToString(state.Head.MAC), Anchor: audit.FormatAnchor(*state.Head)})
		}
		return e.emit(map[string]any{"heads": rows}, func(w io.Writer) {
			for _, r := range rows {
				fmt.Fprintf(w, "%s %s\n", r.Stream, r.Anchor)
			}
		})
	}
}
