package mechanisms

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"math/big"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/internal/ossl"
	"gohsm/internal/testenv"
)

// prepared returns key as the token hands it to m's constructors: with
// the row's Prepare state when the row has one.
func prepared(t *testing.T, m *Mechanism, key any) any {
	t.Helper()
	if m.Prepare == nil {
		return key
	}
	st, err := m.Prepare(key)
	require.NoError(t, err)
	return &Prepared{Key: key, State: st}
}

// needAccel: a cgo build must reach libcrypto (CI installs libssl3), so
// there its absence fails; a build without cgo has Go's crypto only.
func needAccel(t *testing.T) {
	t.Helper()
	if !ossl.Cgo {
		t.Skip("built without cgo: Go's crypto only (the other tests cover it)")
	}
	if err := ossl.Available(); err != nil {
		testenv.Missing(t, "libcrypto: %v", err)
	}
}

func TestAccelEngaged(t *testing.T) {
	needAccel(t)
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	for _, mech := range []ck.MechanismType{ck.CKM_RSA_PKCS, ck.CKM_RSA_X_509, ck.CKM_RSA_PKCS_PSS, ck.CKM_SHA256_RSA_PKCS, ck.CKM_SHA3_512_RSA_PKCS_PSS} {
		st, err := row(t, mech).Prepare(rk)
		require.NoError(t, err)
		assert.IsType(t, &rsaAccelKey{}, st, "%v prepares a libcrypto key", mech)
		st, err = row(t, mech).Prepare(&rk.PublicKey)
		require.NoError(t, err)
		assert.Nil(t, st, "%v: nothing for a public key", mech)
	}
	for _, c := range []struct {
		curve elliptic.Curve
		accel bool
	}{{elliptic.P256(), true}, {elliptic.P224(), false}, {elliptic.P384(), false}, {elliptic.P521(), false}} {
		ek, err := ecdsa.GenerateKey(c.curve, rand.Reader)
		require.NoError(t, err)
		st, err := row(t, ck.CKM_ECDSA_SHA256).Prepare(ek)
		require.NoError(t, err)
		if c.accel {
			assert.IsType(t, &ossl.P256Key{}, st)
		} else {
			assert.Nil(t, st, "%s stays in Go", c.curve.Params().Name)
		}
	}
}

// TestAccelRSAMatchesGo: every RSA signing row gives, with a prepared key,
// what Go's crypto/rsa gives (PKCS#1 v1.5 and raw RSA are deterministic)
// or what it verifies (PSS, random salt), for moduli whose bit length is
// and is not 1 mod 8 (EMSA-PSS's emLen < k case).
func TestAccelRSAMatchesGo(t *testing.T) {
	needAccel(t)
	before := accelMismatches.Load()
	defer func() {
		assert.Equal(t, before, accelMismatches.Load(), "libcrypto results recomputed in Go")
	}()
	for _, bits := range []int{1024, 2048, 2049, 3072} {
		priv, err := rsa.GenerateKey(rand.Reader, bits)
		require.NoError(t, err)
		for _, m := range All() {
			if !slices.Contains(m.KeyTypes, ck.CKK_RSA) || m.Sign == nil {
				continue
			}
			h := rsaRowHash(m.Type)
			msg := make([]byte, 32)
			_, _ = rand.Read(msg)
			var param any
			switch m.Type {
			case ck.CKM_RSA_PKCS_PSS:
				param = &PSSParams{Hash: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA256, SaltLen: 32}
			case ck.CKM_RSA_X_509:
				msg = make([]byte, priv.Size()-1)
				_, _ = rand.Read(msg)
			}
			if m.Param == ParamPSS && h != 0 {
				hm, mgf := pssParamFor(t, h)
				param = &PSSParams{Hash: hm, MGF: mgf, SaltLen: min(h.Size(), (bits-1+7)/8-h.Size()-2)}
			}
			fast, err := signOnce(t, m, prepared(t, m, priv), param, msg)
			require.NoError(t, err, "%v %d bits", m.Type, bits)
			slow, err := signOnce(t, m, priv, param, msg)
			require.NoError(t, err, "%v %d bits", m.Type, bits)
			require.Len(t, fast, priv.Size())
			if m.Param == ParamPSS {
				vh, digest := h, msg
				if h == 0 {
					vh = crypto.SHA256
				} else {
					hf := h.New()
					hf.Write(msg)
					digest = hf.Sum(nil)
				}
				saltLen := param.(*PSSParams).SaltLen
				require.NoError(t, rsa.VerifyPSS(&priv.PublicKey, vh, digest, fast, &rsa.PSSOptions{SaltLength: saltLen}),
					"%v %d bits: crypto/rsa verifies libcrypto's signature", m.Type, bits)
				assert.NotEqual(t, fast, slow, "%v: random salts", m.Type)
				continue
			}
			assert.Equal(t, slow, fast, "%v %d bits: libcrypto and Go agree", m.Type, bits)
		}
		// C_SignRecover with the raw rows.
		for _, mech := range []ck.MechanismType{ck.CKM_RSA_PKCS, ck.CKM_RSA_X_509} {
			m := row(t, mech)
			data := []byte("recoverable")
			fast, err := m.SignRecover(prepared(t, m, priv), nil, data)
			require.NoError(t, err)
			slow, err := m.SignRecover(priv, nil, data)
			require.NoError(t, err)
			assert.Equal(t, slow, fast, "%v sign recover", mech)
		}
		// Raw decryption.
		m := row(t, ck.CKM_RSA_X_509)
		x, err := rand.Int(rand.Reader, priv.N)
		require.NoError(t, err)
		ct := new(big.Int).Exp(x, big.NewInt(int64(priv.E)), priv.N).FillBytes(make([]byte, priv.Size()))
		d, err := m.Decrypt(prepared(t, m, priv), nil)
		require.NoError(t, err)
		pt, err := d.Once(nil, ct)
		require.NoError(t, err)
		assert.Equal(t, x.FillBytes(make([]byte, priv.Size())), pt, "x.509 decrypt")
	}
}

// pssParamFor names a hash's mechanism and MGF1 for CK_RSA_PKCS_PSS_PARAMS.
func pssParamFor(t *testing.T, h crypto.Hash) (ck.MechanismType, ck.ULong) {
	t.Helper()
	for _, a := range hashes {
		if a.hash == h {
			return a.mech, a.mgf
		}
	}
	for _, a := range sha3Hashes {
		if a.hash == h {
			return a.mech, a.mgf
		}
	}
	t.Fatalf("no PSS parameters for %v", h)
	return 0, 0
}

func TestAccelECDSAVerifies(t *testing.T) {
	needAccel(t)
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	for _, m := range All() {
		if m.Prepare == nil || !slices.Contains(m.KeyTypes, ck.CKK_EC) || m.Sign == nil {
			continue
		}
		key := prepared(t, m, priv)
		require.IsType(t, &ossl.P256Key{}, key.(*Prepared).State, "%v", m.Type)
		msg := make([]byte, 32)
		_, _ = rand.Read(msg)
		a, err := signOnce(t, m, key, nil, msg)
		require.NoError(t, err)
		b, err := signOnce(t, m, key, nil, msg)
		require.NoError(t, err)
		assert.NotEqual(t, a, b, "%v: a fresh nonce per signature", m.Type)
		for _, sig := range [][]byte{a, b} {
			require.Len(t, sig, 64)
			assert.NoError(t, verifyOnce(t, m, &priv.PublicKey, nil, msg, sig), "%v", m.Type)
			assert.NoError(t, verifyOnce(t, m, prepared(t, m, &priv.PublicKey), nil, msg, sig), "%v: prepared public key", m.Type)
		}
	}
}

// TestPrepareLeavesTheKeyIntact: preparing a key never changes it (Go's
// ecdsa.PrivateKey.Bytes hands out its own cached scalar; clearing that
// once broke every later Go-path signature with the key).
func TestPrepareLeavesTheKeyIntact(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	// The scalar a signer in progress holds: Go's cache checks it on the
	// next lookup and rebuilds a zeroed one, but not under a running one.
	inUse, err := priv.Bytes()
	require.NoError(t, err)
	want := slices.Clone(inUse)
	m := row(t, ck.CKM_ECDSA)
	_ = prepared(t, m, priv)
	require.Equal(t, want, inUse, "preparing cleared the key's cached scalar")
	digest := make([]byte, 32)
	sig, err := signOnce(t, m, priv, nil, digest) // the Go path, unprepared
	require.NoError(t, err)
	require.NoError(t, verifyOnce(t, m, &priv.PublicKey, nil, digest, sig))
}

// TestAccelResultChecked: a libcrypto result that does not verify with the
// key's public exponent never leaves. With the probe passed, libcrypto's
// own check catches a faulty CRT half (a key whose dP is wrong signs
// right); a state made from another key is still checked in Go and the
// signature recomputed. With the probe failed, every result is checked in
// Go: a faulty one (simulated with a libcrypto key made from another key's
// values) is recomputed and counted.
func TestAccelResultChecked(t *testing.T) {
	needAccel(t)
	require.NoError(t, libcryptoRSACheck(), "this libcrypto checks its results")
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	m := row(t, ck.CKM_SHA256_RSA_PKCS)
	msg := []byte("checked")
	want, err := signOnce(t, m, priv, nil, msg)
	require.NoError(t, err)

	// libcrypto's check: a libcrypto key of priv's with dP one bit off.
	st, err := prepareRSA(priv)
	require.NoError(t, err)
	good := st.(*rsaAccelKey)
	require.False(t, good.checkInGo, "the probe passed: no check in Go")
	pc := priv.Precomputed
	faulty, err := ossl.NewRSAKey(priv.N.Bytes(), big.NewInt(int64(priv.E)).Bytes(), priv.D.Bytes(),
		priv.Primes[0].Bytes(), priv.Primes[1].Bytes(), new(big.Int).Xor(pc.Dp, big.NewInt(1)).Bytes(),
		pc.Dq.Bytes(), pc.Qinv.Bytes())
	require.NoError(t, err)
	crt := &rsaAccelKey{acc: faulty, nBig: good.nBig, e: good.e, n: good.n}
	before := accelMismatches.Load()
	sig, err := signOnce(t, m, &Prepared{Key: priv, State: crt}, nil, msg)
	require.NoError(t, err)
	assert.Equal(t, want, sig, "libcrypto recomputed its faulty CRT result")
	assert.Equal(t, before, accelMismatches.Load(), "and Go saw nothing to recompute")

	// A state made from another key: checked in Go whatever the probe said.
	wrong, err := prepareRSA(other)
	require.NoError(t, err)
	require.False(t, wrong.(*rsaAccelKey).checkInGo)
	sig, err = signOnce(t, m, &Prepared{Key: priv, State: wrong}, nil, msg)
	require.NoError(t, err)
	require.NoError(t, verifyOnce(t, m, &priv.PublicKey, nil, msg, sig), "the recomputed signature verifies")
	assert.Equal(t, before+1, accelMismatches.Load(), "the mismatch is counted")
	assert.Equal(t, want, sig, "and equals Go's")

	// The probe failed (its result made wrong, as a libcrypto without the
	// check returns it): keys prepared now are checked in Go, and a state
	// whose modulus is the key's but whose libcrypto key is another's
	// gives a result that fails the check.
	t.Cleanup(func() { testOnlyRSAProbeResult = nil; libcryptoRSACheck = sync.OnceValue(probeLibcryptoRSACheck) })
	testOnlyRSAProbeResult = func(out []byte) { out[len(out)-1] ^= 1 }
	libcryptoRSACheck = sync.OnceValue(probeLibcryptoRSACheck)
	st, err = prepareRSA(priv)
	require.NoError(t, err)
	checked := st.(*rsaAccelKey)
	require.True(t, checked.checkInGo, "the probe failed: every result checked in Go")
	ran, why := TakeRSAProbe()
	require.True(t, ran)
	require.ErrorContains(t, why, "faulty CRT exponent", "the reason, for the token's warning")
	sig, err = signOnce(t, m, &Prepared{Key: priv, State: checked}, nil, msg)
	require.NoError(t, err)
	assert.Equal(t, want, sig)
	assert.Equal(t, before+1, accelMismatches.Load(), "a right result passes the check")
	checked.acc = wrong.(*rsaAccelKey).acc
	sig, err = signOnce(t, m, &Prepared{Key: priv, State: checked}, nil, msg)
	require.NoError(t, err)
	assert.Equal(t, before+2, accelMismatches.Load(), "the mismatch is counted")
	assert.Equal(t, want, sig, "and the signature is Go's")

	// The same state with the Go check off lets the wrong result out:
	// what the check is for (and why a probe must pass to turn it off).
	checked.checkInGo = false
	sig, err = signOnce(t, m, &Prepared{Key: priv, State: checked}, nil, msg)
	require.NoError(t, err)
	assert.NotEqual(t, want, sig, "unchecked, another key's signature")
}

// TestRSAProbeOnce: the probe of libcrypto's check runs once per process,
// however many RSA keys are prepared (from several goroutines), and hands
// its outcome to one caller of TakeRSAProbe.
func TestRSAProbeOnce(t *testing.T) {
	needAccel(t)
	t.Cleanup(func() { libcryptoRSACheck = sync.OnceValue(probeLibcryptoRSACheck) })
	libcryptoRSACheck = sync.OnceValue(probeLibcryptoRSACheck)
	_, _ = TakeRSAProbe()
	before := rsaProbeRuns.Load()
	keys := make([]*rsa.PrivateKey, 3)
	for i := range keys {
		var err error
		keys[i], err = rsa.GenerateKey(rand.Reader, 1024)
		require.NoError(t, err)
	}
	ran, _ := TakeRSAProbe()
	require.False(t, ran, "no probe before the first key")
	var wg sync.WaitGroup
	for _, k := range keys {
		for range 2 {
			wg.Go(func() {
				st, err := prepareRSA(k)
				assert.NoError(t, err)
				assert.False(t, st.(*rsaAccelKey).checkInGo)
			})
		}
	}
	wg.Wait()
	assert.Equal(t, before+1, rsaProbeRuns.Load(), "one probe for six keys")
	ran, err := TakeRSAProbe()
	assert.True(t, ran)
	assert.NoError(t, err, "this libcrypto checks its results")
	ran, _ = TakeRSAProbe()
	assert.False(t, ran, "handed out once")
}

// TestAccelCheck: the check of a libcrypto result, on the prepared modulus
// and on math/big, takes exactly the signatures of the block.
func TestAccelCheck(t *testing.T) {
	needAccel(t)
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	st, err := prepareRSA(priv)
	require.NoError(t, err)
	k := st.(*rsaAccelKey)
	require.NotNil(t, k.n, "a bigmod modulus")
	plain := &rsaAccelKey{acc: k.acc, nBig: priv.N, e: priv.E} // no modulus: math/big
	size := priv.Size()
	block := make([]byte, size)
	block[1] = 1
	_, _ = rand.Read(block[2:])
	sig := new(big.Int).Exp(new(big.Int).SetBytes(block), priv.D, priv.N).FillBytes(make([]byte, size))
	bad := slices.Clone(sig)
	bad[size-1] ^= 1
	over := priv.N.FillBytes(make([]byte, size)) // n itself: not below n
	for name, c := range map[string]*rsaAccelKey{"bigmod": k, "math/big": plain} {
		assert.True(t, c.verifies(&priv.PublicKey, sig, block), "%s: the signature", name)
		assert.False(t, c.verifies(&priv.PublicKey, bad, block), "%s: one bit off", name)
		assert.False(t, c.verifies(&priv.PublicKey, over, block), "%s: n", name)
		assert.False(t, c.verifies(&priv.PublicKey, sig, over), "%s: a block not below n", name)
		for range 3 { // scratch reused from the pool
			assert.True(t, c.verifies(&priv.PublicKey, sig, block), "%s: again", name)
		}
	}
	// Another key's public half never uses this modulus.
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	assert.False(t, k.verifies(&other.PublicKey, sig, block), "checked with the caller's key")
}
