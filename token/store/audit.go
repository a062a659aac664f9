package store

import (
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
)

// AuditEvent is one audit record to append: the stream it belongs to (an
// emulated HSM's ID; DefaultStream while a token has one) and the event as
// token/audit encodes it. The store gives it the stream's next sequence
// number and chains it (ChainMAC) in the transaction that appends it.
type AuditEvent struct {
	Stream string
	Record []byte
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
	m := hmac.New(sha256.New, key)
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

// appendAudit appends events inside the write transaction tx. The write
// lock that BEGIN IMMEDIATE took makes max(seq)+1 the next number for every
// process: sequences have no gaps and no duplicates.
func appendAudit(tx *txn, events []AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	var key []byte
	if err := tx.QueryRow(`SELECT value FROM meta WHERE key = 'audit_key'`).Scan(&key); err != nil {
		return fmt.Errorf("store: audit key: %w", wrapDB("audit", err))
	}
	for _, ev := range events {
		if ev.Stream == "" {
			ev.Stream = DefaultStream
		}
		var seq uint64
		var prev []byte
		err := tx.QueryRow(`SELECT seq, mac FROM audit WHERE stream = ? ORDER BY seq DESC LIMIT 1`, ev.Stream).Scan(&seq, &prev)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			seq, prev, err = auditBase(tx, ev.Stream)
			if err != nil {
				return err
			}
		case err != nil:
			return wrapDB("audit", err)
		default:
			seq++
		}
		mac := ChainMAC(key, ev.Stream, seq, prev, ev.Record)
		if _, err := tx.Exec(`INSERT INTO audit (stream, seq, record, mac) VALUES (?, ?, ?, ?)`,
			ev.Stream, int64(seq), blob(ev.Record), mac); err != nil {
			return wrapDB("audit", err)
		}
	}
	return nil
}

// auditBase is where an empty stream continues: sequence 0 with no previous
// MAC, or after a rotation the next number and the last rotated record's
// MAC, kept in meta as 'audit_base/<stream>' (8-byte seq || mac).
func auditBase(tx *txn, stream string) (uint64, []byte, error) {
	var b []byte
	err := tx.QueryRow(`SELECT value FROM meta WHERE key = ?`, "audit_base/"+stream).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, wrapDB("audit", err)
	}
	if len(b) < 8 {
		return 0, nil, fmt.Errorf("store: audit base of %q: %w", stream, ErrDamaged)
	}
	return binary.BigEndian.Uint64(b[:8]) + 1, b[8:], nil
}
