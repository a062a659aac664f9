package cluster

import (
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"gohsm/internal/ck"
)

// Cluster is one process's handle on a slot's emulated cluster.
type Cluster struct {
	cfg Config
	n   int
	st  *state

	// slow has bit cl set when class cl has a budget or a latency: Admit
	// takes its slow path for it (time, GCRA, sleeping).
	slow uint32

	rr       atomic.Uint64 // round robin over HSMs (process-local, as the SDK's)
	verified sync.Map      // token key object IDs this process verified (int64 -> struct{})
	limited  [numLimitedLogs]limitedLog

	planMu sync.Mutex
	plan   atomic.Pointer[compiled] // the plan of generation plan.gen; nil plan: none

	// now and sleep are the clock (tests replace them).
	now   func() int64
	sleep func(time.Duration)
}

func wallNow() int64 { return time.Now().UnixNano() }

// Open maps (creating it if needed, with perm) the shared state file in
// dir and loads cfg.FaultPlan when the state holds no plan, or a plan of
// other contents.
func Open(dir string, cfg Config, perm uint32) (*Cluster, error) {
	if cfg.HSMs < 1 || cfg.HSMs > MaxHSMs {
		return nil, fmt.Errorf("cluster: hsms = %d: want 1 to %d", cfg.HSMs, MaxHSMs)
	}
	var filePlan *Plan
	if cfg.FaultPlan != "" {
		b, err := ReadPlanFile(cfg.FaultPlan)
		if err != nil {
			return nil, fmt.Errorf("cluster: fault_plan: %w", err)
		}
		if filePlan, err = ParsePlan(b); err != nil {
			return nil, fmt.Errorf("cluster: fault_plan %s: %w", cfg.FaultPlan, err)
		}
		if err := filePlan.checkHSMs(cfg.HSMs); err != nil {
			return nil, fmt.Errorf("cluster: fault_plan %s: %w", cfg.FaultPlan, err)
		}
	}
	st, err := openState(dir, cfg.HSMs, perm, cfg.Log)
	if err != nil {
		return nil, err
	}
	c := &Cluster{cfg: cfg, n: cfg.HSMs, st: st, now: wallNow, sleep: time.Sleep}
	for cl := range NumClasses {
		if cfg.Budgets[cl] > 0 || cfg.Latency[cl] != nil {
			c.slow |= 1 << cl
		}
	}
	if filePlan != nil {
		if err := c.loadPlan(filePlan, true); err != nil {
			st.close()
			return nil, err
		}
	}
	return c, nil
}

// Close unmaps the file. The Cluster must not be used after.
func (c *Cluster) Close() error { return c.st.close() }

// Config is the configuration the cluster was opened with.
func (c *Cluster) Config() Config { return c.cfg }

// HSMs is the number of emulated HSMs.
func (c *Cluster) HSMs() int { return c.n }

func (c *Cluster) stateWord(h int) uint64 { return atomic.LoadUint64(c.st.u64(c.st.hsm(h, hsmState))) }

func (c *Cluster) log(msg string, args ...any) {
	if c.cfg.Log != nil {
		c.cfg.Log(msg, args...)
	}
}

func (c *Cluster) notify(e Event) {
	if c.cfg.Notify != nil {
		c.cfg.Notify(e)
	}
}

// Reachable lists the HSMs that are up or degraded, in order: the audit
// streams a cluster-wide event goes to.
func (c *Cluster) Reachable() []int {
	out := make([]int, 0, c.n)
	for h := range c.n {
		if stateOf(c.stateWord(h)) != Down {
			out = append(out, h)
		}
	}
	return out
}

func (c *Cluster) reachableCount() int {
	k := 0
	for h := range c.n {
		if stateOf(c.stateWord(h)) != Down {
			k++
		}
	}
	return k
}

// Route is where an operation runs: the HSM, and what it needs there.
type Route struct {
	HSM int
	// Key is the token key's object ID (0: none): a fail-over goes only
	// to an HSM the key has reached.
	Key int64
	// Pinned: the operation uses a session key, which lives on HSM alone
	// and is lost when that HSM goes down (Epoch moved).
	Pinned bool
	Epoch  uint32
}

// Pin is the route of an operation on a session key made on HSM hsm at
// epoch (SessionKeyHSM).
func Pin(hsm int, epoch uint32) Route { return Route{HSM: hsm, Pinned: true, Epoch: epoch} }

// ErrKeyLost: the session key's HSM went down since the key was made
// (CKR_KEY_HANDLE_INVALID, as for a destroyed key).
var ErrKeyLost = fmt.Errorf("cluster: the session key's HSM went down and the key with it: %w", ck.CKR_KEY_HANDLE_INVALID)

// keyPlace is where a token key is: made on origin at created (ns), or,
// when it is not among the keys created recently, everywhere (origin -1).
type keyPlace struct {
	origin  int
	created int64
	now     int64
}

// place looks key up in the ring of recent keys. With no replication
// delay every key is on every reachable HSM and nothing is looked up.
func (c *Cluster) place(key int64) (keyPlace, bool) {
	d := int64(c.cfg.ReplicationDelay)
	if key == 0 || d == 0 {
		return keyPlace{}, false
	}
	p := keyPlace{origin: -1, now: c.now()}
	head := atomic.LoadUint64(c.st.u64(offRingHead))
	for k := head; k > 0 && head-k < ringSize; k-- {
		seq := c.st.u64(c.st.ring(k-1, ringSeq))
		if atomic.LoadUint64(seq) != k {
			continue // being written, or overwritten since
		}
		id := atomic.LoadInt64(c.st.i64(c.st.ring(k-1, ringID)))
		created := atomic.LoadInt64(c.st.i64(c.st.ring(k-1, ringCreated)))
		origin := atomic.LoadInt64(c.st.i64(c.st.ring(k-1, ringOrigin)))
		if atomic.LoadUint64(seq) != k {
			continue
		}
		if created+d <= p.now {
			// Keys are in the ring in creation order: this one and every
			// older one had the delay to reach every HSM (an HSM that came
			// up since lacks them until its own up-since + delay, which
			// has checks for every key).
			break
		}
		if id == key {
			p.origin, p.created = int(origin), created
			break
		}
	}
	return p, true
}

// has says whether HSM h holds the key at p: its origin does at once,
// every other HSM replication_delay after max(created, h's up-since).
func (c *Cluster) has(p keyPlace, timed bool, h int) bool {
	if !timed || h == p.origin {
		return true
	}
	from := max(p.created, atomic.LoadInt64(c.st.i64(c.st.hsm(h, hsmUpSince))))
	return p.now >= from+int64(c.cfg.ReplicationDelay)
}

// pick chooses, round robin from this process's counter, a reachable HSM
// that holds the key at p and is not skip; -1 when none. The counter
// indexes the eligible HSMs, so that the HSM after a down one does not
// get its share too.
func (c *Cluster) pick(p keyPlace, timed bool, skip int) int {
	var ok [MaxHSMs]int8
	k := 0
	for h := range c.n {
		if h == skip || stateOf(c.stateWord(h)) == Down || !c.has(p, timed, h) {
			continue
		}
		ok[k] = int8(h)
		k++
	}
	if k == 0 {
		return -1
	}
	return int(ok[c.rr.Add(1)%uint64(k)])
}

// Route picks the HSM for an operation at C_*Init, round robin over
// reachable HSMs (the SDK spreads operations across its connections). key
// is the token key's object ID (0: none): an HSM the key has not reached
// yet is skipped. ErrNoHSM when none can take it.
func (c *Cluster) Route(key int64) (Route, error) {
	p, timed := c.place(key)
	h := c.pick(p, timed, -1)
	if h < 0 {
		return Route{Key: key}, ErrNoHSM
	}
	return Route{HSM: h, Key: key}, nil
}

// SessionKeyHSM picks the HSM a new session key is made on (it stays
// there, never replicated), with that HSM's epoch: when the HSM has been
// down since, the key is lost.
func (c *Cluster) SessionKeyHSM() (hsm int, epoch uint32, err error) {
	h := c.pick(keyPlace{}, false, -1)
	if h < 0 {
		return 0, 0, ErrNoHSM
	}
	return h, epochOf(c.stateWord(h)), nil
}

// Epoch is HSM hsm's down counter: it moves each time the HSM goes down.
func (c *Cluster) Epoch(hsm int) uint32 {
	if hsm < 0 || hsm >= c.n {
		return 0
	}
	return epochOf(c.stateWord(hsm))
}

// Admit lets one call of class cl through r: it counts it, applies the
// HSM's state (down: fail over to another reachable HSM that has r.Key,
// updating r; a pinned route fails with ErrKeyLost; none left: ErrNoHSM;
// degraded: the added latency), the throttling budget (with the retry
// mode's back-off and retries) and the latency model, and returns nil or
// the error the call fails with. Length queries are not admitted (they
// never reach an HSM); ClassNone calls are not either.
//
// With no budget or latency for cl, no plan loaded and the HSM up, it is
// three atomic loads and one add on the mapped file.
func (c *Cluster) Admit(r *Route, cl Class) error {
	if cl == ClassNone || cl >= NumClasses {
		return nil
	}
	if r.HSM < 0 || r.HSM >= c.n {
		return ErrNoHSM
	}
	w := c.stateWord(r.HSM)
	if r.Pinned {
		if epochOf(w) != r.Epoch || stateOf(w) == Down {
			return ErrKeyLost
		}
	} else if stateOf(w) == Down {
		// The SDK fails over to another HSM of the cluster.
		p, timed := c.place(r.Key)
		h := c.pick(p, timed, r.HSM)
		if h < 0 {
			return ErrNoHSM
		}
		r.HSM = h
		w = c.stateWord(h)
	}
	n := atomic.AddUint64(c.st.u64(c.st.class(r.HSM, cl, clsCalls)), 1)
	if c.slow&(1<<cl) == 0 && stateOf(w) != Degraded && atomic.LoadUint64(c.st.u64(offPlanGen)) == 0 {
		return nil
	}
	return c.admitSlow(r, cl, w, n)
}

// KeyCreated records a new token key (its object ID) made on HSM origin
// now, for routing and the key availability check of every process.
func (c *Cluster) KeyCreated(id int64, origin int) {
	k := atomic.AddUint64(c.st.u64(offRingHead), 1) // this key is the k-th
	seq := c.st.u64(c.st.ring(k-1, ringSeq))
	atomic.StoreUint64(seq, 0)
	atomic.StoreInt64(c.st.i64(c.st.ring(k-1, ringID)), id)
	atomic.StoreInt64(c.st.i64(c.st.ring(k-1, ringCreated)), c.now())
	atomic.StoreInt64(c.st.i64(c.st.ring(k-1, ringOrigin)), int64(origin))
	atomic.StoreUint64(seq, k)
	// The creating process has checked the quorum (CanCreateKey): it
	// learnt of the key by making it. Other processes verify at first use.
	// Nothing to record here.
}

// availabilityMsg is the SDK's log line (UG:troubleshoot-key-availability-check,
// UG:manage-key-sync).
const availabilityMsg = "does not meet the availability requirements - The key must be available on at least 2 HSMs before being used."

// CanCreateKey is nil when a new token key could meet the key
// availability quorum (the check is off, or 2 HSMs are reachable), else
// ErrKeyAvailability wrapping CKR_FUNCTION_FAILED with the SDK's message.
//
// The SDK docs say "any attempt to create or use a token key will fail";
// we refuse before anything is stored rather than leak a half-made key.
func (c *Cluster) CanCreateKey() error {
	if !c.cfg.KeyAvailabilityCheck || c.reachableCount() >= 2 {
		return nil
	}
	msg := "New key " + availabilityMsg
	c.logLimited(logAvailability, msg)
	return fmt.Errorf("%w: %s: %w", ErrKeyAvailability, msg, ck.CKR_FUNCTION_FAILED)
}

// KeyAvailable checks the key availability quorum for a token key as this
// process sees it: once a key has been found on 2 reachable HSMs the
// process keeps using it (the SDK checks when it learns of a key:
// UG:troubleshoot-key-availability-check names new keys, key enumeration
// and a new SDK instance); before that, it is ErrKeyAvailability wrapping
// CKR_FUNCTION_FAILED with the SDK's message "Key <handle> does not meet
// the availability requirements - The key must be available on at least 2
// HSMs before being used." (<handle>: the object ID given).
func (c *Cluster) KeyAvailable(id int64) error {
	if !c.cfg.KeyAvailabilityCheck {
		return nil
	}
	if _, ok := c.verified.Load(id); ok {
		return nil
	}
	p, timed := c.place(id)
	k := 0
	for h := range c.n {
		if stateOf(c.stateWord(h)) != Down && c.has(p, timed, h) {
			k++
		}
	}
	if k >= 2 {
		c.verified.Store(id, struct{}{})
		return nil
	}
	msg := fmt.Sprintf("Key %d %s", id, availabilityMsg)
	c.logLimited(logAvailability, msg)
	return fmt.Errorf("%w: %s: %w", ErrKeyAvailability, msg, ck.CKR_FUNCTION_FAILED)
}

// Forget drops what this process verified (C_Finalize, a new SDK instance).
func (c *Cluster) Forget() { c.verified.Clear() }

// SetState sets HSM hsm's state (a CLI command; step -1).
func (c *Cluster) SetState(hsm int, s State) error {
	return c.setState(hsm, s, -1)
}

func (c *Cluster) setState(hsm int, s State, step int) error {
	if hsm < 0 || hsm >= c.n {
		return fmt.Errorf("cluster: hsm %d: the cluster has HSMs 0 to %d: %w", hsm, c.n-1, ck.CKR_ARGUMENTS_BAD)
	}
	if s > Degraded {
		return fmt.Errorf("cluster: state %d: %w", s, ck.CKR_ARGUMENTS_BAD)
	}
	p := c.st.u64(c.st.hsm(hsm, hsmState))
	for {
		old := atomic.LoadUint64(p)
		if stateOf(old) == s {
			return nil
		}
		ep := epochOf(old)
		if s == Down {
			ep++ // its session keys are gone, even once it is back
		}
		if !atomic.CompareAndSwapUint64(p, old, word(s, ep)) {
			continue
		}
		now := c.now()
		atomic.StoreInt64(c.st.i64(c.st.hsm(hsm, hsmSince)), now)
		if stateOf(old) == Down {
			// Back: it gets the cluster's keys again replication_delay
			// from now.
			atomic.StoreInt64(c.st.i64(c.st.hsm(hsm, hsmUpSince)), now)
		}
		detail := fmt.Sprintf("hsm %d: %s -> %s", hsm, stateOf(old), s)
		if step >= 0 {
			detail += fmt.Sprintf(" (fault plan step %d)", step)
		}
		c.log("cluster: "+detail, "hsm", hsm)
		c.notify(Event{HSM: hsm, Kind: StateChanged, State: s, Step: step, Detail: detail})
		return nil
	}
}

// Reset brings every HSM up, zeroes counters and budgets, forgets the
// keys created recently (they are everywhere) and clears the plan. Epochs
// stay: a session key made before an HSM went down stays lost.
func (c *Cluster) Reset() error {
	if err := c.st.lock(syscall.LOCK_EX); err != nil {
		return fmt.Errorf("cluster: lock state: %w", err)
	}
	now := c.now()
	var events []Event
	for h := range c.n {
		p := c.st.u64(c.st.hsm(h, hsmState))
		for {
			old := atomic.LoadUint64(p)
			if atomic.CompareAndSwapUint64(p, old, word(Up, epochOf(old))) {
				if stateOf(old) != Up {
					events = append(events, Event{HSM: h, Kind: StateChanged, State: Up, Step: -1,
						Detail: fmt.Sprintf("hsm %d: %s -> up (cluster reset)", h, stateOf(old))})
				}
				break
			}
		}
		atomic.StoreInt64(c.st.i64(c.st.hsm(h, hsmSince)), now)
		atomic.StoreInt64(c.st.i64(c.st.hsm(h, hsmUpSince)), 0)
		for cl := range NumClasses {
			for off := 0; off < line; off += 8 {
				atomic.StoreUint64(c.st.u64(c.st.class(h, cl, off)), 0)
			}
		}
	}
	for k := range uint64(ringSize) {
		atomic.StoreUint64(c.st.u64(c.st.ring(k, ringSeq)), 0)
	}
	atomic.StoreUint64(c.st.u64(offRingHead), 0)
	atomic.StoreUint64(c.st.u64(offFilePlan), 0) // the next Open loads fault_plan again
	hadPlan := c.clearPlanLocked()
	c.st.unlock()
	if hadPlan {
		events = append(events, Event{HSM: -1, Kind: PlanCleared, Step: -1, Detail: "fault plan cleared (cluster reset)"})
	}
	for _, e := range events {
		c.notify(e)
	}
	return nil
}
