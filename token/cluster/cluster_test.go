package cluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
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

// childEnv names the test a re-executed test binary runs as a child
// process (multi-process tests); the child's arguments come in env vars.
const childEnv = "GOHSM_CLUSTER_CHILD"

func TestMain(m *testing.M) {
	if name := os.Getenv(childEnv); name != "" {
		if err := runChild(name); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// children are the child processes' bodies, by name.
var children = map[string]func() error{}

func runChild(name string) error {
	f := children[name]
	if f == nil {
		return fmt.Errorf("no child %q", name)
	}
	return f()
}

// startChild runs the test binary as child name with env.
func startChild(t *testing.T, name string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append(env, childEnv+"="+name)...)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	return cmd
}

// clock is a settable clock for tests.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() int64                 { return c.ns.Load() }
func (c *clock) add(d time.Duration)        { c.ns.Add(int64(d)) }
func newClock() *clock                      { c := &clock{}; c.ns.Store(int64(1_000_000 * time.Second)); return c }
func (c *clock) sleep(d time.Duration)      { c.add(d) }
func (c *clock) install(cl *Cluster) *clock { cl.now = c.now; cl.sleep = c.sleep; return c }

// recorder collects events and log lines.
type recorder struct {
	mu     sync.Mutex
	events []Event
	logs   []string
}

func (r *recorder) notify(e Event) { r.mu.Lock(); r.events = append(r.events, e); r.mu.Unlock() }
func (r *recorder) log(msg string, args ...any) {
	r.mu.Lock()
	r.logs = append(r.logs, msg)
	r.mu.Unlock()
}
func (r *recorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}
func (r *recorder) Logs() string { r.mu.Lock(); defer r.mu.Unlock(); return strings.Join(r.logs, "\n") }

func testConfig(hsms int) Config {
	c := DefaultConfig("cloudhsm")
	c.HSMs = hsms
	return c
}

func open(t *testing.T, dir string, cfg Config) (*Cluster, *recorder) {
	t.Helper()
	rec := &recorder{}
	cfg.Notify, cfg.Log = rec.notify, rec.log
	c, err := Open(dir, cfg, 0o600)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c, rec
}

func TestOpenCreatesStateFile(t *testing.T) {
	dir := t.TempDir()
	c, _ := open(t, dir, testConfig(3))
	st, err := os.Stat(filepath.Join(dir, "cluster.state"))
	require.NoError(t, err)
	assert.Equal(t, int64(stateSize), st.Size())
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	assert.Equal(t, 3, c.HSMs())
	assert.Equal(t, []int{0, 1, 2}, c.Reachable())

	_, err = Open(dir, testConfig(0), 0o600)
	assert.ErrorContains(t, err, "hsms = 0: want 1 to 32")
}

// Round robin over the reachable HSMs; a down HSM is skipped.
func TestRouteRoundRobin(t *testing.T) {
	c, _ := open(t, t.TempDir(), testConfig(3))
	seen := map[int]int{}
	for range 30 {
		r, err := c.Route(0)
		require.NoError(t, err)
		seen[r.HSM]++
	}
	assert.Equal(t, map[int]int{0: 10, 1: 10, 2: 10}, seen)

	require.NoError(t, c.SetState(1, Down))
	assert.Equal(t, []int{0, 2}, c.Reachable())
	clear(seen)
	for range 30 {
		r, err := c.Route(0)
		require.NoError(t, err)
		seen[r.HSM]++
	}
	assert.Equal(t, map[int]int{0: 15, 2: 15}, seen)

	require.NoError(t, c.SetState(0, Down))
	require.NoError(t, c.SetState(2, Down))
	_, err := c.Route(0)
	assert.ErrorIs(t, err, ErrNoHSM)
	_, _, err = c.SessionKeyHSM()
	assert.ErrorIs(t, err, ErrNoHSM)
	assert.ErrorIs(t, c.Admit(&Route{HSM: 1}, ClassRSASign), ErrNoHSM)
}

// A call on a down HSM fails over to another reachable HSM that has the
// key; a pinned route (session key) is lost once its HSM went down, even
// after it is back.
func TestAdmitFailOverAndKeyLost(t *testing.T) {
	c, rec := open(t, t.TempDir(), testConfig(2))
	r, err := c.Route(0)
	require.NoError(t, err)
	first := r.HSM
	h, ep, err := c.SessionKeyHSM()
	require.NoError(t, err)
	pinned := Pin(h, ep)
	require.NoError(t, c.Admit(&pinned, ClassSymmetric))

	require.NoError(t, c.SetState(first, Down))
	require.NoError(t, c.Admit(&r, ClassRSASign))
	assert.Equal(t, 1-first, r.HSM, "failed over")
	assert.Equal(t, uint32(1), c.Epoch(first))

	// The session key's HSM: lost if it is the one that went down.
	err = c.Admit(&pinned, ClassSymmetric)
	if h == first {
		assert.ErrorIs(t, err, ErrKeyLost)
		var rv ck.RV
		require.True(t, errors.As(err, &rv))
		assert.Equal(t, ck.CKR_KEY_HANDLE_INVALID, rv)
	} else {
		assert.NoError(t, err)
	}
	// Down then up: the epoch moved, session keys made before stay lost.
	require.NoError(t, c.SetState(first, Up))
	p0 := Pin(first, 0)
	assert.ErrorIs(t, c.Admit(&p0, ClassSymmetric), ErrKeyLost)
	p1 := Pin(first, c.Epoch(first))
	assert.NoError(t, c.Admit(&p1, ClassSymmetric))

	ev := rec.Events()
	require.Len(t, ev, 2)
	assert.Equal(t, Event{HSM: first, Kind: StateChanged, State: Down, Step: -1, Detail: fmt.Sprintf("hsm %d: up -> down", first)}, ev[0])
	assert.Equal(t, Up, ev[1].State)
	// Setting the same state again is no event.
	require.NoError(t, c.SetState(first, Up))
	assert.Len(t, rec.Events(), 2)
	assert.ErrorIs(t, c.SetState(2, Down), ck.CKR_ARGUMENTS_BAD)
}

// A degraded HSM answers, after degraded_latency.
func TestAdmitDegraded(t *testing.T) {
	cfg := testConfig(1)
	cfg.DegradedLatency = 7 * time.Millisecond
	c, _ := open(t, t.TempDir(), cfg)
	clk := newClock().install(c)
	require.NoError(t, c.SetState(0, Degraded))
	r, err := c.Route(0)
	require.NoError(t, err)
	t0 := clk.now()
	require.NoError(t, c.Admit(&r, ClassECSign))
	assert.Equal(t, int64(7*time.Millisecond), clk.now()-t0)
	assert.Equal(t, "degraded", c.Status().HSMs[0].State)
}

// Decision 4: a new token key is on its origin at once, on the others
// replication_delay later; the quorum of 2 reachable HSMs is checked at
// first use and then kept; Forget makes the process check again.
func TestKeyAvailability(t *testing.T) {
	cfg := testConfig(3)
	cfg.ReplicationDelay = 2 * time.Second
	c, rec := open(t, t.TempDir(), cfg)
	clk := newClock().install(c)

	// Old keys (not in the ring) are everywhere.
	require.NoError(t, c.KeyAvailable(99))
	require.NoError(t, c.CanCreateKey())

	c.KeyCreated(5, 1)
	err := c.KeyAvailable(5)
	require.ErrorIs(t, err, ErrKeyAvailability)
	var rv ck.RV
	require.True(t, errors.As(err, &rv))
	assert.Equal(t, ck.CKR_FUNCTION_FAILED, rv)
	assert.Contains(t, err.Error(), "Key 5 does not meet the availability requirements - The key must be available on at least 2 HSMs before being used.")
	assert.Contains(t, rec.Logs(), "Key 5 does not meet the availability requirements")
	// Routing goes to the origin only.
	for range 6 {
		r, err := c.Route(5)
		require.NoError(t, err)
		assert.Equal(t, 1, r.HSM)
	}
	// The origin down: nowhere to go.
	require.NoError(t, c.SetState(1, Down))
	_, err = c.Route(5)
	assert.ErrorIs(t, err, ErrNoHSM)
	require.NoError(t, c.SetState(1, Up))
	// HSM 1 came back: the origin keeps the key; other keys reach it only
	// replication_delay after its return.
	r, err := c.Route(5)
	require.NoError(t, err)
	assert.Equal(t, 1, r.HSM)

	clk.add(2 * time.Second)
	require.NoError(t, c.KeyAvailable(5))
	seen := map[int]bool{}
	for range 6 {
		r, err := c.Route(5)
		require.NoError(t, err)
		seen[r.HSM] = true
	}
	assert.Equal(t, map[int]bool{0: true, 1: true, 2: true}, seen)

	// Verified: the process keeps using it when HSMs go away.
	require.NoError(t, c.SetState(0, Down))
	require.NoError(t, c.SetState(2, Down))
	assert.NoError(t, c.KeyAvailable(5))
	err = c.CanCreateKey()
	assert.ErrorIs(t, err, ErrKeyAvailability)
	assert.ErrorIs(t, err, ck.CKR_FUNCTION_FAILED)
	// A new SDK instance checks again.
	c.Forget()
	assert.ErrorIs(t, c.KeyAvailable(5), ErrKeyAvailability)

	// HSMs back: up-since moves, keys reach them after the delay.
	require.NoError(t, c.SetState(0, Up))
	require.NoError(t, c.SetState(2, Up))
	require.NoError(t, c.CanCreateKey())
	assert.ErrorIs(t, c.KeyAvailable(5), ErrKeyAvailability, "only on HSM 1 until 0 and 2 had the delay")
	clk.add(2 * time.Second)
	assert.NoError(t, c.KeyAvailable(5))
}

// With one HSM and the check on, every token key use and creation fails;
// with the check off, nothing does. Session keys are never checked (the
// token never asks).
func TestKeyAvailabilityOneHSM(t *testing.T) {
	c, _ := open(t, t.TempDir(), testConfig(1))
	assert.ErrorIs(t, c.KeyAvailable(1), ErrKeyAvailability)
	assert.ErrorIs(t, c.CanCreateKey(), ErrKeyAvailability)

	cfg := testConfig(1)
	require.NoError(t, cfg.Set("key_availability_check", "false", ""))
	c2, _ := open(t, t.TempDir(), cfg)
	assert.NoError(t, c2.KeyAvailable(1))
	assert.NoError(t, c2.CanCreateKey())
}

// With no replication delay, a new key is everywhere at once.
func TestKeyAvailabilityNoDelay(t *testing.T) {
	c, _ := open(t, t.TempDir(), testConfig(2))
	c.KeyCreated(8, 0)
	assert.NoError(t, c.KeyAvailable(8))
}

// The ring of recent keys: older keys than the ring holds are everywhere.
func TestKeyRingWraps(t *testing.T) {
	cfg := testConfig(2)
	cfg.ReplicationDelay = time.Second
	c, _ := open(t, t.TempDir(), cfg)
	newClock().install(c)
	for id := range int64(ringSize + 10) {
		c.KeyCreated(id+1, 0)
	}
	assert.ErrorIs(t, c.KeyAvailable(ringSize+10), ErrKeyAvailability)
	assert.NoError(t, c.KeyAvailable(3), "pushed out of the ring")
}

func TestStatus(t *testing.T) {
	c, _ := open(t, t.TempDir(), testConfig(2))
	clk := newClock().install(c)
	r := Route{HSM: 1}
	require.NoError(t, c.Admit(&r, ClassRSASign))
	require.NoError(t, c.Admit(&r, ClassRSASign))
	require.NoError(t, c.Admit(&r, ClassNone))
	require.NoError(t, c.SetState(0, Down))
	s := c.Status()
	assert.True(t, s.Check)
	assert.Equal(t, "standard", s.Retry)
	require.Len(t, s.HSMs, 2)
	assert.Equal(t, HSMStatus{Index: 0, ID: "hsm-0", State: "down", Since: time.Unix(0, clk.now()).UTC(), Epoch: 1, Classes: []ClassStatus{}}, s.HSMs[0])
	assert.Equal(t, []ClassStatus{{Class: "rsa-sign", Calls: 2}}, s.HSMs[1].Classes)
	assert.Nil(t, s.Plan)

	require.NoError(t, c.Reset())
	s = c.Status()
	assert.Equal(t, "up", s.HSMs[0].State)
	assert.Equal(t, uint32(1), s.HSMs[0].Epoch, "epochs survive a reset")
	assert.Empty(t, s.HSMs[1].Classes)
}

// A state file of the wrong size, magic, version or HSM count is rebuilt
// (with a log line), never a crash.
func TestStateFileRebuilt(t *testing.T) {
	for name, damage := range map[string]func(path string){
		"truncated": func(p string) { require.NoError(t, os.Truncate(p, 100)) },
		"empty":     func(p string) { require.NoError(t, os.Truncate(p, 0)) },
		"longer, other version": func(p string) {
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			b[offVersion] = 9
			require.NoError(t, os.WriteFile(p, append(b, make([]byte, 4096)...), 0o600))
		},
		"garbage": func(p string) {
			b := make([]byte, stateSize)
			for i := range b {
				b[i] = byte(i*7 + 3)
			}
			require.NoError(t, os.WriteFile(p, b, 0o600))
		},
		"other version": func(p string) {
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			b[offVersion] = 9
			require.NoError(t, os.WriteFile(p, b, 0o600))
		},
		"other hsm count": func(p string) {
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			b[offHSMs] = 5
			require.NoError(t, os.WriteFile(p, b, 0o600))
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			c, _ := open(t, dir, testConfig(2))
			require.NoError(t, c.SetState(1, Down))
			require.NoError(t, c.Close())
			damage(filepath.Join(dir, stateFile))

			c2, rec := open(t, dir, testConfig(2))
			if name != "empty" { // an empty file is a new one
				assert.Contains(t, rec.Logs(), "rebuilding the shared state file")
			}
			assert.Equal(t, []int{0, 1}, c2.Reachable(), "rebuilt: every HSM up")
			st, err := os.Stat(filepath.Join(dir, stateFile))
			require.NoError(t, err)
			want := int64(stateSize)
			if strings.HasPrefix(name, "longer") {
				want += 4096 // rebuilt in place: another process may map it all
			}
			assert.Equal(t, want, st.Size())
			r, err := c2.Route(0)
			require.NoError(t, err)
			require.NoError(t, c2.Admit(&r, ClassRSASign))
		})
	}
	// An intact file is not rebuilt and keeps its state.
	dir := t.TempDir()
	c, _ := open(t, dir, testConfig(2))
	require.NoError(t, c.SetState(1, Down))
	c2, rec := open(t, dir, testConfig(2))
	assert.Empty(t, rec.Logs())
	assert.Equal(t, []int{0}, c2.Reachable())
}

// A process of another layout may have a longer file mapped: opening it
// rebuilds it in place and never shrinks it (an access past a truncated
// end would fault that process with SIGBUS). Opening again keeps what the
// rebuilt file holds.
func TestStateFileNeverShrunk(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, stateFile)
	size := stateSize + 8192
	require.NoError(t, os.WriteFile(path, make([]byte, size), 0o600))
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	other, err := syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	require.NoError(t, err)
	defer syscall.Munmap(other)

	c, rec := open(t, dir, testConfig(2))
	assert.Contains(t, rec.Logs(), "rebuilding the shared state file")
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	func() {
		defer func() { require.Nil(t, recover(), "the other mapping faults past the end") }()
		other[size-1] = 1
	}()
	require.NoError(t, c.SetState(1, Down))
	c2, rec2 := open(t, dir, testConfig(2))
	assert.Empty(t, rec2.Logs(), "a longer file with our header is not rebuilt again")
	assert.Equal(t, []int{0}, c2.Reachable())
}

func init() {
	// setstate: open the state in $DIR and set $HSM to $STATE, then wait
	// until HSM 0 is down (the parent's answer) and exit.
	children["setstate"] = func() error {
		c, err := Open(os.Getenv("DIR"), testConfig(3), 0o600)
		if err != nil {
			return err
		}
		defer c.Close()
		if err := c.SetState(2, Degraded); err != nil {
			return err
		}
		deadline := time.Now().Add(10 * time.Second)
		for stateOf(c.stateWord(0)) != Down {
			if time.Now().After(deadline) {
				return errors.New("never saw HSM 0 go down")
			}
			time.Sleep(time.Millisecond)
		}
		return nil
	}
	// open: open the state in $DIR many times while another process does.
	children["open"] = func() error {
		for range 50 {
			c, err := Open(os.Getenv("DIR"), testConfig(3), 0o600)
			if err != nil {
				return err
			}
			if stateOf(c.stateWord(1)) != Down {
				return errors.New("HSM 1 not down: the file was rebuilt under us")
			}
			c.Close()
		}
		return nil
	}
}

// Two processes see each other's SetState at once: the state is one
// mapped file.
func TestTwoProcessesShareState(t *testing.T) {
	dir := t.TempDir()
	c, _ := open(t, dir, testConfig(3))
	child := startChild(t, "setstate", "DIR="+dir)
	deadline := time.Now().Add(10 * time.Second)
	for stateOf(c.stateWord(2)) != Degraded {
		require.True(t, time.Now().Before(deadline), "never saw the child's SetState")
		time.Sleep(time.Millisecond)
	}
	require.NoError(t, c.SetState(0, Down))
	require.NoError(t, child.Wait())
	assert.Equal(t, []int{1, 2}, c.Reachable())
}

// Processes opening the file at once neither rebuild it under each other
// nor fail.
func TestConcurrentOpen(t *testing.T) {
	dir := t.TempDir()
	c, _ := open(t, dir, testConfig(3))
	require.NoError(t, c.SetState(1, Down))
	a := startChild(t, "open", "DIR="+dir)
	b := startChild(t, "open", "DIR="+dir)
	require.NoError(t, a.Wait())
	require.NoError(t, b.Wait())
	assert.Equal(t, []int{0, 2}, c.Reachable())
}

// Two fresh processes creating the file at once agree on it.
func TestConcurrentCreate(t *testing.T) {
	for range 3 {
		dir := t.TempDir()
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := Open(dir, testConfig(2), 0o600)
				if err == nil {
					if i == 0 {
						err = c.SetState(1, Degraded)
					}
					c.Close()
				}
				errs[i] = err
			}()
		}
		wg.Wait()
		for _, err := range errs {
			require.NoError(t, err)
		}
		c, rec := open(t, dir, testConfig(2))
		assert.Empty(t, rec.Logs())
		assert.Equal(t, "degraded", c.Status().HSMs[1].State)
	}
}

// With nothing configured, Admit allocates nothing.
func TestAdmitNoAlloc(t *testing.T) {
	c, _ := open(t, t.TempDir(), testConfig(2))
	r, err := c.Route(0)
	require.NoError(t, err)
	allocs := testing.AllocsPerRun(1000, func() {
		if err := c.Admit(&r, ClassRSASign); err != nil {
			panic(err)
		}
	})
	assert.Zero(t, allocs)
}

func getenv(k string) string { return os.Getenv(k) }

// Two configurations of one token with different hsms: the second to
// open rebuilds the file in place under the first, which keeps working
// (no fault, no index past its HSMs) and ignores a plan naming an HSM it
// does not have.
func TestStateRebuiltUnderOpenCluster(t *testing.T) {
	dir := t.TempDir()
	c2, rec2 := open(t, dir, testConfig(2))
	require.NoError(t, c2.SetState(1, Down))
	c3, rec3 := open(t, dir, testConfig(3))
	assert.Contains(t, rec3.Logs(), "rebuilding the shared state file")
	assert.Equal(t, []int{0, 1}, c2.Reachable(), "rebuilt: every HSM up")
	require.NoError(t, c3.LoadPlan(mustPlan(t, `{"steps":[{"at":"0s","hsm":2,"state":"down"}]}`)))
	r, err := c2.Route(0)
	require.NoError(t, err)
	require.NoError(t, c2.Admit(&r, ClassRSASign))
	require.NoError(t, c2.Fault(FuncSign))
	assert.Len(t, c2.Status().HSMs, 2)
	assert.Contains(t, rec2.Logs(), "ignoring the stored fault plan")
	c3.Status() // fires the step: HSM 2 down
	assert.Equal(t, []int{0, 1}, c3.Reachable())
	assert.Equal(t, []int{0, 1}, c2.Reachable())
}

// A call still in the cluster when the module closes it (C_Finalize on
// one thread while another is in C_Sign, sleeping in a retry or a
// latency) must not fault on an unmapped file: Close leaves the mapping,
// and a new Open of the same file in the process reuses it.
func TestCloseKeepsMapping(t *testing.T) {
	dir := t.TempDir()
	c, err := Open(dir, testConfig(2), 0o600)
	require.NoError(t, err)
	r, err := c.Route(0)
	require.NoError(t, err)
	require.NoError(t, c.Close())
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	func() {
		defer func() { require.Nil(t, recover(), "a call after Close faulted") }()
		assert.NoError(t, c.Admit(&r, ClassRSASign))
		assert.Len(t, c.Status().HSMs, 2)
	}()
	c2, _ := open(t, dir, testConfig(2))
	assert.Same(t, &c.st.mem[0], &c2.st.mem[0], "one mapping per file and process")
	assert.Equal(t, uint64(1), classStatus(c2.Status(), r.HSM, ClassRSASign).Calls, "the call after Close counted")
}
