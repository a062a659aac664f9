package store

import "sync"

// AuditQueue holds the events an opening was asked to record later
// (AuditLater): events about what the store never holds, a session key's
// creation or destruction, which change nothing to write now. The
// opening's next write transaction takes them and appends them before its
// own events; FlushAudit writes them alone. Their sequence numbers are
// given inside that transaction, in queue order, like any event's: the
// chain stays gap-free across processes.
//
// A write takes the whole queue at its start (Take) and ends with Done:
// committed, the events are gone; failed (its own change refused, a
// conflict), they go back to the front of the queue for the next write or
// flush. A flush waits for the writes holding events to end first, so
// events given back by a failed write are never left behind by a flush
// that found the queue empty meanwhile.
//
// The array of a batch that is gone (written, or a flush's dropped) is
// emptied and kept for the next batch (spare): the queue otherwise grew
// from nothing after every flush, a few hundred bytes and a copy under
// the lock per session key at p11bench's rate (docs/bench.md, "ML-KEM-768:
// the tail (2026-12-07)").
type AuditQueue struct {
	mu    sync.Mutex
	cond  sync.Cond
	evs   []AuditEvent
	spare []AuditEvent // empty; the array of a batch gone, for the next Take
	held  int          // writes holding taken events, not yet Done
}

// Add queues events.
func (q *AuditQueue) Add(events ...AuditEvent) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.evs = append(q.evs, events...)
}

// Len is the number of queued events.
func (q *AuditQueue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.evs)
}

// Settled waits until no write holds events taken earlier, then returns
// the number of queued events. A flush asks it, not Len, whether there is
// anything to write: a batch another thread took and has not committed
// yet (the slot's flusher, mid-transaction) must be written before the
// flush returns, or a C_CloseSession that returned could be followed by
// an exit that loses it.
func (q *AuditQueue) Settled() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.waitHeldLocked()
	return len(q.evs)
}

// waitHeldLocked waits, under q.mu, until no write holds taken events.
func (q *AuditQueue) waitHeldLocked() {
	if q.cond.L == nil {
		q.cond.L = &q.mu
	}
	for q.held > 0 {
		q.cond.Wait()
	}
}

// Take empties the queue for a write transaction. A flush (flush true)
// first waits until no write holds events taken earlier.
func (q *AuditQueue) Take(flush bool) []AuditEvent {
	q.mu.Lock()
	defer q.mu.Unlock()
	if flush {
		q.waitHeldLocked()
	}
	if len(q.evs) == 0 {
		return nil
	}
	evs := q.evs
	q.evs, q.spare = q.spare, nil
	q.held++
	return evs
}

// maxSpareEvents is the largest batch array the queue keeps for the next
// batch: a batch at p11bench's rate of session keys is about 800 events,
// and a burst's array (tens of thousands) is not worth holding.
const maxSpareEvents = 4096

// Done ends a write that took evs: committed, they are written; else a
// write puts them back at the front of the queue, and a flush (whose
// failure is the batch's own) drops them: the caller reports it.
func (q *AuditQueue) Done(evs []AuditEvent, committed, flush bool) {
	if len(evs) == 0 {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.held--
	if !committed && !flush {
		q.evs = append(evs[:len(evs):len(evs)], q.evs...)
	} else {
		// Gone: the array is the next batch's, at once when nothing was
		// queued meanwhile (its events' closures dropped first). The
		// caller no longer reads evs.
		switch {
		case cap(evs) > maxSpareEvents:
			// A burst's array is left to the collector, not held for good.
		case len(q.evs) == 0 && cap(evs) > cap(q.evs):
			clear(evs)
			q.evs = evs[:0]
		case cap(evs) > cap(q.spare) && cap(evs) > cap(q.evs):
			clear(evs)
			q.spare = evs[:0]
		}
	}
	if q.cond.L != nil {
		q.cond.Broadcast()
	}
}

// WithQueued is the events a write appends: the queued ones, then its own.
func WithQueued(queued, own []AuditEvent) []AuditEvent {
	if len(queued) == 0 {
		return own
	}
	return append(queued[:len(queued):len(queued)], own...)
}
