package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
)

func mustPlan(t *testing.T, js string) *Plan {
	t.Helper()
	p, err := ParsePlan([]byte(js))
	require.NoError(t, err)
	return p
}

func eventsOf(rec *recorder, k EventKind) []Event {
	var out []Event
	for _, e := range rec.Events() {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}

// HSM state steps fire lazily at their time, once, with the step in the
// event; a step with a for brings the HSM back up.
func TestPlanStateSteps(t *testing.T) {
	c, rec := open(t, t.TempDir(), testConfig(3))
	clk := newClock().install(c)
	require.NoError(t, c.LoadPlan(mustPlan(t, `{"steps":[
		{"at":"4s","hsm":2,"state":"degraded"},
		{"at":"2s","for":"1s","hsm":1,"state":"down"}]}`)))
	require.Len(t, eventsOf(rec, PlanLoaded), 1)
	assert.Equal(t, -1, eventsOf(rec, PlanLoaded)[0].HSM)

	s := c.Status()
	require.NotNil(t, s.Plan)
	assert.Equal(t, "pending", s.Plan.Steps[1].State)
	assert.Equal(t, "at 2s for 1s: hsm 1 down", s.Plan.Steps[1].Step)

	clk.add(2 * time.Second)
	r, err := c.Route(0)
	require.NoError(t, err)
	require.NoError(t, c.Admit(&r, ClassRSASign)) // fires step 1
	assert.Equal(t, []int{0, 2}, c.Reachable())
	assert.Equal(t, "active", c.Status().Plan.Steps[1].State)
	ev := eventsOf(rec, StateChanged)
	require.Len(t, ev, 1)
	assert.Equal(t, Event{HSM: 1, Kind: StateChanged, State: Down, Step: 1, Detail: "hsm 1: up -> down (fault plan step 1)"}, ev[0])

	// Nobody calls until 5 s: both the end of step 1 and step 0 fire, in
	// time order, on the next call.
	clk.add(3 * time.Second)
	assert.NoError(t, c.StoreDown())
	s = c.Status()
	assert.Equal(t, "up", s.HSMs[1].State)
	assert.Equal(t, "degraded", s.HSMs[2].State)
	assert.Equal(t, "done", s.Plan.Steps[0].State)
	assert.Equal(t, "done", s.Plan.Steps[1].State)
	assert.Len(t, eventsOf(rec, StateChanged), 3)
}

// Count steps fail the next n calls of their function, then stop.
func TestPlanCountStep(t *testing.T) {
	c, rec := open(t, t.TempDir(), testConfig(2))
	newClock().install(c)
	require.NoError(t, c.LoadPlan(mustPlan(t, `{"steps":[{"at":"0s","fail":"C_Sign","count":3,"rv":"CKR_DEVICE_ERROR"}]}`)))
	assert.NoError(t, c.Fault(FuncEncrypt))
	r := Route{HSM: 1}
	var failed int
	for range 10 {
		if err := c.FaultAt(FuncSign, &r, ClassECSign); err != nil {
			failed++
			var rv ck.RV
			require.True(t, errors.As(err, &rv))
			assert.Equal(t, ck.CKR_DEVICE_ERROR, rv)
		}
	}
	assert.Equal(t, 3, failed)
	ev := eventsOf(rec, FaultInjected)
	require.Len(t, ev, 3)
	assert.Equal(t, Event{HSM: 1, Kind: FaultInjected, Func: FuncSign, RV: ck.CKR_DEVICE_ERROR, Step: 0,
		Detail: "fault plan step 0: C_Sign failed with CKR_DEVICE_ERROR"}, ev[0])
	s := c.Status()
	assert.Equal(t, "done", s.Plan.Steps[0].State)
	assert.Equal(t, uint64(3), classStatus(s, 1, ClassECSign).Failed)
	// Without a route: HSM -1.
	require.NoError(t, c.LoadPlan(mustPlan(t, `{"steps":[{"at":"0s","fail":"C_Login","count":1,"rv":"CKR_PIN_INCORRECT"}]}`)))
	assert.Equal(t, int64(1), c.Status().Plan.Steps[0].Remaining)
	assert.ErrorIs(t, c.Fault(FuncLogin), ck.CKR_PIN_INCORRECT)
	assert.Equal(t, -1, eventsOf(rec, FaultInjected)[3].HSM)
}

// A step with a for and no count fails every call in its window.
func TestPlanWindowStep(t *testing.T) {
	c, _ := open(t, t.TempDir(), testConfig(2))
	clk := newClock().install(c)
	require.NoError(t, c.LoadPlan(mustPlan(t, `{"steps":[{"at":"1s","for":"2s","fail":"C_Decrypt","rv":"CKR_GENERAL_ERROR"}]}`)))
	assert.NoError(t, c.Fault(FuncDecrypt))
	clk.add(time.Second)
	assert.ErrorIs(t, c.Fault(FuncDecrypt), ck.CKR_GENERAL_ERROR)
	assert.ErrorIs(t, c.Fault(FuncDecrypt), ck.CKR_GENERAL_ERROR)
	clk.add(2 * time.Second)
	assert.NoError(t, c.Fault(FuncDecrypt))
	assert.Equal(t, "done", c.Status().Plan.Steps[0].State)
}

// The same plan, seed and call sequence inject the same faults; another
// seed, others.
func TestPlanDeterministic(t *testing.T) {
	c, _ := open(t, t.TempDir(), testConfig(2))
	newClock().install(c)
	run := func(seed int) []int {
		require.NoError(t, c.LoadPlan(mustPlan(t, fmt.Sprintf(`{"seed":%d,"steps":[
			{"at":"0s","fail":"C_Encrypt","probability":0.3,"rv":"CKR_DEVICE_ERROR"},
			{"at":"0s","fail":"C_Sign","probability":0.5,"rv":"CKR_FUNCTION_FAILED"}]}`, seed))))
		var out []int
		for i := range 300 {
			fn := FuncEncrypt
			if i%3 == 0 {
				fn = FuncSign
			}
			if c.Fault(fn) != nil {
				out = append(out, i)
			}
		}
		return out
	}
	a := run(11)
	assert.Equal(t, a, run(11))
	assert.NotEqual(t, a, run(12))
	// Roughly the probabilities: 200*0.3 + 100*0.5 = 110.
	assert.InDelta(t, 110, len(a), 35)
}

// The store down step: ErrStoreDown in its window, events at both ends.
func TestPlanStoreStep(t *testing.T) {
	c, rec := open(t, t.TempDir(), testConfig(2))
	clk := newClock().install(c)
	require.NoError(t, c.LoadPlan(mustPlan(t, `{"steps":[{"at":"3s","for":"500ms","store":"down"}]}`)))
	assert.NoError(t, c.StoreDown())
	clk.add(3 * time.Second)
	err := c.StoreDown()
	assert.ErrorIs(t, err, ErrStoreDown)
	assert.ErrorIs(t, err, ck.CKR_DEVICE_ERROR)
	require.NotNil(t, c.Status().StoreDownUntil)
	clk.add(499 * time.Millisecond)
	assert.ErrorIs(t, c.StoreDown(), ErrStoreDown)
	clk.add(time.Millisecond)
	assert.NoError(t, c.StoreDown())
	assert.Nil(t, c.Status().StoreDownUntil)
	require.Len(t, eventsOf(rec, StoreDropped), 1)
	require.Len(t, eventsOf(rec, StoreRestored), 1)
	assert.Equal(t, -1, eventsOf(rec, StoreDropped)[0].HSM)
}

// Latency steps add their draw to the matching class while active.
func TestPlanLatencyStep(t *testing.T) {
	c, _ := open(t, t.TempDir(), testConfig(1))
	clk := newClock().install(c)
	require.NoError(t, c.LoadPlan(mustPlan(t, `{"steps":[{"at":"1s","for":"2s","latency":"5ms","class":"ec-sign"},
		{"at":"1s","latency":"1ms"}]}`)))
	r := Route{HSM: 0}
	took := func(cl Class) time.Duration {
		t0 := clk.now()
		require.NoError(t, c.Admit(&r, cl))
		return time.Duration(clk.now() - t0)
	}
	assert.Zero(t, took(ClassECSign))
	clk.add(time.Second)
	assert.Equal(t, 6*time.Millisecond, took(ClassECSign))
	assert.Equal(t, time.Millisecond, took(ClassRSASign))
	clk.add(2 * time.Second)
	assert.Equal(t, time.Millisecond, took(ClassECSign))
}

// A cleared plan's pending steps never fire; a reset clears it too.
func TestPlanClear(t *testing.T) {
	c, rec := open(t, t.TempDir(), testConfig(2))
	clk := newClock().install(c)
	require.NoError(t, c.LoadPlan(mustPlan(t, `{"steps":[{"at":"1s","hsm":0,"state":"down"}]}`)))
	require.NoError(t, c.ClearPlan())
	assert.Len(t, eventsOf(rec, PlanCleared), 1)
	require.NoError(t, c.ClearPlan())
	assert.Len(t, eventsOf(rec, PlanCleared), 1, "nothing to clear")
	clk.add(2 * time.Second)
	assert.Nil(t, c.Status().Plan)
	assert.Equal(t, []int{0, 1}, c.Reachable())

	require.NoError(t, c.LoadPlan(mustPlan(t, `{"steps":[{"at":"5s","hsm":0,"state":"down"}]}`)))
	require.NoError(t, c.Reset())
	assert.Len(t, eventsOf(rec, PlanCleared), 2)
	clk.add(6 * time.Second)
	assert.Equal(t, []int{0, 1}, c.Reachable())
	// A plan naming an HSM the cluster lacks is refused at load.
	assert.ErrorContains(t, c.LoadPlan(mustPlan(t, `{"steps":[{"at":"5s","hsm":2,"state":"down"}]}`)), "the cluster has HSMs 0 to 1")
	assert.ErrorContains(t, c.LoadPlan(&Plan{Steps: []Step{{}}}), "exactly one of")
}

// fault_plan is loaded at Open when the state holds none or a plan of
// other contents; a second process opening with the same file does not
// restart the plan's clock.
func TestPlanFromConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(t.TempDir(), "plan.json")
	require.NoError(t, os.WriteFile(file, []byte(`{"seed":3,"steps":[{"at":"1h","hsm":0,"state":"down"}]}`), 0o600))
	cfg := testConfig(2)
	require.NoError(t, cfg.Set("fault_plan", file, ""))
	c, rec := open(t, dir, cfg)
	s := c.Status()
	require.NotNil(t, s.Plan)
	assert.Equal(t, uint64(3), s.Plan.Seed)
	loaded := s.Plan.Loaded
	assert.Len(t, eventsOf(rec, PlanLoaded), 1)

	time.Sleep(2 * time.Millisecond)
	c2, rec2 := open(t, dir, cfg)
	assert.Equal(t, loaded, c2.Status().Plan.Loaded, "same contents: not reloaded")
	assert.Empty(t, eventsOf(rec2, PlanLoaded))

	// Whitespace does not make other contents; a changed step does.
	require.NoError(t, os.WriteFile(file, []byte(`{ "seed": 3, "steps": [ {"at":"1h","hsm":0,"state":"down"} ] }`), 0o600))
	c3, rec3 := open(t, dir, cfg)
	assert.Empty(t, eventsOf(rec3, PlanLoaded))
	require.NoError(t, os.WriteFile(file, []byte(`{"seed":3,"steps":[{"at":"2h","hsm":0,"state":"down"}]}`), 0o600))
	c4, rec4 := open(t, dir, cfg)
	assert.Len(t, eventsOf(rec4, PlanLoaded), 1)
	assert.Equal(t, "at 2h0m0s: hsm 0 down", c3.Status().Plan.Steps[0].Step, "every process follows the new plan")
	_ = c4

	// A bad plan file fails Open with the file named.
	require.NoError(t, os.WriteFile(file, []byte(`{"steps":[{"at":"1s","hsm":5,"state":"down"}]}`), 0o600))
	_, err := Open(dir, cfg, 0o600)
	assert.ErrorContains(t, err, "fault_plan "+file)
	require.NoError(t, os.WriteFile(file, []byte(`{"steps":[`), 0o600))
	_, err = Open(dir, cfg, 0o600)
	assert.ErrorContains(t, err, "fault_plan "+file)
	cfg.FaultPlan = "/nonexistent/plan.json"
	_, err = Open(dir, cfg, 0o600)
	assert.ErrorContains(t, err, "fault_plan")
}

// A damaged stored plan is no plan (logged once), not a crash.
func TestPlanDamagedInFile(t *testing.T) {
	c, rec := open(t, t.TempDir(), testConfig(2))
	require.NoError(t, c.LoadPlan(mustPlan(t, `{"steps":[{"at":"0s","fail":"C_Sign","rv":"CKR_DEVICE_ERROR"}]}`)))
	copy(c.st.mem[offPlan:], "{garbage")
	c.plan.Store(nil) // as a process that has not read it yet
	assert.NoError(t, c.Fault(FuncSign))
	assert.NoError(t, c.Fault(FuncSign))
	assert.Nil(t, c.Status().Plan)
	assert.Equal(t, 1, strings.Count(rec.Logs(), "ignoring the stored fault plan"))
	// The length word out of range too.
	c.st.mem[offPlanLen+7] = 0xff
	c.plan.Store(nil)
	assert.NoError(t, c.Fault(FuncSign))
}

// With no plan, Fault and StoreDown read no clock and allocate nothing.
func TestFaultNoPlanCheap(t *testing.T) {
	c, _ := open(t, t.TempDir(), testConfig(2))
	c.now = func() int64 { panic("clock read") }
	allocs := testing.AllocsPerRun(1000, func() {
		if c.Fault(FuncSign) != nil || c.StoreDown() != nil {
			panic("fault")
		}
	})
	assert.Zero(t, allocs)
}

func init() {
	// faults: call Fault(C_Sign) $N times in each of 2 goroutines on the
	// state in $DIR from time $START; print how many failed and how many
	// state and store events this process reported.
	children["faults"] = func() error {
		var events, stores atomic.Int64
		cfg := testConfig(2)
		cfg.Notify = func(e Event) {
			switch e.Kind {
			case StateChanged:
				events.Add(1)
			case StoreDropped:
				stores.Add(1)
			}
		}
		c, err := Open(os.Getenv("DIR"), cfg, 0o600)
		if err != nil {
			return err
		}
		defer c.Close()
		n, _ := strconv.Atoi(os.Getenv("N"))
		start, _ := strconv.ParseInt(os.Getenv("START"), 10, 64)
		time.Sleep(time.Until(time.Unix(0, start))) // both processes at once
		var failed atomic.Int64
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range n {
					if c.Fault(FuncSign) != nil {
						failed.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		fmt.Printf("%d %d %d\n", failed.Load(), events.Load(), stores.Load())
		return nil
	}
}

// A count step fires exactly n times across processes, and every step
// once: the cursors are CAS'd in the shared file. (A race test: with the
// count's CAS replaced by a load and a store it failed 4 runs in 4 on the
// 2-core machine, over-injecting 800 to 2,200 faults.)
func TestPlanCountAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	c, rec := open(t, dir, testConfig(2))
	steps := `{"at":"0s","fail":"C_Sign","count":200000,"rv":"CKR_DEVICE_ERROR"},{"at":"100ms","hsm":1,"state":"down"}`
	for range 30 {
		steps += `,{"at":"0s","for":"1h","store":"down"}`
	}
	require.NoError(t, c.LoadPlan(mustPlan(t, `{"steps":[`+steps+`]}`)))
	start := time.Now().Add(300 * time.Millisecond).UnixNano()
	var outs []*strings.Builder
	var cmds []*exec.Cmd
	for range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"=faults", "DIR="+dir, "N=75000", fmt.Sprint("START=", start))
		var b strings.Builder
		cmd.Stdout, cmd.Stderr = &b, os.Stderr
		require.NoError(t, cmd.Start())
		outs, cmds = append(outs, &b), append(cmds, cmd)
	}
	var failed, events, stores int
	for i, cmd := range cmds {
		require.NoError(t, cmd.Wait())
		var f, e, s int
		_, err := fmt.Sscan(outs[i].String(), &f, &e, &s)
		require.NoError(t, err, outs[i].String())
		t.Logf("child %d: %d faults, %d state events, %d store events", i, f, e, s)
		failed += f
		events += e
		stores += s
	}
	events += len(eventsOf(rec, StateChanged))
	assert.Equal(t, 200000, failed)
	assert.Equal(t, 1, events)
	assert.Equal(t, 30, stores)
	assert.Equal(t, []int{0}, c.Reachable())
	st := c.Status().Plan.Steps[0]
	assert.Equal(t, "done", st.State)
	assert.Zero(t, st.Remaining)
}

// Status is the JSON `gohsm cluster status --json` prints.
func TestStatusJSON(t *testing.T) {
	c, _ := open(t, t.TempDir(), throttled(t, 2, "throttle", "hsm1"))
	clk := newClock().install(c)
	require.NoError(t, c.LoadPlan(mustPlan(t, `{"seed":5,"steps":[{"at":"0s","fail":"C_Sign","count":2,"rv":"CKR_DEVICE_ERROR"},
		{"at":"1s","for":"1s","store":"down"}]}`)))
	clk.add(time.Second)
	b, err := json.Marshal(c.Status())
	require.NoError(t, err)
	var back map[string]any
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Contains(t, string(b), `"key_availability_check":true`)
	assert.Contains(t, string(b), `"class":"ec-sign","budget_per_second":250`)
	assert.Contains(t, string(b), `"step":"at 0s: fail C_Sign with CKR_DEVICE_ERROR, 2 calls","state":"active","remaining":2`)
	assert.Contains(t, string(b), `"store_down_until"`)
	assert.Contains(t, string(b), `"seed":5`)
}

// The file's flock belongs to the open file, not to a goroutine: a second
// flock on the same descriptor converts the lock instead of waiting, and
// its unlock drops the first holder's. While one goroutine of a process
// holds the exclusive lock (loadPlan writing the plan's bytes, Reset), a
// goroutine re-reading the plan must wait.
func TestPlanReadWaitsForWriterInProcess(t *testing.T) {
	dir := t.TempDir()
	c, _ := open(t, dir, testConfig(2))
	other, _ := open(t, dir, testConfig(2))
	require.NoError(t, other.LoadPlan(mustPlan(t, `{"steps":[{"at":"0s","fail":"C_Sign","count":1,"rv":"CKR_DEVICE_ERROR"}]}`)))

	require.NoError(t, c.st.lock(syscall.LOCK_EX))
	done := make(chan error, 1)
	go func() { done <- c.Fault(FuncSign) }()
	select {
	case <-done:
		c.st.unlock()
		t.Fatal("the plan was read while another goroutine held the exclusive lock")
	case <-time.After(200 * time.Millisecond):
	}
	c.st.unlock()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, ck.CKR_DEVICE_ERROR, "the plan, read once the lock was released")
	case <-time.After(10 * time.Second):
		t.Fatal("the reader never got the lock")
	}
}

// A process holding the plan it read a moment ago while another process
// loads a new one (the window between currentPlan and the firing of due
// steps) must not fire its old steps on the new plan's cursors: the old
// step would act (an HSM down no plan asks for) and the new step with its
// index would count as fired and never run.
func TestStalePlanCannotFireNewSteps(t *testing.T) {
	dir := t.TempDir()
	c1, _ := open(t, dir, testConfig(2))
	clk := newClock().install(c1)
	c2, _ := open(t, dir, testConfig(2))
	clk.install(c2)
	require.NoError(t, c1.LoadPlan(mustPlan(t, `{"steps":[{"at":"1s","hsm":1,"state":"down"}]}`)))
	old := c1.currentPlan()
	require.NotNil(t, old)
	require.NoError(t, c2.LoadPlan(mustPlan(t, `{"steps":[{"at":"1s","fail":"C_Sign","count":1,"rv":"CKR_DEVICE_ERROR"}]}`)))
	clk.add(2 * time.Second)
	c1.fire(old, clk.now())
	assert.Equal(t, []int{0, 1}, c1.Reachable(), "the replaced plan's step did not fire")
	assert.ErrorIs(t, c2.Fault(FuncSign), ck.CKR_DEVICE_ERROR, "the new plan's step 0 runs")
	assert.NoError(t, c1.Fault(FuncSign), "once")
}
