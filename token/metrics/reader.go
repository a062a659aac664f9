package metrics

import (
	"math"
	"sync/atomic"
	"time"

	"gohsm/token/cluster"
)

// Reader reads a slot's metrics file: the console's side.
type Reader struct {
	m *mapping
}

// OpenReader maps dir/metrics, creating it when no library process has
// yet (with the directory's mode without execute bits, as the token's
// files), so that a console can start watching before any process runs.
func OpenReader(dir string) (*Reader, error) {
	m, err := openFile(dir, 0, nil)
	if err != nil {
		return nil, err
	}
	return &Reader{m: m}, nil
}

// Watch sets the lease until which processes of the slot in mode auto
// publish: a console calls it every second with now + 5 s.
func (r *Reader) Watch(until time.Time) {
	atomic.StoreInt64(r.m.i64(offWatch), until.UnixMilli())
}

// Watching reports whether a console's lease runs now.
func (r *Reader) Watching() bool {
	return atomic.LoadInt64(r.m.i64(offWatch)) > time.Now().UnixMilli()
}

// Totals are one class's counters summed over the processes of the slot.
type Totals struct {
	Calls, Failed, Throttled uint64
	SumNS                    uint64
	Buckets                  [NumBuckets]uint64
}

// Sample is the totals of every class at a moment.
type Sample struct {
	Time    time.Time
	Classes [cluster.NumClasses]Totals
}

// Sample sums every region ever claimed.
func (r *Reader) Sample() Sample {
	s := Sample{Time: time.Now()}
	m := r.m
	if atomic.LoadUint64(m.u64(offMagic)) != magic {
		return s // being rebuilt: nothing yet
	}
	for reg := range Regions {
		if atomic.LoadUint64(m.u64(regionOff(reg)+ownClaims)) == 0 {
			continue
		}
		for c := range cluster.NumClasses {
			o := classOff(reg, c)
			t := &s.Classes[c]
			calls := atomic.LoadUint64(m.u64(o + clsCalls))
			if calls == 0 {
				continue
			}
			t.Calls += calls
			t.Failed += atomic.LoadUint64(m.u64(o + clsFailed))
			t.Throttled += atomic.LoadUint64(m.u64(o + clsThrottle))
			t.SumNS += atomic.LoadUint64(m.u64(o + clsSum))
			for b := range NumBuckets {
				t.Buckets[b] += atomic.LoadUint64(m.u64(o + clsBuckets + 8*b))
			}
		}
	}
	return s
}

// Owners are the pids that hold a region now (live or not yet found
// dead), in region order: which processes publish.
func (r *Reader) Owners() []int {
	var out []int
	for reg := range Regions {
		if atomic.LoadUint64(r.m.u64(regionOff(reg)+ownClaims)) == 0 {
			continue
		}
		if pid := atomic.LoadUint64(r.m.u64(regionOff(reg) + ownPID)); pid != 0 {
			out = append(out, int(pid))
		}
	}
	return out
}

// Close ends the reader; the mapping stays with the process (a later
// OpenReader of the same file reuses it).
func (r *Reader) Close() error { return nil }

// ClassRate is one class's activity over an interval.
type ClassRate struct {
	Ops       float64 `json:"ops"`
	Failed    float64 `json:"failed"`
	Throttled float64 `json:"throttled"`
	P50US     float64 `json:"p50_us"`
	P95US     float64 `json:"p95_us"`
	P99US     float64 `json:"p99_us"`
}

// Rates is the activity between two samples, by class name; a class with
// no call in the interval is absent.
type Rates struct {
	Seconds float64
	Classes map[string]ClassRate
}

// ClassNames are the classes a sample may hold, in the cluster's order.
func ClassNames() []string {
	out := make([]string, 0, cluster.NumClasses-1)
	for c := cluster.ClassNone + 1; c < cluster.NumClasses; c++ {
		out = append(out, c.String())
	}
	return out
}

// Rates is the activity from prev to cur: per second, and latency
// percentiles (µs, a bucket's midpoint: within 6.25%) of the calls that
// ended in between. A counter lower in cur than in prev means the file
// was rebuilt in between: cur's counts are then all new.
func (Reader) Rates(prev, cur Sample) Rates { return RatesOf(prev, cur) }

// RatesOf is Reader.Rates.
func RatesOf(prev, cur Sample) Rates {
	out := Rates{Seconds: cur.Time.Sub(prev.Time).Seconds(), Classes: map[string]ClassRate{}}
	if out.Seconds <= 0 {
		return out
	}
	for c := cluster.ClassNone + 1; c < cluster.NumClasses; c++ {
		p, q := &prev.Classes[c], &cur.Classes[c]
		if q.Calls < p.Calls {
			p = &Totals{}
		}
		calls := q.Calls - p.Calls
		if calls == 0 {
			continue
		}
		var d [NumBuckets]uint64
		for b := range d {
			if q.Buckets[b] >= p.Buckets[b] {
				d[b] = q.Buckets[b] - p.Buckets[b]
			}
		}
		out.Classes[c.String()] = ClassRate{
			Ops:       float64(calls) / out.Seconds,
			Failed:    float64(sub(q.Failed, p.Failed)) / out.Seconds,
			Throttled: float64(sub(q.Throttled, p.Throttled)) / out.Seconds,
			P50US:     percentile(&d, 0.50),
			P95US:     percentile(&d, 0.95),
			P99US:     percentile(&d, 0.99),
		}
	}
	return out
}

func sub(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
}

// percentile is the q-quantile (µs) of a histogram: the midpoint of the
// bucket holding the ceil(q*n)-th smallest value.
func percentile(h *[NumBuckets]uint64, q float64) float64 {
	var n uint64
	for _, c := range h {
		n += c
	}
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h {
		seen += c
		if seen >= rank {
			lo, hi := bucketBounds(i)
			return float64(lo+hi) / 2 / 1000
		}
	}
	return 0
}
