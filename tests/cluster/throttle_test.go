package cluster

import (
	"strings"
	"testing"
	"time"

	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/require"
)

// TestThrottleAtConfiguredRate: 2 HSMs with a budget of 200 P-256 signs/s
// each and the SDK's retry off; two signers, each in its own session, ask
// far more than that. The signs that pass do so at 400/s (2 x 200), the
// others fail with CKR_FUNCTION_FAILED (HSM response 187, SDK 5's code:
// UG:troubleshoot-hsm-throttling), which the module logs.
//
// Tolerance 75%-125% of 400/s over a window of about 1.2 s that starts
// after 0.3 s (the budgets' burst allowance, 1/10 s of budget per HSM, and
// the start-up are spent by then): the burst can add at most 40 calls
// (8%), the rest is scheduling on a loaded machine. With the budget
// ignored the signers pass thousands per second and none fails: both
// checks fail. (Each C_Sign of miekg/pkcs11 follows a length query, which
// reaches no HSM: were it counted, half the budget would pass.)
func TestThrottleAtConfiguredRate(t *testing.T) {
	tk := newCluster(t, "hsms = 2", "throttle.ec-sign = 200", "retry_mode = off")
	s := tk.login()
	k := tk.genEC(s, true, "throttled")
	require.NoError(t, tk.sign(s, k), "one sign within the budget")

	r := signLoad(tk.p, []pkcs11.SessionHandle{tk.session(), tk.session()}, k, 1500*time.Millisecond, 300*time.Millisecond)
	t.Logf("retry off: %+v", r)
	require.Zero(t, r.Other, "only CKR_OK and CKR_FUNCTION_FAILED: first other %s", r.FirstOther)
	require.Positive(t, r.Failed, "calls over the budget fail with CKR_FUNCTION_FAILED")
	within(t, "OK signs per second (2 HSMs x 200)", r.Rate(), 400, 0.75, 1.25)

	st := tk.status()
	for i := 0; i < 2; i++ {
		c := classOf(st, i, "ec-sign")
		require.Positive(t, c.Calls, "HSM %d served signs", i)
		require.Positive(t, c.Throttled, "HSM %d throttled signs", i)
		require.Equal(t, float64(200), c.Budget, "HSM %d's ec-sign budget", i)
		require.Zero(t, c.Retried, "HSM %d: retry_mode = off retries nothing", i)
	}
	require.Contains(t, tk.logText(), throttleLogLine, "the module logs the throttled calls")
}

// TestThrottlePreset: `throttle = on` follows the slot's hsm_type, with
// AWS's published figures per HSM (UG:performance, cloudhsm-facts §3.1):
// on hsm1, 250 P-256 signs/s and 1,000 RSA-2048 signs/s. Two signers
// against 2 HSMs pass 500 signs/s (same window and tolerance as above).
func TestThrottlePreset(t *testing.T) {
	tk := newCluster(t, "hsm_type = hsm1", "hsms = 2", "throttle = on", "retry_mode = off")
	s := tk.login()
	k := tk.genEC(s, true, "preset")
	require.NoError(t, tk.sign(s, k))
	r := signLoad(tk.p, []pkcs11.SessionHandle{tk.session(), tk.session()}, k, 1500*time.Millisecond, 300*time.Millisecond)
	t.Logf("hsm1 preset: %+v", r)
	require.Zero(t, r.Other, r.FirstOther)
	require.Positive(t, r.Failed)
	within(t, "OK signs per second (2 hsm1 HSMs x 250)", r.Rate(), 500, 0.75, 1.25)
	st := tk.status()
	for i := 0; i < 2; i++ {
		require.Equal(t, float64(250), classOf(st, i, "ec-sign").Budget, "HSM %d's ec-sign budget", i)
		require.Equal(t, float64(1000), classOf(st, i, "rsa-sign").Budget, "HSM %d's rsa-sign budget", i)
	}
}

// TestThrottleRetryAbsorbs: one signer signing as fast as it can exceeds a
// budget of 2 x 100 signs/s. With retry_mode = off some of its signs fail
// (the control: the load does exceed the budget); with retry_mode =
// standard (SDK 5.8's default, UG:pkcs11-library-configs-retry) none does:
// a throttled call waits and retries, up to 3 times, and may fail over to
// the other HSM. The bound is exactly 0 failures: a single signer that
// waits 5+10+20 ms before giving up always finds a budget of 100/s per HSM
// refilled (one call per 10 ms). The retries are counted in the status,
// and the retried signer still passes no more than the budget.
func TestThrottleRetryAbsorbs(t *testing.T) {
	lines := []string{"hsms = 2", "throttle.ec-sign = 100"}
	tk := newCluster(t, append(lines, "retry_mode = off")...)
	s := tk.login()
	k := tk.genEC(s, true, "retried")

	off := signLoad(tk.p, []pkcs11.SessionHandle{s}, k, 1000*time.Millisecond, 200*time.Millisecond)
	t.Logf("retry off: %+v", off)
	require.Zero(t, off.Other, "first other %s", off.FirstOther)
	require.Positive(t, off.Failed, "control: one unpaced signer exceeds the budget")
	st := tk.status()
	require.Zero(t, sumClass(st, "ec-sign", retried), "retry_mode = off retries nothing")
	refusedOff := sumClass(st, "ec-sign", throttled)
	require.Positive(t, refusedOff, "the status counts the refusals")

	tk.reconfigure(append(lines, "retry_mode = standard")...)
	s = tk.login()
	k = tk.privateKey(s, "retried")
	std := signLoad(tk.p, []pkcs11.SessionHandle{s}, k, 1200*time.Millisecond, 200*time.Millisecond)
	t.Logf("retry standard: %+v", std)
	require.Zero(t, std.Other, "first other %s", std.FirstOther)
	require.Zero(t, std.Failed, "retry_mode = standard absorbs a single signer's overload")
	require.Positive(t, std.OK)
	if r := std.Rate(); r > 1.25*200 {
		t.Fatalf("retried signs passed at %.1f/s, over the budget of 200/s (+25%%)", r)
	}
	st = tk.status()
	require.Positive(t, sumClass(st, "ec-sign", retried), "the status counts the retries")
	require.Equal(t, refusedOff, sumClass(st, "ec-sign", throttled), "no refusal counted under retry_mode = standard")
	require.True(t, strings.Contains(st.Retry, "standard"), "status retry_mode %q", st.Retry)
}

// TestCertificateReadThrottled: certificate storage reads through
// C_GetAttributeValue are throttled per HSM (cert-read, 10/s on hsm2m
// when throttling is on; 3/s here) and answer CKR_DEVICE_ERROR, not
// CKR_FUNCTION_FAILED, and are never retried, even with retry_mode =
// standard (UG:pkcs11-certificate-storage-limits; cloudhsm-facts §2.8 #4,
// behaviour 31). 40 reads in a row from one session within well under a
// second: more fail than pass (2 HSMs x 3/s, a burst of 1 each), none
// waits for a retry's back-off, and the status counts no retry. A
// search that may match a certificate is a read too (CKR_FUNCTION_FAILED
// when throttled); one for keys is not.
func TestCertificateReadThrottled(t *testing.T) {
	tk := newCluster(t, "hsms = 2", "throttle.cert-read = 3", "retry_mode = standard")
	s := tk.login()
	cert, err := tk.p.CreateObject(s, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_CERTIFICATE),
		pkcs11.NewAttribute(pkcs11.CKA_CERTIFICATE_TYPE, pkcs11.CKC_X_509),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_SUBJECT, []byte("cn=throttled")),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, []byte("not really DER")),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, "cert"),
	})
	require.NoError(t, err, "C_CreateObject of a certificate")

	var ok, refused int
	var refusals []time.Duration
	start := time.Now()
	for i := 0; i < 40; i++ {
		t0 := time.Now()
		_, err := tk.p.GetAttributeValue(s, cert, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
		d := time.Since(t0)
		switch {
		case err == nil:
			ok++
		case isRV(err, pkcs11.CKR_DEVICE_ERROR):
			refused++
			refusals = append(refusals, d)
		default:
			t.Fatalf("read %d: %v, want CKR_OK or CKR_DEVICE_ERROR", i, err)
		}
	}
	elapsed := time.Since(start)
	t.Logf("40 certificate reads in %v: %d OK, %d CKR_DEVICE_ERROR", elapsed, ok, refused)
	require.Positive(t, ok, "reads within the budget pass")
	// At 6/s with a burst of 2, 40 reads in under a second pass at most 8.
	if budget := 2 + int(6*elapsed.Seconds()) + 1; ok > budget {
		t.Fatalf("%d reads passed in %v, over the budget (%d)", ok, elapsed, budget)
	}
	require.Positive(t, refused)
	// Retried, each refusal would take 35 ms (5 + 10 + 20 ms of back-off).
	require.Less(t, median(refusals), 5*time.Millisecond, "refused certificate reads waited: %v", refusals)

	// A search that may match a certificate reads certificate storage
	// too: throttled, C_FindObjectsInit answers CKR_FUNCTION_FAILED; one
	// that cannot match a certificate is not counted.
	var findRefused int
	for i := 0; i < 10; i++ {
		_, err := tk.find(s, pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_CERTIFICATE))
		if err != nil {
			requireRV(t, err, pkcs11.CKR_FUNCTION_FAILED, "a throttled certificate search")
			findRefused++
		}
		_, err = tk.find(s, pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY))
		require.NoError(t, err, "a search for keys reads no certificate storage")
	}
	require.Positive(t, findRefused, "certificate searches over the budget")

	st := tk.status()
	require.Positive(t, sumClass(st, "cert-read", throttled))
	require.Zero(t, sumClass(st, "cert-read", retried), "certificate reads are never retried")
}
