package store

import (
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// flushRecord is a queued record the size of a session key's (token/audit
// encodes about 200 bytes for one), different for each i.
func flushRecord(i int) []byte {
	return fmt.Appendf(nil, `{"time_us":%d,"reboot_counter":1,"opcode":%d,"session_handle":1,"response_code":0,"response":"HSM Return: SUCCESS","log_type":3,"key_handle":%d,"actor":"user"}`,
		1735689600000000+i, 14+i%2, 1<<20+i)
}

// queueRecords queues n records the way the token does (AuditLater with a
// Fill closure), made before the timer runs.
func queueRecords(s Store, recs [][]byte) {
	q := s.(interface{ AuditLater(AuditEvent) })
	for _, r := range recs {
		q.AuditLater(AuditEvent{Fill: func([]int64) ([]byte, error) { return r, nil }})
	}
}

// cpuTime is the process's user and system CPU so far, in microseconds.
func cpuTime(tb testing.TB) float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e3
}

// BenchmarkFlushAudit is FlushAudit of n queued records (800 is a batch at
// p11bench's rate of session keys, two records per key): per record, the
// process's CPU time (us-cpu/rec, which the ns/op of a loaded machine is
// not) and allocations.
//
//	go test ./token/store -run '^$' -bench FlushAudit -benchmem
func BenchmarkFlushAudit(b *testing.B) {
	for _, n := range []int{16, 800, 4096} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			s := openTest(b, b.TempDir())
			recs := make([][]byte, n)
			for i := range recs {
				recs[i] = flushRecord(i)
			}
			benchFlush(b, s, recs)
		})
	}
}

// benchFlush times FlushAudit of recs queued, b.N times (the queueing is
// outside the timer and the CPU count).
func benchFlush(b *testing.B, s Store, recs [][]byte) {
	f := s.(interface{ FlushAudit() error })
	queueRecords(s, recs) // a first batch: prepared statements, the head row
	if err := f.FlushAudit(); err != nil {
		b.Fatal(err)
	}
	var cpu float64
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		queueRecords(s, recs)
		c0 := cpuTime(b)
		b.StartTimer()
		if err := f.FlushAudit(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		cpu += cpuTime(b) - c0
		b.StartTimer()
	}
	b.StopTimer()
	n := float64(b.N * len(recs))
	b.ReportMetric(cpu/n, "us-cpu/rec")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/rec")
}

// TestFlushAuditAllocs: a flush costs few allocations per record (the
// statement binds each record's record and MAC, the MACs share an array):
// 7.8 per record before runs of one stream were bound as such, 2.2 after.
func TestFlushAuditAllocs(t *testing.T) {
	s := openTest(t, t.TempDir())
	f := s.(interface{ FlushAudit() error })
	recs := make([][]byte, 512)
	for i := range recs {
		recs[i] = flushRecord(i)
	}
	queueRecords(s, recs)
	require.NoError(t, f.FlushAudit()) // statements prepared
	queueRecords(s, recs)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	require.NoError(t, f.FlushAudit())
	runtime.ReadMemStats(&after)
	perRecord := float64(after.Mallocs-before.Mallocs) / float64(len(recs))
	assert.Less(t, perRecord, 4.0, "allocations per record")
	recsGot, err := s.AuditRecords(DefaultStream, 0, 0)
	require.NoError(t, err)
	assert.Len(t, recsGot, 2*len(recs))
}

// TestFlushAuditWaitsForTakenBatch: a flush that finds the queue empty
// because another write took its events (the slot's flusher, its
// transaction not yet committed) waits for that write before it returns:
// C_CloseSession's flush returning is what lets a process exit without
// losing a session key's record. Here the other write fails and puts the
// batch back, and the flush writes it.
func TestFlushAuditWaitsForTakenBatch(t *testing.T) {
	s := openTest(t, t.TempDir())
	q := &s.(*sqliteStore).queue
	queueRecords(s, [][]byte{flushRecord(0)})
	taken := q.Take(false) // another write holds the batch
	require.Len(t, taken, 1)

	flushed := make(chan error, 1)
	go func() { flushed <- s.(interface{ FlushAudit() error }).FlushAudit() }()
	select {
	case err := <-flushed:
		t.Fatalf("FlushAudit returned (%v) while another write held the queued record", err)
	case <-time.After(100 * time.Millisecond):
	}
	q.Done(taken, false, false) // that write failed: the record goes back
	select {
	case err := <-flushed:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("FlushAudit did not return after the other write ended")
	}
	recs, err := s.AuditRecords(DefaultStream, 0, 0)
	require.NoError(t, err)
	assert.Len(t, recs, 1, "the record the other write gave back, written by the flush")
}
