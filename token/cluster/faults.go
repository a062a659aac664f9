package cluster

import (
	"errors"
	"time"
)

// admitSlow is Admit's path when something time-based applies: a budget
// or latency for the class, a degraded HSM, a loaded plan. n is the
// call's number on its HSM and class (the latency draw's counter).
func (c *Cluster) admitSlow(r *Route, cl Class, w uint64, n uint64) error {
	var now int64
	if rate := c.cfg.Budgets[cl]; rate > 0 {
		var err error
		if now, err = c.throttle(r, cl, rate, c.now()); err != nil {
			return err
		}
		w = c.stateWord(r.HSM) // a retry may have moved the call
	}
	var delay time.Duration
	if d := c.cfg.Latency[cl]; d != nil {
		stream := uint64(r.HSM)*uint64(NumClasses) + uint64(cl)
		delay += d.draw(draw(c.cfg.Seed, stream, 2*n), draw(c.cfg.Seed, stream, 2*n+1))
	}
	if stateOf(w) == Degraded {
		delay += c.cfg.DegradedLatency
	}
	delay += c.planLatency(cl, n, now)
	if delay > 0 {
		c.sleep(delay)
	}
	return nil
}

// planLatency is the latency the plan's active latency steps add to a
// call of class cl (now: 0 when not read yet).
func (c *Cluster) planLatency(cl Class, n uint64, now int64) time.Duration { return 0 }

func (c *Cluster) tick(now int64) *compiled { return nil }

func (c *Cluster) planStatus(cp *compiled, now int64) *PlanStatus { return nil }

func (c *Cluster) loadPlan(p *Plan, ifOther bool) error {
	return errors.New("cluster: plan: not implemented yet")
}

func (c *Cluster) clearPlanLocked() bool { return false }

// LoadPlan makes p the plan every process follows, starting now.
func (c *Cluster) LoadPlan(p *Plan) error { return c.loadPlan(p, false) }

// ClearPlan removes the plan (pending steps never fire; states stay).
func (c *Cluster) ClearPlan() error { return nil }

// Fault is the error a fault plan injects into this call of fn, or nil.
func (c *Cluster) Fault(fn Func) error { return nil }

// StoreDown is ErrStoreDown while a fault plan has dropped the store.
func (c *Cluster) StoreDown() error { return nil }
