package nginx

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The phases of TestNginxClusterFailover: how long the client loop runs
// with every HSM up, with some down, and after they came back.
const (
	allUpPhase    = 2 * time.Second
	downPhase     = 4 * time.Second
	backUpPhase   = 2 * time.Second
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

// epoch is HSM i's epoch (times it went down).
func (st *clusterStatus) epoch(i int) uint32 {
	for _, h := range st.HSMs {
		if h.Index == i {
			return h.Epoch
		}
	}
	return 0
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
// of TestNginxTLSOffload) on a slot with an emulated cluster and the key
// availability check on, as CloudHSM's defaults have it. While clients do
// full handshakes without pause, HSMs go down (`gohsm cluster hsm down K`,
// another process) and come back up: every handshake succeeds, and the
// cluster's counters show signatures on every HSM before, none on a down
// HSM while it is down, and on every HSM again after (routing followed the
// state, across processes: the CLI writes the state, the workers read it).
//
// Two clusters: 2 HSMs with HSM 1 going down (the minimal cluster), and 3
// HSMs with HSMs 1 and 2 going down. The second is the one that fails when
// routing ignores down HSMs: in a TLS handshake, OpenSSL 3 with libp11
// 0.4.12 makes a second C_SignInit and C_Sign after a C_Sign that failed
// (pkcs11-spy under `openssl s_server`; in nginx, thousands of refused
// signatures and no failed handshake), and a worker's round robin sends
// that second attempt to the next HSM. With one HSM of two down it is the
// up one, so every handshake still succeeds; two down HSMs in a row make
// one fail.
//
// The slot's profile is standard with the cluster turned on: libp11 (the
// engine nginx uses) opens read-only sessions, which the cloudhsm profile
// refuses as SDK 5 does (TestCloudHSMOpenSSLEngine in tests/clients).
//
// Each worker must have used each key once before an HSM goes down: a
// process checks a token key's availability (2 HSMs) at its first use, and
// with one HSM left a first use fails, as it does on CloudHSM.
func TestNginxClusterFailover(t *testing.T) {
	for _, sc := range []struct {
		hsms int
		down []int
	}{
		{2, []int{1}},
		{3, []int{1, 2}},
	} {
		t.Run(fmt.Sprintf("%d HSMs", sc.hsms), func(t *testing.T) {
			clusterFailover(t, sc.hsms, sc.down)
		})
	}
}

// clusterFailover is one cluster of TestNginxClusterFailover: n HSMs, the
// HSMs down going down and coming back up.
func clusterFailover(t *testing.T, n int, down []int) {
	testStart := time.Now()
	s, ca, gohsm := startNginx(t, fmt.Sprintf("cluster = on\nhsms = %d\nkey_availability_check = true\nreplication_delay = 0s\n", n))
	keys := s.keys
	c := &client{cfg: &tls.Config{RootCAs: ca.pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	isDown := map[int]bool{}
	for _, h := range down {
		isDown[h] = true
	}
	downNames := fmt.Sprint(down) // "[1 2]"

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
		if len(env.Data.HSMs) != n {
			return nil, fmt.Errorf("gohsm cluster status --json: %d HSMs, want %d: %s", len(env.Data.HSMs), n, out)
		}
		return env.Data, nil
	}
	// states requires each HSM's state: down for those in downs, else up.
	states := func(st *clusterStatus, downs map[int]bool) error {
		for i := range n {
			want := "up"
			if downs[i] {
				want = "down"
			}
			if got := st.state(i); got != want {
				return fmt.Errorf("HSM %d is %s, want %s", i, got, want)
			}
		}
		return nil
	}
	var st0 *clusterStatus
	check(t, fmt.Sprintf("gohsm cluster status: %d HSMs, all up", n), func() error {
		var err error
		if st0, err = status(); err != nil {
			return err
		}
		return states(st0, nil)
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
	phases := []*phaseTally{newPhase("all HSMs up", keys), newPhase("HSMs "+downNames+" down", keys),
		newPhase("HSMs "+downNames+" back up", keys)}
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

	// phase runs the loop for d between two status snapshots and requires
	// calls on every HSM up and none on those in downs.
	phase := func(p *phaseTally, d time.Duration, downs map[int]bool) {
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
			var bad []string
			for i := range n {
				di := delta(a, b, i)
				t.Logf("%s: HSM %d (%s) calls: %s", p.name, i, b.state(i), fmtCalls(di))
				switch {
				case downs[i] && di["all"] != 0:
					bad = append(bad, fmt.Sprintf("HSM %d is down and took %d calls", i, di["all"]))
				case !downs[i] && di["all"] == 0:
					bad = append(bad, fmt.Sprintf("HSM %d is up and took no call", i))
				}
			}
			if len(bad) > 0 {
				return fmt.Errorf("%s", strings.Join(bad, "; "))
			}
			return nil
		})
	}
	setStates := func(to string) {
		t.Helper()
		for _, h := range down {
			check(t, fmt.Sprintf("gohsm cluster hsm %s %d", to, h), func() error {
				_, err := gohsm("cluster", "hsm", to, fmt.Sprint(h))
				return err
			})
		}
	}

	phase(phases[0], allUpPhase, nil)
	setStates("down")
	phase(phases[1], downPhase, isDown)
	check(t, "gohsm cluster status: HSMs "+downNames+" down", func() error {
		st, err := status()
		if err != nil {
			return err
		}
		return states(st, isDown)
	})
	setStates("up")
	phase(phases[2], backUpPhase, nil)
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
	check(t, "gohsm cluster status: all up, each HSM that went down did once", func() error {
		st, err := status()
		if err != nil {
			return err
		}
		if err := states(st, nil); err != nil {
			return err
		}
		for i := range n {
			want := uint32(0)
			if isDown[i] {
				want = 1
			}
			if moved := st.epoch(i) - st0.epoch(i); moved != want {
				return fmt.Errorf("HSM %d's epoch moved by %d, want %d", i, moved, want)
			}
		}
		return nil
	})
	check(t, "nginx -s quit: the master and its workers exit", s.stop)
	check(t, "error.log has no alert, emerg, crit or module error", s.checkErrorLog)
	t.Logf("nginx cluster test (%d HSMs) took %v", n, time.Since(testStart).Round(time.Millisecond))
}

// TestNginxClusterReloadDuringOutage: `nginx -s reload` while HSM 1 of a
// 2-HSM cluster (key availability check on) is down. The new workers are
// new processes: their first use of each key checks its availability,
// finds it on one reachable HSM and fails with CKR_FUNCTION_FAILED (the
// SDK's "The key must be available on at least 2 HSMs before being
// used"), so every handshake fails (the client sees a TLS internal error
// alert, nginx logs the PKCS#11 error) until HSM 1 is back; then the same
// workers serve. On CloudHSM it is why AWS recommends three HSMs
// (UG:troubleshoot-key-availability-check): with two, restarting a client
// during one HSM's outage takes its keys away.
func TestNginxClusterReloadDuringOutage(t *testing.T) {
	s, ca, gohsm := startNginx(t, "cluster = on\nhsms = 2\nkey_availability_check = true\n")
	c := &client{cfg: &tls.Config{RootCAs: ca.pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const tries = 5 // handshakes per key while the keys cannot be used

	check(t, "gohsm cluster hsm down 1", func() error {
		_, err := gohsm("cluster", "hsm", "down", "1")
		return err
	})
	var workers []int
	check(t, "nginx -s reload: the old workers exit", func() error {
		old := s.workers()
		s.writeConf(1)
		if _, err := s.nginxCmd("-s", "reload"); err != nil {
			return fmt.Errorf("%w\n%s", err, s.errorLog())
		}
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
			left := 0
			for _, pid := range old {
				if alive(pid) {
					left++
				}
			}
			workers = s.workers()
			if left == 0 && len(workers) == 2 {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("a minute after the reload: %d old workers left, workers %v\n%s", left, workers, s.errorLog())
			}
		}
	})
	check(t, "HSM 1 down: the new workers' handshakes fail (key availability)", func() error {
		for _, k := range s.keys {
			for range tries {
				pid, err := c.getPID(ctx, k, s.gen)
				if err == nil {
					return fmt.Errorf("%s: worker %d answered with one HSM reachable", k.name, pid)
				}
				if !strings.Contains(err.Error(), "tls: internal error") {
					return fmt.Errorf("%s: %w (want a TLS internal error alert)", k.name, err)
				}
			}
		}
		// libp11 reports CKR_FUNCTION_FAILED (0x6) as 41800006. The client
		// can see the alert before the worker has written its log line
		// (one CI run read 9 of 10), so wait a little for the last ones.
		const want = "SSL_do_handshake() failed (SSL: error:41800006:PKCS#11 module::Function failed"
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			b, err := os.ReadFile(s.errLog)
			if err != nil {
				return err
			}
			n := strings.Count(string(b), want)
			if n == 2*tries {
				return nil
			}
			if n > 2*tries || time.Now().After(deadline) {
				return fmt.Errorf("%d lines with %q in error.log, want %d\n%s", n, want, 2*tries, s.errorLog())
			}
		}
	})
	check(t, "the workers are still running", func() error {
		if now := s.workers(); fmt.Sprint(now) != fmt.Sprint(workers) {
			return fmt.Errorf("workers %v, then %v", workers, now)
		}
		return nil
	})
	check(t, "gohsm cluster hsm up 1", func() error {
		_, err := gohsm("cluster", "hsm", "up", "1")
		return err
	})
	check(t, "HSM 1 up: the same workers serve", func() error {
		for _, k := range s.keys {
			for range tries {
				if _, err := c.getPID(ctx, k, s.gen); err != nil {
					return fmt.Errorf("%s: %w\n%s", k.name, err, s.errorLog())
				}
			}
		}
		if now := s.workers(); fmt.Sprint(now) != fmt.Sprint(workers) {
			return fmt.Errorf("workers %v, then %v", workers, now)
		}
		return nil
	})
	check(t, "nginx -s quit: the master and its workers exit", s.stop)
}
