package mechanisms

import (
	"bytes"
	"crypto/mldsa"
	"crypto/rand"
	"slices"
	"testing"

	"github.com/cloudflare/circl/sign"
	"github.com/cloudflare/circl/sign/mldsa/mldsa44"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"github.com/cloudflare/circl/sign/mldsa/mldsa87"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/internal/wycheproof"
)

var mldsaVectorSets = []struct {
	name string
	set  ck.ULong
	circ sign.Scheme
}{
	{"44", ck.CKP_ML_DSA_44, mldsa44.Scheme()},
	{"65", ck.CKP_ML_DSA_65, mldsa65.Scheme()},
	{"87", ck.CKP_ML_DSA_87, mldsa87.Scheme()},
}

// CK_SIGN_ADDITIONAL_CONTEXT in the conformance suite: a context, signed
// deterministically; another context or none must not verify what it signed.
func init() {
	paramCases[ParamSignContext] = func(*testing.T, *Mechanism, *fixture) (any, []any) {
		return &SignContextParams{Hedge: ck.CKH_DETERMINISTIC_REQUIRED, Context: []byte("gohsm")}, []any{
			nil,
			&SignContextParams{Context: []byte("gohsM")},
			&SignContextParams{Hedge: ck.CKH_DETERMINISTIC_REQUIRED},
		}
	}
}

// mldsaSignOnce signs msg through the CKM_ML_DSA row.
func mldsaSignOnce(t *testing.T, key any, param any, msg []byte) ([]byte, error) {
	t.Helper()
	s, err := row(t, ck.CKM_ML_DSA).Sign(key, param)
	if err != nil {
		return nil, err
	}
	require.NoError(t, s.Update(msg))
	return s.Sign(nil)
}

func mldsaVerifyOnce(t *testing.T, key any, param any, msg, sig []byte) error {
	t.Helper()
	v, err := row(t, ck.CKM_ML_DSA).Verify(key, param)
	if err != nil {
		return err
	}
	require.NoError(t, v.Update(msg))
	return v.Verify(sig)
}

// TestMLDSAWycheproofSign: Wycheproof's mldsa_*_sign_seed vectors. Key
// generation from the seed must give the group's public key; deterministic
// signing (CKH_DETERMINISTIC_REQUIRED) with the case's context must give
// the case's signature; the expanded key (CKA_VALUE) must sign the same
// signature when loaded alone into an independent implementation; a bad
// seed length or a context over 255 bytes is refused. Decided apart:
// "Randomized" cases (the vector's rnd cannot be injected: the hedged
// signature is checked to verify instead) and "Internal" cases (μ given
// without a message: external μ is no PKCS#11 mechanism gohsm offers).
func TestMLDSAWycheproofSign(t *testing.T) {
	skipVectorsUnderRace(t, "11 s")
	for _, vs := range mldsaVectorSets {
		t.Run(vs.name, func(t *testing.T) {
			t.Parallel()
			f := wycheproof.LoadC2SP(t, "mldsa_"+vs.name+"_sign_seed_test.json")
			var n, valid, internal, randomized int
			for _, g := range f.Groups {
				seed := wycheproof.Hex(t, g.Fields, "privateSeed")
				sk, keyErr := MLDSAPrivateKey(vs.set, seed)
				if keyErr == nil {
					require.Equal(t, wycheproof.Hex(t, g.Fields, "publicKey"), sk.PublicKey().Bytes(), "public key from seed")
				}
				for _, tc := range g.Tests {
					n++
					if keyErr != nil {
						require.Equal(t, "invalid", tc.Result, "tc %d: key refused: %v", tc.ID, keyErr)
						require.Contains(t, tc.Flags, "IncorrectPrivateKeyLength", "tc %d", tc.ID)
						require.ErrorIs(t, keyErr, ck.CKR_ATTRIBUTE_VALUE_INVALID)
						continue
					}
					if _, ok := tc.Fields["msg"]; !ok {
						require.Contains(t, tc.Flags, "Internal", "tc %d", tc.ID)
						internal++
						continue
					}
					msg := wycheproof.Hex(t, tc.Fields, "msg")
					ctx := wycheproof.Hex(t, tc.Fields, "ctx")
					want := wycheproof.Hex(t, tc.Fields, "sig")
					param := &SignContextParams{Hedge: ck.CKH_DETERMINISTIC_REQUIRED, Context: ctx}
					if slices.Contains(tc.Flags, "Randomized") {
						randomized++
						param.Hedge = ck.CKH_HEDGE_REQUIRED
					}
					sig, err := mldsaSignOnce(t, sk, param, msg)
					switch tc.Result {
					case "valid":
						valid++
						require.NoError(t, err, "tc %d", tc.ID)
						if param.Hedge == ck.CKH_HEDGE_REQUIRED {
							assert.NotEqual(t, want, sig, "tc %d: hedged signature equals the vector's", tc.ID)
						} else {
							assert.Equal(t, want, sig, "tc %d %s", tc.ID, tc.Comment)
						}
						assert.NoError(t, mldsaVerifyOnce(t, sk.PublicKey(), param, msg, sig), "tc %d", tc.ID)
						// The expanded key, alone, in circl.
						ek, err := vs.circ.UnmarshalBinaryPrivateKey(MLDSAExpandedKey(sk))
						require.NoError(t, err)
						if param.Hedge == ck.CKH_DETERMINISTIC_REQUIRED {
							got := vs.circ.Sign(ek, msg, &sign.SignatureOpts{Context: string(ctx)})
							assert.Equal(t, want, got, "tc %d: circl from CKA_VALUE", tc.ID)
						}
					case "invalid":
						require.Contains(t, tc.Flags, "InvalidContext", "tc %d", tc.ID)
						assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "tc %d", tc.ID)
					default:
						t.Fatalf("tc %d: result %q", tc.ID, tc.Result)
					}
				}
			}
			require.Positive(t, valid)
			t.Logf("%d cases: %d valid, %d internal (external μ: not offered), %d randomized (checked by verification)", n, valid, internal, randomized)
		})
	}
}

// TestMLDSAWycheproofVerify: Wycheproof's mldsa_*_verify vectors through
// the CKM_ML_DSA row: every valid case verifies; every invalid one fails
// with CKR_SIGNATURE_INVALID, CKR_SIGNATURE_LEN_RANGE (a wrong length),
// CKR_MECHANISM_PARAM_INVALID (a context over 255 bytes) or, for a public
// key of the wrong length, CKR_ATTRIBUTE_VALUE_INVALID when it is loaded.
func TestMLDSAWycheproofVerify(t *testing.T) {
	for _, vs := range mldsaVectorSets {
		t.Run(vs.name, func(t *testing.T) {
			t.Parallel()
			f := wycheproof.LoadC2SP(t, "mldsa_"+vs.name+"_verify_test.json")
			var n, valid, invalid int
			for _, g := range f.Groups {
				pk, keyErr := MLDSAPublicKey(vs.set, wycheproof.Hex(t, g.Fields, "publicKey"))
				for _, tc := range g.Tests {
					n++
					if keyErr != nil {
						invalid++
						require.Equal(t, "invalid", tc.Result, "tc %d: key refused: %v", tc.ID, keyErr)
						require.Contains(t, tc.Flags, "IncorrectPublicKeyLength", "tc %d", tc.ID)
						require.ErrorIs(t, keyErr, ck.CKR_ATTRIBUTE_VALUE_INVALID)
						continue
					}
					msg := wycheproof.Hex(t, tc.Fields, "msg")
					ctx := wycheproof.Hex(t, tc.Fields, "ctx")
					sig := wycheproof.Hex(t, tc.Fields, "sig")
					var param any
					if ctx != nil {
						param = &SignContextParams{Context: ctx}
					}
					err := mldsaVerifyOnce(t, pk, param, msg, sig)
					switch tc.Result {
					case "valid":
						valid++
						assert.NoError(t, err, "tc %d %s", tc.ID, tc.Comment)
					case "invalid":
						invalid++
						switch {
						case slices.Contains(tc.Flags, "InvalidContext"):
							assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "tc %d", tc.ID)
						case slices.Contains(tc.Flags, "IncorrectSignatureLength"):
							assert.ErrorIs(t, err, ck.CKR_SIGNATURE_LEN_RANGE, "tc %d", tc.ID)
						default:
							assert.ErrorIs(t, err, ck.CKR_SIGNATURE_INVALID, "tc %d %s %v", tc.ID, tc.Comment, tc.Flags)
						}
					default:
						t.Fatalf("tc %d: result %q", tc.ID, tc.Result)
					}
				}
			}
			require.Positive(t, valid)
			require.Positive(t, invalid)
			t.Logf("%d cases: %d valid, %d invalid", n, valid, invalid)
		})
	}
}

// TestMLDSAParams: the parameter rules of CKM_ML_DSA.
func TestMLDSAParams(t *testing.T) {
	m := row(t, ck.CKM_ML_DSA)
	sk, err := MLDSAPrivateKey(ck.CKP_ML_DSA_44, bytes.Repeat([]byte{7}, 32))
	require.NoError(t, err)
	msg := []byte("message")

	// No parameter: hedged, empty context; two signatures differ, both verify
	// with and without an explicit empty context.
	a, err := mldsaSignOnce(t, sk, nil, msg)
	require.NoError(t, err)
	b, err := mldsaSignOnce(t, sk, nil, msg)
	require.NoError(t, err)
	assert.NotEqual(t, a, b, "hedged signatures")
	assert.Len(t, a, mldsa.MLDSA44().SignatureSize())
	require.NoError(t, mldsaVerifyOnce(t, sk.PublicKey(), nil, msg, a))
	require.NoError(t, mldsaVerifyOnce(t, sk.PublicKey(), &SignContextParams{Hedge: ck.CKH_DETERMINISTIC_REQUIRED}, msg, b))

	// Deterministic: equal, and equal to crypto/mldsa's.
	det := &SignContextParams{Hedge: ck.CKH_DETERMINISTIC_REQUIRED, Context: []byte("ctx")}
	c, err := mldsaSignOnce(t, sk, det, msg)
	require.NoError(t, err)
	d, err := mldsaSignOnce(t, sk, det, msg)
	require.NoError(t, err)
	assert.Equal(t, c, d)
	direct, err := sk.SignDeterministic(msg, &mldsa.Options{Context: "ctx"})
	require.NoError(t, err)
	assert.Equal(t, direct, c)

	// The context is bound: a different one does not verify.
	assert.ErrorIs(t, mldsaVerifyOnce(t, sk.PublicKey(), &SignContextParams{Context: []byte("ctX")}, msg, c), ck.CKR_SIGNATURE_INVALID)
	assert.ErrorIs(t, mldsaVerifyOnce(t, sk.PublicKey(), nil, msg, c), ck.CKR_SIGNATURE_INVALID)
	// Multi-part signing is the same message.
	s, err := m.Sign(sk, det)
	require.NoError(t, err)
	require.NoError(t, s.Update([]byte("mess")))
	require.NoError(t, s.Update([]byte("age")))
	e, err := s.Sign(nil)
	require.NoError(t, err)
	assert.Equal(t, c, e)

	// Bad parameters.
	for _, p := range []any{
		&SignContextParams{Hedge: 3},
		&SignContextParams{Context: make([]byte, 256)},
		&EdDSAParams{},
		[]byte{1},
	} {
		_, err := m.Sign(sk, p)
		assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "sign %#v", p)
		_, err = m.Verify(sk.PublicKey(), p)
		assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "verify %#v", p)
	}
	_, err = mldsaSignOnce(t, sk, &SignContextParams{Context: make([]byte, 255)}, msg)
	assert.NoError(t, err, "255-byte context")

	// Wrong key types and lengths.
	_, err = m.Sign(sk.PublicKey(), nil)
	assert.ErrorIs(t, err, ck.CKR_KEY_TYPE_INCONSISTENT)
	_, err = m.Verify(sk, nil)
	assert.ErrorIs(t, err, ck.CKR_KEY_TYPE_INCONSISTENT)
	for _, n := range []int{0, len(a) - 1, len(a) + 1} {
		sig := make([]byte, n)
		copy(sig, a)
		assert.ErrorIs(t, mldsaVerifyOnce(t, sk.PublicKey(), nil, msg, sig), ck.CKR_SIGNATURE_LEN_RANGE, "length %d", n)
	}
	bad := slices.Clone(a)
	bad[10] ^= 1
	assert.ErrorIs(t, mldsaVerifyOnce(t, sk.PublicKey(), nil, msg, bad), ck.CKR_SIGNATURE_INVALID)
}

// TestMLDSAKeyGen: every parameter set generates through the row, with the
// seed from the given reader; a missing or unknown CKA_PARAMETER_SET is
// refused; the expanded key agrees with circl's from the same seed.
func TestMLDSAKeyGen(t *testing.T) {
	m := row(t, ck.CKM_ML_DSA_KEY_PAIR_GEN)
	for _, vs := range mldsaVectorSets {
		seed := bytes.Repeat([]byte{byte(vs.set)}, 32)
		pub, priv, err := m.GenerateKeyPair(bytes.NewReader(seed), KeyGenParams{ParameterSet: vs.set})
		require.NoError(t, err)
		sk := priv.(*mldsa.PrivateKey)
		assert.Equal(t, seed, sk.Bytes())
		assert.True(t, sk.PublicKey().Equal(pub.(*mldsa.PublicKey)))
		assert.Equal(t, vs.set, MLDSAParameterSet(sk.PublicKey().Parameters()))
		cpk, csk := vs.circ.DeriveKey(seed)
		cb, _ := csk.MarshalBinary()
		assert.Equal(t, cb, MLDSAExpandedKey(sk), vs.name)
		pb, _ := cpk.MarshalBinary()
		assert.Equal(t, pb, sk.PublicKey().Bytes(), vs.name)
	}
	_, _, err := m.GenerateKeyPair(rand.Reader, KeyGenParams{})
	assert.ErrorIs(t, err, ck.CKR_TEMPLATE_INCOMPLETE)
	_, _, err = m.GenerateKeyPair(rand.Reader, KeyGenParams{ParameterSet: 4})
	assert.ErrorIs(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	_, _, err = m.GenerateKeyPair(bytes.NewReader(make([]byte, 31)), KeyGenParams{ParameterSet: ck.CKP_ML_DSA_65})
	assert.Error(t, err)

	info := row(t, ck.CKM_ML_DSA)
	assert.Equal(t, uint(1312), info.MinKeySize)
	assert.Equal(t, uint(2592), info.MaxKeySize)
	assert.Equal(t, ck.CKF_HW|ck.CKF_SIGN|ck.CKF_VERIFY, info.Flags())
	assert.Equal(t, ck.CKF_HW|ck.CKF_GENERATE_KEY_PAIR, m.Flags())
}

// TestMLDSAExternalMuRow: the external-μ row is reached through LookupCLI
// only (never Lookup or All, so no profile's PKCS#11 list can hold it);
// it signs a 64-byte μ so that the signature is the pure ML-DSA one of
// the message μ was computed from (crypto/mldsa verifies it), verifies
// the message's own signature by μ, and refuses any other μ length and a
// changed μ.
func TestMLDSAExternalMuRow(t *testing.T) {
	_, ok := Lookup(MLDSAExternalMu)
	require.False(t, ok)
	require.False(t, slices.ContainsFunc(All(), func(m *Mechanism) bool { return m.Type == MLDSAExternalMu }))
	row, ok := LookupCLI(MLDSAExternalMu)
	require.True(t, ok)
	require.True(t, row.SinglePart)

	sk, err := mldsa.GenerateKey(mldsa.MLDSA44())
	require.NoError(t, err)
	pk := sk.PublicKey()
	msg := []byte("external mu")
	mu := mldsaMu(pk.Bytes(), []byte{0, 0}, msg)

	s, err := row.Sign(sk, nil)
	require.NoError(t, err)
	require.NoError(t, s.Update(mu))
	sig, err := s.Sign(nil)
	require.NoError(t, err)
	require.NoError(t, mldsa.Verify(pk, msg, sig, nil))

	own, err := sk.Sign(rand.Reader, msg, nil)
	require.NoError(t, err)
	v, err := row.Verify(pk, nil)
	require.NoError(t, err)
	require.NoError(t, v.Update(mu))
	require.NoError(t, v.Verify(own))

	bad := bytes.Clone(mu)
	bad[0] ^= 1
	v, _ = row.Verify(pk, nil)
	require.NoError(t, v.Update(bad))
	require.ErrorIs(t, v.Verify(own), ck.CKR_SIGNATURE_INVALID)

	for _, n := range []int{0, 63, 65} {
		s, _ := row.Sign(sk, nil)
		require.NoError(t, s.Update(make([]byte, n)))
		_, err := s.Sign(nil)
		require.ErrorIs(t, err, ck.CKR_DATA_LEN_RANGE, "%d bytes", n)
	}
	_, err = row.Sign(sk, []byte{1})
	require.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID)
}
