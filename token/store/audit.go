package store

import (
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
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
	return chainMAC(hmac.New(sha256.New, key), stream, seq, prev, record)
}

// chainMAC is ChainMAC with m, an HMAC-SHA256 under the key, reset first
// (appendAudit keeps one for a transaction's events).
func chainMAC(m hash.Hash, stream string, seq uint64, prev, record []byte) []byte {
	m.Reset()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(stream)))
	m.Write(n[:])
	m.Write([]byte(stream))
	binary.BigEndian.PutUint64(n[:], seq)
	m.Write(n[:])
	binary.BigEndian.PutUint64(n[:], uint64(len(prev)))
	m.Write(n[:])
	m.Write(prev)
	m.Write(record)
	return m.Sum(nil)
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

// AuditLater queues events for this opening's next write, which appends
// them before its own, or for FlushAudit (AuditQueue): events about
// objects the store never holds (session keys), whose record may wait for
// the next write instead of taking a commit of its own.
func (s *sqliteStore) AuditLater(events ...AuditEvent) {
	s.queue.Add(events...)
}

// FlushAudit appends the queued events now, in one transaction. A batch
// that cannot be written is dropped, all of it (nothing half-written); the
// error says how many events were lost.
func (s *sqliteStore) FlushAudit() error {
	if s.queue.Len() == 0 {
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
	m := hmac.New(sha256.New, key)
	rows := make([]any, 0, 4*len(events)) // stream, seq, record, mac of each
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
		mac := chainMAC(m, ev.Stream, n.seq, n.prev, ev.Record)
		rows = append(rows, ev.Stream, int64(n.seq), blob(ev.Record), mac)
		n.seq, n.prev = n.seq+1, mac
	}
	// The rows go in auditInsertRows at a time, the rest one by one: a
	// statement per row was most of writing a batch of queued records.
	for len(rows) >= 4*auditInsertRows {
		if _, err := tx.Exec(auditInsertMany, rows[:4*auditInsertRows]...); err != nil {
			return wrapDB("audit", err)
		}
		rows = rows[4*auditInsertRows:]
	}
	for ; len(rows) > 0; rows = rows[4:] {
		if _, err := tx.Exec(auditInsertOne, rows[:4]...); err != nil {
			return wrapDB("audit", err)
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

// auditInsertOne appends one record; auditInsertMany auditInsertRows.
const (
	auditInsertOne  = `INSERT INTO audit (stream, seq, record, mac) VALUES (?, ?, ?, ?)`
	auditInsertRows = 16
)

var auditInsertMany = auditInsertOne + strings.Repeat(`, (?, ?, ?, ?)`, auditInsertRows-1)

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
