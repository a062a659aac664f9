package cluster

import (
	"math"
	"sync/atomic"
	"time"
)

// Status is a snapshot of the shared state for `gohsm cluster status`. It
// fires the plan's steps that are due, as any call does.
func (c *Cluster) Status() Status {
	now := c.now()
	cp := c.tick(now)
	s := Status{Check: c.cfg.KeyAvailabilityCheck, Retry: "standard"}
	if c.cfg.Retry == RetryOff {
		s.Retry = "off"
	}
	sec := now / int64(time.Second)
	for h := range c.n {
		w := c.stateWord(h)
		hs := HSMStatus{Index: h, ID: StreamName(h), State: stateOf(w).String(), Epoch: epochOf(w),
			Since: time.Unix(0, atomic.LoadInt64(c.st.i64(c.st.hsm(h, hsmSince)))).UTC(), Classes: []ClassStatus{}}
		for cl := ClassNone + 1; cl < NumClasses; cl++ {
			ld := func(off int) uint64 { return atomic.LoadUint64(c.st.u64(c.st.class(h, cl, off))) }
			cs := ClassStatus{Class: cl.String(), Budget: c.cfg.Budgets[cl], Calls: ld(clsCalls),
				Throttled: ld(clsThrottled), Retried: ld(clsRetried), Failed: ld(clsFaults)}
			if cs.Budget == 0 && cs.Calls == 0 && cs.Failed == 0 {
				continue
			}
			// Calls admitted over the last second (counted only for
			// classes with a budget, the only ones that read the time):
			// this second's count plus the share of the second before
			// that the window still covers.
			frac := float64(now%int64(time.Second)) / float64(time.Second)
			switch int64(ld(clsSec)) {
			case sec:
				cs.Used = float64(ld(clsSecCount)) + (1-frac)*float64(ld(clsPrevCount))
			case sec - 1:
				cs.Used = (1 - frac) * float64(ld(clsSecCount))
			}
			cs.Used = math.Round(cs.Used*10) / 10
			hs.Classes = append(hs.Classes, cs)
		}
		s.HSMs = append(s.HSMs, hs)
	}
	if cp != nil && cp.plan != nil {
		s.Plan = c.planStatus(cp, now)
	}
	if until := atomic.LoadInt64(c.st.i64(offStoreDown)); until > now {
		t := time.Unix(0, until).UTC()
		s.StoreDownUntil = &t
	}
	return s
}
