package mechanisms

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"math/big"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/internal/testenv"
)

func row(t *testing.T, mech ck.MechanismType) *Mechanism {
	t.Helper()
	m, ok := Lookup(mech)
	require.True(t, ok, mech)
	return m
}

// splitRS reads a PKCS#11 ECDSA signature: r || s, each of the curve's
// byte length (PKCS#11 v3.0 "ECDSA signatures").
func splitRS(sig []byte) (*big.Int, *big.Int) {
	n := len(sig) / 2
	return new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:])
}

func TestECDSAInterop(t *testing.T) {
	for _, curve := range []elliptic.Curve{elliptic.P224(), elliptic.P256(), elliptic.P384(), elliptic.P521()} {
		priv, err := ecdsa.GenerateKey(curve, rand.Reader)
		require.NoError(t, err)
		msg := []byte("interoperability")
		h256 := sha256.Sum256(msg)
		h512 := sha512.Sum512(msg)

		// CKM_ECDSA_SHA256 over msg verifies with crypto/ecdsa over SHA-256(msg).
		s, err := row(t, ck.CKM_ECDSA_SHA256).Sign(priv, nil)
		require.NoError(t, err)
		require.NoError(t, s.Update(msg))
		sig, err := s.Sign(nil)
		require.NoError(t, err)
		require.Len(t, sig, 2*byteLen(curve))
		r, ss := splitRS(sig)
		assert.True(t, ecdsa.Verify(&priv.PublicKey, h256[:], r, ss))

		// CKM_ECDSA over a hash longer than the order (SHA-512 on P-256)
		// truncates as crypto/ecdsa does (FIPS 186-5 §6.4.1).
		s, err = row(t, ck.CKM_ECDSA).Sign(priv, nil)
		require.NoError(t, err)
		require.NoError(t, s.Update(h512[:]))
		sig, err = s.Sign(nil)
		require.NoError(t, err)
		r, ss = splitRS(sig)
		assert.True(t, ecdsa.Verify(&priv.PublicKey, h512[:], r, ss))

		// And back: a crypto/ecdsa signature, converted to r || s with
		// padding, verifies here, including when r or s is short.
		for range 20 {
			r, ss, err := ecdsa.Sign(rand.Reader, priv, h256[:])
			require.NoError(t, err)
			n := byteLen(curve)
			sig := make([]byte, 2*n)
			r.FillBytes(sig[:n])
			ss.FillBytes(sig[n:])
			v, err := row(t, ck.CKM_ECDSA).Verify(&priv.PublicKey, nil)
			require.NoError(t, err)
			require.NoError(t, v.Update(h256[:]))
			assert.NoError(t, v.Verify(sig))
		}

		// A DER signature is not the PKCS#11 format.
		der, err := ecdsa.SignASN1(rand.Reader, priv, h256[:])
		require.NoError(t, err)
		v, err := row(t, ck.CKM_ECDSA).Verify(&priv.PublicKey, nil)
		require.NoError(t, err)
		require.NoError(t, v.Update(h256[:]))
		err = v.Verify(der)
		assert.True(t, errorsIsAny(err, ck.CKR_SIGNATURE_LEN_RANGE, ck.CKR_SIGNATURE_INVALID), "%v", err)
	}
}

// secp256k1 through the decred library, cross-checked with crypto/ecdsa's
// generic (math/big, elliptic.Curve) code on the same curve value: an
// independent implementation both ways. The library's s is always the low
// one (BIP 62); a high s verifies too.
func TestSecp256k1Interop(t *testing.T) {
	priv := genEC(t, secp256k1Curve)
	pub := &priv.PublicKey
	msg := []byte("interoperability")
	h := sha256.Sum256(msg)
	half := new(big.Int).Rsh(secp256k1Curve.Params().N, 1)
	for range 10 {
		s, err := row(t, ck.CKM_ECDSA_SHA256).Sign(priv, nil)
		require.NoError(t, err)
		require.NoError(t, s.Update(msg))
		sig, err := s.Sign(nil)
		require.NoError(t, err)
		r, ss := splitRS(sig)
		assert.True(t, ecdsa.Verify(pub, h[:], r, ss), "crypto/ecdsa generic verify")
		assert.LessOrEqual(t, ss.Cmp(half), 0, "low s")

		high := make([]byte, 64)
		r.FillBytes(high[:32])
		new(big.Int).Sub(secp256k1Curve.Params().N, ss).FillBytes(high[32:])
		v, err := row(t, ck.CKM_ECDSA).Verify(pub, nil)
		require.NoError(t, err)
		require.NoError(t, v.Update(h[:]))
		assert.NoError(t, v.Verify(high))
	}
	// Deterministic (RFC 6979): the same message gives the same signature.
	sign := func() []byte {
		s, err := row(t, ck.CKM_ECDSA).Sign(priv, nil)
		require.NoError(t, err)
		require.NoError(t, s.Update(h[:]))
		return must(s.Sign(nil))
	}
	assert.Equal(t, sign(), sign())
	for range 10 {
		r, ss, err := ecdsa.Sign(rand.Reader, priv, h[:]) // generic path
		require.NoError(t, err)
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		ss.FillBytes(sig[32:])
		v, err := row(t, ck.CKM_ECDSA).Verify(pub, nil)
		require.NoError(t, err)
		require.NoError(t, v.Update(h[:]))
		assert.NoError(t, v.Verify(sig))
	}
	// r or s of zero or >= n.
	n := secp256k1Curve.Params().N.FillBytes(make([]byte, 32))
	for name, sig := range map[string][]byte{
		"r = 0": append(make([]byte, 32), n[:31]...),
		"s = n": append(bytes.Repeat([]byte{1}, 32), n...),
		"r = n": append(bytes.Clone(n), bytes.Repeat([]byte{1}, 32)...),
	} {
		if len(sig) != 64 {
			sig = append(sig, 1)
		}
		v, err := row(t, ck.CKM_ECDSA).Verify(pub, nil)
		require.NoError(t, err)
		require.NoError(t, v.Update(h[:]))
		assert.ErrorIs(t, v.Verify(sig), ck.CKR_SIGNATURE_INVALID, name)
	}
}

// BenchmarkECDSAP256SignDirect is crypto/ecdsa.Sign called directly, the
// yardstick for BenchmarkECDSAP256Sign (bench_test.go), the row's cost.
func BenchmarkECDSAP256SignDirect(b *testing.B) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	hash := make([]byte, 32)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ecdsa.Sign(rand.Reader, priv, hash); err != nil {
			b.Fatal(err)
		}
	}
}

// TestECDSAEmptyInput: CKM_ECDSA takes input of any length, the empty one
// included (its integer is 0), on every curve and on both signing paths,
// with the same result whichever Go toolchain builds the module (Go 1.27's
// crypto/ecdsa refuses an empty digest; Go 1.26's and libcrypto accept it).
func TestECDSAEmptyInput(t *testing.T) {
	m := row(t, ck.CKM_ECDSA)
	for _, curve := range []elliptic.Curve{elliptic.P224(), elliptic.P256(), elliptic.P384(), elliptic.P521()} {
		priv, err := ecdsa.GenerateKey(curve, rand.Reader)
		require.NoError(t, err)
		keys := []any{priv}
		if st, err := m.Prepare(priv); err == nil && st != nil {
			keys = append(keys, &Prepared{Key: priv, State: st}) // P-256 in libcrypto
		}
		for _, key := range keys {
			sig, err := signOnce(t, m, key, nil, nil)
			require.NoError(t, err, "%s", curve.Params().Name)
			assert.NoError(t, verifyOnce(t, m, &priv.PublicKey, nil, nil, sig), "%s: empty input verifies", curve.Params().Name)
			assert.NoError(t, verifyOnce(t, m, &priv.PublicKey, nil, []byte{0, 0}, sig), "%s: as zero bytes do (the same integer)", curve.Params().Name)
			assert.ErrorIs(t, verifyOnce(t, m, &priv.PublicKey, nil, []byte{1}, sig), ck.CKR_SIGNATURE_INVALID, "%s", curve.Params().Name)
		}
	}
}

// TestECDSARawInputHeldInSigner: CKM_ECDSA keeps its raw input in the
// signer up to 64 bytes and on the heap beyond; either way, in one part or
// several, on Go's curves and libcrypto's P-256, the signature is over
// exactly that input, and two signers of one key never share it.
func TestECDSARawInputHeldInSigner(t *testing.T) {
	m := row(t, ck.CKM_ECDSA)
	for _, curve := range []elliptic.Curve{elliptic.P256(), elliptic.P384(), elliptic.P521()} {
		priv, err := ecdsa.GenerateKey(curve, rand.Reader)
		require.NoError(t, err)
		for _, key := range []any{priv, prepared(t, m, priv)} {
			for _, n := range []int{0, 1, 32, 63, 64, 65, 66, 200} {
				msg := make([]byte, n)
				_, _ = rand.Read(msg)
				s1, err := m.Sign(key, nil)
				require.NoError(t, err)
				s2, err := m.Sign(key, nil)
				require.NoError(t, err)
				other := bytes.Clone(msg) // differs in its first byte, which every curve reads
				if n > 0 {
					other[0] ^= 0xff
				}
				require.NoError(t, s2.Update(other))
				half := n / 2
				require.NoError(t, s1.Update(msg[:half]))
				require.NoError(t, s1.Update(msg[half:]))
				sig, err := s1.Sign(nil)
				require.NoError(t, err, "%s, %d bytes", curve.Params().Name, n)
				assert.NoError(t, verifyOnce(t, m, &priv.PublicKey, nil, msg, sig), "%s, %d bytes", curve.Params().Name, n)
				sig2, err := s2.Sign(nil)
				require.NoError(t, err)
				assert.NoError(t, verifyOnce(t, m, &priv.PublicKey, nil, other, sig2), "%s, %d bytes: the other signer", curve.Params().Name, n)
				if n > 0 {
					assert.Error(t, verifyOnce(t, m, &priv.PublicKey, nil, other, sig), "%s, %d bytes: not over the other's input", curve.Params().Name, n)
				}
			}
		}
	}
}

// TestECDSASignerReleased: a released CKM_ECDSA signer refuses to be used
// again, and the next signer (the same memory, from the pool) signs with
// its own key and input only, on Go's curves and libcrypto's P-256, even
// when the released one held more than 64 bytes of input.
func TestECDSASignerReleased(t *testing.T) {
	m := row(t, ck.CKM_ECDSA)
	a, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	for _, curve := range []elliptic.Curve{elliptic.P256(), elliptic.P384()} {
		b, err := ecdsa.GenerateKey(curve, rand.Reader)
		require.NoError(t, err)
		for _, key := range []any{b, prepared(t, m, b)} {
			s1, err := m.Sign(prepared(t, m, a), nil)
			require.NoError(t, err)
			require.NoError(t, s1.Update(bytes.Repeat([]byte{7}, 100)))
			r, ok := s1.(Releaser)
			require.True(t, ok, "a CKM_ECDSA signer can be released")
			r.Release()
			assert.ErrorIs(t, s1.Update([]byte{1}), ck.CKR_OPERATION_NOT_INITIALIZED)
			_, err = s1.Sign(nil)
			assert.ErrorIs(t, err, ck.CKR_OPERATION_NOT_INITIALIZED)
			assert.Zero(t, s1.Size())
			r.Release() // twice: nothing more goes to the pool

			msg := []byte("the next signer's input")
			s2, err := m.Sign(key, nil)
			require.NoError(t, err)
			assert.Equal(t, 2*byteLen(curve), s2.Size())
			require.NoError(t, s2.Update(msg))
			sig, err := s2.Sign(nil)
			require.NoError(t, err, curve.Params().Name)
			assert.NoError(t, verifyOnce(t, m, &b.PublicKey, nil, msg, sig), "%s: its own key and input", curve.Params().Name)
			s2.(Releaser).Release()
		}
	}
}

// TestECDSASignerPoolAllocs: CKM_ECDSA's constructor, Update, Sign and
// Release allocate nothing once a signer is in the pool (libcrypto's
// P-256).
func TestECDSASignerPoolAllocs(t *testing.T) {
	m := row(t, ck.CKM_ECDSA)
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	key := prepared(t, m, priv)
	if ecdsaAccel(key) == nil {
		t.Skip("P-256 signs in Go without libcrypto: crypto/ecdsa allocates")
	}
	if testenv.Race {
		t.Skip("the race detector's instrumentation allocates")
	}
	digest, out := make([]byte, 32), make([]byte, 0, 64)
	sign := func() {
		s, err := m.Sign(key, nil)
		if err != nil {
			panic(err)
		}
		if err := s.Update(digest); err != nil {
			panic(err)
		}
		if _, err := s.Sign(out); err != nil {
			panic(err)
		}
		s.(Releaser).Release()
	}
	sign()
	assert.Zero(t, testing.AllocsPerRun(100, sign))
}
