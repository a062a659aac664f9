package hosts

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/require"

	"gohsm/internal/testenv/pgtest"
)

const (
	// outageTimeout is the slots' store_timeout in TestDatabaseOutage.
	outageTimeout = time.Second
	// outageMargin is how much longer than the timeout a call may take
	// when the database is gone: scheduling on a loaded 2-core machine,
	// and the half timeout a write whose COMMIT's answer was lost spends
	// asking whether it committed (docs/store.md, "Audit"); not a second
	// whole store call.
	outageMargin = 750 * time.Millisecond
	// recoverBound is how long after the server is back the hosts may
	// still fail (the pool reconnects at the next call; the listening
	// connection with its back-off).
	recoverBound = 4 * time.Second
)

// window is a time the database was out, and what made it so.
type window struct {
	what       string
	from, till time.Time
}

// TestDatabaseOutage: hosts A and B each sign with a cached token key and
// create token objects, in two loops of their own, while the test stops
// PostgreSQL (a fast shutdown: connections refused), starts it again,
// then freezes it (SIGSTOP of the postmaster and every backend: a server
// that accepts connections but never answers, as behind a dead link) and
// thaws it. Through it all:
//
//   - every call answers CKR_OK or CKR_DEVICE_ERROR, never another code;
//   - no call takes longer than store_timeout (1 s) + outageMargin: no hang;
//   - each outage is seen (creates fail with CKR_DEVICE_ERROR in it);
//   - before the first outage, and from recoverBound after each, every
//     call succeeds: the same processes recover by themselves;
//   - every object whose create returned CKR_OK is found afterwards by a
//     host started then, under the handle its creator got;
//   - each host's log (log_level = warn) says why its calls failed.
//
// The log reports, per host and phase, the calls' results and their
// longest duration, and the time to recover.
func TestDatabaseOutage(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := srv.NewDatabase(t, "outage")
	timeoutLine := "store_timeout = " + outageTimeout.String()
	a, b := newHost(t, "a", dsn, timeoutLine), newHost(t, "b", dsn, timeoutLine)
	initToken(t, a)
	procs := []*proc{a.start(), b.start()}
	for _, p := range procs {
		p.must("open 1")
		p.must("login user %s", userPIN)
		key := p.must("genec key-%s", p.h.name)[1]
		p.must("sign %s", key)
		p.must("loadstart %s", key)
	}
	var outs []window
	phase := func(d time.Duration) { time.Sleep(d) }
	phase(1500 * time.Millisecond)

	w := window{what: "stopped", from: time.Now()}
	require.NoError(t, srv.Stop())
	phase(3 * time.Second)
	require.NoError(t, srv.Restart())
	w.till = time.Now()
	outs = append(outs, w)
	phase(recoverBound + time.Second)

	w = window{what: "frozen", from: time.Now()}
	thaw := freeze(t, srv)
	phase(3 * time.Second)
	thaw()
	w.till = time.Now()
	outs = append(outs, w)
	phase(recoverBound + time.Second)

	committed := map[string]string{} // label -> handle
	for _, p := range procs {
		r := p.do("loadstop")
		require.True(t, r.ok(), "host %s: loadstop: %s%s", p.h.name, r, p.diag())
		var evs []loadEvent
		require.NoError(t, json.Unmarshal([]byte(strings.Join(r.fields, " ")), &evs))
		checkLoad(t, p, evs, outs)
		for _, e := range evs {
			if e.Kind == "create" && e.RV == 0 {
				committed[e.Label] = strconv.FormatUint(uint64(e.Handle), 10)
			}
		}
		// The same process, after the load: it works.
		p.must("create after-%s", p.h.name)
	}
	c := newHost(t, "c", dsn)
	pc := c.start()
	pc.must("open 1")
	pc.must("login user %s", userPIN)
	found := pairs(t, pc.must("list"))
	byLabel := map[string]string{}
	for h, l := range found {
		byLabel[l] = h
	}
	for label, h := range committed {
		require.Equal(t, h, byLabel[label], "%s: created (CKR_OK) as handle %s, found as %q on host C", label, h, byLabel[label])
	}
	t.Logf("%d objects created with CKR_OK across the outages, all found by host C", len(committed))
	for _, p := range append(procs, pc) {
		p.quit()
	}
}

// checkLoad judges one host's load events against the outage windows.
func checkLoad(t *testing.T, p *proc, evs []loadEvent, outs []window) {
	t.Helper()
	require.NotEmpty(t, evs)
	limit := outageTimeout + outageMargin
	type tally struct {
		ok, devErr int
		longest    time.Duration
	}
	// Phases: 0 before the first outage, then each outage and the time
	// after it.
	names := []string{"before"}
	for _, w := range outs {
		names = append(names, w.what, "after "+w.what)
	}
	phaseOf := func(at time.Time) int {
		i := 0
		for k, w := range outs {
			if !at.Before(w.from) {
				i = 2*k + 1
			}
			if !at.Before(w.till) {
				i = 2*k + 2
			}
		}
		return i
	}
	tallies := map[string]*tally{}
	recovered := make([]time.Duration, len(outs))
	for i := range recovered {
		recovered[i] = -1
	}
	var bad []string
	for _, e := range evs {
		start := time.Unix(0, e.Start)
		end := start.Add(time.Duration(e.Dur))
		ph := phaseOf(start)
		key := fmt.Sprintf("%-7s %s", e.Kind, names[ph])
		tl := tallies[key]
		if tl == nil {
			tl = &tally{}
			tallies[key] = tl
		}
		tl.longest = max(tl.longest, time.Duration(e.Dur))
		if time.Duration(e.Dur) > limit {
			bad = append(bad, fmt.Sprintf("%s at %s took %v (> %v)", e.Kind, start.Format("15:04:05.000"), time.Duration(e.Dur), limit))
		}
		switch e.RV {
		case 0:
			tl.ok++
			// The first success that began after an outage ended.
			for k, w := range outs {
				if ph == 2*k+2 && recovered[k] < 0 && e.Kind == "create" {
					recovered[k] = end.Sub(w.till)
				}
			}
		case pkcs11.CKR_DEVICE_ERROR:
			tl.devErr++
			// A failure must touch an outage, give or take recovery.
			touches := false
			for _, w := range outs {
				if end.After(w.from) && start.Before(w.till.Add(recoverBound)) {
					touches = true
				}
			}
			if !touches {
				bad = append(bad, fmt.Sprintf("%s at %s failed with CKR_DEVICE_ERROR outside any outage", e.Kind, start.Format("15:04:05.000")))
			}
		default:
			bad = append(bad, fmt.Sprintf("%s at %s: %#x %s %s", e.Kind, start.Format("15:04:05.000"), e.RV, pkcs11.Error(e.RV), e.Err))
		}
	}
	keys := make([]string, 0, len(tallies))
	for k := range tallies {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		tl := tallies[k]
		fmt.Fprintf(&b, "\n  %-24s ok %5d  CKR_DEVICE_ERROR %5d  longest %v", k, tl.ok, tl.devErr, tl.longest.Round(time.Microsecond))
	}
	t.Logf("host %s: %d calls; recovered (first create OK after the server was back) %v:%s", p.h.name, len(evs), recovered, b.String())
	if len(bad) > 10 {
		bad = append(bad[:10], fmt.Sprintf("... %d more", len(bad)-10))
	}
	require.Empty(t, bad, "host %s%s", p.h.name, p.diag())
	for k, w := range outs {
		if tl := tallies[fmt.Sprintf("%-7s %s", "create", w.what)]; tl == nil || tl.devErr == 0 {
			t.Errorf("host %s: no create failed while the server was %s: the outage was not seen", p.h.name, w.what)
		}
		require.GreaterOrEqual(t, recovered[k], time.Duration(0), "host %s: no create succeeded after the server was no longer %s", p.h.name, w.what)
		require.LessOrEqual(t, recovered[k], recoverBound, "host %s: recovery after %s", p.h.name, w.what)
	}
	// The host's log says why each CKR_DEVICE_ERROR happened, at the
	// configured level (warn): the code alone names no cause.
	logged, err := os.ReadFile(p.h.log)
	require.NoError(t, err)
	require.Regexp(t, `level=WARN msg="gohsm: call failed" fn=\S+ rv=CKR_DEVICE_ERROR err=`, string(logged),
		"host %s: no store failure logged at warn", p.h.name)
}

// freeze stops (SIGSTOP) the server's postmaster and then every process
// it started, and returns the function that resumes them (SIGCONT), the
// postmaster last. The test's cleanup thaws them too, so that the server
// can be stopped.
func freeze(t *testing.T, srv *pgtest.Server) (thaw func()) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(srv.Dir, "data", "postmaster.pid"))
	require.NoError(t, err)
	first, _, _ := strings.Cut(string(b), "\n")
	pm, err := strconv.Atoi(strings.TrimSpace(first))
	require.NoError(t, err, "postmaster.pid")
	require.NoError(t, syscall.Kill(pm, syscall.SIGSTOP))
	pids := []int{pm}
	kids := children(pm)
	for _, k := range kids {
		if syscall.Kill(k, syscall.SIGSTOP) == nil {
			pids = append(pids, k)
		}
	}
	t.Logf("froze the postmaster (%d) and %d of its processes", pm, len(kids))
	done := false
	thaw = func() {
		if done {
			return
		}
		done = true
		for i := len(pids) - 1; i >= 0; i-- {
			_ = syscall.Kill(pids[i], syscall.SIGCONT)
		}
	}
	t.Cleanup(thaw)
	return thaw
}

// children lists the processes whose parent is pid (from /proc).
func children(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, n)
		}
	}
	return out
}
