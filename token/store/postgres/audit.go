//go:build !nopostgres

package postgres

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/jackc/pgx/v5"

	"gohsm/token/store"
)

// The audit log on PostgreSQL: the SQLite token's (token/store/audit.go),
// with the same tables, meta rows and chain. The appends of a write
// transaction come after its first statement, the generation bump, whose
// row lock makes writers of every host take turns: the head each append
// reads is the last committed one, so every stream's sequence has no gap
// and no duplicate across hosts, as BEGIN IMMEDIATE gives SQLite.

// Audited returns a view of the store whose writes also append events in
// the same transaction (commit calls appendAudit). Views share the
// opening: closing one closes it.
func (s *pgStore) Audited(events ...store.AuditEvent) store.Store {
	return &pgStore{pool: s.pool, timeout: s.timeout, core: s.core,
		events: append(s.events[:len(s.events):len(s.events)], events...)}
}

// Audit appends events on their own: what was refused (a failed login, a
// denied delete) changes nothing but is recorded.
func (s *pgStore) Audit(events ...store.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	v := s.Audited(events...).(*pgStore)
	return wrapErr("audit", v.write(nil))
}

// AuditLater queues an event for this opening's next write, or FlushAudit
// (store.AuditQueue).
func (s *pgStore) AuditLater(ev store.AuditEvent) {
	s.core.queue.Add(ev)
}

// FlushAudit appends the queued events now, in one transaction; a batch
// that cannot be written is dropped whole, and the error says so.
func (s *pgStore) FlushAudit() error {
	if s.core.queue.Settled() == 0 {
		return nil
	}
	_, err := s.commitQueued(context.Background(), nil, true)
	return wrapErr("audit", err)
}

// metaRow is a row of meta.
type metaRow struct {
	K string
	V []byte
}

// auditMetaSQL reads the meta rows appendAudit needs (auditMetaKeys).
const auditMetaSQL = `SELECT key, value FROM meta WHERE key = ANY($1)`

// auditMetaKeys are the meta rows appendAudit reads for events: the key,
// and the head and base of each stream named.
func auditMetaKeys(events []store.AuditEvent) []string {
	keys := []string{"audit_key"}
	seen := map[string]bool{}
	for _, ev := range events {
		if st := streamOf(ev); !seen[st] {
			seen[st] = true
			keys = append(keys, "audit_head/"+st, "audit_base/"+st)
		}
	}
	return keys
}

// readAuditMeta collects auditMetaSQL's rows.
func readAuditMeta(rows pgx.Rows) ([]metaRow, error) {
	return pgx.CollectRows(rows, pgx.RowToStructByPos[metaRow])
}

// The write of a batch of auditCopyMin records or more is one simple
// query, sent with its COPY data in one round trip (auditBatch,
// sendCommit): the COPY of the records (in
// the binary format, as the client lays them out: no parameters, no
// arrays to unnest, and the server inserts them by pages), the heads'
// upsert, and COMMIT. A failure anywhere skips the rest of the query,
// COMMIT included: the transaction is left failed, for Rollback to end.
const (
	auditCopySQL  = "COPY audit (stream, seq, record, mac) FROM STDIN (FORMAT binary);\n"
	auditHeadsSQL = "INSERT INTO meta (key, value) VALUES "
	auditHeadsEnd = "\nON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;\nCOMMIT"
)

// copySignature starts binary COPY data: the signature, no flags, no
// header extension.
const copySignature = "PGCOPY\n\377\r\n\000" + "\x00\x00\x00\x00" + "\x00\x00\x00\x00"

// headHexLen is the length in hex of a head's value: the sequence number
// and a record's MAC (store.MarkBytes).
const headHexLen = 2 * (8 + sha256.Size)

// auditCopyRows and auditCopyBytes bound the rows of one COPY statement
// of a batch (their binary COPY data, copyRowSize; a row longer than
// that has a COPY of its own): a batch of more is several COPY
// statements in its query. PostgreSQL 15 keeps a COPY's rows until it
// inserts them by 1,000 (or by 64 KB of text input, never reached in the
// binary format), and past some tens of them a row cost the server about
// twice its CPU: rows of 241 bytes were fine by 128 (31 KB), not by 160
// (39 KB); rows of 641 bytes fine by 64 (41 KB), not by 128
// (BenchmarkFlushAudit, docs/bench.md "Audit records on PostgreSQL,
// second pass").
const (
	auditCopyRows  = 128
	auditCopyBytes = 32 << 10
)

// copyRun counts the rows of the COPY statement being laid out.
type copyRun struct{ rows, bytes int }

// add counts a row of n bytes and tells whether it starts a new COPY
// statement: the first row, or one past auditCopyRows or auditCopyBytes.
func (r *copyRun) add(n int) bool {
	start := r.rows == 0 || r.rows >= auditCopyRows || r.bytes+n > auditCopyBytes
	if start {
		*r = copyRun{}
	}
	r.rows, r.bytes = r.rows+1, r.bytes+n
	return start
}

// auditBatch lays out the wire messages of a batch: the simple query
// (a COPY statement for each of the copies runs of rows copyRun cuts,
// the heads' upsert for the streams in order, COMMIT), then for each
// COPY a CopyData message with
// its rows and CopyDone. Each head's value is a placeholder of
// headHexLen zeros at the offset heads returns, for setHead to fill once
// the chain is computed; each COPY's data is started by startCopy, its
// rows appended by copyRow, and it is ended by endCopy. size is the
// rows' length (copyRowSize), so that the messages take one allocation.
func auditBatch(order []string, copies, size int) (buf []byte, heads []int) {
	qlen := 5 + copies*len(auditCopySQL) + len(auditHeadsSQL) + len(auditHeadsEnd) + 1
	for i, st := range order {
		if i > 0 {
			qlen += len(", ")
		}
		qlen += len(`(convert_from(decode('', 'hex'), 'UTF8'), decode('', 'hex'))`) + 2*len("audit_head/"+st) + headHexLen
	}
	buf = make([]byte, 0, qlen+copies*(5+len(copySignature)+2+5)+size)
	buf = append(buf, 'Q', 0, 0, 0, 0)
	for range copies {
		buf = append(buf, auditCopySQL...)
	}
	buf = append(buf, auditHeadsSQL...)
	heads = make([]int, len(order))
	for i, st := range order {
		if i > 0 {
			buf = append(buf, ", "...)
		}
		// Hex, so that no quoting (nor standard_conforming_strings)
		// matters whatever the stream's name.
		buf = append(buf, "(convert_from(decode('"...)
		buf = hex.AppendEncode(buf, []byte("audit_head/"+st))
		buf = append(buf, "', 'hex'), 'UTF8'), decode('"...)
		heads[i] = len(buf)
		for range headHexLen {
			buf = append(buf, '0')
		}
		buf = append(buf, "', 'hex'))"...)
	}
	buf = append(buf, auditHeadsEnd...)
	buf = append(buf, 0)
	binary.BigEndian.PutUint32(buf[1:], uint32(len(buf)-1))
	return buf, heads
}

// startCopy starts a COPY's data: a CopyData message, whose length
// endCopy writes (at the offset buf had), and the signature.
func startCopy(buf []byte) []byte {
	buf = append(buf, 'd', 0, 0, 0, 0)
	return append(buf, copySignature...)
}

// copyRowSize is the length of a row of stream and record in binary COPY
// data: the field count, and each field's length and bytes.
func copyRowSize(stream string, record []byte) int {
	return 2 + 4 + len(stream) + 4 + 8 + 4 + len(record) + 4 + sha256.Size
}

// copyRow appends a row to the COPY data, its MAC computed by c (the
// chain: the MAC before it is prev) straight into buf, and returns buf
// and the MAC.
func copyRow(buf []byte, c *store.Chainer, stream string, seq uint64, prev, record []byte) ([]byte, []byte) {
	buf = binary.BigEndian.AppendUint16(buf, 4)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(stream)))
	buf = append(buf, stream...)
	buf = binary.BigEndian.AppendUint32(buf, 8)
	buf = binary.BigEndian.AppendUint64(buf, seq)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(record)))
	buf = append(buf, record...)
	buf = binary.BigEndian.AppendUint32(buf, sha256.Size)
	buf = c.MAC(buf, stream, seq, prev, record)
	return buf, buf[len(buf)-sha256.Size : len(buf) : len(buf)]
}

// endCopy ends the COPY data that starts at data (startCopy): the
// trailer, the CopyData message's length, CopyDone.
func endCopy(buf []byte, data int) []byte {
	buf = binary.BigEndian.AppendUint16(buf, 0xffff) // -1: no more rows
	binary.BigEndian.PutUint32(buf[data+1:], uint32(len(buf)-data-1))
	return append(buf, 'c', 0, 0, 0, 4)
}

// setHead writes a head's value into its placeholder at off (auditBatch).
func setHead(buf []byte, off int, m store.AuditMark) error {
	v := store.MarkBytes(m)
	if 2*len(v) != headHexLen {
		return fmt.Errorf("store: audit head of %d bytes", len(v))
	}
	hex.Encode(buf[off:off+headHexLen], v)
	return nil
}

// maxField is the longest field binary COPY data can give.
const maxField = math.MaxInt32

// appendAudit appends the view's events inside the write transaction tx
// and commits it: meta holds the rows auditMetaKeys names, read after
// the generation bump (commitOnce: in the round trip of BEGIN when the
// write has no statements of its own, else in one of its own); the
// records, the heads and COMMIT go in one round trip (insertAudit, or
// copyAudit for a batch of auditCopyMin records or more).
func (s *pgStore) appendAudit(ctx context.Context, tx pgx.Tx, meta []metaRow) error {
	var key []byte
	next := map[string]store.AuditMark{} // per stream: the next seq, the MAC before it
	heads := map[string]bool{}
	for _, m := range meta {
		switch {
		case m.K == "audit_key":
			key = m.V
		case len(m.K) > 11 && m.K[:11] == "audit_head/":
			mk, err := store.ParseMark(m.K, m.V)
			if err != nil {
				return err
			}
			next[m.K[11:]] = store.AuditMark{Seq: mk.Seq + 1, MAC: mk.MAC}
			heads[m.K[11:]] = true
		}
	}
	if len(key) == 0 {
		return fmt.Errorf("store: audit key: %w", store.ErrNotFound)
	}
	for _, m := range meta { // a base counts only for a stream without a head
		if len(m.K) > 11 && m.K[:11] == "audit_base/" && !heads[m.K[11:]] {
			mk, err := store.ParseMark(m.K, m.V)
			if err != nil {
				return err
			}
			next[m.K[11:]] = store.AuditMark{Seq: mk.Seq + 1, MAC: mk.MAC}
		}
	}
	var order []string // the streams appended to, in first appearance
	seen := map[string]bool{}
	for _, ev := range s.events {
		if st := streamOf(ev); !seen[st] {
			seen[st] = true
			order = append(order, st)
		}
	}
	// A stream without a head: after its last record when it has one (a
	// head is written with every append, so only a token written
	// otherwise lacks it).
	for _, st := range order {
		if heads[st] {
			continue
		}
		var seq int64
		var mac []byte
		err := tx.QueryRow(ctx, `SELECT seq, mac FROM audit WHERE stream = $1 ORDER BY seq DESC LIMIT 1`, st).Scan(&seq, &mac)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return wrapErr("audit", err)
		default:
			next[st] = store.AuditMark{Seq: uint64(seq) + 1, MAC: mac}
		}
	}
	created := createdIn(ctx)
	streams, recs := make([]string, len(s.events)), make([][]byte, len(s.events))
	for i, ev := range s.events {
		rec := ev.Record
		if ev.Fill != nil {
			var err error
			if rec, err = ev.Fill(created); err != nil {
				return err
			}
		}
		st := streamOf(ev)
		if len(rec) > maxField || len(st) > maxField {
			return fmt.Errorf("store: audit %s: a record of %d bytes", st, len(rec))
		}
		streams[i], recs[i] = st, nonNil(rec)
	}
	var err error
	if len(recs) < auditCopyMin {
		err = insertAudit(ctx, tx, store.NewChainer(key), next, order, streams, recs)
	} else {
		err = copyAudit(ctx, tx, store.NewChainer(key), next, order, streams, recs)
	}
	if lc, ok := err.(*lostCommit); ok {
		// The batch's last record, for lostCommitted to look for.
		st := streams[len(streams)-1]
		lc.tail = auditTail{stream: st, seq: next[st].Seq - 1, mac: next[st].MAC}
		lc.err = wrapErr("audit", lc.err)
		return lc
	}
	return wrapErr("audit", err)
}

// auditTail is the last record of a batch: its stream, sequence number
// and MAC.
type auditTail struct {
	stream string
	seq    uint64
	mac    []byte
}

// outcomeWaitSQL waits, on another connection, for the write
// transactions holding the generation row to end: the one whose COMMIT's
// answer was lost holds it from its first statement to its end, and may
// still be running (its COMMIT waits on a lock; the client gave up
// first). Once this statement has the row, that transaction committed or
// rolled back for good, and the statements after it see which.
const outcomeWaitSQL = `SELECT n FROM generation FOR SHARE`

// outcomeSQL reads what a batch's last record (stream $1, sequence $2)
// left: the MAC of the record of that number, and the stream's base
// (rotation may have deleted the record since).
const outcomeSQL = `SELECT (SELECT mac FROM audit WHERE stream = $1 AND seq = $2),
	(SELECT value FROM meta WHERE key = 'audit_base/' || $1)`

// errOutcomeUnknown is lostCommitted's error when the records of the
// stream were rotated past the batch's last one: the MAC to compare is
// gone.
var errOutcomeUnknown = errors.New("the stream was rotated past the batch's last record")

// lostCommitted tells, on another connection under half the store's timeout,
// whether the transaction of a commit whose answer was lost (a
// lostCommit) committed: after outcomeWaitSQL, whether the batch's last
// record is there with its MAC. The MAC makes the match exact: when the
// transaction did not commit, another may have written a record of that
// number since, with another MAC (a record's MAC covers its stream,
// number, record and the MAC before it). An error (the server does not
// answer) leaves the outcome unknown.
func (s *pgStore) lostCommitted(tail auditTail) (ok bool, err error) {
	// Half the store's timeout: the call whose commit's answer was lost
	// has spent up to a whole one already, and a call on a server that
	// does not answer must fail within about one (tests/hosts'
	// TestDatabaseOutage), not wait a second one out.
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout/2)
	defer cancel()
	defer func() { s.core.noteTimeout(ctx, err) }()
	if tail.seq > math.MaxInt64 {
		return false, fmt.Errorf("store: audit %s: no record %d", tail.stream, tail.seq)
	}
	var mac, base []byte
	read := func() error {
		b := &pgx.Batch{}
		b.Queue(outcomeWaitSQL)
		b.Queue(outcomeSQL, tail.stream, int64(tail.seq))
		br := s.pool.SendBatch(ctx, b)
		_, err := br.Exec()
		if err == nil {
			err = br.QueryRow().Scan(&mac, &base)
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		return err
	}
	err = read()
	if s.again(ctx, err) {
		err = read()
	}
	if err != nil {
		return false, err
	}
	if mac != nil {
		return hmac.Equal(mac, tail.mac), nil
	}
	if base != nil {
		m, err := store.ParseMark("audit_base/"+tail.stream, base)
		if err != nil {
			return false, err
		}
		switch {
		case m.Seq == tail.seq:
			return hmac.Equal(m.MAC, tail.mac), nil
		case m.Seq > tail.seq:
			return false, errOutcomeUnknown
		}
	}
	return false, nil
}

// auditCopyMin is the fewest records a batch writes by COPY (copyAudit);
// fewer go by auditInsertSQL (insertAudit). The COPY's query is parsed
// and planned at each batch, where auditInsertSQL is prepared once per
// connection: a batch of 1 or 16 records took the server about 100-170
// us more CPU by COPY, one of 800 about 1,000 us less
// (BenchmarkFlushAudit; docs/bench.md "Audit records on PostgreSQL,
// second pass").
const auditCopyMin = 128

// auditInsertSQL appends a batch's records and writes the heads of the
// streams appended to, in one statement: the rows come as arrays,
// unnested in the server, a statement and its execution for the whole
// batch rather than for each record.
const auditInsertSQL = `WITH records AS (
	INSERT INTO audit (stream, seq, record, mac)
	SELECT * FROM unnest($1::text[], $2::bigint[], $3::bytea[], $4::bytea[]))
INSERT INTO meta (key, value) SELECT * FROM unnest($5::text[], $6::bytea[])
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`

// insertAudit writes a small batch (auditCopyMin): the records of
// streams and recs, chained by c from next (per stream: the next
// sequence number and the MAC before it), and the heads of the streams
// in order, by auditInsertSQL sent with COMMIT in one round trip
// (commitWith).
func insertAudit(ctx context.Context, tx pgx.Tx, c *store.Chainer, next map[string]store.AuditMark,
	order, streams []string, recs [][]byte) error {
	n := len(recs)
	seqs, macs := make([]int64, n), make([][]byte, n)
	all := make([]byte, 0, sha256.Size*n) // the batch's MACs, one array
	for i, st := range streams {
		nx := next[st]
		if nx.Seq > math.MaxInt64 {
			return fmt.Errorf("store: audit %s: sequence exhausted", st)
		}
		all = c.MAC(all, st, nx.Seq, nx.MAC, recs[i])
		mac := all[len(all)-sha256.Size : len(all) : len(all)]
		seqs[i], macs[i] = int64(nx.Seq), mac
		next[st] = store.AuditMark{Seq: nx.Seq + 1, MAC: mac}
	}
	headKeys, headValues := make([]string, len(order)), make([][]byte, len(order))
	for i, st := range order {
		nx := next[st]
		headKeys[i] = "audit_head/" + st
		headValues[i] = store.MarkBytes(store.AuditMark{Seq: nx.Seq - 1, MAC: nx.MAC})
	}
	b := &pgx.Batch{}
	b.Queue(auditInsertSQL, streams, seqs, recs, macs, headKeys, headValues)
	return commitWith(ctx, tx, b)
}

// copyAudit writes a batch as insertAudit does, by COPY: one simple
// query (auditBatch) sent with the COPY data in one round trip
// (sendCommit).
func copyAudit(ctx context.Context, tx pgx.Tx, c *store.Chainer, next map[string]store.AuditMark,
	order, streams []string, recs [][]byte) error {
	size, copies := 0, 0 // the rows' bytes, the COPY statements
	var run copyRun
	for i, st := range streams {
		n := copyRowSize(st, recs[i])
		if run.add(n) {
			copies++
		}
		size += n
	}
	buf, headAt := auditBatch(order, copies, size)
	data := 0 // where the current COPY's data starts
	run = copyRun{}
	for i, st := range streams {
		if run.add(copyRowSize(st, recs[i])) {
			if i > 0 {
				buf = endCopy(buf, data)
			}
			data = len(buf)
			buf = startCopy(buf)
		}
		nx := next[st]
		if nx.Seq > math.MaxInt64 {
			return fmt.Errorf("store: audit %s: sequence exhausted", st)
		}
		var mac []byte
		buf, mac = copyRow(buf, c, st, nx.Seq, nx.MAC, recs[i])
		next[st] = store.AuditMark{Seq: nx.Seq + 1, MAC: mac}
	}
	buf = endCopy(buf, data)
	for i, st := range order {
		nx := next[st]
		if err := setHead(buf, headAt[i], store.AuditMark{Seq: nx.Seq - 1, MAC: nx.MAC}); err != nil {
			return err
		}
	}
	return sendCommit(ctx, tx, buf)
}

func streamOf(ev store.AuditEvent) string {
	if ev.Stream == "" {
		return store.DefaultStream
	}
	return ev.Stream
}

// AuditKey is the chain's HMAC key (meta 'audit_key').
func (s *pgStore) AuditKey() ([]byte, error) {
	var key []byte
	err := s.stmt(func(ctx context.Context, q querier) error {
		var err error
		key, err = auditKey(ctx, q)
		return err
	})
	return key, wrapErr("audit key", err)
}

func auditKey(ctx context.Context, q querier) ([]byte, error) {
	var key []byte
	err := q.QueryRow(ctx, `SELECT value FROM meta WHERE key = 'audit_key'`).Scan(&key)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("store: audit key: %w", store.ErrNotFound)
	}
	return key, err
}

// AuditStreams lists the streams the token has records, a base or a head
// of, in name order.
func (s *pgStore) AuditStreams() ([]string, error) {
	var out []string
	err := s.stmt(func(ctx context.Context, q querier) error {
		rows, err := q.Query(ctx, `SELECT DISTINCT stream FROM audit
			UNION SELECT substr(key, 12) FROM meta WHERE starts_with(key, 'audit_head/') OR starts_with(key, 'audit_base/')
			ORDER BY 1`)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	return out, wrapErr("audit streams", err)
}

// AuditRecords returns up to limit records of a stream (limit <= 0: all)
// from sequence from on, in sequence order.
func (s *pgStore) AuditRecords(stream string, from uint64, limit int) ([]store.AuditRecord, error) {
	var out []store.AuditRecord
	err := s.stmt(func(ctx context.Context, q querier) error {
		var err error
		out, err = readAuditRecords(ctx, q, stream, from, limit)
		return err
	})
	return out, wrapErr("audit records", err)
}

func readAuditRecords(ctx context.Context, q querier, stream string, from uint64, limit int) ([]store.AuditRecord, error) {
	if from > math.MaxInt64 {
		return nil, nil
	}
	var lim *int64
	if limit > 0 {
		l := int64(limit)
		lim = &l
	}
	rows, err := q.Query(ctx, `SELECT seq, record, mac FROM audit WHERE stream = $1 AND seq >= $2 ORDER BY seq LIMIT $3`,
		stream, int64(from), lim)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.AuditRecord, error) {
		a := store.AuditRecord{Stream: stream}
		var seq int64
		err := r.Scan(&seq, &a.Record, &a.MAC)
		a.Seq = uint64(seq)
		return a, err
	})
}

// AuditState returns a stream's base and head, in one statement.
func (s *pgStore) AuditState(stream string) (store.AuditState, error) {
	var st store.AuditState
	err := s.stmt(func(ctx context.Context, q querier) error {
		var err error
		st, err = readAuditState(ctx, q, stream)
		return err
	})
	return st, wrapErr("audit state", err)
}

func readAuditState(ctx context.Context, q querier, stream string) (store.AuditState, error) {
	var st store.AuditState
	rows, err := q.Query(ctx, `SELECT key, value FROM meta WHERE key = $1 OR key = $2`, "audit_base/"+stream, "audit_head/"+stream)
	if err != nil {
		return st, err
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var v []byte
		if err := rows.Scan(&k, &v); err != nil {
			return st, err
		}
		m, err := store.ParseMark(k, v)
		if err != nil {
			return st, err
		}
		if k == "audit_base/"+stream {
			st.Base = &m
		} else {
			st.Head = &m
		}
	}
	return st, rows.Err()
}

// AuditChain reads a stream's key, base, head and records in one
// snapshot, so that a record another host appends meanwhile is either in
// all of them or in none.
func (s *pgStore) AuditChain(stream string) (store.AuditChain, error) {
	var c store.AuditChain
	err := s.read(func(ctx context.Context, tx pgx.Tx) error {
		var err error
		if c.Key, err = auditKey(ctx, tx); err != nil {
			return err
		}
		if c.State, err = readAuditState(ctx, tx, stream); err != nil {
			return err
		}
		c.Records, err = readAuditRecords(ctx, tx, stream, 0, 0)
		return err
	})
	return c, wrapErr("audit chain", err)
}

// RotateAudit deletes a stream's records up to and including sequence
// through, whose MAC must still be mac, and makes that record the
// stream's base.
func (s *pgStore) RotateAudit(stream string, through uint64, mac []byte) (int, error) {
	var n int64
	if through > math.MaxInt64 {
		return 0, fmt.Errorf("store: rotate %s: no record %d: %w", stream, through, store.ErrNotFound)
	}
	err := s.write(func(ctx context.Context, tx pgx.Tx) error {
		var got []byte
		err := tx.QueryRow(ctx, `SELECT mac FROM audit WHERE stream = $1 AND seq = $2`, stream, int64(through)).Scan(&got)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("store: rotate %s: no record %d: %w", stream, through, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if !hmac.Equal(got, mac) {
			return fmt.Errorf("store: rotate %s: record %d changed since it was archived: %w", stream, through, store.ErrConflict)
		}
		tag, err := tx.Exec(ctx, `DELETE FROM audit WHERE stream = $1 AND seq <= $2`, stream, int64(through))
		if err != nil {
			return err
		}
		n = tag.RowsAffected()
		_, err = tx.Exec(ctx, `INSERT INTO meta (key, value) VALUES ($1, $2)
			ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`,
			"audit_base/"+stream, store.MarkBytes(store.AuditMark{Seq: through, MAC: mac}))
		return err
	})
	return int(n), wrapErr("audit rotate", err)
}

// AuditBoot is the token's reboot counter (token/store/audit.go says what
// it counts: the boots of the emulated HSM's hardware, the host, in which
// the token recorded events). On PostgreSQL many hosts share the token:
// each boot of each host gets the next ordinal once, kept in meta
// 'audit_boot/<boot ID>' (decimal text), so hosts taking turns do not
// count a boot at every turn; 'audit_boot' is the last ordinal given and
// 'audit_boot_id' its boot, as SQLite keeps them (a token moved from
// SQLite keeps its boot's ordinal). Read in one statement; written once
// per host boot.
func (s *pgStore) AuditBoot() (uint32, error) {
	id := store.ThisProcess().Boot
	if testOnlyBootID != nil {
		id = testOnlyBootID()
	}
	var last, mine int64
	var lastID string
	get := func(ctx context.Context, q querier) error {
		last, mine, lastID = 0, 0, ""
		rows, err := q.Query(ctx, `SELECT key, value FROM meta WHERE key IN ('audit_boot', 'audit_boot_id', $1)`, "audit_boot/"+id)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k string
			var v []byte
			if err := rows.Scan(&k, &v); err != nil {
				return err
			}
			switch k {
			case "audit_boot_id":
				lastID = string(v)
			case "audit_boot":
				if last, err = strconv.ParseInt(string(v), 10, 64); err != nil {
					return fmt.Errorf("store: audit boot %q: %w", v, store.ErrDamaged)
				}
			default:
				if mine, err = strconv.ParseInt(string(v), 10, 64); err != nil {
					return fmt.Errorf("store: audit boot %q: %w", v, store.ErrDamaged)
				}
			}
		}
		if mine == 0 && last > 0 && lastID == id {
			mine = last
		}
		return rows.Err()
	}
	if err := s.stmt(get); err != nil {
		return 0, wrapErr("audit boot", err)
	}
	if mine > 0 {
		return uint32(mine), nil
	}
	err := s.write(func(ctx context.Context, tx pgx.Tx) error {
		if err := get(ctx, tx); err != nil {
			return err
		}
		if mine > 0 {
			return nil // another process of this boot counted it meanwhile
		}
		mine = last + 1
		n := []byte(strconv.FormatInt(mine, 10))
		_, err := tx.Exec(ctx, `INSERT INTO meta (key, value) VALUES ('audit_boot', $1), ('audit_boot_id', $2), ($3, $1)
			ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`, n, []byte(id), "audit_boot/"+id)
		return err
	})
	return uint32(mine), wrapErr("audit boot", err)
}

// testOnlyBootID, when set, stands for the host's boot ID.
var testOnlyBootID func() string
