package pkcs11

import (
	"runtime"
	"sync/atomic"
)

// Spare Ps for concurrent signing (docs/design.md, "Concurrency"). Host threads spend most of a signature inside libcrypto
// (a cgo call). When no P is idle, the runtime's monitor takes the P of
// every thread in a C call longer than 20 us and wakes a spinning thread
// to look for work, 50,000 times a second: on 2 cores, 2 signing sessions
// lost a fifth of their throughput to it (ECDSA P-256: 40-43k/s with 2
// Ps, 49-55k/s with 8). Spare Ps keep one idle, so the monitor leaves
// callers alone. A host's own GOMAXPROCS still wins.
//
// Only a host with two sessions can have two threads signing at once (a
// session serves one call at a time), so the Ps are added when the second
// session since C_Initialize opens, not at C_Initialize: a one-shot
// process (pkcs11-tool, a signing tool, `pkcs11-tool -L`) never opens a
// second one, and with the runtime's default Ps it makes fewer spans,
// mcaches and woken threads (docs/bench.md, "One-shot memory and -L
// (2026-12-07)").
var (
	spareProcsWanted atomic.Bool  // the host did not set GOMAXPROCS
	sessionsOpened   atomic.Int64 // sessions opened since C_Initialize
)

// spareProcs is the number of Ps a host with concurrent sessions gets.
func spareProcs() int { return max(2*runtime.NumCPU(), 8) }

// procsAtInitialize is C_Initialize's part: hostSet says whether the
// host's environment has GOMAXPROCS.
func procsAtInitialize(hostSet bool) {
	spareProcsWanted.Store(!hostSet)
	sessionsOpened.Store(0)
}

// procsAtOpenSession is C_OpenSession's part, after a session opened: the
// second one raises GOMAXPROCS to spareProcs (never lowers it).
func procsAtOpenSession() {
	if sessionsOpened.Add(1) != 2 || !spareProcsWanted.Load() {
		return
	}
	if n := spareProcs(); runtime.GOMAXPROCS(0) < n {
		runtime.GOMAXPROCS(n)
	}
}
