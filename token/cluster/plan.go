package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"gohsm/internal/ck"
	"gohsm/internal/strictjson"
)

// Plan limits: the plan lives in the state file (planCap bytes of JSON,
// maxSteps cursors).
const (
	planCap  = 16 << 10
	maxSteps = 64
	maxAt    = 24 * time.Hour
)

// MarshalJSON writes d as "2s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(strconv.Quote(time.Duration(d).String())), nil
}

// UnmarshalJSON reads a Go duration string ("2s", "150ms").
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration string such as \"2s\", got %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration", s)
	}
	*d = Duration(v)
	return nil
}

// stepKind is what a step does.
type stepKind uint8

const (
	stepState stepKind = iota + 1
	stepFail
	stepLatency
	stepStore
)

// ReadPlanFile reads a plan file for ParsePlan: at most one byte more
// than a plan may hold, so that a larger file, or one that never ends
// (/dev/zero, a device), is refused by ParsePlan instead of read whole
// into memory.
func ReadPlanFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, planCap+1))
}

// ParsePlan reads and checks a plan (JSON, unknown fields refused). HSM
// numbers are checked against the cluster when the plan is loaded.
func ParsePlan(b []byte) (*Plan, error) {
	if len(b) > planCap {
		return nil, fmt.Errorf("cluster: plan: more than %d bytes, the most is %d", planCap, planCap)
	}
	var p Plan
	// Names are matched exactly: encoding/json alone would take "Steps"
	// for "steps" (internal/strictjson).
	if err := strictjson.Decode(b, &p); errors.Is(err, strictjson.ErrTrailing) {
		return nil, errors.New("cluster: plan: data after the plan's JSON object")
	} else if err != nil {
		return nil, fmt.Errorf("cluster: plan: %w", err)
	}
	if len(p.Steps) > maxSteps {
		return nil, fmt.Errorf("cluster: plan: %d steps, the most is %d", len(p.Steps), maxSteps)
	}
	for i := range p.Steps {
		if _, err := p.Steps[i].check(); err != nil {
			return nil, fmt.Errorf("cluster: plan: step %d: %w", i, err)
		}
	}
	return &p, nil
}

// checkHSMs refuses a plan naming an HSM the cluster does not have.
func (p *Plan) checkHSMs(n int) error {
	for i, st := range p.Steps {
		if st.HSM != nil && *st.HSM >= n {
			return fmt.Errorf("cluster: plan: step %d: hsm %d: the cluster has HSMs 0 to %d", i, *st.HSM, n-1)
		}
	}
	return nil
}

// check says what kind of step st is, or what is wrong with it.
func (st *Step) check() (stepKind, error) {
	var kinds []stepKind
	if st.HSM != nil || st.State != "" {
		kinds = append(kinds, stepState)
	}
	if st.Fail != "" || st.Count != 0 || st.Probability != 0 || st.RV != "" {
		kinds = append(kinds, stepFail)
	}
	if st.Latency != "" || st.Class != "" {
		kinds = append(kinds, stepLatency)
	}
	if st.Store != "" {
		kinds = append(kinds, stepStore)
	}
	if len(kinds) != 1 {
		return 0, errors.New("want exactly one of hsm+state, fail, latency, store")
	}
	if st.At < 0 || time.Duration(st.At) > maxAt {
		return 0, errors.New("at: want a duration from 0s to 24h")
	}
	if st.For < 0 || time.Duration(st.For) > maxAt {
		return 0, errors.New("for: want a duration from 0s to 24h")
	}
	switch kinds[0] {
	case stepState:
		if st.HSM == nil || *st.HSM < 0 || *st.HSM >= MaxHSMs {
			return 0, fmt.Errorf("hsm: want an HSM number from 0 to %d", MaxHSMs-1)
		}
		if _, ok := ParseState(st.State); !ok {
			return 0, fmt.Errorf("state %q: want up, down or degraded", st.State)
		}
	case stepFail:
		if !knownFunc(st.Fail) {
			return 0, fmt.Errorf("fail %q: not a function a plan can fail", st.Fail)
		}
		rv, ok := ck.RVByName(st.RV)
		if !ok || rv == ck.CKR_OK {
			return 0, fmt.Errorf("rv %q: want a CKR_ name other than CKR_OK", st.RV)
		}
		if st.Count < 0 {
			return 0, errors.New("count: want 0 (every call) or more")
		}
		if st.Probability < 0 || st.Probability > 1 {
			return 0, errors.New("probability: want a number in (0, 1]")
		}
		if st.Count > 0 && st.Probability > 0 {
			return 0, errors.New("want count or probability, not both")
		}
	case stepLatency:
		if _, err := ParseDist(st.Latency); err != nil {
			return 0, err
		}
		if _, ok := ParseClass(st.Class); !ok && st.Class != "all" && st.Class != "" {
			return 0, fmt.Errorf("class %q: want all or one of %s", st.Class, classList())
		}
	case stepStore:
		if st.Store != "down" {
			return 0, fmt.Errorf("store %q: want down", st.Store)
		}
		if st.For <= 0 {
			return 0, errors.New("store down: want a for longer than 0s")
		}
	}
	return kinds[0], nil
}

func knownFunc(name string) bool {
	_, ok := funcByName(name)
	return ok
}

func funcByName(name string) (Func, bool) {
	for i, n := range FuncNames {
		if n == name && i != int(FuncNone) {
			return Func(i), true
		}
	}
	return 0, false
}

// String is the step in words, for status and logs.
func (st *Step) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "at %s", time.Duration(st.At))
	if st.For > 0 {
		fmt.Fprintf(&b, " for %s", time.Duration(st.For))
	}
	kind, _ := st.check()
	switch kind {
	case stepState:
		fmt.Fprintf(&b, ": hsm %d %s", *st.HSM, st.State)
	case stepFail:
		fmt.Fprintf(&b, ": fail %s with %s", st.Fail, st.RV)
		switch {
		case st.Count > 0:
			fmt.Fprintf(&b, ", %d calls", st.Count)
		case st.Probability > 0:
			fmt.Fprintf(&b, ", probability %g", st.Probability)
		default:
			b.WriteString(", every call")
		}
	case stepLatency:
		class := st.Class
		if class == "" {
			class = "all"
		}
		fmt.Fprintf(&b, ": latency %s on %s", st.Latency, class)
	case stepStore:
		b.WriteString(": store down")
	}
	return b.String()
}

// compiled is a parsed plan ready to run: steps in the order they start,
// with what the hot path needs precomputed.
type compiled struct {
	gen    uint64
	plan   *Plan
	loaded int64 // ns since the epoch
	seed   uint64
	order  []int // step indexes by At
	steps  []cstep
}

type cstep struct {
	kind     stepKind
	start    int64 // ns since the epoch
	end      int64 // 0: lasts
	hsm      int
	state    State
	fn       Func
	rv       ck.RV
	count    int64
	prob     float64
	dist     *Dist
	allClass bool
	class    Class
}

func compile(p *Plan, gen uint64, loaded int64, seed uint64) *compiled {
	cp := &compiled{gen: gen, plan: p, loaded: loaded, seed: seed}
	if p.Seed != 0 {
		cp.seed = p.Seed
	}
	for i := range p.Steps {
		st := &p.Steps[i]
		kind, _ := st.check()
		cs := cstep{kind: kind, start: loaded + int64(st.At), hsm: -1}
		if st.For > 0 {
			cs.end = cs.start + int64(st.For)
		}
		switch kind {
		case stepState:
			cs.hsm = *st.HSM
			cs.state, _ = ParseState(st.State)
		case stepFail:
			cs.fn, _ = funcByName(st.Fail)
			cs.rv, _ = ck.RVByName(st.RV)
			cs.count = st.Count
			cs.prob = st.Probability
		case stepLatency:
			cs.dist, _ = ParseDist(st.Latency)
			cs.class, _ = ParseClass(st.Class)
			cs.allClass = st.Class == "all" || st.Class == ""
		}
		cp.steps = append(cp.steps, cs)
		cp.order = append(cp.order, i)
	}
	sort.SliceStable(cp.order, func(a, b int) bool { return p.Steps[cp.order[a]].At < p.Steps[cp.order[b]].At })
	return cp
}
