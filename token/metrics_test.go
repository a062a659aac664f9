package token

import (
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/internal/testenv"
	"gohsm/mechanisms"
	"gohsm/token/attrs"
	"gohsm/token/cluster"
	"gohsm/token/metrics"
)

// metricsReader opens the reader of slot 3's metrics file.
func metricsReader(t *testing.T, m *Module) *metrics.Reader {
	t.Helper()
	s, err := m.Slot(3)
	require.NoError(t, err)
	r, err := metrics.OpenReader(s.cfg.Dir)
	require.NoError(t, err)
	return r
}

// delta is cur - prev of each class's calls, failed and throttled, for
// the classes that moved.
func delta(prev, cur metrics.Sample) map[string][3]uint64 {
	out := map[string][3]uint64{}
	for c := cluster.ClassNone; c < cluster.NumClasses; c++ {
		p, q := prev.Classes[c], cur.Classes[c]
		if d := [3]uint64{q.Calls - p.Calls, q.Failed - p.Failed, q.Throttled - p.Throttled}; d != [3]uint64{} {
			out[c.String()] = d
		}
	}
	return out
}

func bucketSum(t metrics.Totals) (n uint64) {
	for _, b := range t.Buckets {
		n += b
	}
	return n
}

// Every kind of counted call lands in its class exactly; a length query,
// a short buffer and updates do not count; failures do.
func TestMetricsCountedByClass(t *testing.T) {
	dir := t.TempDir()
	m, h := clusterToken(t, dir, "metrics = on")
	s, err := m.Slot(3)
	require.NoError(t, err)
	require.Nil(t, s.Cluster(), "a slot without a cluster counts too")
	r := metricsReader(t, m)
	s0 := r.Sample()

	// keygen x3
	hk, err := hmacKey(t, m, h, true)
	require.NoError(t, err)
	_, ecPriv := ecKeyPair(t, m, h, "ec")
	aes, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("aes", false))
	require.NoError(t, err)

	// hmac: 3 signs (one after a length query, one after a short
	// buffer), 2 verifies of which 1 fails.
	require.NoError(t, hmacSign(m, h, hk))
	require.NoError(t, m.SignInit(h, Mechanism{Type: ck.CKM_SHA256_HMAC}, hk))
	n, err := m.Sign(h, []byte("data"), Out{Query: true})
	require.NoError(t, err)
	_, err = m.Sign(h, []byte("data"), Out{Buf: make([]byte, n)})
	require.NoError(t, err)
	require.NoError(t, m.SignInit(h, Mechanism{Type: ck.CKM_SHA256_HMAC}, hk))
	_, err = m.Sign(h, []byte("data"), Out{Buf: make([]byte, 4)})
	require.ErrorIs(t, err, ck.CKR_BUFFER_TOO_SMALL)
	mac := make([]byte, 32)
	_, err = m.Sign(h, []byte("data"), Out{Buf: mac})
	require.NoError(t, err)
	require.NoError(t, m.VerifyInit(h, Mechanism{Type: ck.CKM_SHA256_HMAC}, hk))
	require.NoError(t, m.Verify(h, []byte("data"), mac))
	require.NoError(t, m.VerifyInit(h, Mechanism{Type: ck.CKM_SHA256_HMAC}, hk))
	require.ErrorIs(t, m.Verify(h, []byte("other"), mac), ck.CKR_SIGNATURE_INVALID)

	// ec-sign: one single-part, one multi-part (updates not counted).
	require.NoError(t, m.SignInit(h, Mechanism{Type: ck.CKM_ECDSA_SHA256}, ecPriv))
	_, err = m.Sign(h, []byte("data"), Out{Buf: make([]byte, 64)})
	require.NoError(t, err)
	require.NoError(t, m.SignInit(h, Mechanism{Type: ck.CKM_ECDSA_SHA256}, ecPriv))
	for range 3 {
		require.NoError(t, m.SignUpdate(h, []byte("part")))
	}
	_, err = m.SignFinal(h, Out{Buf: make([]byte, 64)})
	require.NoError(t, err)

	// symmetric: AES-GCM encrypt x2; a digest is no class.
	for range 2 {
		require.NoError(t, m.EncryptInit(h, Mechanism{Type: ck.CKM_AES_GCM, Param: gcmParams()}, aes))
		_, err = m.Encrypt(h, []byte("plain"), Out{Buf: make([]byte, 64)})
		require.NoError(t, err)
	}
	require.NoError(t, m.DigestInit(h, Mechanism{Type: ck.CKM_SHA256}))
	_, err = m.Digest(h, []byte("x"), Out{Buf: make([]byte, 32)})
	require.NoError(t, err)

	// random x4
	for range 4 {
		require.NoError(t, m.GenerateRandom(h, make([]byte, 16)))
	}
	// manage: a wrong and a right login, a data object made and found.
	require.NoError(t, m.Logout(h))
	require.ErrorIs(t, m.Login(h, ck.CKU_USER, []byte("wrong-pin")), ck.CKR_PIN_INCORRECT)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	obj, err := m.CreateObject(h, attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_DATA)), ck.CKA_LABEL: []byte("d")})
	require.NoError(t, err)
	require.NoError(t, m.FindObjectsInit(h, attrs.Template{}))
	require.NoError(t, m.FindObjectsFinal(h))
	require.NoError(t, m.DestroyObject(h, obj))

	s1 := r.Sample()
	assert.Equal(t, map[string][3]uint64{
		"keygen":    {3, 0, 0},
		"hmac":      {5, 1, 0},
		"ec-sign":   {2, 0, 0},
		"symmetric": {2, 0, 0},
		"random":    {4, 0, 0},
		"manage":    {5, 1, 0},
	}, delta(s0, s1))
	ec := s1.Classes[cluster.ClassECSign]
	assert.Equal(t, ec.Calls, bucketSum(ec), "every call has its latency bucket")
	assert.Greater(t, ec.SumNS, uint64(0))
	rates := metrics.RatesOf(s0, s1)
	assert.Greater(t, rates.Classes["ec-sign"].P50US, 1.0, "an ECDSA signature takes microseconds")
}

// Throttled calls (throttle.ec-sign = 1, no SDK retry) are counted as
// throttled and failed.
func TestMetricsThrottled(t *testing.T) {
	dir := t.TempDir()
	m, h := clusterToken(t, dir, "metrics = on\nhsms = 1\nkey_availability_check = false\nthrottle.ec-sign = 1\nretry_mode = off")
	_, priv := ecKeyPair(t, m, h, "ec")
	r := metricsReader(t, m)
	s0 := r.Sample()
	var ok, throttled uint64
	for range 10 {
		require.NoError(t, m.SignInit(h, Mechanism{Type: ck.CKM_ECDSA_SHA256}, priv))
		_, err := m.Sign(h, []byte("data"), Out{Buf: make([]byte, 64)})
		switch {
		case err == nil:
			ok++
		case errors.Is(err, cluster.ErrThrottled):
			throttled++
		default:
			require.NoError(t, err)
		}
	}
	require.Positive(t, throttled)
	assert.Equal(t, map[string][3]uint64{"ec-sign": {ok + throttled, throttled, throttled}}, delta(s0, r.Sample()))
}

// auto counts while a console's lease runs, off opens no file.
func TestMetricsModes(t *testing.T) {
	dir := t.TempDir()
	m, h := clusterToken(t, dir, "")
	s, err := m.Slot(3)
	require.NoError(t, err)
	assert.Equal(t, metrics.Auto, s.MetricsMode())
	hk, err := hmacKey(t, m, h, false)
	require.NoError(t, err)
	r := metricsReader(t, m)
	s0 := r.Sample()
	require.NoError(t, hmacSign(m, h, hk))
	assert.Empty(t, delta(s0, r.Sample()), "nobody watches")
	r.Watch(time.Now().Add(5 * time.Second))
	require.NoError(t, hmacSign(m, h, hk))
	assert.Equal(t, map[string][3]uint64{"hmac": {1, 0, 0}}, delta(s0, r.Sample()))
	r.Watch(time.Now().Add(-time.Second))
	require.NoError(t, hmacSign(m, h, hk))
	assert.Equal(t, map[string][3]uint64{"hmac": {1, 0, 0}}, delta(s0, r.Sample()), "the lease ran out")

	dir2 := t.TempDir()
	m2, _ := clusterTokenTop(t, dir2, "metrics = off", "")
	s2, err := m2.Slot(3)
	require.NoError(t, err)
	assert.Nil(t, s2.mt)
	_, err = os.Stat(filepath.Join(s2.cfg.Dir, metricsFile))
	assert.ErrorIs(t, err, os.ErrNotExist)

	// A slot's own value wins over the top level's.
	cfg := testConfigLines(t, t.TempDir(), "metrics = off", "metrics = on")
	assert.Equal(t, metrics.On, cfg.Slots[0].Metrics)
}

func TestMetricsConfigError(t *testing.T) {
	_, err := ParseConfig("token_dir = /tmp/x\nmetrics = maybe\n", "test")
	require.ErrorContains(t, err, `test:2: metrics "maybe": want auto, on or off`)
	_, err = ParseConfig("token_dir = /tmp/x\n[slot 1]\nmetrics = 1\n", "test")
	require.ErrorContains(t, err, `test:3: metrics "1": want auto, on or off`)
}

// The hook adds no allocation to C_SignInit + C_Sign: on costs what off
// costs.
func TestMetricsSignAllocs(t *testing.T) {
	if testenv.Race {
		t.Skip("the race detector's instrumentation allocates, and not the same each run")
	}
	allocs := map[string]float64{}
	for _, mode := range []string{"off", "on"} {
		m, h := clusterToken(t, t.TempDir(), "metrics = "+mode)
		hk, err := hmacKey(t, m, h, false)
		require.NoError(t, err)
		out := Out{Buf: make([]byte, 32)}
		data := []byte("data")
		mech := Mechanism{Type: ck.CKM_SHA256_HMAC}
		r := metricsReader(t, m)
		s0 := r.Sample()
		allocs[mode] = testing.AllocsPerRun(200, func() {
			if err := m.SignInit(h, mech, hk); err != nil {
				panic(err)
			}
			if _, err := m.Sign(h, data, out); err != nil {
				panic(err)
			}
		})
		if mode == "on" {
			assert.Equal(t, uint64(201), delta(s0, r.Sample())["hmac"][0], "the calls were counted")
		}
	}
	t.Logf("allocations per SignInit+Sign: %v", allocs)
	assert.Equal(t, allocs["off"], allocs["on"])
}

// With token_group the metrics file is the token files' mode and group
// (another group than the process's when running as root).
func TestMetricsFileTokenGroup(t *testing.T) {
	dir := t.TempDir()
	gid := os.Getegid()
	if os.Geteuid() == 0 {
		gid = 65534 // nogroup: root can give files to it
	}
	cfg, err := ParseConfig(fmt.Sprintf("token_dir = %s\nkdf_time = 1\nkdf_memory = 64\nkdf_threads = 1\nlogin_cache = off\ntoken_group = %d\nmetrics = on\n", dir, gid), "test")
	require.NoError(t, err)
	m, err := Open(cfg)
	require.NoError(t, err)
	require.NoError(t, m.Close())
	st, err := os.Stat(filepath.Join(dir, "slot-0", metricsFile))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o660), st.Mode().Perm())
	assert.Equal(t, uint32(gid), st.Sys().(*syscall.Stat_t).Gid)
}

// Wrap, unwrap and derive count in their key family's class (AES key
// wrap: symmetric; ECDH: ec-sign); a wrap's length query does not.
func TestMetricsWrapUnwrapDerive(t *testing.T) {
	m, h := clusterToken(t, t.TempDir(), "metrics = on")
	kek, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("kek", false))
	require.NoError(t, err)
	target, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, extractableAES("target"))
	require.NoError(t, err)
	_, priv, err := m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN},
		attrs.Template{ck.CKA_EC_PARAMS: p256}, attrs.Template{ck.CKA_DERIVE: attrs.Bool(true)})
	require.NoError(t, err)
	peer, err := ecdh.P256().GenerateKey(rand.Reader)
	require.NoError(t, err)
	r := metricsReader(t, m)
	s0 := r.Sample()

	kw := Mechanism{Type: ck.CKM_AES_KEY_WRAP}
	n, err := m.WrapKey(h, kw, kek, target, Out{Query: true})
	require.NoError(t, err)
	wrapped := make([]byte, n)
	_, err = m.WrapKey(h, kw, kek, target, Out{Buf: wrapped})
	require.NoError(t, err)
	_, err = m.UnwrapKey(h, kw, kek, wrapped, attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY)),
		ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_AES))})
	require.NoError(t, err)
	_, err = m.UnwrapKey(h, kw, kek, wrapped[1:], attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY)),
		ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_AES))})
	require.Error(t, err)
	_, err = m.DeriveKey(h, Mechanism{Type: ck.CKM_ECDH1_DERIVE, Param: &mechanisms.ECDH1Params{KDF: ck.CKD_NULL, PublicData: peer.PublicKey().Bytes()}}, priv,
		attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY)), ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_GENERIC_SECRET)), ck.CKA_VALUE_LEN: attrs.ULong(32)})
	require.NoError(t, err)
	assert.Equal(t, map[string][3]uint64{"symmetric": {3, 1, 0}, "ec-sign": {1, 0, 0}}, delta(s0, r.Sample()))
}
