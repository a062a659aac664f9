package store

import (
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"math"
	"strings"
)

// AuditEvent is one audit record to append: the stream it belongs to (an
// emulated HSM's ID; DefaultStream while a token has one) and the event as
// token/audit encodes it. The store gives it the stream's next sequence
// number and chains it (ChainMAC) in the transaction that appends it.
type AuditEvent struct {
	Stream string
	Record []byte
	// Fill, when set, makes the record inside the transaction from the
	// IDs of the objects the transaction created, in order (a generated
	// key's handle is known only once it is stored). Its error rolls the
	// transaction back.
	Fill func(created []int64) ([]byte, error)
}

// AuditMark is a position in a stream's chain: a sequence number and the
// MAC of the record there.
type AuditMark struct {
	Seq uint64
	MAC []byte
}

// AuditState is where a stream's chain starts in the token and where it
// ends. Base is the last record rotated out (nil: the token holds the
// stream from sequence 0); Head is the last record appended (nil: none
// yet), kept in meta 'audit_head/<stream>' by the transaction of each
// append, so that a tail deleted from the table shows.
type AuditState struct {
	Base, Head *AuditMark
}

// AuditRecord is an appended event as stored.
type AuditRecord struct {
	Stream string
	Seq    uint64
	Record []byte
	MAC    []byte
}

// DefaultStream names the audit stream of a token with one emulated HSM.
const DefaultStream = "hsm-0"

// ChainMAC is the MAC that chains record seq of stream to the record
// before it (prev: that record's MAC; empty for sequence 0):
// HMAC-SHA256(key, len(stream) || stream || seq || len(prev) || prev ||
// record), lengths and seq as 8-byte big-endian. Anyone who verifies a
// chain computes it the same way (token/audit).
func ChainMAC(key []byte, stream string, seq uint64, prev, record []byte) []byte {
	return NewChainer(key).MAC(nil, stream, seq, prev, record)
}

// Chainer computes ChainMAC for a batch of records: one HMAC-SHA256
// under the key, reset for each, and one buffer for the lengths, stream
// and seq (a []byte(stream) written to the hash was an allocation per
// record).
type Chainer struct {
	m   hash.Hash
	hdr []byte
}

// NewChainer returns a Chainer for key.
func NewChainer(key []byte) *Chainer {
	return &Chainer{m: hmac.New(sha256.New, key), hdr: make([]byte, 0, 64)}
}

// MAC appends ChainMAC(key, stream, seq, prev, record) to out (the
// stores keep one array for a batch's MACs) and returns it.
func (c *Chainer) MAC(out []byte, stream string, seq uint64, prev, record []byte) []byte {
	c.m.Reset()
	h := binary.BigEndian.AppendUint64(c.hdr[:0], uint64(len(stream)))
	h = append(h, stream...)
	h = binary.BigEndian.AppendUint64(h, seq)
	h = binary.BigEndian.AppendUint64(h, uint64(len(prev)))
	c.hdr = h
	c.m.Write(h)
	c.m.Write(prev)
	c.m.Write(record)
	return c.m.Sum(out)
}

// Audited returns a view of the store whose writes also append events, in
// the same transaction as the change: a change is never stored without its
// events, nor events for a change that rolled back. Reads and writes of the
// view and of s share one open token; closing the view closes the token.
func (s *sqliteStore) Audited(events ...AuditEvent) Store {
	return &sqliteStore{sqliteCore: s.sqliteCore, events: append(s.events[:len(s.events):len(s.events)], events...)}
}

// Audit appends events on their own: what was refused (a failed login, a
// denied delete) changes nothing but is recorded.
func (s *sqliteStore) Audit(events ...AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	return s.Audited(events...).(*sqliteStore).write(func(*txn) error { return nil })
}

// AuditLater queues an event for this opening's next write, which appends
// it before its own, or for FlushAudit (AuditQueue): events about objects
// the store never holds (session keys), whose record may wait for the
// next write instead of taking a commit of its own.
func (s *sqliteStore) AuditLater(ev AuditEvent) {
	s.queue.Add(ev)
}

// FlushAudit appends the queued events now, in one transaction. A batch
// that cannot be written is dropped, all of it (nothing half-written); the
// error says how many events were lost.
func (s *sqliteStore) FlushAudit() error {
	if s.queue.Settled() == 0 {
		return nil
	}
	_, err := s.commitQueued(func(*txn) error { return nil }, true)
	return err
}

// appendAudit appends events inside the write transaction tx. The write
// lock that BEGIN IMMEDIATE took makes max(seq)+1 the next number for every
// process: sequences have no gaps and no duplicates. Each stream's head is
// read once and written once per transaction, however many events it
// appends to the stream (a batch of queued events, AuditQueue).
func appendAudit(tx *txn, events []AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	key, err := auditKey(tx)
	if err != nil {
		return err
	}
	type next struct {
		seq  uint64
		prev []byte
	}
	c := NewChainer(key)
	macs := make([]byte, 0, sha256.Size*len(events)) // the batch's MACs, one array
	// Consecutive events of one stream have consecutive sequence numbers:
	// each such run is inserted as (stream, first seq) and the records
	// and MACs (auditInsertRun).
	type run struct {
		stream string
		seq    uint64
		n      int
	}
	var runs []run
	data := make([]any, 0, 2*len(events)) // record, mac of each
	var heads map[string]*next            // streams appended to, in this transaction
	var order []string                    // their first appearance, for the head writes
	for _, ev := range events {
		if ev.Stream == "" {
			ev.Stream = DefaultStream
		}
		if ev.Fill != nil {
			rec, err := ev.Fill(tx.created)
			if err != nil {
				return err
			}
			ev.Record = rec
		}
		n := heads[ev.Stream]
		if n == nil {
			seq, prev, err := auditNext(tx, ev.Stream)
			if err != nil {
				return err
			}
			if heads == nil {
				heads = map[string]*next{}
			}
			n = &next{seq: seq, prev: prev}
			heads[ev.Stream] = n
			order = append(order, ev.Stream)
		}
		if n.seq > math.MaxInt64 {
			// SQLite's ?2 + k would turn into a REAL past it.
			return fmt.Errorf("store: audit %s: sequence exhausted", ev.Stream)
		}
		macs = c.MAC(macs, ev.Stream, n.seq, n.prev, ev.Record)
		mac := macs[len(macs)-sha256.Size : len(macs) : len(macs)]
		if k := len(runs) - 1; k >= 0 && runs[k].stream == ev.Stream {
			runs[k].n++
		} else {
			runs = append(runs, run{stream: ev.Stream, seq: n.seq, n: 1})
		}
		data = append(data, blob(ev.Record), mac)
		n.seq, n.prev = n.seq+1, mac
	}
	// Each run goes in statements of auditRunSizes rows, the largest that
	// fit first: per row only the record and the MAC are bound (a
	// statement per row, then four values per row, were most of writing
	// a batch of queued records).
	args := make([]any, 0, 2+2*auditRunSize(len(events)))
	for _, r := range runs {
		seq := r.seq
		for left := r.n; left > 0; {
			size := auditRunSize(left)
			args = append(args[:0], r.stream, int64(seq))
			args = append(args, data[:2*size]...)
			if _, err := tx.Exec(auditInsertRun(size), args...); err != nil {
				return wrapDB("audit", err)
			}
			data = data[2*size:]
			seq += uint64(size)
			left -= size
		}
	}
	for _, st := range order {
		n := heads[st]
		// An upsert changes the row in place; OR REPLACE deleted it and
		// inserted a new one (a new rowid), which changed meta's key
		// index too: one more page in every audited write's commit.
		if _, err := tx.Exec(`INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
			"audit_head/"+st, markBytes(n.seq-1, n.prev)); err != nil {
			return wrapDB("audit", err)
		}
	}
	return nil
}

// auditRunSizes are the row counts of the statements that insert a run of
// records (auditInsertRun), largest first: a run of n rows takes at most
// three statements of each smaller size after n/256 of the largest, and a
// connection prepares five statements.
var auditRunSizes = [...]int{256, 64, 16, 4, 1}

// auditRunSize is the largest of auditRunSizes at most n (n >= 1).
func auditRunSize(n int) int {
	for _, s := range auditRunSizes {
		if s <= n {
			return s
		}
	}
	return 1
}

// auditRunSQL holds auditInsertRun's statements, by row count. Their
// parameters are plain ? in order: with numbered ones (?NNN) the driver
// looks each one's name up in a list as long as the statement's
// parameters, as long again as the statement for each bind.
var auditRunSQL = func() map[int]string {
	m := map[int]string{}
	for _, n := range auditRunSizes {
		var b strings.Builder
		b.WriteString(`INSERT INTO audit (stream, seq, record, mac) SELECT p.stream, p.seq + v.column1, v.column2, v.column3
			FROM (SELECT ? AS stream, ? AS seq) AS p, (VALUES (0, ?, ?)`)
		for i := 1; i < n; i++ {
			fmt.Fprintf(&b, `, (%d, ?, ?)`, i)
		}
		b.WriteString(`) AS v`)
		m[n] = b.String()
	}
	return m
}()

// auditInsertRun is the statement that inserts n records of one stream
// from sequence ?2 on, records and MACs bound in turn from ?3 (n one of
// auditRunSizes).
func auditInsertRun(n int) string { return auditRunSQL[n] }

// auditNext is the sequence number and previous MAC of a stream's next
// record: after the head in meta, which a deleted tail does not move back
// (the next record then leaves a gap that verify reports, rather than
// closing over it); a token without a head continues after its last row,
// or from the base.
func auditNext(tx *txn, stream string) (uint64, []byte, error) {
	head, err := auditMark(tx, "audit_head/"+stream)
	if err != nil {
		return 0, nil, err
	}
	if head != nil {
		return head.Seq + 1, head.MAC, nil
	}
	var seq uint64
	var prev []byte
	err = tx.QueryRow(`SELECT seq, mac FROM audit WHERE stream = ? ORDER BY seq DESC LIMIT 1`, stream).Scan(&seq, &prev)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return auditBase(tx, stream)
	case err != nil:
		return 0, nil, wrapDB("audit", err)
	}
	return seq + 1, prev, nil
}

func markBytes(seq uint64, mac []byte) []byte {
	b := binary.BigEndian.AppendUint64(nil, seq)
	return append(b, mac...)
}

// auditMark reads a meta row holding seq || mac (nil: no such row).
func auditMark(q execer, key string) (*AuditMark, error) {
	var b []byte
	err := q.QueryRow(`SELECT value FROM meta WHERE key = ?`, key).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, wrapDB("audit", err)
	}
	if len(b) < 8 {
		return nil, fmt.Errorf("store: audit %s: %w", key, ErrDamaged)
	}
	return &AuditMark{Seq: binary.BigEndian.Uint64(b[:8]), MAC: append([]byte(nil), b[8:]...)}, nil
}

// AuditKey is the chain's HMAC key (meta 'audit_key'). Anyone who can read
// the token file can read it too (docs/audit.md, the threat model).
func (s *sqliteStore) AuditKey() ([]byte, error) {
	var key []byte
	err := s.read(func(tx *txn) error {
		var err error
		key, err = auditKey(tx)
		return err
	})
	return key, wrapDB("audit key", err)
}

// auditKey reads meta 'audit_key'.
func auditKey(q execer) ([]byte, error) {
	var key []byte
	if err := q.QueryRow(`SELECT value FROM meta WHERE key = 'audit_key'`).Scan(&key); err != nil {
		return nil, fmt.Errorf("store: audit key: %w", wrapDB("audit", err))
	}
	return key, nil
}

// AuditStreams lists the streams the token has records, a base or a head
// of, in name order.
func (s *sqliteStore) AuditStreams() ([]string, error) {
	var out []string
	err := s.read(func(tx *txn) error {
		rows, err := tx.Query(`SELECT DISTINCT stream FROM audit
			UNION SELECT substr(key, 12) FROM meta WHERE key LIKE 'audit_head/%'
			UNION SELECT substr(key, 12) FROM meta WHERE key LIKE 'audit_base/%'
			ORDER BY 1`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				return err
			}
			out = append(out, n)
		}
		return rows.Err()
	})
	return out, wrapDB("audit streams", err)
}

// AuditRecords returns up to limit records of a stream (limit <= 0: all)
// from sequence from on, in sequence order.
func (s *sqliteStore) AuditRecords(stream string, from uint64, limit int) ([]AuditRecord, error) {
	if limit <= 0 {
		limit = -1
	}
	var out []AuditRecord
	err := s.read(func(tx *txn) error {
		var err error
		out, err = readAuditRecords(tx, stream, from, limit)
		return err
	})
	return out, wrapDB("audit records", err)
}

// AuditState returns a stream's base and head.
func (s *sqliteStore) AuditState(stream string) (AuditState, error) {
	var st AuditState
	err := s.read(func(tx *txn) error {
		var err error
		st, err = readAuditState(tx, stream)
		return err
	})
	return st, wrapDB("audit state", err)
}

// AuditChain is what verifying a stream needs: the key, the stream's base
// and head, and all its records.
type AuditChain struct {
	Key     []byte
	State   AuditState
	Records []AuditRecord
}

// AuditChain reads a stream's key, base, head and records in one snapshot,
// so that a record another process appends meanwhile is either in all of
// them or in none (read apart, a head read before it looked truncated, or
// the record appended behind the token's back).
func (s *sqliteStore) AuditChain(stream string) (AuditChain, error) {
	var c AuditChain
	err := s.read(func(tx *txn) error {
		var err error
		if c.Key, err = auditKey(tx); err != nil {
			return err
		}
		if c.State, err = readAuditState(tx, stream); err != nil {
			return err
		}
		c.Records, err = readAuditRecords(tx, stream, 0, -1)
		return err
	})
	return c, wrapDB("audit chain", err)
}

func readAuditRecords(tx *txn, stream string, from uint64, limit int) ([]AuditRecord, error) {
	rows, err := tx.Query(`SELECT seq, record, mac FROM audit WHERE stream = ? AND seq >= ? ORDER BY seq LIMIT ?`,
		stream, int64(from), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AuditRecord
	for rows.Next() {
		r := AuditRecord{Stream: stream}
		var seq int64
		if err := rows.Scan(&seq, &r.Record, &r.MAC); err != nil {
			return nil, err
		}
		r.Seq = uint64(seq)
		out = append(out, r)
	}
	return out, rows.Err()
}

func readAuditState(tx *txn, stream string) (AuditState, error) {
	var st AuditState
	var err error
	if st.Base, err = auditMark(tx, "audit_base/"+stream); err != nil {
		return st, err
	}
	st.Head, err = auditMark(tx, "audit_head/"+stream)
	return st, err
}

// RotateAudit deletes a stream's records up to and including sequence
// through, whose MAC must still be mac (the one the caller archived: a
// record changed since it was read is not deleted), and makes that record
// the stream's base, so that the chain goes on from it. It returns how
// many records it deleted.
func (s *sqliteStore) RotateAudit(stream string, through uint64, mac []byte) (int, error) {
	var n int64
	err := s.write(func(tx *txn) error {
		var got []byte
		err := tx.QueryRow(`SELECT mac FROM audit WHERE stream = ? AND seq = ?`, stream, int64(through)).Scan(&got)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("store: rotate %s: no record %d: %w", stream, through, ErrNotFound)
		}
		if err != nil {
			return err
		}
		if !hmac.Equal(got, mac) {
			return fmt.Errorf("store: rotate %s: record %d changed since it was archived: %w", stream, through, ErrConflict)
		}
		res, err := tx.Exec(`DELETE FROM audit WHERE stream = ? AND seq <= ?`, stream, int64(through))
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		_, err = tx.Exec(`INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)`, "audit_base/"+stream, markBytes(through, mac))
		return err
	})
	return int(n), wrapDB("audit rotate", err)
}

// AuditBoot is the token's reboot counter, CloudHSM's "32-bit persistent
// ordinal counter that is incremented when the HSM hardware is rebooted"
// (UG:interpreting-audit-logs): the emulated HSM's hardware is the host,
// so meta 'audit_boot' counts the host's boots (its kernel boot ID, meta
// 'audit_boot_id') in which the token recorded events. It is read, and
// written only by the first call after a reboot. The token calls it once
// per opening, before its first event: a process that records nothing
// (an application that only signs) neither reads nor writes it.
func (s *sqliteStore) AuditBoot() (uint32, error) {
	id := bootID()
	var n int64
	var have string
	get := func(tx *txn) error {
		n, have = 0, ""
		err := tx.QueryRow(`SELECT value FROM meta WHERE key = 'audit_boot'`).Scan(&n)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		err = tx.QueryRow(`SELECT value FROM meta WHERE key = 'audit_boot_id'`).Scan(&have)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		return nil
	}
	if err := s.read(get); err != nil {
		return 0, wrapDB("audit boot", err)
	}
	if n > 0 && have == id {
		return uint32(n), nil
	}
	err := s.write(func(tx *txn) error {
		if err := get(tx); err != nil {
			return err
		}
		if n > 0 && have == id {
			return nil // another process counted this boot meanwhile
		}
		n++
		if _, err := tx.Exec(`INSERT OR REPLACE INTO meta (key, value) VALUES ('audit_boot', ?)`, n); err != nil {
			return err
		}
		_, err := tx.Exec(`INSERT OR REPLACE INTO meta (key, value) VALUES ('audit_boot_id', ?)`, id)
		return err
	})
	return uint32(n), wrapDB("audit boot", err)
}

// auditBase is where an empty stream continues: sequence 0 with no previous
// MAC, or after a rotation the next number and the last rotated record's
// MAC, kept in meta as 'audit_base/<stream>' (8-byte seq || mac).
func auditBase(tx *txn, stream string) (uint64, []byte, error) {
	m, err := auditMark(tx, "audit_base/"+stream)
	if err != nil || m == nil {
		return 0, nil, err
	}
	return m.Seq + 1, m.MAC, nil
}
