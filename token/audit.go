package token

import (
	"runtime"
	"time"

	"gohsm/internal/ck"
	"gohsm/token/audit"
	"gohsm/token/cluster"
	"gohsm/token/store"
)

// The audit log (docs/audit.md): every management event of the slot is
// recorded through these helpers, in the store transaction of the change
// it records (s.st.Audited(ev).X(...)), or on its own for what changes
// nothing (a refusal, a session key, a wrap). Crypto calls record nothing.

// rebootLocked is the slot's reboot counter (Store.AuditBoot: the host's
// boots the token recorded events in), asked once, at this opening's
// first event (s.mu held). A process that records nothing never asks; a
// counter that cannot be read is 0.
func (s *Slot) rebootLocked() uint32 {
	if s.boot == 0 {
		n, err := s.st.AuditBoot()
		if err != nil {
			s.m.log.Warn("gohsm: audit reboot counter", "slot", s.cfg.ID, "err", err)
			return 0
		}
		s.boot = n
	}
	return s.boot
}

// auditEvent completes an event (time, reboot counter, session, the
// logged-in user as actor, the response text) and encodes it for the
// store (s.mu held; se may be nil), in the stream of the HSM that ran the
// command (execHSM): a logout, a refusal, a session key, a wrap.
func (s *Slot) auditEvent(se *Session, e audit.Event) store.AuditEvent {
	return s.auditOn(s.execHSM(), se, e)
}

// auditOn is auditEvent in the stream of HSM hsm (-1: the token's one
// stream, the slot has no cluster).
func (s *Slot) auditOn(hsm int, se *Session, e audit.Event) store.AuditEvent {
	s.completeEvent(se, &e)
	return store.AuditEvent{Stream: streamOf(hsm), Record: encodeEvent(s, e)}
}

// auditAll is an event in the stream of every reachable HSM (a login,
// user and quorum management, a change to a token key), as CloudHSM's
// cluster records them (UG-2023:interpreting-audit-logs.md); without a
// cluster, the one stream.
func (s *Slot) auditAll(se *Session, e audit.Event) []store.AuditEvent {
	s.completeEvent(se, &e)
	rec := encodeEvent(s, e)
	if s.cl == nil {
		return []store.AuditEvent{{Record: rec}}
	}
	hs := s.cl.Reachable()
	if len(hs) == 0 {
		// No HSM reachable: a change is still never stored without its
		// record (execHSM's choice, HSM 0).
		hs = []int{0}
	}
	out := make([]store.AuditEvent, len(hs))
	for i, h := range hs {
		out[i] = store.AuditEvent{Stream: cluster.StreamName(h), Record: rec}
	}
	return out
}

// execHSM is the HSM that runs a command that uses no key (a logout, a
// refusal, a backup): the first reachable one, so that a command's record
// is found in one predictable stream (-1: the slot has no cluster; HSM 0
// when none is reachable, where the command failed).
func (s *Slot) execHSM() int {
	if s.cl == nil {
		return -1
	}
	if r := s.cl.Reachable(); len(r) > 0 {
		return r[0]
	}
	return 0
}

// streamOf is HSM hsm's stream name ("": the store's default, one HSM).
func streamOf(hsm int) string {
	if hsm < 0 {
		return ""
	}
	return cluster.StreamName(hsm)
}

func (s *Slot) completeEvent(se *Session, e *audit.Event) {
	e.TimeUS = time.Now().UnixMicro()
	e.Reboot = s.rebootLocked()
	if se != nil {
		e.Session = uint64(se.h)
	}
	if e.Actor == "" && s.login != nil {
		e.Actor = s.login.user
	}
	if e.Response == "" {
		e.Respond(e.Code)
	}
}

func encodeEvent(s *Slot, e audit.Event) []byte {
	b, err := e.Encode()
	if err != nil {
		// An Event always encodes; an empty record would show in verify.
		s.m.log.Error("gohsm: audit", "slot", s.cfg.ID, "err", err)
	}
	return b
}

// auditAloneLocked records an event that goes with no change of the
// store. A record that cannot be written is logged: the refusal it
// records stands anyway.
func (s *Slot) auditAloneLocked(se *Session, e audit.Event) {
	if err := s.st.Audit(s.auditEvent(se, e)); err != nil {
		s.m.log.Error("gohsm: audit: event not recorded", "slot", s.cfg.ID, "opcode", e.Opcode.String(), "err", err)
	}
}

// auditAlone is auditAloneLocked for a caller without the slot's lock.
func (s *Slot) auditAlone(se *Session, e audit.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.auditAloneLocked(se, e)
}

// auditOnAloneLocked is auditAloneLocked in HSM hsm's stream.
func (s *Slot) auditOnAloneLocked(hsm int, se *Session, e audit.Event) {
	if err := s.st.Audit(s.auditOn(hsm, se, e)); err != nil {
		s.m.log.Error("gohsm: audit: event not recorded", "slot", s.cfg.ID, "opcode", e.Opcode.String(), "err", err)
	}
}

// auditFlushDelay is how long a queued event waits for the flusher
// (auditLaterLocked; longer while the flusher waits for a core);
// tests lengthen it to see what else writes the queue.
var auditFlushDelay = 20 * time.Millisecond

// auditLaterLocked records e, an event about a session object (its
// creation, destruction or change), in HSM hsm's stream without a commit
// of its own: the store queues it for this process's next write to the
// token, which appends it before its own events, and the slot's flusher
// writes what is still queued auditFlushDelay after it was queued, in one
// transaction (docs/store.md, "Audit"). Sequence numbers are given in
// that transaction, in queue order, so the chain stays gap-free. Closing a
// session, logging out, C_Finalize and the audit log's readers in this
// process flush the queue first. s.mu held.
//
// While a fault plan has dropped a cluster's store, the event is
// written (and fails, logged) at once, as before the queue.
func (s *Slot) auditLaterLocked(hsm int, se *Session, e audit.Event) {
	if s.cl != nil && s.cl.StoreDown() != nil {
		s.auditOnAloneLocked(hsm, se, e)
		return
	}
	// Completed now (time, session, actor), encoded when written: the
	// JSON encoding leaves the caller's path for the flush's.
	s.completeEvent(se, &e)
	// A copy the closure captures by value (an Event is 128 bytes, the
	// most Go captures so): one allocation for the closure and the event,
	// where capturing e, whose address completeEvent took, moved e to the
	// heap on its own.
	ev := e
	s.st.AuditLater(store.AuditEvent{Stream: streamOf(hsm), Fill: func([]int64) ([]byte, error) {
		return encodeEvent(s, ev), nil
	}})
	s.armAuditFlush()
}

// armAuditFlush wakes the slot's flusher unless it is already waiting
// to flush: the first event queued since the last flush sets the
// deadline for all.
func (s *Slot) armAuditFlush() {
	if !s.flushArmed.CompareAndSwap(false, true) {
		return
	}
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	if s.flushQuit == nil {
		s.flushWake = make(chan struct{}, 1)
		s.flushQuit = make(chan struct{})
		s.flushDone = make(chan struct{})
		go s.flusher(s.flushWake, s.flushQuit, s.flushDone)
	}
	select {
	case s.flushWake <- struct{}{}:
	default: // a wake-up is pending already
	}
}

// flusher writes the queued events auditFlushDelay after each wake-up,
// until quit is closed. It runs on an OS thread of its own whose CPU
// priority it lowers (lowerThreadPriority): the flush's SQLite work (a few
// microseconds of CPU per record, two records per session key) then
// gives way to the threads calling the module when they compete for a
// core, instead of lengthening their calls (docs/bench.md, "ML-KEM-768:
// the tail"). The records keep their order and guarantees: only when the
// batch is written moves. The goroutine ends locked to its thread, so the
// runtime ends the thread with it (or, when it ran on the runtime's main
// thread, parks that thread for good) and no other goroutine inherits its
// priority.
func (s *Slot) flusher(wake <-chan struct{}, quit <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	runtime.LockOSThread()
	s.flushTID.Store(int64(threadID()))
	defer s.flushTID.Store(0)
	if err := lowerThreadPriority(); err != nil {
		s.m.log.Debug("gohsm: audit flush thread priority unchanged", "slot", s.cfg.ID, "err", err)
	}
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		select {
		case <-wake:
		case <-quit:
			return
		}
		t.Reset(auditFlushDelay)
		select {
		case <-t.C:
		case <-quit:
			t.Stop()
			return
		}
		s.flushArmed.Store(false)
		s.flushAudit()
	}
}

// stopAuditFlush stops the flusher and waits for it to end (C_Finalize,
// which flushes itself).
func (s *Slot) stopAuditFlush() {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	if s.flushQuit != nil {
		close(s.flushQuit)
		<-s.flushDone
		s.flushWake, s.flushQuit, s.flushDone = nil, nil, nil
	}
	s.flushArmed.Store(false)
}

// flushAudit writes the events the store has queued (auditLaterLocked),
// in one transaction. A batch that cannot be written is dropped whole
// and logged at error, as auditAloneLocked logs an event it cannot write.
// It takes no lock of the slot.
func (s *Slot) flushAudit() {
	p := s.auditSt.Load()
	if p == nil {
		return
	}
	if err := (*p).FlushAudit(); err != nil {
		s.m.log.Error("gohsm: audit: queued events not recorded", "slot", s.cfg.ID, "err", err)
	}
}

// auditAllAloneLocked is auditAloneLocked in every reachable HSM's
// stream (a failed login).
func (s *Slot) auditAllAloneLocked(se *Session, e audit.Event) {
	if err := s.st.Audit(s.auditAll(se, e)...); err != nil {
		s.m.log.Error("gohsm: audit: event not recorded", "slot", s.cfg.ID, "opcode", e.Opcode.String(), "err", err)
	}
}

// userEvent is an event about a user (MGMT_USER_DETAILS_LOG).
func userEvent(op audit.Opcode, name string, role store.Role, code int) audit.Event {
	ut := audit.CN_CRYPTO_USER
	if role == store.RoleCO {
		ut = audit.CN_CRYPTO_OFFICER
	}
	e := audit.Event{Opcode: op, LogType: audit.MGMT_USER_DETAILS_LOG, User: name, UserType: ut}
	e.Respond(code)
	return e
}

// keyEvent is an event about a key, or a key pair (MGMT_KEY_DETAILS_LOG).
func keyEvent(op audit.Opcode, key, public uint64, code int) audit.Event {
	e := audit.Event{Opcode: op, LogType: audit.MGMT_KEY_DETAILS_LOG, Key: key, PublicKey: public}
	e.Respond(code)
	return e
}

// objectsEvents records the creation of objs (a key, or a key pair's
// public then private key) by op: the handles of token objects are the
// IDs the store gives them in the transaction (created, in order), so the
// records are made there. In a cluster (origin: the HSM that made them),
// the origin's stream has op then CN_EXTRACT_MASKED_OBJECT_USER, every
// other reachable HSM's CN_INSERT_MASKED_OBJECT_USER with the same
// handles: the new token objects are copied to them
// (UG-2023:interpreting-audit-logs.md).
func (s *Slot) objectsEvents(se *Session, op audit.Opcode, objs []*Object, origin int) []store.AuditEvent {
	e := keyEvent(op, 0, 0, audit.RespSuccess)
	s.completeEvent(se, &e)
	fill := func(op audit.Opcode) func(created []int64) ([]byte, error) {
		return func(created []int64) ([]byte, error) {
			ev := e
			ev.Opcode = op
			hs := make([]uint64, len(objs))
			i := 0
			for j, o := range objs {
				if o.token && i < len(created) {
					hs[j] = uint64(created[i])
					i++
				} else {
					hs[j] = uint64(o.h)
				}
			}
			setKeyHandles(&ev, objs, hs)
			return encodeEvent(s, ev), nil
		}
	}
	if s.cl == nil || origin < 0 {
		return []store.AuditEvent{{Fill: fill(op)}}
	}
	out := []store.AuditEvent{
		{Stream: cluster.StreamName(origin), Fill: fill(op)},
		{Stream: cluster.StreamName(origin), Fill: fill(audit.CN_EXTRACT_MASKED_OBJECT_USER)},
	}
	for _, h := range s.cl.Reachable() {
		if h != origin {
			out = append(out, store.AuditEvent{Stream: cluster.StreamName(h), Fill: fill(audit.CN_INSERT_MASKED_OBJECT_USER)})
		}
	}
	return out
}

// setKeyHandles puts a pair's private key in Key and its public key in
// PublicKey, or a single object in Key.
func setKeyHandles(e *audit.Event, objs []*Object, hs []uint64) {
	for j, o := range objs {
		if len(objs) > 1 && o.class == ck.CKO_PUBLIC_KEY {
			e.PublicKey = hs[j]
		} else {
			e.Key = hs[j]
		}
	}
}
