package metrics

import (
	"fmt"
	"math"
	"math/bits"
	"sync/atomic"
	"time"

	"gohsm/token/cluster"
	"gohsm/token/store"
)

// Mode is the configuration's `metrics` key.
type Mode uint8

const (
	// Auto publishes while a console watches (the watch-until lease).
	Auto Mode = iota
	// On always publishes.
	On
	// Off never publishes: the slot opens no metrics file.
	Off
)

var modeNames = [...]string{Auto: "auto", On: "on", Off: "off"}

func (m Mode) String() string {
	if int(m) < len(modeNames) {
		return modeNames[m]
	}
	return "mode?"
}

// ParseMode is the mode named s (auto, on, off).
func ParseMode(s string) (Mode, error) {
	for i, n := range modeNames {
		if n == s {
			return Mode(i), nil
		}
	}
	return 0, fmt.Errorf("metrics: %q is not auto, on or off", s)
}

// The words a Process's lease points to when it does not follow a
// console's: always on, and never (no region to publish to).
var (
	forever = int64(math.MaxInt64)
	never   int64
)

// Process is a library process's publisher for one slot. A nil *Process
// publishes nothing (metrics off).
type Process struct {
	// lease is the word Begin loads: the file's watch-until (mode auto),
	// forever (on) or never (no region). Set once at Open.
	lease  *int64
	m      *mapping
	region int
}

// Open maps dir/metrics for this process (creating it with perm, as the
// token's other files) and claims a region: its own from an earlier Open,
// else a free one or one whose owner is dead (pid + start time, as the
// login registry judges). A full table is not an error: the Process then
// publishes nothing, said once in the log. log may be nil.
func Open(dir string, perm uint32, mode Mode, log func(string, ...any)) (*Process, error) {
	if mode == Off {
		return nil, nil
	}
	m, err := openFile(dir, perm, log)
	if err != nil {
		return nil, err
	}
	r, err := m.claim(log)
	if err != nil {
		return nil, err
	}
	p := &Process{m: m, region: r, lease: &never}
	switch {
	case r < 0:
	case mode == On:
		p.lease = &forever
	default:
		p.lease = m.i64(offWatch)
	}
	return p, nil
}

func thisProcess() (identity, store.Login) {
	me := store.ThisProcess()
	return identity{pid: uint64(me.PID), started: me.Started, boot: hashString(me.Boot), ns: hashString(me.PIDNS)}, me
}

// alive reports whether the owner of region r still runs (the flock held).
func (m *mapping) alive(r int, me store.Login, my identity) bool {
	o := regionOff(r)
	l := store.Login{
		PID:     int(atomic.LoadUint64(m.u64(o + ownPID))),
		Started: atomic.LoadUint64(m.u64(o + ownStarted)),
		Boot:    "another boot",
		PIDNS:   "another pid namespace",
	}
	if atomic.LoadUint64(m.u64(o+ownBoot)) == my.boot {
		l.Boot = me.Boot
	}
	if atomic.LoadUint64(m.u64(o+ownNS)) == my.ns {
		l.PIDNS = me.PIDNS
	}
	return store.Alive(l)
}

func (m *mapping) owns(r int, my identity) bool {
	o := regionOff(r)
	return atomic.LoadUint64(m.u64(o+ownPID)) == my.pid && atomic.LoadUint64(m.u64(o+ownStarted)) == my.started &&
		atomic.LoadUint64(m.u64(o+ownBoot)) == my.boot && atomic.LoadUint64(m.u64(o+ownNS)) == my.ns
}

// claim is this process's region of the file (-1: none free), claimed
// under the file's flock so that two processes never take the same one.
func (m *mapping) claim(log func(string, ...any)) (int, error) {
	my, me := thisProcess()
	if err := m.lock(); err != nil {
		return -1, fmt.Errorf("metrics: lock: %w", err)
	}
	defer m.unlock()
	if m.region >= 0 && m.owns(m.region, my) {
		return m.region, nil
	}
	for r := range Regions {
		o := regionOff(r)
		if atomic.LoadUint64(m.u64(o+ownPID)) != 0 && m.alive(r, me, my) {
			continue
		}
		// Free, or its owner is dead: its counters stay and this
		// process adds to them.
		atomic.StoreUint64(m.u64(o+ownStarted), my.started)
		atomic.StoreUint64(m.u64(o+ownBoot), my.boot)
		atomic.StoreUint64(m.u64(o+ownNS), my.ns)
		atomic.StoreUint64(m.u64(o+ownPID), my.pid)
		atomic.AddUint64(m.u64(o+ownClaims), 1)
		m.region = r
		return r, nil
	}
	if !m.logged && log != nil {
		m.logged = true
		log("metrics: every region of the metrics file is taken by a live process: this process publishes no metrics", "path", m.path, "regions", Regions)
	}
	return -1, nil
}

// Region is the index of the region the process publishes to (-1: none).
func (p *Process) Region() int {
	if p == nil {
		return -1
	}
	return p.region
}

// begin is Begin when a lease is set (0: off): on until it, and a lease
// found expired is cleared so that the next calls pay one load again (a
// console renewing it at the same moment wins: the swap fails).
func (p *Process) begin() int64 {
	now := mono()
	l := atomic.LoadInt64(p.lease)
	if l == 0 {
		return 0
	}
	if wallMS(now) >= l {
		atomic.CompareAndSwapInt64(p.lease, l, 0)
		return 0
	}
	return now
}

// The clock of a call's latency is the monotonic one, read once at each
// end: time.Since of a time with a monotonic reading is one clock read,
// where time.Now is two (wall and monotonic), each about 60 ns on the
// 2-CPU VM of docs/bench.md (kvm-clock). The lease's wall time is derived
// from it (the process's start in both clocks): a wall clock stepped
// since makes a lease end early or late by the step, no more.
var (
	start   = time.Now()
	startMS = start.UnixMilli()
)

// mono is the monotonic time in ns since the package's start, plus 1 (so
// never 0, Begin's "off").
func mono() int64 { return int64(time.Since(start)) + 1 }

func wallMS(mono int64) int64 { return startMS + mono/int64(time.Millisecond) }

// Record counts one call of class c started at t0 (Begin): failed when it
// returned an error, throttled when the cluster's throttling refused it,
// its latency in the class's histogram.
func (p *Process) Record(c cluster.Class, t0 int64, err error, throttled bool) {
	if c >= cluster.NumClasses {
		return
	}
	d := mono() - t0
	o := classOff(p.region, c)
	m := p.m
	atomic.AddUint64(m.u64(o+clsCalls), 1)
	atomic.AddUint64(m.u64(o+clsSum), uint64(d))
	atomic.AddUint64(m.u64(o+clsBuckets+8*bucketOf(uint64(d))), 1)
	if err != nil {
		atomic.AddUint64(m.u64(o+clsFailed), 1)
	}
	if throttled {
		atomic.AddUint64(m.u64(o+clsThrottle), 1)
	}
}

// The latency histogram is log-linear: 8 linear buckets per power of two
// from 1,024 ns (under it: 8 buckets of 128 ns), so a bucket is at most
// 1/8 of its lower bound wide (its midpoint is within 6.25% of any value
// in it), up to 2^34 ns (17 s); longer calls share the last bucket.
const (
	subBits  = 3
	subCount = 1 << subBits
	minShift = 10 // 1,024 ns
)

// bucketOf is the bucket of a latency of ns nanoseconds.
func bucketOf(ns uint64) int {
	if ns < 1<<minShift {
		return int(ns >> (minShift - subBits))
	}
	e := bits.Len64(ns) - 1
	i := (e-minShift+1)*subCount + int(ns>>(e-subBits)&(subCount-1))
	return min(i, NumBuckets-1)
}

// bucketBounds is bucket i's range [lo, hi) in ns.
func bucketBounds(i int) (lo, hi uint64) {
	if i < subCount {
		w := uint64(1) << (minShift - subBits)
		return uint64(i) * w, uint64(i+1) * w
	}
	e := i/subCount - 1 + minShift
	w := uint64(1) << (e - subBits)
	lo = uint64(subCount+i%subCount) * w
	return lo, lo + w
}
