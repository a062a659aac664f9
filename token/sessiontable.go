package token

import (
	"sync"
	"sync/atomic"

	"gohsm/internal/ck"
)

// sessionTable maps session handles to sessions for the lookup every
// call makes. Handles are consecutive numbers, so a handle's slot is its
// low bits: looking one up is an atomic load and a compare, adding and
// removing one a compare-and-swap, none of which allocates (sync.Map
// allocated an entry per C_OpenSession and was a sixth of an open+close).
// A slot still held by a live session 16,384 handles older sends the new
// one to an overflow map.
type sessionTable struct {
	slots    [sessionSlots]atomic.Pointer[Session]
	overflow sync.Map // ck.ULong -> *Session
}

const sessionSlots = 1 << 14

func (t *sessionTable) slot(h ck.ULong) *atomic.Pointer[Session] {
	return &t.slots[h&(sessionSlots-1)]
}

func (t *sessionTable) load(h ck.ULong) (*Session, bool) {
	if se := t.slot(h).Load(); se != nil && se.h == h {
		return se, true
	}
	v, ok := t.overflow.Load(h)
	if !ok {
		return nil, false
	}
	return v.(*Session), true
}

func (t *sessionTable) store(se *Session) {
	if !t.slot(se.h).CompareAndSwap(nil, se) {
		t.overflow.Store(se.h, se)
	}
}

func (t *sessionTable) delete(se *Session) {
	if !t.slot(se.h).CompareAndSwap(se, nil) {
		t.overflow.Delete(se.h)
	}
}

// clear removes every session; last is the highest handle handed out.
// Handles are consecutive from 1, so below sessionSlots only the slots up
// to last were ever used: the table is 128 KiB, and storing nil into all
// of it faulted in 32 pages no session had touched in every process's
// C_Finalize (1.8% of a `pkcs11-tool -L` process; docs/bench.md, "Start-up,
// second pass").
func (t *sessionTable) clear(last ck.ULong) {
	n := uint64(len(t.slots))
	if uint64(last) < n {
		n = uint64(last) + 1
	}
	for i := range n {
		t.slots[i].Store(nil)
	}
	t.overflow.Clear()
}
