package mechanisms

import (
	"bytes"
	"crypto/mlkem"
	"crypto/mlkem/mlkemtest"
	"fmt"
	"testing"

	"github.com/cloudflare/circl/kem/mlkem/mlkem512"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/internal/wycheproof"
)

// The C2SP Wycheproof ML-KEM vectors (pinned in internal/wycheproof), run
// through what the token uses: MLKEMPrivateKey / MLKEMPublicKey (the key
// objects' CKA_SEED / CKA_VALUE), MLKEMKeyMaterial, and the CKM_ML_KEM row.
//
// Every set (512, 768, 1024) runs the keygen, decaps and encaps files; the
// keygen files' expanded "dk" is checked against MLKEMExpandedKey (the
// private key object's CKA_VALUE).
//
// Not run, and why:
//   - mlkem_*_semi_expanded_decaps_test: it gives the expanded key alone,
//     and the token refuses an expanded-only key (CKR_TEMPLATE_INCOMPLETE:
//     crypto/mlkem decapsulates from the seed only; docs/design.md,
//     "ML-KEM"). token/attrs checks that refusal, and that an expanded key
//     given with a seed must be the seed's.
//   - encapsulation with the vectors' fixed m through the CKM_ML_KEM row:
//     C_EncapsulateKey draws m itself. The encaps files instead check the
//     encapsulation key import (every invalid key refused) and that the key
//     we import encapsulates, with m, to the vector's c and K
//     (crypto/mlkem/mlkemtest's derandomized encapsulation; circl's
//     EncapsulateTo with m as its seed for 512).

var mlkemVectorSets = []struct {
	name string
	set  ck.ULong
}{{"512", ck.CKP_ML_KEM_512}, {"768", ck.CKP_ML_KEM_768}, {"1024", ck.CKP_ML_KEM_1024}}

func mlkemCase(c *wycheproof.Case) string { return fmt.Sprintf("tc%d %s", c.ID, c.Comment) }

// TestMLKEMWycheproofKeyGen: key generation from the seed d||z gives the
// vector's encapsulation key and expanded decapsulation key.
func TestMLKEMWycheproofKeyGen(t *testing.T) {
	for _, vs := range mlkemVectorSets {
		f := wycheproof.LoadC2SP(t, "mlkem_"+vs.name+"_keygen_seed_test.json")
		n := 0
		for _, g := range f.Groups {
			for _, c := range g.Tests {
				require.Equal(t, "valid", c.Result, mlkemCase(c))
				k, err := MLKEMPrivateKey(vs.set, wycheproof.Hex(t, c.Fields, "seed"))
				require.NoError(t, err, mlkemCase(c))
				set, ek, seed, ok := MLKEMKeyMaterial(k)
				require.True(t, ok)
				assert.Equal(t, vs.set, set)
				assert.Equal(t, wycheproof.Hex(t, c.Fields, "ek"), ek, mlkemCase(c))
				assert.Equal(t, wycheproof.Hex(t, c.Fields, "seed"), seed, mlkemCase(c))
				assert.Equal(t, wycheproof.Hex(t, c.Fields, "dk"), MLKEMExpandedKey(k), mlkemCase(c))
				n++
			}
		}
		assert.Equal(t, f.NumberOfTests, n, vs.name)
	}
}

// TestMLKEMWycheproofDecaps: every case of mlkem_<set>_test.json. Valid:
// the seed gives ek, and the row decapsulates c to K (implicit rejection
// included: random, bit-flipped and modified ciphertexts are valid cases
// with the rejection key as K). Invalid: a seed of the wrong length is
// refused (CKR_ATTRIBUTE_VALUE_INVALID), a ciphertext of the wrong length
// CKR_ENCRYPTED_DATA_LEN_RANGE.
func TestMLKEMWycheproofDecaps(t *testing.T) {
	kem, _ := Lookup(ck.CKM_ML_KEM)
	for _, vs := range mlkemVectorSets {
		f := wycheproof.LoadC2SP(t, "mlkem_"+vs.name+"_test.json")
		n := 0
		for _, g := range f.Groups {
			for _, c := range g.Tests {
				n++
				seed := wycheproof.Hex(t, c.Fields, "seed")
				ct := wycheproof.Hex(t, c.Fields, "c")
				priv, err := MLKEMPrivateKey(vs.set, seed)
				if len(seed) != mlkem.SeedSize {
					require.Equal(t, "invalid", c.Result, mlkemCase(c))
					require.ErrorIs(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID, mlkemCase(c))
					continue
				}
				require.NoError(t, err, mlkemCase(c))
				if ek := wycheproof.Hex(t, c.Fields, "ek"); ek != nil {
					_, got, _, _ := MLKEMKeyMaterial(priv)
					assert.Equal(t, ek, got, mlkemCase(c))
				}
				k, err := kem.Decapsulate(priv, nil, ct)
				switch c.Result {
				case "valid":
					require.NoError(t, err, mlkemCase(c))
					assert.Equal(t, wycheproof.Hex(t, c.Fields, "K"), k, mlkemCase(c))
				case "invalid":
					require.NotEqual(t, kem.CiphertextSize(priv), len(ct), "an invalid case of another kind: %s", mlkemCase(c))
					require.ErrorIs(t, err, ck.CKR_ENCRYPTED_DATA_LEN_RANGE, mlkemCase(c))
				default:
					t.Fatalf("%s: result %q", mlkemCase(c), c.Result)
				}
			}
		}
		assert.Equal(t, f.NumberOfTests, n, vs.name)
	}
}

// TestMLKEMWycheproofEncaps: every encapsulation key the vectors call
// invalid (not reduced mod q, too short, too long) is refused on import;
// every valid one is accepted, and with the vector's m encapsulates to its
// c and K, which the row's ciphertext size matches.
func TestMLKEMWycheproofEncaps(t *testing.T) {
	kem, _ := Lookup(ck.CKM_ML_KEM)
	for _, vs := range mlkemVectorSets {
		f := wycheproof.LoadC2SP(t, "mlkem_"+vs.name+"_encaps_test.json")
		n := 0
		for _, g := range f.Groups {
			for _, c := range g.Tests {
				n++
				pub, err := MLKEMPublicKey(vs.set, wycheproof.Hex(t, c.Fields, "ek"))
				switch c.Result {
				case "invalid":
					require.ErrorIs(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID, mlkemCase(c))
					continue
				case "valid":
				default:
					t.Fatalf("%s: result %q", mlkemCase(c), c.Result)
				}
				require.NoError(t, err, mlkemCase(c))
				m := wycheproof.Hex(t, c.Fields, "m")
				var k, ct []byte
				switch p := pub.(type) {
				case *mlkem.EncapsulationKey768:
					k, ct, err = mlkemtest.Encapsulate768(p, m)
				case *mlkem.EncapsulationKey1024:
					k, ct, err = mlkemtest.Encapsulate1024(p, m)
				case *mlkem512Public:
					k, ct = make([]byte, mlkem512.SharedKeySize), make([]byte, mlkem512.CiphertextSize)
					p.pk.EncapsulateTo(ct, k, m)
				default:
					t.Fatalf("%s: key of type %T", mlkemCase(c), pub)
				}
				require.NoError(t, err, mlkemCase(c))
				assert.Equal(t, wycheproof.Hex(t, c.Fields, "c"), ct, mlkemCase(c))
				assert.Equal(t, wycheproof.Hex(t, c.Fields, "K"), k, mlkemCase(c))
				assert.Equal(t, len(ct), kem.CiphertextSize(pub))
				// And the row's own (random) encapsulation to this key works.
				k2, ct2, err := kem.Encapsulate(pub, nil)
				require.NoError(t, err)
				assert.Len(t, ct2, len(ct))
				assert.Len(t, k2, MLKEMSharedKeySize)
				assert.False(t, bytes.Equal(ct2, ct))
			}
		}
		assert.Equal(t, f.NumberOfTests, n, vs.name)
	}
}
