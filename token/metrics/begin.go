//go:build !nometrics

package metrics

import "sync/atomic"

// Begin starts measuring a call: ok is false when the slot's metrics are
// off, which costs one atomic load (inlined); t0 is the call's start for
// Record. (Built with the tag nometrics, Begin is a constant false and
// the hook compiles out: the bench's gohsm-nohook column.)
func (p *Process) Begin() (t0 int64, ok bool) {
	if p != nil && atomic.LoadInt64(p.lease) != 0 {
		t0 = p.begin()
	}
	return t0, t0 != 0
}

// On reports whether the slot's metrics are on now (a C_SignInit asks,
// to keep the operation's C_Sign in Go, where it is counted).
func (p *Process) On() bool { return p != nil && atomic.LoadInt64(p.lease) != 0 }
