package nginx

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The phases of TestNginxClusterFailover: how long the client loop runs
// with both HSMs up, with HSM 1 down, and after it came back.
const (
	bothUpPhase   = 3 * time.Second
	downPhase     = 5 * time.Second
	backUpPhase   = 3 * time.Second
	clusterClient = 4 // client goroutines per key
	// stateSettle is left between a state change and the first counter
	// snapshot of the phase it starts: a signature admitted just before
	// `gohsm cluster hsm down 1` returned may still be counted after it.
	stateSettle = 250 * time.Millisecond
	// minPerPhase is the fewest handshakes per key and phase that still
	// show the phase ran (2 cores shared with other work; RSA-2048 is the
	// slower key).
	minPerPhase = 20
	// minTotal is the fewest handshakes of the whole run.
	minTotal = 500
)

// clusterStatus is what the test reads of `gohsm cluster status --json`
// (token/cluster.Status).
type clusterStatus struct {
	HSMs []struct {
		Index   int    `json:"index"`
		State   string `json:"state"`
		Epoch   uint32 `json:"epoch"`
		Classes []struct {
			Class string `json:"class"`
			Calls uint64 `json:"calls"`
		} `json:"classes"`
	} `json:"hsms"`
}

// calls is HSM i's calls by class, and "all" for their sum.
func (st *clusterStatus) calls(i int) map[string]uint64 {
	m := map[string]uint64{"all": 0}
	for _, h := range st.HSMs {
		if h.Index != i {
			continue
		}
		for _, c := range h.Classes {
			m[c.Class] += c.Calls
			m["all"] += c.Calls
		}
	}
	return m
}

func (st *clusterStatus) state(i int) string {
	for _, h := range st.HSMs {
		if h.Index == i {
			return h.State
		}
	}
	return "(no HSM " + fmt.Sprint(i) + ")"
}

// delta is the calls of HSM i between two snapshots, by class.
func delta(a, b *clusterStatus, i int) map[string]uint64 {
	before, after := a.calls(i), b.calls(i)
	d := map[string]uint64{}
	for k, v := range after {
		if v != before[k] {
			d[k] = v - before[k]
		}
	}
	d["all"] = after["all"] - before["all"]
	return d
}

func fmtCalls(m map[string]uint64) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var b strings.Builder
	for _, k := range ks {
		fmt.Fprintf(&b, " %s=%d", k, m[k])
	}
	return strings.TrimSpace(b.String())
}

// phaseTally counts one phase's handshakes by key.
type phaseTally struct {
	name   string
	ok     map[string]*atomic.Int64
	failed atomic.Int64
	mu     sync.Mutex
	errs   []string
}

func newPhase(name string, keys []*tlsKey) *phaseTally {
	p := &phaseTally{name: name, ok: map[string]*atomic.Int64{}}
	for _, k := range keys {
		p.ok[k.label] = new(atomic.Int64)
	}
	return p
}

// TestNginxClusterFailover: nginx (two forked workers, the EC and RSA keys
// of TestNginxTLSOffload) on a slot with a 2-HSM emulated cluster and the
// key availability check on, as CloudHSM's defaults have it. While clients
// do full handshakes without pause, HSM 1 goes down (`gohsm cluster hsm
// down 1`, another process) and comes back up: every handshake succeeds,
// and the cluster's counters show signatures on both HSMs before, on HSM 0
// alone while HSM 1 is down, and on both again after it is up (routing
// followed the state, across processes: the CLI writes the state, the
// workers read it).
//
// The slot's profile is standard with the cluster turned on: libp11 (the
// engine nginx uses) opens read-only sessions, which the cloudhsm profile
// refuses as SDK 5 does (TestCloudHSMOpenSSLEngine in tests/clients).
//
// Each worker must have used each key once before HSM 1 goes down: a
// process checks a token key's availability (2 HSMs) at its first use, and
// with one HSM left a first use fails, as it does on CloudHSM.
func TestNginxClusterFailover(t *testing.T) {
	testStart := time.Now()
	s, ca, gohsm := startNginx(t, "cluster = on\nhsms = 2\nkey_availability_check = true\nreplication_delay = 0s\n")
	keys := s.keys
	c := &client{cfg: &tls.Config{RootCAs: ca.pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	status := func() (*clusterStatus, error) {
		out, err := gohsm("cluster", "status", "--json")
		if err != nil {
			return nil, err
		}
		// --json wraps the status in {"error_code":0,"data":...}.
		var env struct {
			Code int            `json:"error_code"`
			Data *clusterStatus `json:"data"`
		}
		if err := json.Unmarshal([]byte(out), &env); err != nil || env.Data == nil {
			return nil, fmt.Errorf("gohsm cluster status --json: %v in %q", err, out)
		}
		if len(env.Data.HSMs) != 2 {
			return nil, fmt.Errorf("gohsm cluster status --json: %d HSMs, want 2: %s", len(env.Data.HSMs), out)
		}
		return env.Data, nil
	}
	var st0 *clusterStatus
	check(t, "gohsm cluster status: 2 HSMs, both up", func() error {
		var err error
		if st0, err = status(); err != nil {
			return err
		}
		if st0.state(0) != "up" || st0.state(1) != "up" {
			return fmt.Errorf("HSM states %s, %s", st0.state(0), st0.state(1))
		}
		return nil
	})

	// Warm-up: concurrent handshakes until each worker has answered on
	// each key (nginx hands a connection to whichever worker wakes first).
	check(t, "each worker has signed with each key", func() error {
		workers := s.workers()
		if len(workers) != 2 {
			return fmt.Errorf("workers %v, want 2", workers)
		}
		seen := map[string]map[int]bool{}
		var mu sync.Mutex
		wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
		defer wcancel()
		done := func() bool {
			for _, k := range keys {
				for _, pid := range workers {
					if !seen[k.label][pid] {
						return false
					}
				}
			}
			return true
		}
		var wg sync.WaitGroup
		var firstErr error
		for _, k := range keys {
			seen[k.label] = map[int]bool{}
			for range clusterClient {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for wctx.Err() == nil {
						pid, err := c.getPID(wctx, k, s.gen)
						mu.Lock()
						if err != nil {
							if wctx.Err() == nil && firstErr == nil {
								firstErr = fmt.Errorf("%s: %w", k.name, err)
							}
							wcancel()
							mu.Unlock()
							return
						}
						seen[k.label][pid] = true
						if done() {
							wcancel()
						}
						mu.Unlock()
					}
				}()
			}
		}
		wg.Wait()
		if firstErr != nil {
			return fmt.Errorf("%w\n%s", firstErr, s.errorLog())
		}
		if !done() {
			return fmt.Errorf("within 30s, workers %v answered: %v", workers, seen)
		}
		return nil
	})

	// The client loop: clusterClient goroutines per key, handshaking
	// without pause until stopped, each counted in the current phase.
	var cur atomic.Pointer[phaseTally]
	phases := []*phaseTally{newPhase("both HSMs up", keys), newPhase("HSM 1 down", keys), newPhase("HSM 1 back up", keys)}
	cur.Store(phases[0])
	lctx, stopLoop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, k := range keys {
		for range clusterClient {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for lctx.Err() == nil {
					t0 := time.Now()
					err := c.get(lctx, k, s.gen)
					p := cur.Load()
					if err == nil {
						p.ok[k.label].Add(1)
						continue
					}
					if lctx.Err() != nil {
						return // stopped mid-handshake: not a failure
					}
					p.failed.Add(1)
					p.mu.Lock()
					if len(p.errs) < maxFailures {
						p.errs = append(p.errs, fmt.Sprintf("%s: connection after %v: %v", k.name, time.Since(t0).Round(time.Millisecond), err))
					}
					p.mu.Unlock()
				}
			}()
		}
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			stopLoop()
			wg.Wait()
		}
	}
	defer stop()

	// phase runs the loop for d between two status snapshots and checks
	// the calls each HSM got in between.
	phase := func(p *phaseTally, d time.Duration, want func(hsm0, hsm1 map[string]uint64) error) {
		t.Helper()
		check(t, fmt.Sprintf("%s: %v of handshakes, calls routed as the states say", p.name, d), func() error {
			cur.Store(p)
			time.Sleep(stateSettle)
			a, err := status()
			if err != nil {
				return err
			}
			time.Sleep(d)
			b, err := status()
			if err != nil {
				return err
			}
			d0, d1 := delta(a, b, 0), delta(a, b, 1)
			t.Logf("%s: HSM 0 (%s) calls: %s; HSM 1 (%s) calls: %s", p.name, b.state(0), fmtCalls(d0), b.state(1), fmtCalls(d1))
			return want(d0, d1)
		})
	}
	bothServe := func(hsm0, hsm1 map[string]uint64) error {
		if hsm0["all"] == 0 || hsm1["all"] == 0 {
			return fmt.Errorf("calls on HSM 0: %d, on HSM 1: %d: want both", hsm0["all"], hsm1["all"])
		}
		return nil
	}

	phase(phases[0], bothUpPhase, bothServe)

	check(t, "gohsm cluster hsm down 1", func() error {
		_, err := gohsm("cluster", "hsm", "down", "1")
		return err
	})
	phase(phases[1], downPhase, func(hsm0, hsm1 map[string]uint64) error {
		if hsm1["all"] != 0 || hsm0["all"] == 0 {
			return fmt.Errorf("calls on HSM 0: %d, on HSM 1 (down): %d: want HSM 0's only", hsm0["all"], hsm1["all"])
		}
		return nil
	})
	check(t, "gohsm cluster status: HSM 1 down", func() error {
		st, err := status()
		if err != nil {
			return err
		}
		if st.state(0) != "up" || st.state(1) != "down" {
			return fmt.Errorf("HSM states %s, %s: want up, down", st.state(0), st.state(1))
		}
		return nil
	})

	check(t, "gohsm cluster hsm up 1", func() error {
		_, err := gohsm("cluster", "hsm", "up", "1")
		return err
	})
	phase(phases[2], backUpPhase, bothServe)
	stop()

	check(t, "every handshake succeeded", func() error {
		var b strings.Builder
		total, failed := int64(0), int64(0)
		short := []string{}
		for _, p := range phases {
			fmt.Fprintf(&b, "\n  %s:", p.name)
			for _, k := range keys {
				n := p.ok[k.label].Load()
				total += n
				fmt.Fprintf(&b, " %s %d", k.name, n)
				if n < minPerPhase {
					short = append(short, fmt.Sprintf("%s/%s: %d", p.name, k.name, n))
				}
			}
			f := p.failed.Load()
			failed += f
			fmt.Fprintf(&b, ", %d failed", f)
			for _, e := range p.errs {
				fmt.Fprintf(&b, "\n    %s", e)
			}
		}
		t.Logf("handshakes by phase:%s", b.String())
		if failed > 0 {
			return fmt.Errorf("%d handshakes failed:%s\n%s", failed, b.String(), s.errorLog())
		}
		if total < minTotal || len(short) > 0 {
			return fmt.Errorf("%d handshakes in all (want %d), too few in %v:%s", total, minTotal, short, b.String())
		}
		return nil
	})
	check(t, "gohsm cluster status: both up, HSM 1 went down once", func() error {
		st, err := status()
		if err != nil {
			return err
		}
		if st.state(0) != "up" || st.state(1) != "up" {
			return fmt.Errorf("HSM states %s, %s", st.state(0), st.state(1))
		}
		if e0, e1 := st.HSMs[0].Epoch-st0.HSMs[0].Epoch, st.HSMs[1].Epoch-st0.HSMs[1].Epoch; e0 != 0 || e1 != 1 {
			return fmt.Errorf("epochs moved by %d and %d, want 0 and 1", e0, e1)
		}
		return nil
	})
	check(t, "nginx -s quit: the master and its workers exit", s.stop)
	check(t, "error.log has no alert, emerg, crit or module error", s.checkErrorLog)
	t.Logf("nginx cluster test took %v", time.Since(testStart).Round(time.Millisecond))
}
