package cluster

import (
	"errors"
	"time"
)

// admitSlow is Admit's path when something time-based applies: a budget
// or latency for the class, a degraded HSM, a loaded plan.
func (c *Cluster) admitSlow(r *Route, cl Class, w uint64, n uint64) error {
	if stateOf(w) == Degraded && c.cfg.DegradedLatency > 0 {
		c.sleep(c.cfg.DegradedLatency)
	}
	return nil
}

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

var _ = time.Second
