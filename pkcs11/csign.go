package pkcs11

/*
#include "csign.h"
*/
import "C"

import (
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"gohsm/internal/ck"
)

// C_Sign answered in C (csign.h, token/csign.go): the Go side of the
// records, which implements token.CSign. It reads and changes the records
// with atomic operations on the C memory (Go's and C's atomics are the
// same instructions), so that a C_SignInit that hands its operation to C
// again, with the key its record already holds, makes no extra call into
// C; only taking or dropping a key reference does.

// csignRec is struct gohsm_csign_rec (csign.h), field for field.
type csignRec struct {
	h      atomic.Uint64
	key    atomic.Uint64
	state  atomic.Uint32
	sha256 atomic.Uint32
	_      [64 - 2*8 - 2*4]byte
}

const (
	csFree     = C.GOHSM_CSIGN_FREE
	csClaim    = C.GOHSM_CSIGN_CLAIM
	csReady    = C.GOHSM_CSIGN_READY
	csBusy     = C.GOHSM_CSIGN_BUSY
	csIdle     = C.GOHSM_CSIGN_IDLE
	csReturned = C.GOHSM_CSIGN_RETURNED
	csRecords  = C.GOHSM_CSIGN_RECORDS
)

// cSign is the table; one per copy of the library.
type cSign struct{ recs *[csRecords]csignRec }

var cSignTable = sync.OnceValue(func() *cSign {
	if unsafe.Sizeof(csignRec{}) != C.sizeof_struct_gohsm_csign_rec {
		panic("pkcs11: csignRec does not match struct gohsm_csign_rec")
	}
	return &cSign{recs: (*[csRecords]csignRec)(C.gohsm_csign_records())}
})

func (t *cSign) rec(h ck.ULong) *csignRec { return &t.recs[h&(csRecords-1)] }

// csWait lets a C_Sign (or a publish) on a record finish: it runs in C and
// holds no lock Go's callers hold.
func csWait() { runtime.Gosched() }

// Publish implements token.CSign.
func (t *cSign) Publish(h ck.ULong, key uintptr, sha256 bool) bool {
	r := t.rec(h)
	hash := uint32(0)
	if sha256 {
		hash = 1
	}
	for {
		switch st := r.state.Load(); st {
		case csIdle:
			if r.h.Load() != uint64(h) {
				return false // another session's
			}
			if r.key.Load() == uint64(key) && r.sha256.Load() == hash {
				// The session's last key again: its reference is held.
				if r.state.CompareAndSwap(csIdle, csReady) {
					return true
				}
				continue
			}
			if !r.state.CompareAndSwap(csIdle, csClaim) {
				continue
			}
			old := r.key.Load()
			if old == uint64(key) {
				r.sha256.Store(hash) // the same key, the other mechanism
				r.state.Store(csReady)
				return true
			}
			if C.gohsm_csign_ref(C.uintptr_t(key)) == 0 {
				r.state.Store(csIdle)
				return false
			}
			r.key.Store(uint64(key))
			r.sha256.Store(hash)
			r.state.Store(csReady)
			C.gohsm_csign_unref(C.uintptr_t(old))
			return true
		case csFree:
			if !r.state.CompareAndSwap(csFree, csClaim) {
				continue
			}
			if C.gohsm_csign_ref(C.uintptr_t(key)) == 0 {
				r.state.Store(csFree)
				return false
			}
			r.h.Store(uint64(h))
			r.key.Store(uint64(key))
			r.sha256.Store(hash)
			r.state.Store(csReady)
			return true
		default:
			// Another session's record (or, in a state a C_SignInit
			// never meets for its own, one to leave alone).
			return false
		}
	}
}

// Settle implements token.CSign.
func (t *cSign) Settle(h ck.ULong) bool {
	r := t.rec(h)
	for {
		st := r.state.Load()
		if st == csClaim {
			csWait()
			continue
		}
		if st == csFree || r.h.Load() != uint64(h) {
			return false // dropped: nothing of C's to take back
		}
		switch st {
		case csReady, csReturned:
			// Go's again, still active (the key reference stays).
			if r.state.CompareAndSwap(st, csIdle) {
				return false
			}
		case csIdle:
			return true // a C_Sign ended it
		case csBusy:
			csWait()
		default:
			return false
		}
	}
}

// Drop implements token.CSign.
func (t *cSign) Drop(h ck.ULong) {
	r := t.rec(h)
	for {
		st := r.state.Load()
		if st == csFree {
			return
		}
		if st == csClaim {
			csWait()
			continue
		}
		if r.h.Load() != uint64(h) {
			return
		}
		if st == csBusy {
			csWait()
			continue
		}
		if r.state.CompareAndSwap(st, csClaim) {
			key := r.key.Swap(0)
			r.h.Store(0)
			r.state.Store(csFree)
			C.gohsm_csign_unref(C.uintptr_t(key))
			return
		}
	}
}
