package cluster

import (
	"encoding/json"
	"fmt"
	"sync/atomic"
	"syscall"
	"time"

	"gohsm/internal/ck"
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

// The fault plan (decision 7). The plan's JSON, its generation and load
// time live in the state file; each process compiles the plan again when
// the generation moves. Steps fire lazily: the first call (or status) of
// any process after a step's time moves the step's cursor from pending to
// active with a CAS, and only that process acts and reports the event;
// steps that last are ended the same way. Draws of probability steps are
// a pure function of (seed, step, n-th matching call), n counted in the
// file across processes.

// Step cursor states. A step's cursor word holds the generation of the
// plan it belongs to above them (cursorWord): a process still running a
// plan another process has just replaced cannot fire, end or count the
// new plan's steps with its old plan's (its compare-and-swaps expect its
// own generation and fail).
const (
	stepPending = 0
	stepActive  = 1
	stepDone    = 2
)

func cursorWord(gen, state uint64) uint64 { return gen<<8 | state }

// currentPlan is the loaded plan compiled, or nil.
func (c *Cluster) currentPlan() *compiled {
	g := atomic.LoadUint64(c.st.u64(offPlanGen))
	if g == 0 {
		return nil
	}
	if cp := c.plan.Load(); cp != nil && cp.gen == g {
		return cp.orNil()
	}
	c.planMu.Lock()
	defer c.planMu.Unlock()
	if cp := c.plan.Load(); cp != nil && cp.gen == g {
		return cp.orNil()
	}
	if err := c.st.lock(syscall.LOCK_SH); err != nil {
		return nil
	}
	g = atomic.LoadUint64(c.st.u64(offPlanGen))
	b := c.st.planBytes()
	loaded := atomic.LoadInt64(c.st.i64(offPlanLoaded))
	c.st.unlock()
	if g == 0 {
		return nil
	}
	cp := &compiled{gen: g}
	p, err := ParsePlan(b)
	if err == nil {
		err = p.checkHSMs(c.n)
	}
	if err != nil {
		// A damaged plan is no plan, reported once per generation.
		c.log("cluster: ignoring the stored fault plan", "err", err)
	} else {
		cp = compile(p, g, loaded, c.cfg.Seed)
	}
	c.plan.Store(cp)
	return cp.orNil()
}

func (cp *compiled) orNil() *compiled {
	if cp.plan == nil {
		return nil
	}
	return cp
}

func (c *Cluster) cursor(i, off int) *uint64 { return c.st.u64(c.st.step(i, off)) }

// tick fires the steps that are due at now; it returns the plan (nil:
// none).
func (c *Cluster) tick(now int64) *compiled {
	cp := c.currentPlan()
	if cp == nil {
		return nil
	}
	c.fire(cp, now)
	return cp
}

// fire starts and ends cp's steps that are due at now. cp may have been
// replaced since it was read: then its compare-and-swaps fail.
func (c *Cluster) fire(cp *compiled, now int64) {
	for _, i := range cp.order {
		st := &cp.steps[i]
		if now < st.start {
			break // the rest start later
		}
		fired := c.cursor(i, stepFired)
		pending, active, done := cursorWord(cp.gen, stepPending), cursorWord(cp.gen, stepActive), cursorWord(cp.gen, stepDone)
		f := atomic.LoadUint64(fired)
		if f == pending {
			next := active
			if st.end == 0 && st.kind == stepState {
				next = done // nothing to end
			}
			if atomic.CompareAndSwapUint64(fired, pending, next) {
				c.startStep(cp, i)
			}
			f = atomic.LoadUint64(fired)
		}
		if f == active && st.end != 0 && now >= st.end && atomic.CompareAndSwapUint64(fired, active, done) {
			c.endStep(cp, i)
		}
	}
}

func (c *Cluster) startStep(cp *compiled, i int) {
	st := &cp.steps[i]
	switch st.kind {
	case stepState:
		c.setState(st.hsm, st.state, i)
	case stepStore:
		atomic.StoreInt64(c.st.i64(offStoreDown), st.end)
		detail := fmt.Sprintf("fault plan step %d: the token store is down for %s", i, time.Duration(st.end-st.start))
		c.log("cluster: " + detail)
		c.notify(Event{HSM: -1, Kind: StoreDropped, Step: i, Detail: detail})
	}
}

func (c *Cluster) endStep(cp *compiled, i int) {
	st := &cp.steps[i]
	switch st.kind {
	case stepState:
		c.setState(st.hsm, Up, i)
	case stepStore:
		atomic.CompareAndSwapInt64(c.st.i64(offStoreDown), st.end, 0)
		detail := fmt.Sprintf("fault plan step %d: the token store is back", i)
		c.log("cluster: " + detail)
		c.notify(Event{HSM: -1, Kind: StoreRestored, Step: i, Detail: detail})
	}
}

// planLatency is the latency the plan's active latency steps add to a
// call of class cl, n its number on its HSM and class (now: 0 when not
// read yet).
func (c *Cluster) planLatency(cl Class, n uint64, now int64) time.Duration {
	if atomic.LoadUint64(c.st.u64(offPlanGen)) == 0 {
		return 0
	}
	if now == 0 {
		now = c.now()
	}
	cp := c.tick(now)
	if cp == nil {
		return 0
	}
	var d time.Duration
	for i := range cp.steps {
		st := &cp.steps[i]
		if st.kind != stepLatency || (!st.allClass && st.class != cl) || atomic.LoadUint64(c.cursor(i, stepFired)) != cursorWord(cp.gen, stepActive) {
			continue
		}
		stream := 1<<32 + uint64(i)<<8 + uint64(cl)
		d += st.dist.draw(draw(cp.seed, stream, 2*n), draw(cp.seed, stream, 2*n+1))
	}
	return d
}

// Fault is the error a fault plan injects into this call of fn, or nil.
// With no plan loaded it is one atomic load.
func (c *Cluster) Fault(fn Func) error { return c.FaultAt(fn, nil, ClassNone) }

// FaultAt is Fault for a call routed on r (nil: none) of class cl: the
// injected fault is counted on r's HSM and class, and its event goes to
// r's HSM's stream (HSM -1 without a route: the token writes hsm-0).
func (c *Cluster) FaultAt(fn Func, r *Route, cl Class) error {
	if atomic.LoadUint64(c.st.u64(offPlanGen)) == 0 {
		return nil
	}
	now := c.now()
	cp := c.tick(now)
	if cp == nil {
		return nil
	}
	for i := range cp.steps {
		st := &cp.steps[i]
		if st.kind != stepFail || st.fn != fn || atomic.LoadUint64(c.cursor(i, stepFired)) != cursorWord(cp.gen, stepActive) {
			continue
		}
		if st.end != 0 && now >= st.end {
			continue
		}
		switch {
		case st.count > 0:
			rem := c.cursor(i, stepRemaining)
			hit := false
			for {
				v := atomic.LoadUint64(rem)
				if v == 0 {
					break
				}
				if atomic.CompareAndSwapUint64(rem, v, v-1) {
					if v == 1 {
						atomic.CompareAndSwapUint64(c.cursor(i, stepFired), cursorWord(cp.gen, stepActive), cursorWord(cp.gen, stepDone))
					}
					hit = true
					break
				}
			}
			if !hit {
				continue
			}
		case st.prob > 0:
			n := atomic.AddUint64(c.cursor(i, stepCalls), 1) - 1
			if draw(cp.seed, uint64(i), n) >= st.prob {
				continue
			}
		}
		return c.inject(i, st, r, cl)
	}
	return nil
}

func (c *Cluster) inject(i int, st *cstep, r *Route, cl Class) error {
	hsm := -1
	if r != nil {
		hsm = r.HSM
		if cl != ClassNone && cl < NumClasses && hsm >= 0 && hsm < c.n {
			atomic.AddUint64(c.st.u64(c.st.class(hsm, cl, clsFaults)), 1)
		}
	}
	detail := fmt.Sprintf("fault plan step %d: %s failed with %s", i, FuncNames[st.fn], st.rv)
	c.log("cluster: "+detail, "hsm", hsm)
	c.notify(Event{HSM: hsm, Kind: FaultInjected, Func: st.fn, RV: st.rv, Step: i, Detail: detail})
	return fmt.Errorf("cluster: fault plan step %d: %s: %w", i, FuncNames[st.fn], st.rv)
}

// StoreDown is ErrStoreDown while a fault plan has dropped the store.
// With no plan loaded it is one atomic load.
func (c *Cluster) StoreDown() error {
	if atomic.LoadUint64(c.st.u64(offPlanGen)) == 0 {
		return nil
	}
	now := c.now()
	c.tick(now)
	if now < atomic.LoadInt64(c.st.i64(offStoreDown)) {
		return ErrStoreDown
	}
	return nil
}

// LoadPlan makes p the plan every process follows, starting now.
func (c *Cluster) LoadPlan(p *Plan) error { return c.loadPlan(p, false) }

// loadPlan stores p with a new generation, its steps pending, its clock
// starting now. ifOther (a fault_plan file at Open): only when the file's
// contents are not the ones last loaded from it, checked under the lock
// so that processes starting together load it once; a plan loaded or
// cleared since (gohsm cluster plan) is left as it is.
func (c *Cluster) loadPlan(p *Plan, ifOther bool) error {
	if p == nil {
		return fmt.Errorf("cluster: plan: none: %w", ck.CKR_ARGUMENTS_BAD)
	}
	if err := p.checkHSMs(c.n); err != nil {
		return err
	}
	// Re-check what a caller may have built by hand.
	for i := range p.Steps {
		if _, err := p.Steps[i].check(); err != nil {
			return fmt.Errorf("cluster: plan: step %d: %w", i, err)
		}
	}
	if len(p.Steps) > maxSteps {
		return fmt.Errorf("cluster: plan: %d steps, the most is %d", len(p.Steps), maxSteps)
	}
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("cluster: plan: %w", err)
	}
	if len(b) > planCap {
		return fmt.Errorf("cluster: plan: %d bytes, the most is %d", len(b), planCap)
	}
	h := planHash(b)
	if err := c.st.lock(syscall.LOCK_EX); err != nil {
		return fmt.Errorf("cluster: lock state: %w", err)
	}
	if ifOther {
		if atomic.LoadUint64(c.st.u64(offFilePlan)) == h {
			c.st.unlock()
			return nil
		}
		atomic.StoreUint64(c.st.u64(offFilePlan), h)
	}
	c.clearPlanLocked()
	gen := atomic.AddUint64(c.st.u64(offPlanSeq), 1)
	for i, st := range p.Steps {
		atomic.StoreUint64(c.cursor(i, stepRemaining), uint64(st.Count))
		atomic.StoreUint64(c.cursor(i, stepFired), cursorWord(gen, stepPending))
	}
	copy(c.st.mem[offPlan:], b)
	atomic.StoreUint64(c.st.u64(offPlanLen), uint64(len(b)))
	atomic.StoreUint64(c.st.u64(offPlanHash), h)
	atomic.StoreInt64(c.st.i64(offPlanLoaded), c.now())
	atomic.StoreUint64(c.st.u64(offPlanGen), gen)
	c.st.unlock()
	seed := p.Seed
	if seed == 0 {
		seed = c.cfg.Seed
	}
	detail := fmt.Sprintf("fault plan loaded: %d steps, seed %d", len(p.Steps), seed)
	c.log("cluster: " + detail)
	c.notify(Event{HSM: -1, Kind: PlanLoaded, Step: -1, Detail: detail})
	return nil
}

// clearPlanLocked removes the plan, its cursors and a store it dropped;
// the caller holds the exclusive lock. It says whether there was a plan.
func (c *Cluster) clearPlanLocked() bool {
	had := atomic.SwapUint64(c.st.u64(offPlanGen), 0) != 0
	atomic.StoreUint64(c.st.u64(offPlanLen), 0)
	atomic.StoreUint64(c.st.u64(offPlanHash), 0)
	atomic.StoreInt64(c.st.i64(offStoreDown), 0)
	for i := range maxSteps {
		for off := 0; off < stepStride; off += 8 {
			atomic.StoreUint64(c.cursor(i, off), 0)
		}
	}
	return had
}

// ClearPlan removes the plan (pending steps never fire; HSM states stay;
// a store the plan dropped is back).
func (c *Cluster) ClearPlan() error {
	if err := c.st.lock(syscall.LOCK_EX); err != nil {
		return fmt.Errorf("cluster: lock state: %w", err)
	}
	had := c.clearPlanLocked()
	c.st.unlock()
	if had {
		c.log("cluster: fault plan cleared")
		c.notify(Event{HSM: -1, Kind: PlanCleared, Step: -1, Detail: "fault plan cleared"})
	}
	return nil
}

// planStatus is the plan's steps for Status.
func (c *Cluster) planStatus(cp *compiled, now int64) *PlanStatus {
	ps := &PlanStatus{Seed: cp.seed, Loaded: time.Unix(0, cp.loaded).UTC(), Steps: []StepStatus{}}
	for i := range cp.plan.Steps {
		ss := StepStatus{Index: i, Step: cp.plan.Steps[i].String(), State: "pending"}
		switch atomic.LoadUint64(c.cursor(i, stepFired)) {
		case cursorWord(cp.gen, stepActive):
			ss.State = "active"
		case cursorWord(cp.gen, stepDone):
			ss.State = "done"
		}
		if cs := &cp.steps[i]; cs.kind == stepFail && cs.count > 0 {
			ss.Remaining = int64(atomic.LoadUint64(c.cursor(i, stepRemaining)))
		}
		ps.Steps = append(ps.Steps, ss)
	}
	return ps
}
