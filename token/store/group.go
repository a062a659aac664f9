package store

import (
	"context"
	"errors"
	"fmt"
)

// Group commit. Sessions of one process that make token objects at once
// (CreateObjects) do not queue on the write mutex each for a transaction of
// its own: the first one to arrive leads, and while it holds the write
// mutex it writes every object write waiting in one transaction, joining
// those that arrive while that transaction is still open, and goes on with
// the next batch while more wait (up to maxLeaderRounds batches after its
// own, then it hands the lead to the oldest waiting write). A write that
// waits is written by the leader's goroutine; its caller sleeps until the
// COMMIT that holds it has returned, so it returns only once its objects
// are committed, and with that commit's error when it failed.
//
// Why: a lock handed from one session's thread to another's is idle while
// the kernel wakes the thread it was handed to (in a C host, a thread
// locked to its goroutine; two wake-ups on a loaded VM), and two sessions
// making keys through one process paid that on every key; and the pages
// every object write changes (the ends of the objects, attrs and audit
// b-trees and their indexes, meta's audit head, class_counts) go to the
// WAL once per transaction, not once per object (docs/store.md "Group
// commit").
//
// What stays as it was:
//   - Each write's statements run as they would alone, in arrival order,
//     each followed by its own audit records (sequence numbers given in
//     that order, inside the transaction): the log is gap-free and in the
//     order of the changes it records. Records AuditLater queued are taken
//     at the start of the transaction, before every write in it; a write
//     arriving once the transaction has begun joins it only while nothing
//     more is queued (else it waits for the next transaction), so a session
//     object's record is never put after a token object made after it.
//   - A write that fails for its own reasons (a unique ID already stored, a
//     quota, an owner who is not a user) fails alone: the transaction is
//     rolled back and run again without it (no SAVEPOINT per write: SQLite
//     copies every page a savepoint changes to its sub-journal, which
//     spills to a temporary file past 16 pages, as the statement journal
//     did: TestCreateObjectWritesOnlyTheWAL). A COMMIT that fails fails
//     every write of the batch.
//   - Crash safety is the transaction's: all of a batch or none of it is
//     in the WAL, and no caller is told of a commit that has not returned.
//     Leader and waiting writes are goroutines of one process, so no crash
//     can end one and not the others.
//   - Commit.Alone is true only for a batch of one write: the commit of a
//     batch holds writes that one caller does not apply to its cache.

// maxGroup bounds the writes of one transaction; maxLeaderRounds the
// batches a leader writes after its own before handing the lead on.
const (
	maxGroup        = 32
	maxLeaderRounds = 4
)

// groupReq is one write waiting for, or written by, a leader.
type groupReq struct {
	fn     func(tx *txn) error
	events []AuditEvent
	wake   chan bool // true: lead; false: done (c, err, panicked set)

	c        Commit
	err      error
	panicked any
	done     bool // under the leader only
}

// groupCommit is commit for writes that may share a transaction with other
// writes of this process (see above).
func (s *sqliteStore) groupCommit(fn func(tx *txn) error) (Commit, error) {
	r := &groupReq{fn: fn, events: s.events, wake: make(chan bool, 1)}
	s.gmu.Lock()
	s.pending = append(s.pending, r)
	lead := !s.leading
	s.leading = true
	s.gmu.Unlock()
	if lead || <-r.wake {
		s.lead(r)
	}
	if r.panicked != nil {
		panic(r.panicked)
	}
	return r.c, r.err
}

// lead writes batches under the write mutex until own is written and
// nothing waits, or maxLeaderRounds batches after own's, when the lead
// goes to the oldest waiting write.
func (s *sqliteStore) lead(own *groupReq) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	defer s.leaderPanicked(own)
	rounds := 0
	for {
		s.gmu.Lock()
		if len(s.pending) == 0 {
			s.leading = false
			s.gmu.Unlock()
			return
		}
		if own.done && rounds >= maxLeaderRounds {
			// It leads (leading stays true), taking the write mutex
			// after us; it is still in pending, the first to be written.
			next := s.pending[0]
			s.gmu.Unlock()
			next.wake <- true
			return
		}
		n := min(len(s.pending), maxGroup)
		batch := append([]*groupReq(nil), s.pending[:n]...)
		s.pending = s.pending[n:]
		s.gmu.Unlock()
		if own.done {
			rounds++
		}
		for _, r := range s.writeBatch(batch) {
			if r != own {
				r.wake <- false
			}
		}
		s.inBatch = nil
	}
}

// leaderPanicked, deferred by lead, keeps a panic in the leader's own
// batch code (not a write's, which runFn turns into that write's failure)
// from leaving writes asleep: the writes of the batch in progress that
// have no result fail with the panic's message and every one of them is
// woken; the lead goes to the oldest waiting write, or to nobody; the
// panic goes on in the leader's caller unless that caller's own write had
// already committed in an earlier batch, when it returns its result.
func (s *sqliteStore) leaderPanicked(own *groupReq) {
	p := recover()
	if p == nil {
		return
	}
	ownDone := own.done
	for _, r := range s.inBatch {
		if !r.done {
			r.c, r.err, r.done = Commit{}, fmt.Errorf("store: group commit: %v", p), true
		}
		if r != own {
			r.wake <- false
		}
	}
	s.inBatch = nil
	s.gmu.Lock()
	if len(s.pending) > 0 {
		next := s.pending[0]
		s.gmu.Unlock()
		next.wake <- true
	} else {
		s.leading = false
		s.gmu.Unlock()
	}
	if !ownDone {
		panic(p)
	}
}

// join takes waiting writes into the open transaction of a batch of n,
// while AuditLater has queued nothing since it began.
func (s *sqliteStore) join(n int) []*groupReq {
	s.gmu.Lock()
	defer s.gmu.Unlock()
	k := min(len(s.pending), maxGroup-n)
	if k <= 0 {
		return nil
	}
	more := append([]*groupReq(nil), s.pending[:k]...)
	// Taken first, then the queue checked: a record queued before one of
	// these writes arrived is in the queue now (or was taken already).
	if s.queue.Len() > 0 {
		return nil
	}
	s.pending = s.pending[k:]
	return more
}

// errOwn marks a write's own failure inside a batch attempt.
type errOwn struct {
	i   int
	err error
}

func (e *errOwn) Error() string { return e.err.Error() }

// writeBatch writes batch (and writes that join it) in one transaction,
// setting each one's result, and returns them all; the caller holds
// writeMu.
func (s *sqliteStore) writeBatch(batch []*groupReq) (all []*groupReq) {
	queued := s.queue.Take(false)
	committed := false
	defer func() { s.queue.Done(queued, committed, false) }()
	all = batch
	s.inBatch = all
	live := append([]*groupReq(nil), batch...) // the writes still in the batch
	finish := func(r *groupReq, c Commit, err error) {
		r.c, r.err, r.done = c, err, true
	}
	for len(live) > 0 {
		var c Commit
		var pre [walIndexHeaderSize]byte
		var preOK bool
		joining := true
		err := retry(func() error {
			h, err := s.begin()
			if err != nil {
				return err
			}
			t := &txn{c: h, s: s}
			ok := false
			defer func() {
				bad := false
				if !ok {
					if _, err := h.conn.ExecContext(context.Background(), `ROLLBACK`); err != nil {
						bad = true
					}
				}
				s.conns.put(h, bad)
			}()
			if err := appendAudit(t, queued); err != nil {
				return err
			}
			for i := 0; ; i++ {
				if i == len(live) {
					if !joining {
						break
					}
					more := s.join(len(live))
					if len(more) == 0 {
						joining = false // a retry runs the same writes
						break
					}
					live = append(live, more...)
					all = append(all, more...)
					s.inBatch = all
				}
				r := live[i]
				t.created = nil
				if err := runFn(r, t); err != nil {
					if isBusy(err) {
						return err
					}
					return &errOwn{i, err}
				}
			}
			c.Before, pre, preOK = s.mark()
			if _, err := h.conn.ExecContext(context.Background(), `COMMIT`); err != nil {
				return err
			}
			ok = true
			return nil
		})
		var own *errOwn
		if errors.As(err, &own) {
			// That write alone fails; the others run again without it.
			r := live[own.i]
			if r.panicked != nil {
				finish(r, Commit{}, fmt.Errorf("store: write panicked: %v", r.panicked))
			} else {
				finish(r, Commit{}, own.err)
			}
			live = append(live[:own.i:own.i], live[own.i+1:]...)
			continue
		}
		if err != nil {
			for _, r := range live {
				finish(r, Commit{}, err)
			}
			return all
		}
		committed = true
		s.ownCommitted(&c, &pre, preOK && len(live) == 1)
		for _, r := range live {
			finish(r, c, nil)
		}
		return all
	}
	return all
}

// runFn runs a write's statements and appends its audit records (whose
// Fill is the caller's code), turning a panic into that write's failure
// (re-raised in its caller's goroutine by groupCommit).
func runFn(r *groupReq, t *txn) (err error) {
	defer func() {
		if p := recover(); p != nil {
			r.panicked = p
			err = fmt.Errorf("store: write panicked: %v", p)
		}
	}()
	if err := r.fn(t); err != nil {
		return err
	}
	return appendAudit(t, r.events)
}

// begin lends a connection and starts a write transaction on it
// (BEGIN IMMEDIATE). A BEGIN that fails for another reason than a lock:
// the connection may be broken or left inside a transaction; once more on
// a new one.
func (s *sqliteStore) begin() (*heldConn, error) {
	for try := 0; ; try++ {
		h, err := s.conns.get()
		if err != nil {
			return nil, err
		}
		_, err = h.conn.ExecContext(context.Background(), `BEGIN IMMEDIATE`)
		if err == nil {
			return h, nil
		}
		if isBusy(err) {
			s.conns.put(h, false) // no transaction was started
			return nil, err
		}
		s.conns.put(h, true)
		if try == 1 {
			return nil, err
		}
	}
}
