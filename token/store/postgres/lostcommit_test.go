//go:build !nopostgres

package postgres

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/token/store"
	"gohsm/token/store/storetest"
)

// recordCounts counts a stream's records by their text, checking the
// chain first (storetest.RequireChained: gap-free, every MAC, the head).
func recordCounts(t *testing.T, s store.Store, stream string) map[string]int {
	t.Helper()
	n := map[string]int{}
	for _, r := range storetest.RequireChained(t, s, stream) {
		n[string(r.Record)]++
	}
	return n
}

// TestLostCommitAnswer: a write whose connection is cut once its COMMIT
// reached the server (and the answer, COMMIT, is dropped) reports what
// the server holds: a token write carrying queued records succeeds, its
// object stored, and the records are not put back; a flush succeeds. Cut
// before the COMMIT is forwarded, nothing is committed: the token write
// fails, its object not stored, and its queued records are put back for
// the next write; the flush fails and says its batch was not recorded.
// Either way every record the server holds is there once, and the chain
// verifies. Both ways of writing a batch: a statement of unnested arrays
// sent with COMMIT (fewer than auditCopyMin records) and the COPY query
// that ends with COMMIT. Before the check, a token write told it failed
// put its committed records back, and the next write recorded them a
// second time; a flush reported committed records as not recorded.
func TestLostCommitAnswer(t *testing.T) {
	for _, how := range []struct {
		name  string
		n     int  // queued records
		flush bool // FlushAudit, else a token write (CreateObject)
	}{
		{"write-unnest", 5, false},
		{"write-copy", auditCopyMin + 72, false},
		{"flush-unnest", 5, true},
		{"flush-copy", auditCopyMin + 72, true},
	} {
		for _, cut := range []cutPoint{cutAfterCommit, cutBeforeCommit} {
			name := how.name + map[cutPoint]string{cutAfterCommit: "-after", cutBeforeCommit: "-before"}[cut]
			t.Run(name, func(t *testing.T) {
				dsn := freshURL(t)
				p := newWireProxy(t, dsn)
				s := initStore(t, p.url)
				// Connections opened, statements prepared, the head written.
				s.AuditLater(store.AuditEvent{Record: []byte("warm")})
				require.NoError(t, s.FlushAudit())
				for i := range how.n {
					s.AuditLater(store.AuditEvent{Record: fmt.Appendf(nil, "queued %d", i)})
				}
				p.cutAt(cut)
				var err error
				if how.flush {
					err = s.FlushAudit()
				} else {
					_, err = s.CreateObject(testObject("k", ""))
				}
				require.Equal(t, int64(1), p.cuts.Load(), "the connection of the commit was cut")
				committed := cut == cutAfterCommit
				back := s.(*pgStore).core.queue.Len()
				switch {
				case committed:
					assert.NoError(t, err, "the commit happened")
					assert.Zero(t, back, "committed records are not put back")
				case how.flush:
					require.ErrorIs(t, err, store.ErrUnavailable)
					assert.Contains(t, err.Error(), fmt.Sprintf("%d queued events not recorded", how.n))
					assert.Zero(t, back, "a flush's failed batch is dropped")
				default:
					require.ErrorIs(t, err, store.ErrUnavailable)
					assert.Equal(t, how.n, back, "records of a write that did not commit are put back")
				}

				// What the server holds, read on another opening.
				o := openStore(t, dsn, 0)
				ids, err := o.Find(store.Query{})
				require.NoError(t, err)
				if !how.flush {
					assert.Len(t, ids, map[bool]int{true: 1, false: 0}[committed], "the write's object")
				}
				// The next write records what was put back, once.
				require.NoError(t, s.Audit(store.AuditEvent{Record: []byte("next")}))
				got := recordCounts(t, o, store.DefaultStream)
				want := 1
				if how.flush && !committed {
					want = 0 // reported not recorded
				}
				for i := range how.n {
					assert.Equal(t, want, got[fmt.Sprint("queued ", i)], "record %d", i)
				}
				assert.Equal(t, 1, got["warm"])
				assert.Equal(t, 1, got["next"])
			})
		}
	}
}

// TestLostCommitAnswerWaitsForTheTransaction: a COPY batch whose answer
// does not come within the store's timeout (the heads' upsert waits on a
// lock another client holds) may still commit once the lock is released.
// The check waits for that transaction to end (outcomeWaitSQL) before it
// looks for the batch: here the lock is released while the check waits,
// the batch commits, and the flush reports success. Looking at once would
// have found nothing and reported the batch not recorded, and it would
// then have been committed.
func TestLostCommitAnswerWaitsForTheTransaction(t *testing.T) {
	dsn := freshURL(t)
	initStore(t, dsn).Close()
	// The check has half of this: long enough for the monitor below to see
	// it wait and release the lock on a loaded machine (a CI run failed at
	// 1 s, the check's 500 ms running out first).
	const timeout = 2 * time.Second
	s := openStore(t, dsn, timeout)
	queue := func(from, n int) {
		for i := from; i < from+n; i++ {
			s.AuditLater(store.AuditEvent{Record: fmt.Appendf(nil, "record %d", i)})
		}
	}
	queue(0, auditCopyMin)
	require.NoError(t, s.FlushAudit())

	ctx := context.Background()
	locker := connect(t, dsn)
	lock, err := locker.Begin(ctx)
	require.NoError(t, err)
	_, err = lock.Exec(ctx, `LOCK TABLE meta IN EXCLUSIVE MODE`) // reads pass, the upsert waits
	require.NoError(t, err)
	// Release the lock once the check waits for the batch's transaction.
	mon := connect(t, dsn)
	released := make(chan error, 1)
	go func() {
		var err error
		for range 500 {
			var waiting int
			err = mon.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
				WHERE query = $1 AND wait_event_type = 'Lock'`, outcomeWaitSQL).Scan(&waiting)
			if err != nil || waiting > 0 {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if rerr := lock.Rollback(ctx); err == nil {
			err = rerr
		}
		released <- err
	}()
	queue(auditCopyMin, auditCopyMin)
	start := time.Now()
	err = s.FlushAudit()
	d := time.Since(start)
	require.NoError(t, <-released)
	require.NoError(t, err, "the batch committed once the lock was released")
	within(t, "the flush", d, 2*timeout+500*time.Millisecond)
	got := recordCounts(t, s, store.DefaultStream)
	require.Len(t, got, 2*auditCopyMin)
	for i := range 2 * auditCopyMin {
		assert.Equal(t, 1, got[fmt.Sprint("record ", i)], "record %d", i)
	}
}

// lockedBuffer is a log's writer for a test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestLostCommitOutcomeUnknown: when the check cannot reach the server
// either (the network froze as the answer was lost), the write fails
// within twice the store's timeout, its queued records are put back as
// before the check, and the store logs at error how many records' fate is
// unknown. Here the commit happened, so the next write records them a
// second time: the case the check cannot settle (docs/store.md, "Audit").
func TestLostCommitOutcomeUnknown(t *testing.T) {
	dsn := freshURL(t)
	initStore(t, dsn).Close()
	p := newWireProxy(t, dsn)
	const timeout = 400 * time.Millisecond
	var logged lockedBuffer
	st, err := Open(p.url, Options{Timeout: timeout, Log: slog.New(slog.NewTextHandler(&logged, nil))})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	s := st.(*pgStore)
	s.AuditLater(store.AuditEvent{Record: []byte("warm")})
	require.NoError(t, s.FlushAudit())
	const n = 5
	for i := range n {
		s.AuditLater(store.AuditEvent{Record: fmt.Appendf(nil, "queued %d", i)})
	}
	p.freezeOnCut.Store(true)
	p.cutAt(cutAfterCommit)
	start := time.Now()
	_, err = s.CreateObject(testObject("k", ""))
	d := time.Since(start)
	require.Equal(t, int64(1), p.cuts.Load(), "the connection of the commit was cut")
	require.ErrorIs(t, err, store.ErrUnavailable)
	assert.Contains(t, err.Error(), "whether it committed is unknown")
	within(t, "the write", d, 2*timeout+300*time.Millisecond)
	assert.Equal(t, n, s.core.queue.Len(), "put back, as before the check")
	log := logged.String()
	assert.Contains(t, log, "level=ERROR")
	assert.Contains(t, log, "queued events' fate unknown")
	assert.Contains(t, log, fmt.Sprintf("events=%d", n))
	assert.Contains(t, log, "put_back=true")

	p.freeze(false)
	o := openStore(t, dsn, 0)
	ids, err := o.Find(store.Query{})
	require.NoError(t, err)
	assert.Len(t, ids, 1, "the write committed")
	time.Sleep(fastFail)
	eventually(t, 5*time.Second, "a flush after the outage", s.FlushAudit)
	got := recordCounts(t, o, store.DefaultStream)
	for i := range n {
		assert.Equal(t, 2, got[fmt.Sprint("queued ", i)], "record %d: committed, put back, recorded again", i)
	}
}

// TestLostCommitRotated: the check of a batch whose last record was
// rotated away since reads the stream's base: the base at that record
// (its MAC the batch's) is a commit; a base past it leaves the outcome
// unknown rather than guess.
func TestLostCommitRotated(t *testing.T) {
	dsn := freshURL(t)
	s := initStore(t, dsn).(*pgStore)
	for i := range 4 {
		require.NoError(t, s.Audit(store.AuditEvent{Record: fmt.Appendf(nil, "r%d", i)}))
	}
	recs, err := s.AuditRecords(store.DefaultStream, 0, 0)
	require.NoError(t, err)
	require.Len(t, recs, 4)
	tail := func(i int) auditTail {
		return auditTail{stream: store.DefaultStream, seq: recs[i].Seq, mac: recs[i].MAC}
	}
	check := func(i int) (bool, error) { return s.lostCommitted(tail(i)) }

	ok, err := check(3)
	require.NoError(t, err)
	assert.True(t, ok, "the record there with its MAC")
	other := tail(3)
	other.mac = recs[2].MAC
	ok, err = s.lostCommitted(other)
	require.NoError(t, err)
	assert.False(t, ok, "a record of that number with another MAC")
	ok, err = s.lostCommitted(auditTail{stream: store.DefaultStream, seq: 4, mac: recs[3].MAC})
	require.NoError(t, err)
	assert.False(t, ok, "no record of that number")
	ok, err = s.lostCommitted(auditTail{stream: "other", seq: 0, mac: recs[0].MAC})
	require.NoError(t, err)
	assert.False(t, ok, "a stream with no records")

	_, err = s.RotateAudit(store.DefaultStream, 2, recs[2].MAC)
	require.NoError(t, err)
	ok, err = check(2)
	require.NoError(t, err)
	assert.True(t, ok, "the base at the record, with its MAC")
	ok, err = s.lostCommitted(auditTail{stream: store.DefaultStream, seq: 2, mac: recs[1].MAC})
	require.NoError(t, err)
	assert.False(t, ok, "the base at the record, with another MAC")
	_, err = check(1)
	require.ErrorIs(t, err, errOutcomeUnknown, "rotated past the record")
	ok, err = check(3)
	require.NoError(t, err)
	assert.True(t, ok, "records after the base are read as before")
}
