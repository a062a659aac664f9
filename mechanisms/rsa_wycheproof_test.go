package mechanisms

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/internal/wycheproof"
)

// Project Wycheproof vectors (github.com/google/wycheproof at the version
// pinned in internal/wycheproof), run through the table's rows and the
// key constructors (RSAPublicKey / RSAPrivateKey), never crypto/rsa
// directly. Decisions on "acceptable" cases:
//
//   - MissingNull (a DigestInfo whose AlgorithmIdentifier omits the NULL
//     parameters): rejected. RFC 8017 §9.2 note 2 allows accepting it; we
//     produce and accept only the DER with NULL, as crypto/rsa does.
//   - SmallPublicKey (e = 3): accepted; RSAPublicKey takes any odd e >= 3
//     and the signatures are correct.
//   - SmallModulus (1024/1536-bit keys): accepted, they are within the
//     standard profile's 1024..4096.
//   - WeakHash (SHA-1 PSS): accepted, CKM_SHA1_RSA_PKCS_PSS is a row.
//
// Files not run, as no row implements them: SHA-512/224 and SHA-512/256
// (PKCS#11 defines no RSA mechanism or MGF1 for them). OAEP groups whose
// MGF1 hash differs from the message hash are run and must pass
// (crypto/rsa's OAEPOptions.MGFHash); PSS groups with such an MGF1 or with
// a salt of 0 bytes must be refused with CKR_MECHANISM_PARAM_INVALID
// (crypto/rsa's PSS uses one hash and reads salt length 0 as "any").

// wpHash maps Wycheproof's hash names to the spec's.
var wpHash = map[string]struct {
	pkcs, pss, mech ck.MechanismType
	mgf             ck.ULong
	hash            crypto.Hash
}{
	"SHA-1":    {ck.CKM_SHA1_RSA_PKCS, ck.CKM_SHA1_RSA_PKCS_PSS, ck.CKM_SHA_1, ck.CKG_MGF1_SHA1, crypto.SHA1},
	"SHA-224":  {ck.CKM_SHA224_RSA_PKCS, ck.CKM_SHA224_RSA_PKCS_PSS, ck.CKM_SHA224, ck.CKG_MGF1_SHA224, crypto.SHA224},
	"SHA-256":  {ck.CKM_SHA256_RSA_PKCS, ck.CKM_SHA256_RSA_PKCS_PSS, ck.CKM_SHA256, ck.CKG_MGF1_SHA256, crypto.SHA256},
	"SHA-384":  {ck.CKM_SHA384_RSA_PKCS, ck.CKM_SHA384_RSA_PKCS_PSS, ck.CKM_SHA384, ck.CKG_MGF1_SHA384, crypto.SHA384},
	"SHA-512":  {ck.CKM_SHA512_RSA_PKCS, ck.CKM_SHA512_RSA_PKCS_PSS, ck.CKM_SHA512, ck.CKG_MGF1_SHA512, crypto.SHA512},
	"SHA3-224": {ck.CKM_SHA3_224_RSA_PKCS, ck.CKM_SHA3_224_RSA_PKCS_PSS, ck.CKM_SHA3_224, ck.CKG_MGF1_SHA3_224, crypto.SHA3_224},
	"SHA3-256": {ck.CKM_SHA3_256_RSA_PKCS, ck.CKM_SHA3_256_RSA_PKCS_PSS, ck.CKM_SHA3_256, ck.CKG_MGF1_SHA3_256, crypto.SHA3_256},
	"SHA3-384": {ck.CKM_SHA3_384_RSA_PKCS, ck.CKM_SHA3_384_RSA_PKCS_PSS, ck.CKM_SHA3_384, ck.CKG_MGF1_SHA3_384, crypto.SHA3_384},
	"SHA3-512": {ck.CKM_SHA3_512_RSA_PKCS, ck.CKM_SHA3_512_RSA_PKCS_PSS, ck.CKM_SHA3_512, ck.CKG_MGF1_SHA3_512, crypto.SHA3_512},
}

// wpResult decides a case: valid, or invalid, with acceptable cases decided
// by their flags as documented above.
func wpResult(t *testing.T, c *wycheproof.Case) bool {
	switch c.Result {
	case "valid":
		return true
	case "invalid":
		return false
	}
	accept := map[string]bool{"SmallPublicKey": true, "SmallModulus": true, "WeakHash": true, "MissingNull": false}
	ok := true
	for _, f := range c.Flags {
		a, known := accept[f]
		require.True(t, known, "tc %d: acceptable case with undecided flag %q", c.ID, f)
		ok = ok && a
	}
	require.NotEmpty(t, c.Flags, "tc %d: acceptable case without flags", c.ID)
	return ok
}

func wpPublic(t *testing.T, g *wycheproof.Group) *rsa.PublicKey {
	pub, err := RSAPublicKey(wycheproof.Hex(t, g.Fields, "n"), wycheproof.Hex(t, g.Fields, "e"))
	require.NoError(t, err)
	return pub
}

// wpPrivate builds the group's private key through RSAPrivateKey from the
// components of its PKCS#8 encoding.
func wpPrivate(t *testing.T, g *wycheproof.Group) *rsa.PrivateKey {
	k, err := x509.ParsePKCS8PrivateKey(wycheproof.Hex(t, g.Fields, "privateKeyPkcs8"))
	require.NoError(t, err)
	std := k.(*rsa.PrivateKey)
	priv, err := RSAPrivateKey(std.N.Bytes(), big2bytes(std.E), std.D.Bytes(), std.Primes[0].Bytes(), std.Primes[1].Bytes())
	require.NoError(t, err)
	return priv
}

func big2bytes(e int) []byte { return []byte{byte(e >> 24), byte(e >> 16), byte(e >> 8), byte(e)} }

type wpTally struct{ pass, accepted, rejected, refusedParam int }

func (w *wpTally) log(t *testing.T, name string) {
	t.Logf("%s: %d cases: %d accepted, %d rejected, %d with parameters refused", name, w.pass, w.accepted, w.rejected, w.refusedParam)
}

func TestRSAPKCS1v15SignatureWycheproof(t *testing.T) {
	files := []string{
		"rsa_signature_test.json",
		"rsa_signature_2048_sha224_test.json", "rsa_signature_2048_sha256_test.json",
		"rsa_signature_2048_sha384_test.json", "rsa_signature_2048_sha512_test.json",
		"rsa_signature_3072_sha256_test.json", "rsa_signature_3072_sha384_test.json",
		"rsa_signature_3072_sha512_test.json",
		"rsa_signature_4096_sha384_test.json", "rsa_signature_4096_sha512_test.json",
		"rsa_signature_2048_sha3_224_test.json", "rsa_signature_2048_sha3_256_test.json",
		"rsa_signature_2048_sha3_384_test.json", "rsa_signature_2048_sha3_512_test.json",
		"rsa_signature_3072_sha3_256_test.json", "rsa_signature_3072_sha3_384_test.json",
		"rsa_signature_3072_sha3_512_test.json",
	}
	rec := row(t, ck.CKM_RSA_PKCS)
	for _, name := range files {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var n wpTally
			for _, g := range wycheproof.Load(t, name).Groups {
				h, ok := wpHash[wycheproof.Str(t, g.Fields, "sha")]
				require.True(t, ok, wycheproof.Str(t, g.Fields, "sha"))
				pub := wpPublic(t, g)
				m := row(t, h.pkcs)
				for _, c := range g.Tests {
					n.pass++
					msg, sig := wycheproof.Hex(t, c.Fields, "msg"), wycheproof.Hex(t, c.Fields, "sig")
					err := verifyOnce(t, m, pub, nil, msg, sig)
					if wpResult(t, c) {
						n.accepted++
						require.NoError(t, err, "tc %d %s", c.ID, c.Comment)
						// C_VerifyRecover with CKM_RSA_PKCS opens the same
						// signature to DigestInfo || H(msg).
						got, err := rec.VerifyRecover(pub, nil, sig)
						require.NoError(t, err, "tc %d", c.ID)
						hh := h.hash.New()
						hh.Write(msg)
						assert.Equal(t, hh.Sum(nil), got[len(got)-h.hash.Size():], "tc %d", c.ID)
						continue
					}
					n.rejected++
					require.Error(t, err, "tc %d %s %v", c.ID, c.Comment, c.Flags)
					assert.True(t, errorsIsAny(err, ck.CKR_SIGNATURE_INVALID, ck.CKR_SIGNATURE_LEN_RANGE), "tc %d: %v", c.ID, err)
				}
			}
			n.log(t, name)
		})
	}
}

// rsa_sig_gen_misc_test.json: PKCS#1 v1.5 signing is deterministic, so our
// signatures must equal the vectors'; and the raw CKM_RSA_X_509 private
// operation on the EMSA-PKCS1-v1_5 block must give the same signature
// (which checks rsaRawPrivate against the vectors).
func TestRSASignatureGenerationWycheproof(t *testing.T) {
	var n wpTally
	raw := row(t, ck.CKM_RSA_X_509)
	for _, g := range wycheproof.Load(t, "rsa_sig_gen_misc_test.json").Groups {
		h, ok := wpHash[wycheproof.Str(t, g.Fields, "sha")]
		require.True(t, ok)
		priv := wpPrivate(t, g)
		m := row(t, h.pkcs)
		for _, c := range g.Tests {
			n.pass++
			msg, want := wycheproof.Hex(t, c.Fields, "msg"), wycheproof.Hex(t, c.Fields, "sig")
			require.True(t, wpResult(t, c), "tc %d", c.ID)
			n.accepted++
			sig, err := signOnce(t, m, prepared(t, m, priv), nil, msg)
			require.NoError(t, err, "tc %d", c.ID)
			assert.Equal(t, want, sig, "tc %d", c.ID)

			em, err := row(t, ck.CKM_RSA_PKCS).VerifyRecover(&priv.PublicKey, nil, sig)
			require.NoError(t, err)
			block := append([]byte{0, 1}, bytes.Repeat([]byte{0xff}, priv.Size()-len(em)-3)...)
			block = append(append(block, 0), em...)
			rs, err := raw.SignRecover(prepared(t, raw, priv), nil, block)
			require.NoError(t, err, "tc %d", c.ID)
			assert.Equal(t, want, rs, "tc %d raw", c.ID)
		}
	}
	n.log(t, "rsa_sig_gen_misc_test.json")
}

func TestRSAPSSWycheproof(t *testing.T) {
	files := []string{
		"rsa_pss_2048_sha1_mgf1_20_test.json", "rsa_pss_2048_sha256_mgf1_0_test.json",
		"rsa_pss_2048_sha256_mgf1_32_test.json", "rsa_pss_3072_sha256_mgf1_32_test.json",
		"rsa_pss_4096_sha256_mgf1_32_test.json", "rsa_pss_4096_sha512_mgf1_32_test.json",
		"rsa_pss_misc_test.json",
	}
	for _, name := range files {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var n wpTally
			for _, g := range wycheproof.Load(t, name).Groups {
				require.Equal(t, "MGF1", wycheproof.Str(t, g.Fields, "mgf"))
				h, ok := wpHash[wycheproof.Str(t, g.Fields, "sha")]
				require.True(t, ok)
				mgf, ok := wpHash[wycheproof.Str(t, g.Fields, "mgfSha")]
				require.True(t, ok)
				p := &PSSParams{Hash: h.mech, MGF: mgf.mgf, SaltLen: wycheproof.Int(t, g.Fields, "sLen")}
				pub := wpPublic(t, g)
				hashed, rawPSS := row(t, h.pss), row(t, ck.CKM_RSA_PKCS_PSS)
				if h.hash != mgf.hash || p.SaltLen == 0 {
					_, err := hashed.Verify(pub, p)
					require.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID)
					n.pass += len(g.Tests)
					n.refusedParam += len(g.Tests)
					continue
				}
				for _, c := range g.Tests {
					n.pass++
					msg, sig := wycheproof.Hex(t, c.Fields, "msg"), wycheproof.Hex(t, c.Fields, "sig")
					hh := h.hash.New()
					hh.Write(msg)
					errHashed := verifyOnce(t, hashed, pub, p, msg, sig)
					errRaw := verifyOnce(t, rawPSS, pub, p, hh.Sum(nil), sig)
					if wpResult(t, c) {
						n.accepted++
						require.NoError(t, errHashed, "tc %d %s", c.ID, c.Comment)
						require.NoError(t, errRaw, "tc %d %s", c.ID, c.Comment)
						continue
					}
					n.rejected++
					for _, err := range []error{errHashed, errRaw} {
						require.Error(t, err, "tc %d %s", c.ID, c.Comment)
						assert.True(t, errorsIsAny(err, ck.CKR_SIGNATURE_INVALID, ck.CKR_SIGNATURE_LEN_RANGE), "tc %d: %v", c.ID, err)
					}
				}
			}
			n.log(t, name)
		})
	}
}

func TestRSAOAEPWycheproof(t *testing.T) {
	files := []string{
		"rsa_oaep_misc_test.json",
		"rsa_oaep_2048_sha1_mgf1sha1_test.json",
		"rsa_oaep_2048_sha224_mgf1sha1_test.json", "rsa_oaep_2048_sha224_mgf1sha224_test.json",
		"rsa_oaep_2048_sha256_mgf1sha1_test.json", "rsa_oaep_2048_sha256_mgf1sha256_test.json",
		"rsa_oaep_2048_sha384_mgf1sha1_test.json", "rsa_oaep_2048_sha384_mgf1sha384_test.json",
		"rsa_oaep_2048_sha512_mgf1sha1_test.json", "rsa_oaep_2048_sha512_mgf1sha512_test.json",
		"rsa_oaep_3072_sha256_mgf1sha1_test.json", "rsa_oaep_3072_sha256_mgf1sha256_test.json",
		"rsa_oaep_3072_sha512_mgf1sha1_test.json", "rsa_oaep_3072_sha512_mgf1sha512_test.json",
		"rsa_oaep_4096_sha256_mgf1sha1_test.json", "rsa_oaep_4096_sha256_mgf1sha256_test.json",
		"rsa_oaep_4096_sha512_mgf1sha1_test.json", "rsa_oaep_4096_sha512_mgf1sha512_test.json",
	}
	m := row(t, ck.CKM_RSA_PKCS_OAEP)
	for _, name := range files {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var n wpTally
			for _, g := range wycheproof.Load(t, name).Groups {
				require.Equal(t, "MGF1", wycheproof.Str(t, g.Fields, "mgf"))
				h, ok := wpHash[wycheproof.Str(t, g.Fields, "sha")]
				require.True(t, ok)
				mgf, ok := wpHash[wycheproof.Str(t, g.Fields, "mgfSha")]
				require.True(t, ok)
				priv := wpPrivate(t, g)
				for _, c := range g.Tests {
					n.pass++
					label := wycheproof.Hex(t, c.Fields, "label")
					p := &OAEPParams{Hash: h.mech, MGF: mgf.mgf, Source: ck.CKZ_DATA_SPECIFIED, Label: label}
					dec, err := m.Decrypt(priv, p)
					require.NoError(t, err)
					pt, err := dec.Once(nil, wycheproof.Hex(t, c.Fields, "ct"))
					if wpResult(t, c) {
						n.accepted++
						require.NoError(t, err, "tc %d %s", c.ID, c.Comment)
						equalBytes(t, wycheproof.Hex(t, c.Fields, "msg"), pt, "tc %d", c.ID)
						// The same through C_UnwrapKey.
						if len(pt) > 0 {
							got, err := m.Unwrap(priv, p, wycheproof.Hex(t, c.Fields, "ct"))
							require.NoError(t, err, "tc %d", c.ID)
							assert.Equal(t, pt, got)
						}
						continue
					}
					n.rejected++
					require.Error(t, err, "tc %d %s", c.ID, c.Comment)
					assert.True(t, errorsIsAny(err, ck.CKR_ENCRYPTED_DATA_INVALID, ck.CKR_ENCRYPTED_DATA_LEN_RANGE), "tc %d: %v", c.ID, err)
				}
			}
			n.log(t, name)
		})
	}
}

// rsa_pkcs1_*_test.json: PKCS#1 v1.5 decryption through CKM_RSA_PKCS; and
// the raw CKM_RSA_X_509 decryption of every well-sized ciphertext, which
// for valid ones is the type 2 block ending in the message, and which
// re-encrypts (raw) to the ciphertext.
func TestRSAPKCS1DecryptWycheproof(t *testing.T) {
	pkcs, raw := row(t, ck.CKM_RSA_PKCS), row(t, ck.CKM_RSA_X_509)
	for _, name := range []string{"rsa_pkcs1_2048_test.json", "rsa_pkcs1_3072_test.json", "rsa_pkcs1_4096_test.json"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var n wpTally
			for _, g := range wycheproof.Load(t, name).Groups {
				priv := wpPrivate(t, g)
				for _, c := range g.Tests {
					n.pass++
					ct := wycheproof.Hex(t, c.Fields, "ct")
					dec, err := pkcs.Decrypt(priv, nil)
					require.NoError(t, err)
					pt, err := dec.Once(nil, ct)

					rdec, rerr := raw.Decrypt(priv, nil)
					require.NoError(t, rerr)
					em, rerr := rdec.Once(nil, ct)
					if len(ct) == priv.Size() && rerr == nil {
						enc, err := raw.Encrypt(&priv.PublicKey, nil)
						require.NoError(t, err)
						back, err := enc.Once(nil, em)
						require.NoError(t, err)
						assert.Equal(t, ct, back, "tc %d: raw round trip", c.ID)
					}

					if wpResult(t, c) {
						n.accepted++
						require.NoError(t, err, "tc %d %s", c.ID, c.Comment)
						msg := wycheproof.Hex(t, c.Fields, "msg")
						equalBytes(t, msg, pt, "tc %d", c.ID)
						require.NoError(t, rerr)
						require.Len(t, em, priv.Size())
						assert.Equal(t, []byte{0, 2}, em[:2], "tc %d", c.ID)
						assert.Equal(t, append([]byte{0}, msg...), em[len(em)-len(msg)-1:], "tc %d", c.ID)
						if len(msg) > 0 {
							got, err := pkcs.Unwrap(priv, nil, ct)
							require.NoError(t, err)
							assert.Equal(t, msg, got)
						}
						continue
					}
					n.rejected++
					require.Error(t, err, "tc %d %s", c.ID, c.Comment)
					assert.True(t, errorsIsAny(err, ck.CKR_ENCRYPTED_DATA_INVALID, ck.CKR_ENCRYPTED_DATA_LEN_RANGE), "tc %d: %v", c.ID, err)
					_, err = pkcs.Unwrap(priv, nil, ct)
					assert.True(t, errorsIsAny(err, ck.CKR_WRAPPED_KEY_INVALID, ck.CKR_WRAPPED_KEY_LEN_RANGE), "tc %d: %v", c.ID, err)
				}
			}
			n.log(t, name)
		})
	}
}
