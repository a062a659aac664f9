//go:build !nopostgres

package postgres

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/testenv/pgtest"
	"gohsm/token/store"
	"gohsm/token/store/storetest"
)

// backendCPU sums the CPU time (user and system, in clock ticks) of the
// server processes connected to dsn's database, but the one asking.
func backendCPU(tb testing.TB, conn *pgx.Conn) int64 {
	rows, err := conn.Query(context.Background(),
		`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)
	if err != nil {
		tb.Fatal(err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		tb.Fatal(err)
	}
	var sum int64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue // gone
		}
		// Fields after the command's closing parenthesis: state is 3,
		// utime 14 and stime 15 (proc(5)).
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		sum += u + s
	}
	return sum
}

// BenchmarkFlushAudit is FlushAudit of n queued records over loopback TCP
// to the test server (800 is a batch at p11bench's rate): per record this
// process's CPU time and allocations, the server backends' CPU time and
// the WAL the server wrote (wal-B/rec: the insert position's advance, all
// of it, commits included), and per flush the round trips and statements. The wire-n runs go through a
// counting proxy (wireProxy), whose copying is this process's CPU too;
// the n runs connect directly and count no round trips.
//
//	go test ./token/store/postgres -run '^$' -bench FlushAudit -benchmem
func BenchmarkFlushAudit(b *testing.B) {
	for _, n := range []int{16, 800, 4096} {
		b.Run(fmt.Sprint(n), func(b *testing.B) { benchFlush(b, n, false) })
		b.Run(fmt.Sprint("wire-", n), func(b *testing.B) { benchFlush(b, n, true) })
	}
}

func benchFlush(b *testing.B, n int, wire bool) {
	dsn := pgtest.Shared(b).NewDatabase(b, "flush")
	w := &wireProxy{}
	via := dsn
	if wire {
		w = newWireProxy(b, dsn)
		via = w.url
	}
	s, err := Open(via, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if err := s.InitToken(store.TokenRecord{Label: "t"}, testUser("admin", store.RoleCO)); err != nil {
		b.Fatal(err)
	}
	mon, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { mon.Close(context.Background()) })
	recs := make([][]byte, n)
	for i := range recs {
		recs[i] = fmt.Appendf(nil, `{"time_us":%d,"reboot_counter":1,"opcode":%d,"session_handle":1,"response_code":0,"response":"HSM Return: SUCCESS","log_type":3,"key_handle":%d,"actor":"user"}`,
			1735689600000000+i, 14+i%2, 1<<20+i)
	}
	queue := func() {
		for _, r := range recs {
			s.AuditLater(store.AuditEvent{Fill: func([]int64) ([]byte, error) { return r, nil }})
		}
	}
	queue() // a first batch: statements prepared, the head row
	if err := s.FlushAudit(); err != nil {
		b.Fatal(err)
	}
	var cpu, ticks, wal float64
	var trips, stmts int64
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		queue()
		l0 := walLSN(b, mon)
		t0, s0, k0, c0 := w.roundTrips.Load(), w.statements.Load(), backendCPU(b, mon), rusage(b)
		b.StartTimer()
		if err := s.FlushAudit(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		cpu += rusage(b) - c0
		ticks += float64(backendCPU(b, mon) - k0)
		trips += w.roundTrips.Load() - t0
		stmts += w.statements.Load() - s0
		wal += float64(walLSN(b, mon) - l0)
		b.StartTimer()
	}
	b.StopTimer()
	recsN := float64(b.N * n)
	b.ReportMetric(cpu/recsN, "us-cpu/rec")
	b.ReportMetric(ticks*1e6/100/recsN, "us-server/rec") // USER_HZ 100
	b.ReportMetric(wal/recsN, "wal-B/rec")
	if wire {
		b.ReportMetric(float64(trips)/float64(b.N), "trips/flush")
		b.ReportMetric(float64(stmts)/float64(b.N), "stmts/flush")
	}
}

// walLSN is the server's WAL insert position, in bytes.
func walLSN(tb testing.TB, conn *pgx.Conn) int64 {
	var n int64
	if err := conn.QueryRow(context.Background(),
		`SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint`).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// rusage is this process's CPU time so far, in microseconds.
func rusage(tb testing.TB) float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e3
}

// TestFlushAuditRoundTrips: a flush of queued records, or an event
// recorded on its own, takes two round trips on the connection of its
// transaction whatever the number of records: BEGIN, the generation bump
// and the meta read (three Execute messages); then, for the flush of 200
// records (auditCopyMin or more), one simple query (one Query message)
// with the records' COPY data after it, whose statements are the COPY,
// the heads' upsert and COMMIT: four messages (five before the COPY);
// for the event alone, the records and heads' statement and COMMIT (two
// Execute messages): five. Earlier, four round trips and a statement
// per record. (The store's listener reacts to the commit's notification
// on a connection of its own, not counted here.)
func TestFlushAuditRoundTrips(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t, "trips")
	w := newWireProxy(t, dsn)
	s, err := Open(w.url, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	require.NoError(t, s.InitToken(store.TokenRecord{Label: "t"}, testUser("admin", store.RoleCO)))
	// The transaction's connection: the one that ran the most statements
	// meanwhile.
	count := func(do func() error) (trips, stmts int64) {
		t.Helper()
		before := w.perConn()
		require.NoError(t, do())
		for i, c := range w.perConn() {
			var b [2]int64
			if i < len(before) {
				b = before[i]
			}
			if n := c[1] - b[1]; n > stmts {
				trips, stmts = c[0]-b[0], n
			}
		}
		return trips, stmts
	}
	// Once first: connections opened, statements prepared, both streams'
	// heads written.
	s.AuditLater(store.AuditEvent{Record: []byte("first")})
	s.AuditLater(store.AuditEvent{Stream: "hsm-1", Record: []byte("first")})
	require.NoError(t, s.FlushAudit())
	require.NoError(t, s.Audit(store.AuditEvent{Record: []byte("first alone")}))
	for i := range 100 {
		s.AuditLater(store.AuditEvent{Record: fmt.Appendf(nil, "queued %d", i)})
		s.AuditLater(store.AuditEvent{Stream: "hsm-1", Record: fmt.Appendf(nil, "queued %d", i)})
	}
	trips, stmts := count(s.FlushAudit)
	assert.Equal(t, int64(2), trips, "round trips of a flush")
	assert.Equal(t, int64(4), stmts, "statements of a flush")
	trips, stmts = count(func() error { return s.Audit(store.AuditEvent{Record: []byte("alone")}) })
	assert.Equal(t, int64(2), trips, "round trips of an event on its own")
	assert.Equal(t, int64(5), stmts, "statements of an event on its own")
	for _, st := range []string{store.DefaultStream, "hsm-1"} {
		recs, err := s.AuditRecords(st, 0, 0)
		require.NoError(t, err)
		assert.Len(t, recs, 101+map[string]int{store.DefaultStream: 2}[st], st)
	}
}

// TestAuditBatchLayout: the wire messages of a batch are one simple query
// with a COPY statement for each run of rows copyRun cuts (none of more
// than auditCopyRows rows or auditCopyBytes, but a row longer on its
// own), then for each COPY its
// binary data, every row of the batch once, in order, and CopyDone.
func TestAuditBatchLayout(t *testing.T) {
	c := store.NewChainer([]byte("key"))
	for _, sizes := range [][]int{{0}, {10, 20}, {200, 200, 40000, 5, 5}, append(make([]int, 700), 33000), make([]int, 300)} {
		order := []string{store.DefaultStream}
		size, copies := 0, 0
		var run copyRun
		recs := make([][]byte, len(sizes))
		for i, n := range sizes {
			recs[i] = bytes.Repeat([]byte{byte('a' + i%26)}, n+i%7)
			n := copyRowSize(store.DefaultStream, recs[i])
			if run.add(n) {
				copies++
			}
			size += n
		}
		buf, heads := auditBatch(order, copies, size)
		data := 0
		run = copyRun{}
		for i, rec := range recs {
			if run.add(copyRowSize(store.DefaultStream, rec)) {
				if i > 0 {
					buf = endCopy(buf, data)
				}
				data = len(buf)
				buf = startCopy(buf)
			}
			buf, _ = copyRow(buf, c, store.DefaultStream, uint64(i), nil, rec)
		}
		buf = endCopy(buf, data)
		require.NoError(t, setHead(buf, heads[0], store.AuditMark{Seq: 7, MAC: make([]byte, 32)}))
		assert.Equal(t, cap(buf), len(buf), "one allocation, all of it used")

		// The query.
		require.Equal(t, byte('Q'), buf[0])
		l := int(binary.BigEndian.Uint32(buf[1:]))
		q := string(buf[5 : 1+l-1])
		require.Zero(t, buf[l], "the query ends with its NUL")
		assert.Equal(t, copies, strings.Count(q, "COPY audit"), "%v: COPY statements", sizes)
		assert.True(t, strings.HasSuffix(q, ";\nCOMMIT"), q)
		assert.Contains(t, q, "decode('"+fmt.Sprintf("%016x", 7)+strings.Repeat("00", 32)+"', 'hex')")
		// The COPYs.
		rest := buf[1+l:]
		row := 0
		for range copies {
			require.Equal(t, byte('d'), rest[0])
			dl := int(binary.BigEndian.Uint32(rest[1:]))
			d := rest[5 : 1+dl]
			require.Equal(t, copySignature, string(d[:len(copySignature)]))
			d = d[len(copySignature):]
			rows := 0
			for binary.BigEndian.Uint16(d) != 0xffff {
				require.Equal(t, uint16(4), binary.BigEndian.Uint16(d))
				d = d[2:]
				var f [4][]byte
				for k := range f {
					fl := int(binary.BigEndian.Uint32(d))
					f[k], d = d[4:4+fl], d[4+fl:]
				}
				assert.Equal(t, store.DefaultStream, string(f[0]))
				assert.Equal(t, uint64(row), binary.BigEndian.Uint64(f[1]))
				assert.Equal(t, recs[row], f[2])
				assert.Equal(t, store.ChainMAC([]byte("key"), store.DefaultStream, uint64(row), nil, recs[row]), f[3])
				row, rows = row+1, rows+1
			}
			require.Len(t, d, 2, "the trailer ends the data")
			assert.LessOrEqual(t, rows, auditCopyRows, "%v: a COPY's rows", sizes)
			if rows > 1 {
				assert.LessOrEqual(t, dl-4-len(copySignature)-2, auditCopyBytes, "%v: a COPY's bytes", sizes)
			}
			rest = rest[1+dl:]
			require.Equal(t, []byte{'c', 0, 0, 0, 4}, rest[:5], "CopyDone")
			rest = rest[5:]
		}
		assert.Equal(t, len(recs), row, "every row once")
		assert.Empty(t, rest)
	}
}

// TestFlushAuditCopies: a batch of several COPY statements, in streams
// whose names need quoting, is written whole, chained and with its
// heads, in the round trips and statements of any flush; one that fails
// in its last COPY writes nothing, and the next one follows the last
// written.
func TestFlushAuditCopies(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t, "copies")
	s, err := Open(dsn, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	require.NoError(t, s.InitToken(store.TokenRecord{Label: "t"}, testUser("admin", store.RoleCO)))
	odd := `it's a \x27 'stream'`
	queue := func(from, n int) {
		for i := from; i < from+n; i++ {
			r := bytes.Repeat([]byte{'r'}, 150+i%50)
			s.AuditLater(store.AuditEvent{Record: r})
			s.AuditLater(store.AuditEvent{Stream: odd, Record: []byte(fmt.Sprint(i))})
		}
	}
	queue(0, 600) // 600 rows of ~220 bytes: more than four COPYs
	require.NoError(t, s.FlushAudit())
	queue(600, 300)
	s.AuditLater(store.AuditEvent{Stream: "bad \xff", Record: []byte("not UTF-8")})
	err = s.FlushAudit()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "601 queued events not recorded")
	queue(900, 10)
	require.NoError(t, s.FlushAudit(), "the connection and the chain after a failed batch")

	for _, st := range []string{store.DefaultStream, odd} {
		require.Len(t, storetest.RequireChained(t, s, st), 610, st)
	}
	streams, err := s.AuditStreams()
	require.NoError(t, err)
	assert.Equal(t, []string{store.DefaultStream, odd}, streams, "nothing of the failed batch")
}

// TestFlushAuditCopyTimeout: a COPY batch whose answer does not come
// within the store's timeout (the heads' upsert waits on a lock) fails
// with store.ErrUnavailable, its connection is dropped, and the next
// batch is written on another, the chain whole. The check of the lost
// answer's outcome waits for the batch's transaction, which waits on the
// lock until after the flush returns: the flush says that whether the
// batch was recorded is unknown. (The server may still commit it, once
// the lock is released: the COMMIT was sent with it.
// TestLostCommitAnswerWaitsForTheTransaction releases it in time.)
func TestFlushAuditCopyTimeout(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t, "copytimeout")
	init, err := Open(dsn, Options{})
	require.NoError(t, err)
	require.NoError(t, init.InitToken(store.TokenRecord{Label: "t"}, testUser("admin", store.RoleCO)))
	require.NoError(t, init.Close())
	s, err := Open(dsn, Options{Timeout: 500 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	queue := func(n int) {
		for i := range n {
			s.AuditLater(store.AuditEvent{Record: fmt.Appendf(nil, "record %d", i)})
		}
	}
	queue(auditCopyMin)
	require.NoError(t, s.FlushAudit())

	ctx := context.Background()
	locker, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer locker.Close(ctx)
	lock, err := locker.Begin(ctx)
	require.NoError(t, err)
	_, err = lock.Exec(ctx, `LOCK TABLE meta IN EXCLUSIVE MODE`) // reads pass, the upsert waits
	require.NoError(t, err)
	queue(auditCopyMin)
	err = s.FlushAudit()
	require.ErrorIs(t, err, store.ErrUnavailable)
	assert.Contains(t, err.Error(), "may not be recorded")
	assert.Contains(t, err.Error(), "whether it committed is unknown")
	require.NoError(t, lock.Rollback(ctx))

	time.Sleep(fastFail) // past the store's fast failure after a timeout
	queue(auditCopyMin)
	require.NoError(t, s.FlushAudit())
	recs := storetest.RequireChained(t, s, store.DefaultStream)
	require.Contains(t, []int{2 * auditCopyMin, 3 * auditCopyMin}, len(recs))
}
