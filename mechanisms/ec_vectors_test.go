package mechanisms

import (
	"bytes"
	"crypto/ed25519"
	"crypto/elliptic"
	"encoding/asn1"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"gohsm/internal/ck"
	"gohsm/internal/wycheproof"
)

// Project Wycheproof vectors (pinned in package wycheproof). Every
// "acceptable" case is decided explicitly below.

var wycheproofCurves = map[string]elliptic.Curve{
	"secp224r1": elliptic.P224(),
	"secp256r1": elliptic.P256(),
	"secp384r1": elliptic.P384(),
	"secp521r1": elliptic.P521(),
	"secp256k1": secp256k1Curve,
}

var wycheproofECDSAHashes = map[string]ck.MechanismType{
	"SHA-1":    ck.CKM_ECDSA_SHA1,
	"SHA-224":  ck.CKM_ECDSA_SHA224,
	"SHA-256":  ck.CKM_ECDSA_SHA256,
	"SHA-384":  ck.CKM_ECDSA_SHA384,
	"SHA-512":  ck.CKM_ECDSA_SHA512,
	"SHA3-224": ck.CKM_ECDSA_SHA3_224,
	"SHA3-256": ck.CKM_ECDSA_SHA3_256,
	"SHA3-384": ck.CKM_ECDSA_SHA3_384,
	"SHA3-512": ck.CKM_ECDSA_SHA3_512,
}

// TestWycheproofECDSA verifies through the CKM_ECDSA_<hash> rows. The
// IEEE P1363 files hold r || s, the PKCS#11 format. The SHA-3 files exist
// only with DER signatures: a strictly DER-decoded (r, s) that fits the
// curve is converted to r || s, and a signature that does not decode must
// be an invalid case.
//
// Acceptable cases: "SigSize" (P1363 signatures of another length) are
// rejected, as PKCS#11 fixes the length; "MissingZero" (a DER integer
// without its sign byte) is rejected by the strict DER decoding.
func TestWycheproofECDSA(t *testing.T) {
	skipVectorsUnderRace(t, "55-60 s")
	files := []string{
		"ecdsa_secp224r1_sha224_p1363_test.json",
		"ecdsa_secp224r1_sha256_p1363_test.json",
		"ecdsa_secp224r1_sha512_p1363_test.json",
		"ecdsa_secp256r1_sha256_p1363_test.json",
		"ecdsa_secp256r1_sha512_p1363_test.json",
		"ecdsa_secp384r1_sha384_p1363_test.json",
		"ecdsa_secp384r1_sha512_p1363_test.json",
		"ecdsa_secp521r1_sha512_p1363_test.json",
		"ecdsa_secp256k1_sha256_p1363_test.json",
		"ecdsa_secp256k1_sha512_p1363_test.json",
		"ecdsa_secp224r1_sha3_224_test.json",
		"ecdsa_secp224r1_sha3_256_test.json",
		"ecdsa_secp224r1_sha3_512_test.json",
		"ecdsa_secp256r1_sha3_256_test.json",
		"ecdsa_secp256r1_sha3_512_test.json",
		"ecdsa_secp384r1_sha3_384_test.json",
		"ecdsa_secp384r1_sha3_512_test.json",
		"ecdsa_secp521r1_sha3_512_test.json",
		"ecdsa_secp256k1_sha3_256_test.json",
		"ecdsa_secp256k1_sha3_512_test.json",
	}
	for _, name := range files {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := wycheproof.Load(t, name)
			var n, valid int
			for _, g := range f.Groups {
				var key struct{ Curve, Uncompressed string }
				wycheproof.Raw(t, g.Fields, "key", &key)
				c, ok := wycheproofCurves[key.Curve]
				require.True(t, ok, key.Curve)
				pub, err := ParseECPoint(c, unhex(key.Uncompressed))
				require.NoError(t, err)
				mech, ok := wycheproofECDSAHashes[wycheproof.Str(t, g.Fields, "sha")]
				require.True(t, ok)
				m := row(t, mech)
				p1363 := wycheproof.Str(t, g.Fields, "type") == "EcdsaP1363Verify"
				for _, tc := range g.Tests {
					n++
					sig := wycheproof.Hex(t, tc.Fields, "sig")
					if !p1363 {
						var ok bool
						if sig, ok = derToP1363(sig, byteLen(c)); !ok {
							assert.True(t, tc.Result == "invalid" || tc.Result == "acceptable" && slices.Contains(tc.Flags, "MissingZero"),
								"tc %d %s: DER signature does not decode", tc.ID, tc.Comment)
							continue
						}
					}
					v, err := m.Verify(pub, nil)
					require.NoError(t, err)
					require.NoError(t, v.Update(wycheproof.Hex(t, tc.Fields, "msg")))
					err = v.Verify(sig)
					switch tc.Result {
					case "valid":
						valid++
						assert.NoError(t, err, "tc %d %s", tc.ID, tc.Comment)
					case "invalid", "acceptable": // acceptable: SigSize, MissingZero (see above)
						if tc.Result == "acceptable" {
							require.True(t, slices.Contains(tc.Flags, "SigSize") || slices.Contains(tc.Flags, "MissingZero"), "tc %d: undecided flags %v", tc.ID, tc.Flags)
						}
						assert.True(t, errorsIsAny(err, ck.CKR_SIGNATURE_INVALID, ck.CKR_SIGNATURE_LEN_RANGE), "tc %d %s: %v", tc.ID, tc.Comment, err)
					default:
						t.Fatalf("tc %d: result %q", tc.ID, tc.Result)
					}
				}
			}
			require.Positive(t, valid)
			t.Logf("%d cases, %d valid", n, valid)
		})
	}
}

// derToP1363 decodes a strict DER ECDSA-Sig-Value into r || s of n bytes
// each; false if it is not DER or r or s does not fit.
func derToP1363(der []byte, n int) ([]byte, bool) {
	var inner, r, s cryptobyte.String
	in := cryptobyte.String(der)
	if !in.ReadASN1(&inner, cbasn1.SEQUENCE) || !in.Empty() ||
		!inner.ReadASN1(&r, cbasn1.INTEGER) || !inner.ReadASN1(&s, cbasn1.INTEGER) || !inner.Empty() {
		return nil, false
	}
	out := make([]byte, 2*n)
	for i, v := range []cryptobyte.String{r, s} {
		// Minimal and non-negative, as DER and ECDSA require.
		if len(v) == 0 || v[0]&0x80 != 0 || len(v) > 1 && v[0] == 0 && v[1]&0x80 == 0 {
			return nil, false
		}
		if !putInt(out[i*n:(i+1)*n], v) {
			return nil, false
		}
	}
	return out, true
}

// TestWycheproofECDH derives with CKM_ECDH1_DERIVE and CKD_NULL. The
// "ecpoint" files give the peer's point as X9.62, as CK_ECDH1_DERIVE_PARAMS
// carries it. secp256k1 has only an X.509 SubjectPublicKeyInfo file: its
// named-curve point is extracted (the harness's job, as a client's);
// keys with explicit parameters ("UnnamedCurve") and malformed encodings
// ("InvalidAsn", all acceptable) are not named-curve SPKIs and are
// refused, which the spec's CKF_EC_OID-only token must do; an InvalidAsn
// SPKI that parses (a padded BIT STRING) yields no valid point and is refused
// as a parameter.
//
// Acceptable "CompressedPoint" cases are refused: we do not claim
// CKF_EC_COMPRESS.
func TestWycheproofECDH(t *testing.T) {
	skipVectorsUnderRace(t, "60 s")
	m := row(t, ck.CKM_ECDH1_DERIVE)
	cof := row(t, ck.CKM_ECDH1_COFACTOR_DERIVE)
	for _, name := range []string{
		"ecdh_secp224r1_ecpoint_test.json",
		"ecdh_secp256r1_ecpoint_test.json",
		"ecdh_secp384r1_ecpoint_test.json",
		"ecdh_secp521r1_ecpoint_test.json",
		"ecdh_secp256k1_test.json",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := wycheproof.Load(t, name)
			var n, valid int
			for _, g := range f.Groups {
				c, ok := wycheproofCurves[wycheproof.Str(t, g.Fields, "curve")]
				require.True(t, ok)
				spki := wycheproof.Str(t, g.Fields, "encoding") == "asn"
				for _, tc := range g.Tests {
					n++
					priv, err := ECPrivateKey(c, wycheproof.Hex(t, tc.Fields, "private"))
					require.NoError(t, err, "tc %d", tc.ID)
					peer := wycheproof.Hex(t, tc.Fields, "public")
					if spki {
						var ok bool
						if peer, ok = namedCurveSPKIPoint(peer, c); !ok {
							assert.True(t, tc.Result == "invalid" || slices.Contains(tc.Flags, "InvalidAsn") || slices.Contains(tc.Flags, "UnnamedCurve"),
								"tc %d %s: %v %v", tc.ID, tc.Comment, tc.Result, tc.Flags)
							continue
						}
					}
					want := wycheproof.Hex(t, tc.Fields, "shared")
					for _, mm := range []*Mechanism{m, cof} {
						got, err := mm.Derive(priv, &ECDH1Params{KDF: ck.CKD_NULL, PublicData: peer}, DeriveTarget{})
						switch {
						case tc.Result == "valid":
							require.NoError(t, err, "tc %d %s", tc.ID, tc.Comment)
							assert.Equal(t, want, got, "tc %d %s", tc.ID, tc.Comment)
						case tc.Result == "acceptable" && !slices.Contains(tc.Flags, "CompressedPoint") && !slices.Contains(tc.Flags, "InvalidAsn"):
							t.Fatalf("tc %d: undecided acceptable case %v", tc.ID, tc.Flags)
						default: // invalid; acceptable CompressedPoint; InvalidAsn whose SPKI parsed but whose point is not one
							assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "tc %d %s", tc.ID, tc.Comment)
						}
					}
					if tc.Result == "valid" {
						valid++
					}
				}
			}
			require.Positive(t, valid)
			t.Logf("%d cases, %d valid", n, valid)
		})
	}
}

// namedCurveSPKIPoint extracts the point of a strict-DER
// SubjectPublicKeyInfo with id-ecPublicKey and the named curve c.
func namedCurveSPKIPoint(der []byte, c elliptic.Curve) ([]byte, bool) {
	var spki, alg, point cryptobyte.String
	var algOID, curveOID asn1.ObjectIdentifier
	in := cryptobyte.String(der)
	if !in.ReadASN1(&spki, cbasn1.SEQUENCE) || !in.Empty() ||
		!spki.ReadASN1(&alg, cbasn1.SEQUENCE) ||
		!alg.ReadASN1ObjectIdentifier(&algOID) || !alg.ReadASN1ObjectIdentifier(&curveOID) || !alg.Empty() ||
		!spki.ReadASN1BitStringAsBytes((*[]byte)(&point)) || !spki.Empty() {
		return nil, false
	}
	want := must(ECParams(c))
	got, err := asn1.Marshal(curveOID)
	if err != nil || !algOID.Equal(asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}) || !bytes.Equal(got, want) {
		return nil, false
	}
	return point, true
}

// TestWycheproofEd25519 verifies with CKM_EDDSA (no parameter: Ed25519)
// and, for valid cases, signs: Ed25519 is deterministic, so the signature
// must be the vector's. No case is acceptable in this file;
// "SignatureMalleability" cases (S >= L) are invalid and refused.
func TestWycheproofEd25519(t *testing.T) {
	m := row(t, ck.CKM_EDDSA)
	f := wycheproof.Load(t, "eddsa_test.json")
	var n, valid int
	for _, g := range f.Groups {
		var key struct{ Curve, Pk, Sk string }
		wycheproof.Raw(t, g.Fields, "key", &key)
		require.Equal(t, "edwards25519", key.Curve)
		pub := ed25519.PublicKey(unhex(key.Pk))
		priv := ed25519.NewKeyFromSeed(unhex(key.Sk))
		require.True(t, pub.Equal(priv.Public()))
		for _, tc := range g.Tests {
			n++
			msg, sig := wycheproof.Hex(t, tc.Fields, "msg"), wycheproof.Hex(t, tc.Fields, "sig")
			v, err := m.Verify(pub, nil)
			require.NoError(t, err)
			require.NoError(t, v.Update(msg))
			err = v.Verify(sig)
			switch tc.Result {
			case "valid":
				valid++
				assert.NoError(t, err, "tc %d %s", tc.ID, tc.Comment)
				s, err := m.Sign(priv, nil)
				require.NoError(t, err)
				require.NoError(t, s.Update(msg))
				got, err := s.Sign(nil)
				require.NoError(t, err)
				assert.Equal(t, sig, got, "tc %d", tc.ID)
			case "invalid":
				assert.True(t, errorsIsAny(err, ck.CKR_SIGNATURE_INVALID, ck.CKR_SIGNATURE_LEN_RANGE), "tc %d %s: %v", tc.ID, tc.Comment, err)
			default:
				t.Fatalf("tc %d: undecided result %q %v", tc.ID, tc.Result, tc.Flags)
			}
		}
	}
	require.Positive(t, valid)
	t.Logf("%d cases, %d valid", n, valid)
}

// TestWycheproofX25519 derives with CKM_ECDH1_DERIVE on X25519 keys.
// Acceptable cases: "ZeroSharedSecret" (a low-order peer point) is refused
// with CKR_MECHANISM_PARAM_INVALID (RFC 7748 §6.1's all-zero check); the
// others ("Twist", "NonCanonicalPublic", "SmallPublicKey" without a zero
// result) are accepted, as RFC 7748 §5 prescribes (mask the top bit, any
// u-coordinate), and must give the vector's secret.
func TestWycheproofX25519(t *testing.T) {
	m := row(t, ck.CKM_ECDH1_DERIVE)
	f := wycheproof.Load(t, "x25519_test.json")
	var n, valid, zero int
	for _, g := range f.Groups {
		require.Equal(t, "curve25519", wycheproof.Str(t, g.Fields, "curve"))
		for _, tc := range g.Tests {
			n++
			priv, err := X25519PrivateKey(wycheproof.Hex(t, tc.Fields, "private"))
			require.NoError(t, err)
			want := wycheproof.Hex(t, tc.Fields, "shared")
			got, err := m.Derive(priv, &ECDH1Params{KDF: ck.CKD_NULL, PublicData: wycheproof.Hex(t, tc.Fields, "public")}, DeriveTarget{})
			switch {
			case slices.Contains(tc.Flags, "ZeroSharedSecret"):
				zero++
				require.NotEqual(t, "valid", tc.Result)
				require.Equal(t, make([]byte, 32), want)
				assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "tc %d", tc.ID)
			case tc.Result == "valid" || tc.Result == "acceptable":
				if tc.Result == "valid" {
					valid++
				}
				require.NoError(t, err, "tc %d %s %v", tc.ID, tc.Comment, tc.Flags)
				assert.Equal(t, want, got, "tc %d", tc.ID)
			default:
				t.Fatalf("tc %d: result %q %v", tc.ID, tc.Result, tc.Flags)
			}
		}
	}
	require.Positive(t, valid)
	require.Positive(t, zero)
	t.Logf("%d cases, %d valid, %d zero secrets refused", n, valid, zero)
}
