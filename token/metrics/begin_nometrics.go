//go:build nometrics

package metrics

// Begin, built with the tag nometrics, never measures: the hook in token
// compiles out, for the bench's gohsm-nohook column (docs/bench.md).
func (p *Process) Begin() (t0 int64, ok bool) { return 0, false }

// On is false: without the hook nothing is counted.
func (p *Process) On() bool { return false }
