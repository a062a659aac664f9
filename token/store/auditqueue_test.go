package store

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAuditQueueReusesArray: once a batch is gone (written, or a flush's
// dropped), the next batch is queued in its array without allocating;
// a failed write's batch goes back to the front, in order, as before.
func TestAuditQueueReusesArray(t *testing.T) {
	var q AuditQueue
	rec := []byte("r")
	batch := func(n int) {
		for range n {
			q.Add(AuditEvent{Record: rec})
		}
	}
	batch(300)
	evs := q.Take(true)
	require.Len(t, evs, 300)
	q.Done(evs, true, true)
	assert.Nil(t, evs[0].Record, "the written batch's events are cleared")

	allocs := testing.AllocsPerRun(20, func() {
		batch(300)
		evs := q.Take(true)
		q.Done(evs, true, true) // written
		batch(300)
		evs = q.Take(true)
		q.Done(evs, false, true) // a flush's, dropped
	})
	assert.Zero(t, allocs, "allocations per two batches of 300 after the first")

	// A failed write puts its batch back before what was queued meanwhile.
	q.Add(AuditEvent{Stream: "a"}, AuditEvent{Stream: "b"})
	evs = q.Take(false)
	q.Add(AuditEvent{Stream: "c"})
	q.Done(evs, false, false)
	var got []string
	evs = q.Take(true)
	for _, e := range evs {
		got = append(got, e.Stream)
	}
	assert.Equal(t, []string{"a", "b", "c"}, got)
	q.Done(evs, true, true)

	// A burst's array is not kept.
	batch(maxSpareEvents + 1)
	evs = q.Take(true)
	q.Done(evs, true, true)
	assert.LessOrEqual(t, cap(q.evs), maxSpareEvents, "queue")
	assert.LessOrEqual(t, cap(q.spare), maxSpareEvents, "spare")
}
