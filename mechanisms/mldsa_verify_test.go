package mechanisms

import (
	"crypto"
	"crypto/mldsa"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/wycheproof"
)

// pureMu is μ for pure ML-DSA: M' = 0 || len(ctx) || ctx || M.
func pureMu(pk, ctx, msg []byte) []byte {
	return mldsaMu(pk, []byte{0, byte(len(ctx))}, ctx, msg)
}

// TestMLDSAVerifyMuWycheproofVerify: verifyMu on every case of
// Wycheproof's mldsa_*_verify files gives the vector's verdict, and
// crypto/mldsa.Verify agrees on each. A context over 255 bytes has no M'
// (FIPS 204 refuses it before μ): those cases are counted apart and must
// be invalid.
func TestMLDSAVerifyMuWycheproofVerify(t *testing.T) {
	for _, vs := range mldsaVectorSets {
		t.Run(vs.name, func(t *testing.T) {
			t.Parallel()
			params, err := MLDSAParameters(vs.set)
			require.NoError(t, err)
			f := wycheproof.LoadC2SP(t, "mldsa_"+vs.name+"_verify_test.json")
			var valid, invalid, longCtx int
			for _, g := range f.Groups {
				pkb := wycheproof.Hex(t, g.Fields, "publicKey")
				pk, pkErr := mldsa.NewPublicKey(params, pkb)
				for _, tc := range g.Tests {
					msg := wycheproof.Hex(t, tc.Fields, "msg")
					ctx := wycheproof.Hex(t, tc.Fields, "ctx")
					sig := wycheproof.Hex(t, tc.Fields, "sig")
					if len(ctx) > maxMLDSAContext {
						require.Equal(t, "invalid", tc.Result, "tc %d", tc.ID)
						longCtx++
						continue
					}
					got := verifyMu(params, pkb, pureMu(pkb, ctx, msg), sig)
					switch tc.Result {
					case "valid":
						valid++
					case "invalid":
						invalid++
					default:
						t.Fatalf("tc %d: result %q", tc.ID, tc.Result)
					}
					assert.Equal(t, tc.Result == "valid", got, "tc %d %s %v", tc.ID, tc.Comment, tc.Flags)
					if pkErr == nil {
						goErr := mldsa.Verify(pk, msg, sig, &mldsa.Options{Context: string(ctx)})
						assert.Equal(t, goErr == nil, got, "tc %d: crypto/mldsa disagrees", tc.ID)
					} else {
						assert.False(t, got, "tc %d: key crypto/mldsa refuses", tc.ID)
					}
				}
			}
			require.Positive(t, valid)
			require.Positive(t, invalid)
			t.Logf("%d valid, %d invalid, %d with a context over 255 bytes", valid, invalid, longCtx)
		})
	}
}

// TestMLDSAVerifyMuWycheproofSign: every valid signature of Wycheproof's
// mldsa_*_sign_seed and _sign_noseed files verifies under verifyMu, from μ
// computed here or, for "Internal" cases, the vector's μ; each with one
// bit flipped in c̃, z and the hint does not (and crypto/mldsa agrees on
// the message cases).
func TestMLDSAVerifyMuWycheproofSign(t *testing.T) {
	skipVectorsUnderRace(t, "18 s")
	for _, vs := range mldsaVectorSets {
		for _, kind := range []string{"seed", "noseed"} {
			t.Run(vs.name+"/"+kind, func(t *testing.T) {
				t.Parallel()
				params, err := MLDSAParameters(vs.set)
				require.NoError(t, err)
				p := mldsaVerifyParamsOf(params)
				f := wycheproof.LoadC2SP(t, "mldsa_"+vs.name+"_sign_"+kind+"_test.json")
				var n, internal int
				for _, g := range f.Groups {
					pkb := wycheproof.Hex(t, g.Fields, "publicKey")
					pk, pkErr := mldsa.NewPublicKey(params, pkb)
					for _, tc := range g.Tests {
						if tc.Result != "valid" {
							continue
						}
						require.NoError(t, pkErr, "tc %d", tc.ID)
						sig := wycheproof.Hex(t, tc.Fields, "sig")
						var mu, msg []byte
						var opts *mldsa.Options
						if _, ok := tc.Fields["msg"]; ok {
							msg = wycheproof.Hex(t, tc.Fields, "msg")
							ctx := wycheproof.Hex(t, tc.Fields, "ctx")
							mu = pureMu(pkb, ctx, msg)
							opts = &mldsa.Options{Context: string(ctx)}
						} else {
							require.Contains(t, tc.Flags, "Internal", "tc %d", tc.ID)
							mu = wycheproof.Hex(t, tc.Fields, "mu")
							internal++
						}
						n++
						require.True(t, verifyMu(params, pkb, mu, sig), "tc %d %s", tc.ID, tc.Comment)
						for _, at := range []int{0, p.lambda/4 + 5, len(sig) - p.k - 1, len(sig) - 1} {
							bad := slices.Clone(sig)
							bad[at] ^= 0x04
							got := verifyMu(params, pkb, mu, bad)
							assert.False(t, got, "tc %d: byte %d flipped", tc.ID, at)
							if opts != nil {
								assert.Error(t, mldsa.Verify(pk, msg, bad, opts), "tc %d: byte %d flipped", tc.ID, at)
							}
						}
						badMu := slices.Clone(mu)
						badMu[63] ^= 1
						assert.False(t, verifyMu(params, pkb, badMu, sig), "tc %d: μ changed", tc.ID)
					}
				}
				require.Positive(t, n)
				t.Logf("%d valid signatures (%d from μ alone)", n, internal)
			})
		}
	}
}

// TestMLDSAVerifyMuExternalSign: a signature crypto/mldsa makes of an
// external μ (crypto.MLDSAMu) verifies under verifyMu, for each set.
func TestMLDSAVerifyMuExternalSign(t *testing.T) {
	for _, params := range []mldsa.Parameters{mldsa.MLDSA44(), mldsa.MLDSA65(), mldsa.MLDSA87()} {
		sk, err := mldsa.GenerateKey(params)
		require.NoError(t, err)
		pkb := sk.PublicKey().Bytes()
		mu := pureMu(pkb, []byte("ctx"), []byte("message"))
		sig, err := sk.Sign(nil, mu, crypto.MLDSAMu)
		require.NoError(t, err)
		assert.True(t, verifyMu(params, pkb, mu, sig), "%v", params)
		require.NoError(t, mldsa.Verify(sk.PublicKey(), []byte("message"), sig, &mldsa.Options{Context: "ctx"}))
		assert.False(t, verifyMu(params, pkb, mu, sig[:len(sig)-1]), "short")
		assert.False(t, verifyMu(params, pkb[:len(pkb)-1], mu, sig), "short key")
		assert.False(t, verifyMu(params, pkb, mu[:32], sig), "short μ")
	}
}

// FuzzMLDSAVerifyMu: verifyMu and crypto/mldsa.Verify agree on pure
// ML-DSA signatures from fuzzed keys, messages and contexts, with the
// signature mutated at fuzzed places (or not at all).
func FuzzMLDSAVerifyMu(f *testing.F) {
	f.Add(byte(0), make([]byte, 32), []byte("msg"), []byte("ctx"), uint16(0), byte(0), uint16(0), byte(0))
	f.Add(byte(1), make([]byte, 32), []byte{}, []byte{}, uint16(40), byte(1), uint16(0), byte(0))
	f.Add(byte(2), []byte("0123456789abcdef0123456789abcdef"), []byte("m"), []byte{}, uint16(4620), byte(0x80), uint16(4600), byte(3))
	f.Fuzz(func(t *testing.T, set byte, seed, msg, ctx []byte, at1 uint16, x1 byte, at2 uint16, x2 byte) {
		params := []mldsa.Parameters{mldsa.MLDSA44(), mldsa.MLDSA65(), mldsa.MLDSA87()}[int(set)%3]
		var s [32]byte
		copy(s[:], seed)
		if len(ctx) > maxMLDSAContext {
			ctx = ctx[:maxMLDSAContext]
		}
		sk, err := mldsa.NewPrivateKey(params, s[:])
		require.NoError(t, err)
		opts := &mldsa.Options{Context: string(ctx)}
		sig, err := sk.SignDeterministic(msg, opts)
		require.NoError(t, err)
		sig[int(at1)%len(sig)] ^= x1
		sig[int(at2)%len(sig)] ^= x2
		pkb := sk.PublicKey().Bytes()
		want := mldsa.Verify(sk.PublicKey(), msg, sig, opts) == nil
		if got := verifyMu(params, pkb, pureMu(pkb, ctx, msg), sig); got != want {
			t.Fatalf("verifyMu %v, crypto/mldsa %v (%v, mutation %d^%#x %d^%#x)", got, want, params, at1, x1, at2, x2)
		}
	})
}

// BenchmarkMLDSAVerify: verifyMu against crypto/mldsa.Verify on the same
// ML-DSA-65 signature (informational: HashML-DSA verification runs
// verifyMu, pure CKM_ML_DSA crypto/mldsa).
func BenchmarkMLDSAVerify(b *testing.B) {
	sk, err := mldsa.NewPrivateKey(mldsa.MLDSA65(), make([]byte, 32))
	require.NoError(b, err)
	msg := []byte("benchmark message")
	sig, err := sk.SignDeterministic(msg, &mldsa.Options{})
	require.NoError(b, err)
	pkb := sk.PublicKey().Bytes()
	b.Run("verifyMu", func(b *testing.B) {
		for b.Loop() {
			if !verifyMu(mldsa.MLDSA65(), pkb, pureMu(pkb, nil, msg), sig) {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("crypto-mldsa", func(b *testing.B) {
		for b.Loop() {
			if mldsa.Verify(sk.PublicKey(), msg, sig, nil) != nil {
				b.Fatal("invalid")
			}
		}
	})
}
