package admin

import (
	"errors"
	"slices"
	"strings"

	"gohsm/token"
	"gohsm/token/audit"
	"gohsm/token/store"
)

// The audit log needs no login (cmd/gohsm/audit.go says why): these take
// the slot, not a session.

// AuditStreams is the slot's store, and stream, or every stream of the
// token when stream is "". A stream the token has never written (a typo:
// --stream hsm-9 on a two-HSM cluster) is a not_found error naming the
// streams that exist: showing, rotating or verifying nothing must not
// read as an empty or verified log.
func AuditStreams(s *token.Slot, stream string) (store.Store, []string, error) {
	return auditStreams(s, stream, nil)
}

// auditStreams is AuditStreams where a stream also counts as known when
// the archive holds records of it (audit verify --archive).
func auditStreams(s *token.Slot, stream string, archive []audit.Record) (store.Store, []string, error) {
	st := s.Store()
	if stream != "" {
		if err := knownStream(st, stream, archive); err != nil {
			return nil, nil, err
		}
		return st, []string{stream}, nil
	}
	streams, err := st.AuditStreams()
	return st, streams, err
}

// AuditQuery selects audit records: `gohsm audit show`'s flags.
type AuditQuery struct {
	Stream string // only this stream ("": every stream)
	Since  uint64 // from this sequence number on
	Opcode string // only events of this opcode (CN_LOGIN, LOGIN, 0xd)
	User   string // only events naming this user (acted on, or acting)
	// Limit > 0 keeps each stream's last Limit matching records (the
	// newest); 0 keeps all.
	Limit int
}

// Check validates the query without reading the log.
func (q AuditQuery) Check() error {
	_, err := q.opcode()
	return err
}

func (q AuditQuery) opcode() (audit.Opcode, error) {
	var op audit.Opcode
	if q.Opcode != "" {
		var err error
		if op, err = audit.ParseOpcode(q.Opcode); err != nil {
			return 0, inputf("opcode", ": %v", err)
		}
	}
	if q.Limit < 0 {
		return 0, inputf("limit", ": not a count")
	}
	return op, nil
}

// QueryAudit returns the records q selects, stream by stream, each in
// sequence order, and the streams read (every stream of the token when
// q.Stream is ""). A bad opcode or limit is an InputError.
func QueryAudit(s *token.Slot, q AuditQuery) ([]audit.Record, []string, error) {
	op, err := q.opcode()
	if err != nil {
		return nil, nil, err
	}
	who := strings.ToLower(q.User)
	st, streams, err := AuditStreams(s, q.Stream)
	if err != nil {
		return nil, nil, err
	}
	out := []audit.Record{}
	for _, name := range streams {
		recs, err := st.AuditRecords(name, q.Since, 0)
		if err != nil {
			return nil, nil, err
		}
		var kept []audit.Record
		for _, r := range recs {
			d, _ := audit.Decode(r)
			if q.Opcode != "" && d.Event.Opcode != op {
				continue
			}
			if who != "" && d.Event.User != who && d.Event.Actor != who {
				continue
			}
			kept = append(kept, d)
		}
		if q.Limit > 0 && len(kept) > q.Limit {
			kept = kept[len(kept)-q.Limit:]
		}
		out = append(out, kept...)
	}
	return out, streams, nil
}

// Lines are records as `gohsm audit show --json` prints them (one
// audit.Line each), for a JSON array.
func Lines(recs []audit.Record) []audit.Line {
	out := make([]audit.Line, len(recs))
	for i, r := range recs {
		out[i] = r.Line()
	}
	return out
}

// VerifyOptions is what `gohsm audit verify` checks beyond the token's
// records.
type VerifyOptions struct {
	Stream  string            // only this stream ("": every stream)
	Archive []audit.Record    // records rotated out (audit rotate's files)
	Anchors []store.AuditMark // heads noted earlier (audit head); they need a Stream
}

// StreamReport is one stream's verification: audit.Report's counts when
// the chain verifies, else the first bad record and why.
type StreamReport struct {
	audit.Report
	OK      bool   `json:"ok"`
	HeadSeq uint64 `json:"head_seq"` // the stream's last sequence number in the token
	BadSeq  uint64 `json:"bad_seq,omitempty"`
	Reason  string `json:"reason,omitempty"` // why record BadSeq fails; empty when OK
	err     error
}

// Verification is the whole log's: OK when every stream verifies.
type Verification struct {
	OK      bool           `json:"ok"`
	Streams []StreamReport `json:"streams"`
}

// Err is the first stream's failure (an *audit.VerifyError), or nil.
func (v Verification) Err() error {
	for _, s := range v.Streams {
		if s.err != nil {
			return s.err
		}
	}
	return nil
}

// VerifyAudit checks the chain of each stream (audit.Verify). A chain that
// does not verify is reported in the result, not as an error; the error is
// for a log that cannot be read (store unreachable).
//
// An unknown stream is AuditStreams' not_found error.
func VerifyAudit(s *token.Slot, o VerifyOptions) (Verification, error) {
	v := Verification{OK: true, Streams: []StreamReport{}}
	st, streams, err := auditStreams(s, o.Stream, o.Archive)
	if err != nil {
		return v, err
	}
	for _, name := range streams {
		c, err := audit.Load(st, name)
		if err != nil {
			return v, err
		}
		for _, r := range o.Archive {
			if r.Stream == name {
				c.Archive = append(c.Archive, r)
			}
		}
		c.Anchors = o.Anchors
		rep, err := audit.Verify(c)
		sr := StreamReport{Report: rep, OK: err == nil, err: err}
		sr.Stream = name
		if c.Head != nil {
			sr.HeadSeq = c.Head.Seq
		}
		var ve *audit.VerifyError
		switch {
		case errors.As(err, &ve):
			sr.BadSeq, sr.Reason = ve.Seq, ve.Reason
		case err != nil:
			sr.Reason = err.Error()
		}
		if err != nil {
			v.OK = false
		}
		v.Streams = append(v.Streams, sr)
	}
	return v, nil
}

// knownStream is nil when the token has stream (records, a base or a
// head of it) or the archives hold records of it, else a not_found error
// naming the token's streams.
func knownStream(st store.Store, stream string, archive []audit.Record) error {
	all, err := st.AuditStreams()
	if err != nil {
		return err
	}
	if slices.Contains(all, stream) {
		return nil
	}
	for _, r := range archive {
		if r.Stream == stream {
			return nil
		}
	}
	have := "none: the token has no audit records yet"
	if len(all) > 0 {
		have = strings.Join(all, ", ")
	}
	return Errorf(CodeNotFound, "no audit stream %q (the token's streams: %s)", stream, have)
}
