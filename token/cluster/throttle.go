package cluster

import (
	"fmt"
	"sync/atomic"
	"time"
)

// Throttling (decision 5). Each HSM has, per class, a GCRA ("generic cell
// rate algorithm") budget in the shared file: one word, the theoretical
// arrival time (TAT) of the next call, moved by a CAS loop. A call at now
// is admitted when max(TAT, now) + T - now <= burst * T, with T = 1/rate
// and burst a tenth of a second of budget (at least 1 call); admitting it
// moves TAT to max(TAT, now) + T. Processes share the word, so the budget
// is the HSM's, whoever calls.

// retryBackoff is the SDK's standard retry: "up to 3 times while
// exponentially backing off" (UG:pkcs11-library-configs-retry,
// UG:troubleshoot-hsm-throttling). AWS does not publish the base: 5 ms,
// doubling, is our choice [check].
var retryBackoff = [...]time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond}

// maxInterval is the longest interval between two calls of a budget
// (about 36 years): TAT = now + interval stays far from overflowing.
const maxInterval = time.Duration(1 << 60)

// gcra is a class's budget in ns: the interval between calls and the
// tolerance.
type gcra struct{ interval, tolerance int64 }

func budgetOf(rate float64) gcra {
	if rate <= 0 {
		return gcra{}
	}
	// A tiny rate's interval (1e9/1e-12 ns) does not fit an int64 and
	// would convert to a negative one, read as unlimited: it is capped at
	// maxInterval, which still leaves room for now + interval.
	iv := float64(time.Second) / rate
	t := int64(maxInterval)
	if iv < float64(maxInterval) {
		t = max(int64(iv), 1)
	}
	burst := int64(rate / 10)
	if burst < 1 {
		burst = 1
	}
	return gcra{interval: t, tolerance: burst * t}
}

// take admits one call of class cl on HSM h at now, or says it is over
// budget.
func (c *Cluster) take(h int, cl Class, g gcra, now int64) bool {
	p := c.st.i64(c.st.class(h, cl, clsTAT))
	for {
		old := atomic.LoadInt64(p)
		t := max(old, now) + g.interval
		if t-now > g.tolerance {
			return false
		}
		if atomic.CompareAndSwapInt64(p, old, t) {
			c.countSecond(h, cl, now)
			return true
		}
	}
}

// countSecond counts an admitted call in the second it fell in, for
// Status's used-per-second figure. Approximate under races (a call may
// land in the second before): it is a display.
func (c *Cluster) countSecond(h int, cl Class, now int64) {
	sec := now / int64(time.Second)
	sp := c.st.i64(c.st.class(h, cl, clsSec))
	if old := atomic.LoadInt64(sp); old != sec && atomic.CompareAndSwapInt64(sp, old, sec) {
		n := atomic.SwapUint64(c.st.u64(c.st.class(h, cl, clsSecCount)), 0)
		if sec != old+1 {
			n = 0
		}
		atomic.StoreUint64(c.st.u64(c.st.class(h, cl, clsPrevCount)), n)
	}
	atomic.AddUint64(c.st.u64(c.st.class(h, cl, clsSecCount)), 1)
}

// throttle applies cl's budget to the call routed on r: the routed HSM
// first; over budget, the retry mode's retries, each after its back-off
// and free to fail over to another reachable HSM that has the key and
// budget. Certificate storage is never retried
// (UG:pkcs11-certificate-storage-limits). It returns the time after the
// last attempt.
func (c *Cluster) throttle(r *Route, cl Class, rate float64, now int64) (int64, error) {
	g := budgetOf(rate)
	if c.take(r.HSM, cl, g, now) {
		return now, nil
	}
	cert := cl == ClassCertRead || cl == ClassCertWrite
	if !cert && c.cfg.Retry == RetryStandard {
		var p keyPlace
		var timed, placed bool
		for _, d := range retryBackoff {
			atomic.AddUint64(c.st.u64(c.st.class(r.HSM, cl, clsRetried)), 1)
			c.sleep(d)
			now = c.now()
			if c.take(r.HSM, cl, g, now) {
				return now, nil
			}
			if r.Pinned {
				continue
			}
			if !placed {
				p, timed = c.place(r.Key)
				placed = true
			}
			for i := 1; i < c.n; i++ {
				h := (r.HSM + i) % c.n
				if stateOf(c.stateWord(h)) != Down && c.has(p, timed, h) && c.take(h, cl, g, now) {
					r.HSM = h
					return now, nil
				}
			}
		}
	}
	atomic.AddUint64(c.st.u64(c.st.class(r.HSM, cl, clsThrottled)), 1)
	if cl == ClassCertRead {
		c.logLimited(logCertThrottled, fmt.Sprintf("cluster: hsm %d: certificate read throttled: HSM response 187 (0xBB), not retried", r.HSM), "hsm", r.HSM, "class", cl.String())
		return now, ErrCertThrottled
	}
	// The SDK's log names the HSM's answer (UG:troubleshoot-hsm-throttling).
	c.logLimited(logThrottled, fmt.Sprintf("cluster: hsm %d: %s throttled at %g ops/s: HSM response 187 (0xBB)", r.HSM, cl, rate), "hsm", r.HSM, "class", cl.String())
	return now, ErrThrottled
}
