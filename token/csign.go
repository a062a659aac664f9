package token

import (
	"sync/atomic"

	"gohsm/internal/ck"
	"gohsm/mechanisms"
)

// CSign is the C side of the module's C_Sign (pkcs11/csign.h) as the token
// sees it. C_SignInit stays in Go; when the operation it starts is a
// CKM_ECDSA or CKM_ECDSA_SHA256 signature with a P-256 key prepared in
// libcrypto and nothing
// else has to see the call (handOffLocked), it is handed to C: a
// per-session record in C memory that C_Sign answers without entering Go.
// The operation stays in se.ops, marked handed, so that C_SignInit still
// finds it active; whatever Go does with it first takes it back (Settle).
type CSign interface {
	// Publish hands session h's operation, signing with the libcrypto key
	// key (over the SHA-256 of the input when sha256 is set:
	// CKM_ECDSA_SHA256), to C: false when C has no room for it (another
	// session's record), and the operation stays Go's.
	Publish(h ck.ULong, key uintptr, sha256 bool) bool
	// Settle takes session h's handed operation back from C (se.mu held)
	// and reports whether C ended it (a C_Sign answered there): if not, it
	// is Go's again and still active. It waits for a C_Sign running on it.
	Settle(h ck.ULong) (ended bool)
	// Drop forgets session h's record and drops its key reference: the
	// session closes or all its operations end (logout). It waits for a
	// C_Sign running on it.
	Drop(h ck.ULong)
}

// SetCSign installs the C side of C_Sign (pkcs11 at C_Initialize, before
// any session exists); nil, the default, keeps every C_Sign in Go.
func (m *Module) SetCSign(c CSign) { m.csign = c }

// slotEnds is what a C_SignInit checks to know that no logout or session
// close raced with its hand-off (handOffLocked): closers counts those in
// progress, ends those begun. Written only by them (rare), read by every
// handed-off C_SignInit (no cache line bounces between signing sessions).
type slotEnds struct {
	closers atomic.Int32
	ends    atomic.Uint64
}

// begin and end bracket a logout or a session close (s.mu held), which
// end operations without the sessions' locks.
func (e *slotEnds) begin() { e.closers.Add(1); e.ends.Add(1) }
func (e *slotEnds) end()   { e.closers.Add(-1) }

// dropHandedLocked forgets a session's C record, if it ever had one: its
// operations are ending without its lock (logout, close).
func (s *Slot) dropHandedLocked(se *Session) {
	if se.handedEver.Load() {
		s.m.csign.Drop(se.h)
	}
}

// handOffLocked hands a C_SignInit's operation to C when that is safe
// (se.mu held, the operation just stored in se.ops). ends is the slot's
// closer count as C_SignInit began, busy whether a closer was running.
// Decided once, here: the operation stays in Go when the slot has a
// cluster (routing, budgets, fault injection), its metrics are on, the
// profile counts the operation's input, or the key needs a
// context-specific login; and for every mechanism but CKM_ECDSA and
// CKM_ECDSA_SHA256 with a P-256 key in libcrypto.
func (m *Module) handOffLocked(se *Session, op *operation, ends uint64, busy bool) {
	s := se.slot
	if busy || op.mech.Type != ck.CKM_ECDSA && op.mech.Type != ck.CKM_ECDSA_SHA256 || op.needAuth || op.cl != nil || s.cl != nil || s.mt.On() ||
		op.rule != nil && op.rule.InputLimit(false) != 0 {
		return
	}
	key, sha256, n, ok := mechanisms.P256Handle(op.signer)
	if !ok || n != 64 {
		return
	}
	// Before publishing: a closer that then looks (dropHandedLocked)
	// sees it.
	se.handedEver.Store(true)
	if !m.csign.Publish(se.h, key, sha256) {
		return
	}
	// A logout or close that began after this C_SignInit did, or a close
	// that finished before it published, has ended the operation or the
	// session without the session's lock: the record must not outlive it.
	if s.ends.ends.Load() != ends || s.ends.closers.Load() != 0 {
		m.csign.Drop(se.h)
		return
	}
	if cur, ok := m.sessions.load(se.h); !ok || cur != se {
		m.csign.Drop(se.h)
		return
	}
	op.handed = true
}

// settleLocked takes a handed operation of a kind back from C (se.mu
// held) and ends it if C did; it reports whether the operation ended.
func (se *Session) settleLocked(kind opKind) bool {
	op := se.ops[kind]
	if op == nil || !op.handed {
		return false
	}
	op.handed = false
	if se.slot.m.csign.Settle(se.h) {
		se.endOp(kind)
		return true
	}
	return false
}
