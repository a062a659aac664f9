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
type AuditQueue struct {
	mu   sync.Mutex
	cond sync.Cond
	evs  []AuditEvent
	held int // writes holding taken events, not yet Done
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

// Take empties the queue for a write transaction. A flush (flush true)
// first waits until no write holds events taken earlier.
func (q *AuditQueue) Take(flush bool) []AuditEvent {
	q.mu.Lock()
	defer q.mu.Unlock()
	if flush {
		if q.cond.L == nil {
			q.cond.L = &q.mu
		}
		for q.held > 0 {
			q.cond.Wait()
		}
	}
	evs := q.evs
	q.evs = nil
	if len(evs) > 0 {
		q.held++
	}
	return evs
}

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
