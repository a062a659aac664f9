package cluster

import (
	"testing"
	"time"

	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/require"
)

// signTimes is how long each of n C_Sign calls with k took (C_SignInit,
// which reaches no HSM, not counted).
func (tk *tok) signTimes(s pkcs11.SessionHandle, k pkcs11.ObjectHandle, n int) []time.Duration {
	tk.t.Helper()
	var ds []time.Duration
	for i := 0; i < n; i++ {
		require.NoError(tk.t, tk.p.SignInit(s, mech(pkcs11.CKM_ECDSA, nil), k))
		t0 := time.Now()
		_, err := tk.p.Sign(s, digest)
		ds = append(ds, time.Since(t0))
		require.NoError(tk.t, err)
	}
	return ds
}

// randomTimes is how long each of n C_GenerateRandom calls took.
func (tk *tok) randomTimes(s pkcs11.SessionHandle, n int) []time.Duration {
	tk.t.Helper()
	var ds []time.Duration
	for i := 0; i < n; i++ {
		t0 := time.Now()
		_, err := tk.p.GenerateRandom(s, 32)
		ds = append(ds, time.Since(t0))
		require.NoError(tk.t, err)
	}
	return ds
}

// TestLatency: the latency model is off by default (a C_Sign's median
// under 2 ms: a P-256 sign is tens of microseconds); latency.ec-sign =
// 20ms makes each C_Sign take 20 ms or more (median of 10; under 200 ms,
// or the model is wrong) and leaves other classes alone
// (C_GenerateRandom); a degraded HSM answers after degraded_latency
// (30 ms here): round robin sends half the signs to it; a fault plan's
// latency step adds its latency while it lasts, and nothing after.
func TestLatency(t *testing.T) {
	tk := newCluster(t, "hsms = 2")
	s := tk.login()
	k := tk.genEC(s, true, "timed")
	require.NoError(t, tk.sign(s, k))
	m := median(tk.signTimes(s, k, 10))
	t.Logf("default: C_Sign median %v", m)
	require.Less(t, m, 2*time.Millisecond, "the default configuration adds latency")

	tk.reconfigure("hsms = 2", "latency.ec-sign = 20ms", "degraded_latency = 30ms")
	s = tk.login()
	k = tk.privateKey(s, "timed")
	ds := tk.signTimes(s, k, 10)
	m = median(ds)
	t.Logf("latency.ec-sign = 20ms: C_Sign %v, median %v", ds, m)
	require.GreaterOrEqual(t, m, 20*time.Millisecond, "latency.ec-sign = 20ms")
	require.Less(t, m, 200*time.Millisecond, "latency.ec-sign = 20ms")
	m = median(tk.randomTimes(s, 10))
	t.Logf("latency.ec-sign = 20ms: C_GenerateRandom median %v", m)
	require.Less(t, m, 2*time.Millisecond, "latency on ec-sign slows C_GenerateRandom")

	tk.reconfigure("hsms = 2", "degraded_latency = 30ms")
	s = tk.login()
	k = tk.privateKey(s, "timed")
	tk.gohsm("cluster", "hsm", "degrade", "1")
	require.Equal(t, "degraded", hsmOf(t, tk.status(), 1).State)
	ds = tk.signTimes(s, k, 10)
	slow, fast := 0, 0
	for _, d := range ds {
		switch {
		case d >= 30*time.Millisecond:
			slow++
		case d < 10*time.Millisecond:
			fast++
		}
	}
	t.Logf("HSM 1 degraded: C_Sign %v", ds)
	require.GreaterOrEqual(t, slow, 3, "signs on the degraded HSM take degraded_latency")
	require.GreaterOrEqual(t, fast, 3, "signs on the HSM that is up do not")
	tk.gohsm("cluster", "hsm", "up", "1")
	require.Less(t, median(tk.signTimes(s, k, 10)), 2*time.Millisecond, "HSM 1 back up")

	// A plan's latency step: 20 ms on ec-sign for 1 s, nothing after.
	plan := tk.writePlan("latency.json", `{"seed": 5, "steps": [{"at": "0s", "for": "1s", "latency": "20ms", "class": "ec-sign"}]}`)
	start := time.Now()
	tk.gohsm("cluster", "plan", "load", plan)
	// The step's clock starts when the CLI loads the plan, somewhere
	// between start and loaded (a CLI process can take 100 ms to start on
	// a loaded machine): measure within a second of start, look for the
	// end a second after loaded.
	loaded := time.Now()
	ds = tk.signTimes(s, k, 10)
	require.Less(t, time.Since(start), time.Second, "too slow to measure within the step")
	t.Logf("plan latency step: C_Sign %v (plan loaded in %v)", ds, loaded.Sub(start))
	require.GreaterOrEqual(t, median(ds), 20*time.Millisecond, "the plan's latency step")
	time.Sleep(time.Until(loaded.Add(time.Second + 50*time.Millisecond)))
	require.Less(t, median(tk.signTimes(s, k, 10)), 2*time.Millisecond, "the latency step is over")
}
