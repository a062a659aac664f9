package token

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/mechanisms"
	"gohsm/token/attrs"
	"gohsm/token/audit"
	"gohsm/token/cluster"
	"gohsm/token/store"
)

// clusterToken opens a module whose slot 3 has the given configuration
// lines (the standard profile unless they say; cluster keys), with an
// initialised token, and the default crypto user logged in on session h.
func clusterToken(t *testing.T, dir, lines string) (*Module, ck.ULong) {
	t.Helper()
	return clusterTokenTop(t, dir, "", lines)
}

// clusterTokenTop is clusterToken with top-level configuration lines too.
func clusterTokenTop(t *testing.T, dir, top, lines string) (*Module, ck.ULong) {
	t.Helper()
	m, err := Open(testConfigLines(t, dir, top, lines))
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	h := initTestToken(t, m)
	require.NoError(t, m.Logout(h))
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	return m, h
}

// clusterLogin opens a second module on dir (another SDK instance: it has
// verified no key yet) with the user logged in.
func clusterLogin(t *testing.T, dir, lines string) (*Module, ck.ULong) {
	t.Helper()
	m := profileModuleLines(t, dir, lines)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	return m, h
}

// hmacKey generates an HMAC key (a token or a session object).
func hmacKey(t *testing.T, m *Module, h ck.ULong, token bool) (ck.ULong, error) {
	t.Helper()
	return m.GenerateKey(h, Mechanism{Type: ck.CKM_GENERIC_SECRET_KEY_GEN}, attrs.Template{
		ck.CKA_VALUE_LEN: attrs.ULong(32), ck.CKA_TOKEN: attrs.Bool(token), ck.CKA_SIGN: attrs.Bool(true),
		ck.CKA_VERIFY: attrs.Bool(true), ck.CKA_LABEL: []byte("hmac")})
}

// hmacSign is C_SignInit + C_Sign of CKM_SHA256_HMAC with key.
func hmacSign(m *Module, h, key ck.ULong) error {
	if err := m.SignInit(h, Mechanism{Type: ck.CKM_SHA256_HMAC}, key); err != nil {
		return err
	}
	_, err := m.Sign(h, []byte("data"), Out{Buf: make([]byte, 32)})
	return err
}

func slotCluster(t *testing.T, m *Module) *cluster.Cluster {
	t.Helper()
	s, err := m.Slot(3)
	require.NoError(t, err)
	require.NotNil(t, s.Cluster())
	return s.Cluster()
}

// streamEvents is an audit stream of slot 3's token, verified.
func streamEvents(t *testing.T, m *Module, hsm int) []audit.Event {
	t.Helper()
	return streamLog(t, m, cluster.StreamName(hsm))
}

// TestClusterConfig: the cluster keys of a slot's section go to its
// cluster.Config over the profile's defaults, whatever their place in the
// section; an error names its line.
func TestClusterConfig(t *testing.T) {
	parse := func(slot string) (*Config, error) {
		return ParseConfig("token_dir = /tmp/x\n[slot 1]\n"+slot, "test")
	}
	c, err := parse("profile = standard\n")
	require.NoError(t, err)
	assert.False(t, c.Slots[0].Cluster.On, "standard: no cluster by default")
	c, err = parse("profile = cloudhsm\n")
	require.NoError(t, err)
	cc := c.Slots[0].Cluster
	assert.True(t, cc.On)
	assert.Equal(t, 2, cc.HSMs)
	assert.True(t, cc.KeyAvailabilityCheck)
	assert.Zero(t, cc.Budgets[cluster.ClassRSASign], "throttling is off by default")

	// throttle = on follows hsm_type, set after it; the profile comes last.
	c, err = parse("throttle = on\nthrottle.hmac = 7\nhsm_type = hsm1\nhsms = 3\nprofile = cloudhsm\n")
	require.NoError(t, err)
	cc = c.Slots[0].Cluster
	assert.Equal(t, 3, cc.HSMs)
	assert.Equal(t, 250.0, cc.Budgets[cluster.ClassECSign], "hsm1's P-256 signs per HSM")
	assert.Equal(t, 7.0, cc.Budgets[cluster.ClassHMAC])
	c, err = parse("throttle = on\nprofile = cloudhsm\nhsm_type = hsm2m\n")
	require.NoError(t, err)
	assert.Equal(t, 1500.0, c.Slots[0].Cluster.Budgets[cluster.ClassECSign], "hsm2m's")

	// A standard slot may have one: any key but cluster = off turns it on.
	c, err = parse("hsms = 2\n")
	require.NoError(t, err)
	assert.True(t, c.Slots[0].Cluster.On)
	assert.False(t, c.Slots[0].Cluster.KeyAvailabilityCheck)
	c, err = parse("profile = cloudhsm\ncluster = off\n")
	require.NoError(t, err)
	assert.False(t, c.Slots[0].Cluster.On)

	for _, bad := range []string{"hsms = 33", "throttle.nonsense = 3", "replication_delay = soon", "latency.ec-sign = fast"} {
		_, err := parse("label = x\n" + bad + "\n")
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), "test:4:", "%s: the line is named", bad)
		assert.True(t, errors.Is(err, errConfig), bad)
	}
}

// TestClusterStandardUnchanged: a standard slot without cluster keys has
// no cluster, no state file, and its audit log is as before: one stream.
func TestClusterStandardUnchanged(t *testing.T) {
	dir := t.TempDir()
	m, h := clusterToken(t, dir, "profile = standard")
	s, err := m.Slot(3)
	require.NoError(t, err)
	assert.Nil(t, s.Cluster())
	_, isCluster := s.st.(clusterStore)
	assert.False(t, isCluster)
	k, err := hmacKey(t, m, h, true)
	require.NoError(t, err)
	require.NoError(t, hmacSign(m, h, k))
	require.NoError(t, m.Logout(h))
	streams, err := s.Store().AuditStreams()
	require.NoError(t, err)
	assert.Equal(t, []string{store.DefaultStream}, streams)
	assert.Equal(t, []string{"CN_INIT_TOKEN", "CN_CREATE_CO", "CN_LOGIN", "CN_CREATE_USER", "CN_LOGOUT", "CN_LOGIN", "CN_GENERATE_KEY", "CN_LOGOUT"},
		opcodes(streamEvents(t, m, 0)), "no extract/insert, each event once")
	_, err = os.Stat(filepath.Join(s.cfg.Dir, clusterStateFile))
	assert.True(t, errors.Is(err, os.ErrNotExist), "no cluster state: %v", err)

	// The cloudhsm profile's slot has one, of 2 HSMs, by default.
	mc := profileModule(t, t.TempDir(), "cloudhsm")
	assert.Equal(t, 2, slotCluster(t, mc).HSMs())
}

// TestClusterThrottledSign: over the HMAC budget with the SDK's retry off,
// C_Sign answers CKR_FUNCTION_FAILED (HSM response 187, in the log); with
// standard retry the same calls are absorbed by retries and fail-over.
func TestClusterThrottledSign(t *testing.T) {
	dir := t.TempDir()
	logf := filepath.Join(dir, "gohsm.log")
	lines := "hsms = 2\nkey_availability_check = false\nthrottle.hmac = 20\nretry_mode = off"
	m, h := clusterTokenTop(t, dir, "log_level = warn\nlog_file = "+logf, lines)
	k, err := hmacKey(t, m, h, true)
	require.NoError(t, err)
	// 2 HSMs x 20/s: over 500 ms about 20 calls pass (plus a burst of 2
	// per HSM); the rest, as fast as they come, are refused.
	var ok, throttled int
	for start := time.Now(); time.Since(start) < 500*time.Millisecond; {
		err := hmacSign(m, h, k)
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ck.CKR_FUNCTION_FAILED) && errors.Is(err, cluster.ErrThrottled):
			throttled++
		default:
			require.NoError(t, err)
		}
	}
	t.Logf("500 ms: %d signed, %d throttled", ok, throttled)
	assert.Greater(t, throttled, 0, "over budget calls are refused")
	assert.GreaterOrEqual(t, ok, 10, "the budget passes (2 HSMs x 20/s for 0.5 s, at least half)")
	assert.LessOrEqual(t, ok, 30, "no more than the budget (20 in 0.5 s + bursts), with slack")
	// A length query never reaches an HSM: never throttled.
	require.NoError(t, m.SignInit(h, Mechanism{Type: ck.CKM_SHA256_HMAC}, k))
	for range 50 {
		n, err := m.Sign(h, []byte("data"), Out{Query: true})
		require.NoError(t, err)
		require.Equal(t, 32, n)
	}
	require.NoError(t, m.Close())
	// The module's log has the HSM's answer, as the SDK logs it.
	b, err := os.ReadFile(logf)
	require.NoError(t, err)
	assert.Contains(t, string(b), "HSM response 187 (0xBB)")

	// Standard retry: 60 calls back to back against 2 x 100/s (bursts of
	// 10): beyond the bursts each call waits for budget, which the SDK's
	// retries (5, 10, 20 ms, and the other HSM) find; none is refused.
	dir = t.TempDir()
	m, h = clusterToken(t, dir, "hsms = 2\nkey_availability_check = false\nthrottle.hmac = 100\nretry_mode = standard")
	k, err = hmacKey(t, m, h, true)
	require.NoError(t, err)
	for range 60 {
		require.NoError(t, hmacSign(m, h, k), "absorbed by the retry")
	}
	var retried uint64
	for _, hs := range slotCluster(t, m).Status().HSMs {
		for _, c := range hs.Classes {
			if c.Class == "hmac" {
				retried += c.Retried
				assert.Zero(t, c.Throttled)
			}
		}
	}
	t.Logf("retried %d times", retried)
	assert.Greater(t, retried, uint64(0), "the load was over budget: the retry absorbed it")
}

// TestClusterFailover: the HSM an operation was routed to at C_SignInit
// goes down before C_Sign: the call fails over to the other HSM (the SDK
// does), and the change is recorded in the HSM's stream.
func TestClusterFailover(t *testing.T) {
	dir := t.TempDir()
	m, h := clusterToken(t, dir, "hsms = 2")
	k, err := hmacKey(t, m, h, true)
	require.NoError(t, err)
	cl := slotCluster(t, m)
	require.NoError(t, m.SignInit(h, Mechanism{Type: ck.CKM_SHA256_HMAC}, k))
	se, err := m.session(h)
	require.NoError(t, err)
	routed := se.ops[opSign].route.HSM
	require.NoError(t, cl.SetState(routed, cluster.Down))
	_, err = m.Sign(h, []byte("data"), Out{Buf: make([]byte, 32)})
	require.NoError(t, err, "failed over to the other HSM")
	evs := streamEvents(t, m, routed)
	require.Equal(t, audit.GOHSM_HSM_STATE, evs[len(evs)-1].Opcode)
	assert.Contains(t, evs[len(evs)-1].Detail, "down")

	// With both down there is nowhere to go.
	require.NoError(t, m.SignInit(h, Mechanism{Type: ck.CKM_SHA256_HMAC}, k))
	require.NoError(t, cl.SetState(1-routed, cluster.Down))
	_, err = m.Sign(h, []byte("data"), Out{Buf: make([]byte, 32)})
	require.ErrorIs(t, err, ck.CKR_DEVICE_ERROR)
	require.ErrorIs(t, err, cluster.ErrNoHSM)
	require.ErrorIs(t, m.SignInit(h, Mechanism{Type: ck.CKM_SHA256_HMAC}, k), cluster.ErrNoHSM)
}

// TestClusterSessionKeyLost: a session key lives on the HSM it was made
// on; once that HSM went down, even if it is back, the key is gone
// (CKR_KEY_HANDLE_INVALID), at C_SignInit or at a call already routed.
// Token keys fail over.
func TestClusterSessionKeyLost(t *testing.T) {
	dir := t.TempDir()
	m, h := clusterToken(t, dir, "hsms = 2")
	cl := slotCluster(t, m)
	sk, err := hmacKey(t, m, h, false)
	require.NoError(t, err)
	tk, err := hmacKey(t, m, h, true)
	require.NoError(t, err)
	s, err := m.Slot(3)
	require.NoError(t, err)
	home := s.sessObjs[sk].hsm
	require.NoError(t, hmacSign(m, h, sk))

	// Routed, then its HSM goes down: the call fails.
	require.NoError(t, m.SignInit(h, Mechanism{Type: ck.CKM_SHA256_HMAC}, sk))
	require.NoError(t, cl.SetState(home, cluster.Down))
	_, err = m.Sign(h, []byte("data"), Out{Buf: make([]byte, 32)})
	require.ErrorIs(t, err, ck.CKR_KEY_HANDLE_INVALID)
	require.ErrorIs(t, err, cluster.ErrKeyLost)
	// Back up (rebooted): still gone.
	require.NoError(t, cl.SetState(home, cluster.Up))
	require.ErrorIs(t, m.SignInit(h, Mechanism{Type: ck.CKM_SHA256_HMAC}, sk), ck.CKR_KEY_HANDLE_INVALID)
	require.NoError(t, hmacSign(m, h, tk), "a token key is on every HSM")

	// A session key made now, on an HSM that stays up, works.
	sk2, err := hmacKey(t, m, h, false)
	require.NoError(t, err)
	require.NoError(t, hmacSign(m, h, sk2))
}

// TestClusterKeyAvailability: with the check on, a new token key is
// refused (CKR_FUNCTION_FAILED, the SDK's message) until it is on 2 HSMs,
// replication_delay after it was made; a process that verified it keeps
// using it. With one reachable HSM no token key is made or used; session
// keys are never checked; key_availability_check = false removes it all.
func TestClusterKeyAvailability(t *testing.T) {
	const delay = 400 * time.Millisecond
	dir := t.TempDir()
	lines := "hsms = 2\nkey_availability_check = true\nreplication_delay = 400ms"
	m, h := clusterToken(t, dir, lines)
	made := time.Now()
	k, err := hmacKey(t, m, h, true)
	require.NoError(t, err)
	err = hmacSign(m, h, k)
	require.ErrorIs(t, err, ck.CKR_FUNCTION_FAILED)
	require.ErrorIs(t, err, cluster.ErrKeyAvailability)
	assert.Contains(t, err.Error(), "must be available on at least 2 HSMs")
	var first time.Duration
	for {
		if err := hmacSign(m, h, k); err == nil {
			first = time.Since(made)
			break
		}
		require.ErrorIs(t, err, cluster.ErrKeyAvailability)
		require.Less(t, time.Since(made), 5*time.Second, "the key never became available")
		time.Sleep(20 * time.Millisecond)
	}
	assert.GreaterOrEqual(t, first, delay, "not before the replication delay")
	sk, err := hmacKey(t, m, h, false)
	require.NoError(t, err)
	require.NoError(t, hmacSign(m, h, sk), "session keys are not checked")

	// One HSM down: a process that verified the key keeps using it; a new
	// one (a new SDK instance) does not; no token key can be made, and
	// nothing is stored.
	cl := slotCluster(t, m)
	require.NoError(t, cl.SetState(1, cluster.Down))
	require.NoError(t, hmacSign(m, h, k), "verified by this process")
	m2, h2 := clusterLogin(t, dir, lines)
	require.ErrorIs(t, hmacSign(m2, h2, k), ck.CKR_FUNCTION_FAILED)
	before := countObjects(t, m2, h2)
	n0 := len(streamEvents(t, m2, 0))
	_, err = hmacKey(t, m2, h2, true)
	require.ErrorIs(t, err, ck.CKR_FUNCTION_FAILED)
	require.ErrorIs(t, err, cluster.ErrKeyAvailability)
	assert.Equal(t, before, countObjects(t, m2, h2), "nothing stored")
	assert.Empty(t, streamEvents(t, m2, 0)[n0:], "nothing recorded")
	sk2, err := hmacKey(t, m2, h2, false)
	require.NoError(t, err, "session keys are made")
	require.NoError(t, hmacSign(m2, h2, sk2))
	require.NoError(t, cl.SetState(1, cluster.Up))

	// A cluster of one HSM: every token key use and creation fails...
	dir1 := t.TempDir()
	_, err = os.Stat(dir1)
	require.NoError(t, err)
	m1, h1 := clusterToken(t, dir1, "hsms = 1\nkey_availability_check = false")
	k1, err := hmacKey(t, m1, h1, true)
	require.NoError(t, err)
	require.NoError(t, hmacSign(m1, h1, k1), "check off: used")
	require.NoError(t, m1.Close())
	m1, h1 = clusterLogin(t, dir1, "hsms = 1\nkey_availability_check = true")
	require.ErrorIs(t, hmacSign(m1, h1, k1), cluster.ErrKeyAvailability)
	_, err = hmacKey(t, m1, h1, true)
	require.ErrorIs(t, err, cluster.ErrKeyAvailability)
}

// countObjects is how many objects session h finds.
func countObjects(t *testing.T, m *Module, h ck.ULong) int {
	t.Helper()
	require.NoError(t, m.FindObjectsInit(h, nil))
	objs, err := m.FindObjects(h, 1000)
	require.NoError(t, err)
	require.NoError(t, m.FindObjectsFinal(h))
	return len(objs)
}

// TestClusterAuditStreams: CloudHSM's multi-HSM audit (decision 6,
// behaviour 29): a login in every reachable stream, a logout on the HSM
// that ran it, a user created in every stream, a new token key as
// generate + extract on the HSM that made it and insert on the others
// (same handles), a session key on its HSM alone, a share in every
// stream, and nothing in a down HSM's stream.
func TestClusterAuditStreams(t *testing.T) {
	dir := t.TempDir()
	m, h := clusterToken(t, dir, "hsms = 3")
	cl := slotCluster(t, m)
	marks := func() [3]int {
		var n [3]int
		for i := range n {
			n[i] = len(streamEvents(t, m, i))
		}
		return n
	}
	since := func(n [3]int) [3][]string {
		var out [3][]string
		for i := range out {
			out[i] = opcodes(streamEvents(t, m, i)[n[i]:])
		}
		return out
	}
	n := marks()
	require.NoError(t, m.Logout(h))
	require.NoError(t, m.Login(h, ck.CKU_SO, []byte(soPIN)))
	require.NoError(t, m.CreateUser(h, "bob", store.RoleCU, []byte("bob-pw-12")))
	require.NoError(t, m.Logout(h))
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	got := since(n)
	// Logouts on the first HSM (it runs commands that use no key).
	assert.Equal(t, []string{"CN_LOGOUT", "CN_LOGIN", "CN_CREATE_USER", "CN_LOGOUT", "CN_LOGIN"}, got[0])
	for i := 1; i < 3; i++ {
		assert.Equal(t, []string{"CN_LOGIN", "CN_CREATE_USER", "CN_LOGIN"}, got[i], "stream %d", i)
	}

	// A token key: made on one HSM, inserted into the others.
	n = marks()
	k, err := hmacKey(t, m, h, true)
	require.NoError(t, err)
	origin := -1
	for i := range 3 {
		evs := streamEvents(t, m, i)[n[i]:]
		if len(evs) == 2 {
			require.Equal(t, []string{"CN_GENERATE_KEY", "CN_EXTRACT_MASKED_OBJECT_USER"}, opcodes(evs), "stream %d", i)
			require.Equal(t, -1, origin, "one origin")
			origin = i
		} else {
			require.Equal(t, []string{"CN_INSERT_MASKED_OBJECT_USER"}, opcodes(evs), "stream %d", i)
		}
		for _, e := range evs {
			assert.Equal(t, uint64(k), e.Key, "stream %d: the same handle", i)
		}
	}
	require.NotEqual(t, -1, origin)

	// A session key: on the HSM that made it alone.
	n = marks()
	sk, err := hmacKey(t, m, h, false)
	require.NoError(t, err)
	s, err := m.Slot(3)
	require.NoError(t, err)
	home := s.sessObjs[sk].hsm
	got = since(n)
	for i := range 3 {
		if i == home {
			assert.Equal(t, []string{"CN_GENERATE_KEY"}, got[i])
		} else {
			assert.Empty(t, got[i], "stream %d", i)
		}
	}

	// A share: every stream. Then HSM 2 goes down: a login is in the
	// streams of the reachable HSMs only, after the state change.
	n = marks()
	require.NoError(t, m.Share(h, k, "bob", true))
	require.NoError(t, cl.SetState(2, cluster.Down))
	require.NoError(t, m.Logout(h))
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	got = since(n)
	assert.Equal(t, []string{"CN_SHARE_OBJECT", "CN_LOGOUT", "CN_LOGIN"}, got[0])
	assert.Equal(t, []string{"CN_SHARE_OBJECT", "CN_LOGIN"}, got[1])
	assert.Equal(t, []string{"CN_SHARE_OBJECT", "GOHSM_HSM_STATE"}, got[2], "nothing once down but the state change")
}

// TestClusterCertificateReads: C_GetAttributeValue on a token
// certificate is a certificate-storage read: throttled, it answers
// CKR_DEVICE_ERROR, never retried; C_FindObjectsInit that may match a
// certificate answers CKR_FUNCTION_FAILED; a key's attributes are free.
func TestClusterCertificateReads(t *testing.T) {
	dir := t.TempDir()
	m, h := clusterToken(t, dir, "hsms = 2\nkey_availability_check = false\nthrottle.cert-read = 1\nthrottle.cert-write = 1")
	cert, err := m.CreateObject(h, attrs.Template{
		ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_CERTIFICATE)), ck.CKA_CERTIFICATE_TYPE: attrs.ULong(ck.ULong(ck.CKC_X_509)),
		ck.CKA_TOKEN: attrs.Bool(true), ck.CKA_SUBJECT: []byte("s"), ck.CKA_VALUE: []byte("c"), ck.CKA_LABEL: []byte("cert")})
	require.NoError(t, err)
	k, err := hmacKey(t, m, h, true)
	require.NoError(t, err)
	var ok, refused int
	for range 6 {
		_, err := m.GetAttributeValue(h, cert, []ck.AttributeType{ck.CKA_LABEL})
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ck.CKR_DEVICE_ERROR) && errors.Is(err, cluster.ErrCertThrottled):
			refused++
		default:
			require.NoError(t, err)
		}
	}
	assert.LessOrEqual(t, ok, 3, "1/s per HSM, a burst of 1 each")
	assert.Greater(t, refused, 2)
	for range 20 {
		_, err := m.GetAttributeValue(h, k, []ck.AttributeType{ck.CKA_LABEL})
		require.NoError(t, err, "a key is no certificate read")
	}
	err = m.FindObjectsInit(h, attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_CERTIFICATE))})
	require.ErrorIs(t, err, ck.CKR_FUNCTION_FAILED)
	for range 5 {
		require.NoError(t, m.FindObjectsInit(h, attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY))}), "finds no certificate")
		require.NoError(t, m.FindObjectsFinal(h))
	}
	// Writes: the same certificate changed thrice at once, beyond 1/s.
	var werr error
	for i := range 4 {
		if werr = m.SetAttributeValue(h, cert, attrs.Template{ck.CKA_LABEL: []byte(strings.Repeat("x", i+1))}); werr != nil {
			break
		}
	}
	require.ErrorIs(t, werr, ck.CKR_FUNCTION_FAILED)
}

// writePlan writes a fault plan file in dir.
func writePlan(t *testing.T, dir, plan string) string {
	t.Helper()
	p := filepath.Join(dir, "plan.json")
	require.NoError(t, os.WriteFile(p, []byte(plan), 0o600))
	return p
}

// faultEvents is every GOHSM_FAULT_INJECTED record of slot 3's streams,
// by stream.
func faultEvents(t *testing.T, m *Module, hsms int) [][]audit.Event {
	t.Helper()
	out := make([][]audit.Event, hsms)
	for i := range hsms {
		for _, e := range streamEvents(t, m, i) {
			if e.Opcode == audit.GOHSM_FAULT_INJECTED {
				out[i] = append(out[i], e)
			}
		}
	}
	return out
}

// TestClusterFaultPlan: a plan (fault_plan) fails the next 3 C_Sign with
// CKR_DEVICE_ERROR, each recorded as GOHSM_FAULT_INJECTED in the stream
// of the HSM the call was routed to; a length query is no call that
// reaches an HSM. The plan's load is in every stream.
func TestClusterFaultPlan(t *testing.T) {
	dir := t.TempDir()
	plan := writePlan(t, dir, `{"seed":1,"steps":[{"at":"0s","fail":"C_Sign","count":3,"rv":"CKR_DEVICE_ERROR"}]}`)
	m, h := clusterToken(t, dir, "hsms = 2\nkey_availability_check = false\nfault_plan = "+plan)
	k, err := hmacKey(t, m, h, true)
	require.NoError(t, err)
	var routed []int
	for i := range 3 {
		require.NoError(t, m.SignInit(h, Mechanism{Type: ck.CKM_SHA256_HMAC}, k))
		_, err := m.Sign(h, []byte("data"), Out{Query: true})
		require.NoError(t, err, "a length query")
		se, err := m.session(h)
		require.NoError(t, err)
		routed = append(routed, se.ops[opSign].route.HSM)
		_, err = m.Sign(h, []byte("data"), Out{Buf: make([]byte, 32)})
		require.ErrorIs(t, err, ck.CKR_DEVICE_ERROR, "call %d", i)
	}
	require.NoError(t, hmacSign(m, h, k), "the fourth passes")
	require.NoError(t, hmacSign(m, h, k))
	want := make([]int, 2)
	for _, r := range routed {
		want[r]++
	}
	got := faultEvents(t, m, 2)
	for i := range 2 {
		assert.Len(t, got[i], want[i], "stream %d: its HSM's faults", i)
		for _, e := range got[i] {
			assert.Contains(t, e.Detail, "C_Sign failed with CKR_DEVICE_ERROR")
		}
		evs := streamEvents(t, m, i)
		assert.Contains(t, opcodes(evs), "GOHSM_FAULT_PLAN", "stream %d: the plan's load", i)
	}
}

// TestClusterFaultPlanReplays: the same plan, seed and calls give the same
// faults (decision 7), on fresh tokens.
func TestClusterFaultPlanReplays(t *testing.T) {
	run := func() []bool {
		dir := t.TempDir()
		plan := writePlan(t, dir, `{"seed":42,"steps":[{"at":"0s","for":"1m","fail":"C_Sign","probability":0.3,"rv":"CKR_FUNCTION_FAILED"}]}`)
		m, h := clusterToken(t, dir, "hsms = 2\nkey_availability_check = false\nfault_plan = "+plan)
		k, err := hmacKey(t, m, h, true)
		require.NoError(t, err)
		var failed []bool
		for range 40 {
			err := hmacSign(m, h, k)
			if err != nil {
				require.ErrorIs(t, err, ck.CKR_FUNCTION_FAILED)
			}
			failed = append(failed, err != nil)
		}
		return failed
	}
	a, b := run(), run()
	assert.Equal(t, a, b)
	n := 0
	for _, f := range a {
		if f {
			n++
		}
	}
	assert.True(t, n > 3 && n < 25, "about 30%% of 40 fail: %d", n)
}

// TestClusterStoreDown: while a plan has dropped the store, what reads or
// writes it answers CKR_DEVICE_ERROR (a login, a find, a new token key);
// a cached key keeps signing and session keys are made and used. The
// drop and the plan are in every stream.
func TestClusterStoreDown(t *testing.T) {
	dir := t.TempDir()
	m, h := clusterToken(t, dir, "hsms = 2\nkey_availability_check = false")
	k, err := hmacKey(t, m, h, true)
	require.NoError(t, err)
	require.NoError(t, hmacSign(m, h, k))
	cl := slotCluster(t, m)
	require.NoError(t, cl.LoadPlan(&cluster.Plan{Steps: []cluster.Step{{Store: "down", For: cluster.Duration(time.Minute)}}}))

	require.NoError(t, hmacSign(m, h, k), "a cached key")
	require.NoError(t, hmacSign(m, openRW(t, m), k), "a cached key, in another session")
	sk, err := hmacKey(t, m, h, false)
	require.NoError(t, err, "a session key")
	require.NoError(t, hmacSign(m, h, sk))
	err = m.FindObjectsInit(h, attrs.Template{ck.CKA_LABEL: []byte("hmac")})
	require.ErrorIs(t, err, ck.CKR_DEVICE_ERROR)
	require.ErrorIs(t, err, cluster.ErrStoreDown)
	_, err = hmacKey(t, m, h, true)
	require.ErrorIs(t, err, ck.CKR_DEVICE_ERROR)
	require.NoError(t, m.Logout(h), "a logout forgets the login even so")
	require.ErrorIs(t, m.Login(h, ck.CKU_USER, []byte(userPIN)), ck.CKR_DEVICE_ERROR)

	require.NoError(t, cl.ClearPlan())
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)), "the store is back")
	require.NoError(t, m.FindObjectsInit(h, attrs.Template{ck.CKA_LABEL: []byte("hmac")}))
	for i := range 2 {
		ops := opcodes(streamEvents(t, m, i))
		assert.Contains(t, ops, "GOHSM_STORE_FAULT", "stream %d", i)
		assert.Contains(t, ops, "GOHSM_FAULT_PLAN", "stream %d", i)
	}
}

// TestClusterOpenError: a cluster that cannot be opened (its state file
// is no file; its fault plan does not parse) fails C_Initialize with
// CKR_GENERAL_ERROR and a log line, and opens nothing.
func TestClusterOpenError(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "slot-3", clusterStateFile), 0o700))
	logf := filepath.Join(t.TempDir(), "log")
	cfg, err := ParseConfig(fmt.Sprintf("token_dir = %s\nkdf_time = 1\nkdf_memory = 64\nkdf_threads = 1\nlogin_cache = off\nlog_file = %s\n[slot 3]\nhsms = 2\n", dir, logf), "test")
	require.NoError(t, err)
	_, err = Open(cfg)
	require.ErrorIs(t, err, ck.CKR_GENERAL_ERROR)
	assert.Contains(t, err.Error(), "cluster")
	b, err := os.ReadFile(logf)
	require.NoError(t, err)
	assert.Contains(t, string(b), "cluster state cannot be opened")

	plan := writePlan(t, t.TempDir(), `{"steps":[{"at":"soon"}]}`)
	cfg, err = ParseConfig(fmt.Sprintf("token_dir = %s\nkdf_time = 1\nkdf_memory = 64\nkdf_threads = 1\nlogin_cache = off\nlog_level = error\n[slot 3]\nfault_plan = %s\n", t.TempDir(), plan), "test")
	require.NoError(t, err)
	_, err = Open(cfg)
	require.ErrorIs(t, err, ck.CKR_GENERAL_ERROR)
	assert.Contains(t, err.Error(), "fault_plan")
}

// BenchmarkSignHMAC64Cluster is BenchmarkSignHMAC64 in a slot with a
// cluster of 2 HSMs and nothing configured (the cloudhsm profile's
// default): C_SignInit routes the key and checks its availability, C_Sign
// is admitted. On the 2-core test machine, -cpu 1, 4 runs each
// interleaved: 320-450 ns/op without a cluster, 380-590 ns/op with, no
// allocation in either.
func BenchmarkSignHMAC64Cluster(b *testing.B) {
	m := profileModuleLines(b, b.TempDir(), "hsms = 2")
	s, err := m.Slot(3)
	require.NoError(b, err)
	require.NoError(b, s.InitToken([]byte(soPIN), "t"))
	h := openRW(b, m)
	require.NoError(b, m.Login(h, ck.CKU_SO, []byte(soPIN)))
	require.NoError(b, m.InitPIN(h, []byte(userPIN)))
	require.NoError(b, m.Logout(h))
	require.NoError(b, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	key, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_GENERIC_SECRET_KEY_GEN}, attrs.Template{
		ck.CKA_VALUE_LEN: attrs.ULong(32), ck.CKA_TOKEN: attrs.Bool(true), ck.CKA_SIGN: attrs.Bool(true)})
	require.NoError(b, err)
	benchSign(b, m, ck.CKM_SHA256_HMAC, key, make([]byte, 64), 32)
}

// TestClusterStateTokenGroup: the cluster's state file is shared like the
// token's files: 0660 and token_group's gid with it, 0600 without. As
// root (CI) the group is one the process is not in, so that only the
// chown gives it.
func TestClusterStateTokenGroup(t *testing.T) {
	gid := os.Getegid()
	if os.Geteuid() == 0 {
		gid = 65534
	}
	for _, group := range []bool{true, false} {
		dir := t.TempDir()
		top := ""
		if group {
			top = fmt.Sprintf("token_group = %d", gid)
		}
		m, _ := clusterTokenTop(t, dir, top, "hsms = 2")
		s, err := m.Slot(3)
		require.NoError(t, err)
		st, err := os.Stat(filepath.Join(s.Config().Dir, clusterStateFile))
		require.NoError(t, err)
		if group {
			assert.Equal(t, os.FileMode(0o660), st.Mode().Perm())
			assert.Equal(t, uint32(gid), st.Sys().(*syscall.Stat_t).Gid)
		} else {
			assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
		}
	}
}

// TestClusterOpClasses: the class each call of an operation is counted
// in, from the mechanism's key type (decision 3): RSA's private-key
// operations apart from its public ones, ECDSA sign and verify, ciphers,
// MACs (CMAC too); an RSA or EC signature's Updates reach no HSM (SDK 5
// hashes locally), a cipher's and a MAC's do; digests never.
func TestClusterOpClasses(t *testing.T) {
	for _, c := range []struct {
		kind          opKind
		mech          ck.MechanismType
		whole, update cluster.Class
	}{
		{opSign, ck.CKM_SHA256_RSA_PKCS, cluster.ClassRSASign, cluster.ClassNone},
		{opDecrypt, ck.CKM_RSA_PKCS_OAEP, cluster.ClassRSASign, cluster.ClassRSASign},
		{opVerify, ck.CKM_SHA256_RSA_PKCS_PSS, cluster.ClassRSAVerify, cluster.ClassNone},
		{opEncrypt, ck.CKM_RSA_PKCS_OAEP, cluster.ClassRSAVerify, cluster.ClassRSAVerify},
		{opSign, ck.CKM_ECDSA_SHA256, cluster.ClassECSign, cluster.ClassNone},
		{opVerify, ck.CKM_ECDSA, cluster.ClassECVerify, cluster.ClassNone},
		{opEncrypt, ck.CKM_AES_GCM, cluster.ClassSymmetric, cluster.ClassSymmetric},
		{opDecrypt, ck.CKM_AES_CBC_PAD, cluster.ClassSymmetric, cluster.ClassSymmetric},
		{opSign, ck.CKM_SHA256_HMAC, cluster.ClassHMAC, cluster.ClassHMAC},
		{opVerify, ck.CKM_AES_CMAC, cluster.ClassHMAC, cluster.ClassHMAC},
		{opDigest, ck.CKM_SHA256, cluster.ClassNone, cluster.ClassNone},
	} {
		mm, ok := mechanisms.Lookup(c.mech)
		require.True(t, ok, "%v", c.mech)
		whole, update := opClass(c.kind, mm)
		assert.Equal(t, c.whole, whole, "%s %v", opNames[c.kind], c.mech)
		assert.Equal(t, c.update, update, "%s %v: its Updates", opNames[c.kind], c.mech)
	}
}

// TestClusterAllDownStillAudited: with every HSM down a change that needs
// no HSM of the emulation (a user created by the officer) is still
// recorded, in hsm-0's stream: never a change without its record.
func TestClusterAllDownStillAudited(t *testing.T) {
	m, h := clusterToken(t, t.TempDir(), "hsms = 2")
	require.NoError(t, m.Logout(h))
	require.NoError(t, m.Login(h, ck.CKU_SO, []byte(soPIN)))
	cl := slotCluster(t, m)
	require.NoError(t, cl.SetState(0, cluster.Down))
	require.NoError(t, cl.SetState(1, cluster.Down))
	n := len(streamEvents(t, m, 0))
	require.NoError(t, m.CreateUser(h, "carol", store.RoleCU, []byte("carol-pw-12")))
	assert.Equal(t, []string{"CN_CREATE_USER"}, opcodes(streamEvents(t, m, 0)[n:]))
}

// TestClusterLostSessionKeyDestroyAudit: a down HSM writes nothing
// (decision 6), not even the destroy of a session key it held: the
// handle is freed, and no HSM ran the destroy, so no stream records it.
// Once the HSM is back (rebooted) it no longer has the key either.
func TestClusterLostSessionKeyDestroyAudit(t *testing.T) {
	m, h := clusterToken(t, t.TempDir(), "hsms = 2")
	cl := slotCluster(t, m)
	s, err := m.Slot(3)
	require.NoError(t, err)
	destroyed := func(hsm int, key ck.ULong) bool {
		for _, e := range streamEvents(t, m, hsm) {
			if e.Opcode == audit.CN_DESTROY_OBJECT && e.Key == uint64(key) && e.Code == audit.RespSuccess {
				return true
			}
		}
		return false
	}
	for _, back := range []bool{false, true} {
		sk, err := hmacKey(t, m, h, false)
		require.NoError(t, err)
		home := s.sessObjs[sk].hsm
		require.NoError(t, cl.SetState(home, cluster.Down))
		if back {
			require.NoError(t, cl.SetState(home, cluster.Up))
		}
		require.NoError(t, m.DestroyObject(h, sk))
		assert.ErrorIs(t, m.DestroyObject(h, sk), ck.CKR_OBJECT_HANDLE_INVALID, "the handle is freed")
		for i := range 2 {
			assert.False(t, destroyed(i, sk), "back %v: hsm-%d records the destroy of a key lost with hsm-%d", back, i, home)
		}
		require.NoError(t, cl.SetState(home, cluster.Up))
	}
	// A session key whose HSM stayed up: its destroy is in that stream.
	sk, err := hmacKey(t, m, h, false)
	require.NoError(t, err)
	home := s.sessObjs[sk].hsm
	require.NoError(t, m.DestroyObject(h, sk))
	assert.True(t, destroyed(home, sk))
}

// TestClusterLostSessionKeyNotWrapped: a session key lost with its HSM
// (decision 3) cannot be wrapped out either, before or after the HSM is
// back: C_WrapKey answers CKR_KEY_HANDLE_INVALID, as for any other use.
func TestClusterLostSessionKeyNotWrapped(t *testing.T) {
	m, h := clusterToken(t, t.TempDir(), "hsms = 2\nkey_availability_check = false")
	cl := slotCluster(t, m)
	s, err := m.Slot(3)
	require.NoError(t, err)
	aes := func(token bool, wrap bool) ck.ULong {
		k, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, attrs.Template{
			ck.CKA_VALUE_LEN: attrs.ULong(32), ck.CKA_TOKEN: attrs.Bool(token), ck.CKA_WRAP: attrs.Bool(wrap),
			ck.CKA_EXTRACTABLE: attrs.Bool(true)})
		require.NoError(t, err)
		return k
	}
	kek := aes(true, true)
	kw := Mechanism{Type: ck.CKM_AES_KEY_WRAP}
	sk := aes(false, false)
	_, err = m.WrapKey(h, kw, kek, sk, Out{Buf: make([]byte, 64)})
	require.NoError(t, err, "a live session key wraps")
	sk = aes(false, false)
	home := s.sessObjs[sk].hsm
	require.NoError(t, cl.SetState(home, cluster.Down))
	_, err = m.WrapKey(h, kw, kek, sk, Out{Buf: make([]byte, 64)})
	assert.ErrorIs(t, err, ck.CKR_KEY_HANDLE_INVALID, "its HSM is down")
	require.NoError(t, cl.SetState(home, cluster.Up))
	_, err = m.WrapKey(h, kw, kek, sk, Out{Buf: make([]byte, 64)})
	assert.ErrorIs(t, err, ck.CKR_KEY_HANDLE_INVALID, "its HSM rebooted")
}

// TestClusterLostSessionKeyNotCopied: a copy of a session key lost with
// its HSM would be a live key made from a dead one: C_CopyObject answers
// CKR_OBJECT_HANDLE_INVALID (the handle names nothing any HSM holds).
func TestClusterLostSessionKeyNotCopied(t *testing.T) {
	m, h := clusterToken(t, t.TempDir(), "hsms = 2")
	cl := slotCluster(t, m)
	s, err := m.Slot(3)
	require.NoError(t, err)
	sk, err := hmacKey(t, m, h, false)
	require.NoError(t, err)
	cp, err := m.CopyObject(h, sk, nil)
	require.NoError(t, err, "a live session key copies")
	require.NoError(t, hmacSign(m, h, cp))
	home := s.sessObjs[sk].hsm
	require.NoError(t, cl.SetState(home, cluster.Down))
	require.NoError(t, cl.SetState(home, cluster.Up))
	_, err = m.CopyObject(h, sk, nil)
	assert.ErrorIs(t, err, ck.CKR_OBJECT_HANDLE_INVALID)
	_, err = m.CopyObject(h, sk, attrs.Template{ck.CKA_TOKEN: attrs.Bool(true)})
	assert.ErrorIs(t, err, ck.CKR_OBJECT_HANDLE_INVALID, "nor into a token key")
	// Nor changed (a change of CKA_TOKEN would make it a token key).
	assert.ErrorIs(t, m.SetAttributeValue(h, sk, attrs.Template{ck.CKA_LABEL: []byte("x")}), ck.CKR_OBJECT_HANDLE_INVALID)
}

// TestClusterReplicateNeedsAnHSM: CloudHSM CLI's key replicate extracts
// the key from an HSM of the source cluster and inserts it into the
// destination's: with no reachable HSM on either side it fails with
// CKR_DEVICE_ERROR (cluster.ErrNoHSM) and stores nothing, instead of
// copying a key no HSM took part in (and, on the destination with the
// key availability check off, storing it with no audit record at all).
func TestClusterReplicateNeedsAnHSM(t *testing.T) {
	dir := t.TempDir()
	cfg, err := ParseConfig(fmt.Sprintf("token_dir = %s\nkdf_time = 1\nkdf_memory = 64\nkdf_threads = 1\nlogin_cache = off\nlog_level = error\n"+
		"[slot 3]\nlabel = a\nprofile = cloudhsm\n[slot 4]\nlabel = b\nprofile = cloudhsm\nkey_availability_check = false\n", dir), "test")
	require.NoError(t, err)
	m, err := Open(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	for _, slot := range []ck.ULong{3, 4} {
		s, err := m.Slot(slot)
		require.NoError(t, err)
		require.NoError(t, s.InitToken([]byte(soPIN), fmt.Sprint("tok", slot)))
		h := session(t, m, slot, ck.CKU_SO, soPIN)
		require.NoError(t, m.CreateUser(h, "user", store.RoleCU, []byte("user-pw-1")))
		require.NoError(t, m.CloseSession(h))
	}
	src := session(t, m, 3, ck.CKU_USER, userPIN)
	dst := session(t, m, 4, ck.CKU_USER, userPIN)
	key, err := hmacKey(t, m, src, true)
	require.NoError(t, err)
	s3, _ := m.Slot(3)
	s4, _ := m.Slot(4)
	count := func() int {
		n, err := s4.Store().CountOwned("user")
		require.NoError(t, err)
		return n
	}
	before := count()
	for _, down := range []*Slot{s3, s4} {
		for i := range 2 {
			require.NoError(t, down.Cluster().SetState(i, cluster.Down))
		}
		_, err = m.ReplicateKey(src, key, dst)
		assert.ErrorIs(t, err, cluster.ErrNoHSM, "slot %d all down", down.cfg.ID)
		assert.Equal(t, before, count(), "nothing stored")
		require.NoError(t, down.Cluster().Reset())
	}
	_, err = m.ReplicateKey(src, key, dst)
	require.NoError(t, err)
	assert.Equal(t, before+1, count())
}
