package cluster

import (
	"fmt"
	"sync/atomic"
)

// limitedLog keeps a per-call log line (a throttled call, a key that does
// not meet the availability quorum) to one line a second: an application
// driving 40,000 refused calls a second must not flood its host's log
// (four SunPKCS11 threads wrote 86,000 lines in 2 s before this). The line
// after a quiet second says how many were left out.
type limitedLog struct {
	second     atomic.Int64 // the second (Unix) of the last line written
	suppressed atomic.Int64 // lines left out since
}

// kinds of limited lines
const (
	logThrottled = iota
	logCertThrottled
	logAvailability
	numLimitedLogs
)

// logLimited writes msg through the Config's Log unless a line of the
// same kind was written in the same second.
func (c *Cluster) logLimited(kind int, msg string, args ...any) {
	if c.cfg.Log == nil {
		return
	}
	l := &c.limited[kind]
	sec := c.now() / 1e9
	last := l.second.Load()
	if last == sec || !l.second.CompareAndSwap(last, sec) {
		l.suppressed.Add(1)
		return
	}
	if n := l.suppressed.Swap(0); n > 0 {
		msg = fmt.Sprintf("%s (and %d more such lines in the last %ds)", msg, n, max(sec-last, 1))
	}
	c.cfg.Log(msg, args...)
}
