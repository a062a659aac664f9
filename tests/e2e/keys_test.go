package e2e

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/asn1"
	"math/big"
	"os"
	"testing"

	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// DER-encoded named-curve OIDs for CKA_EC_PARAMS.
var (
	oidP256 = []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}
	oidP384 = []byte{0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22}
)

func mech(m uint, param any) []*pkcs11.Mechanism {
	return []*pkcs11.Mechanism{pkcs11.NewMechanism(m, param)}
}

func (tk *tok) genEC(s pkcs11.SessionHandle, params []byte, label string, token bool) (pub, priv pkcs11.ObjectHandle) {
	tk.t.Helper()
	pub, priv, err := tk.p.GenerateKeyPair(s, mech(pkcs11.CKM_EC_KEY_PAIR_GEN, nil),
		[]*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, token),
			pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params),
			pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		},
		[]*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, token),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
			pkcs11.NewAttribute(pkcs11.CKA_ID, []byte(label)),
		})
	require.NoError(tk.t, err, "C_GenerateKeyPair EC %s", label)
	return pub, priv
}

func (tk *tok) genAES(s pkcs11.SessionHandle, label string, extra ...*pkcs11.Attribute) pkcs11.ObjectHandle {
	tk.t.Helper()
	tmpl := append([]*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	}, extra...)
	k, err := tk.p.GenerateKey(s, mech(pkcs11.CKM_AES_KEY_GEN, nil), tmpl)
	require.NoError(tk.t, err, "C_GenerateKey AES %s", label)
	return k
}

// ecPublic reads an EC public key: CKA_EC_POINT is a DER OCTET STRING
// holding the uncompressed point.
func (tk *tok) ecPublic(s pkcs11.SessionHandle, pub pkcs11.ObjectHandle, curve elliptic.Curve) *ecdsa.PublicKey {
	tk.t.Helper()
	var point []byte
	rest, err := asn1.Unmarshal(tk.attr(s, pub, pkcs11.CKA_EC_POINT), &point)
	require.NoError(tk.t, err, "CKA_EC_POINT is not a DER OCTET STRING")
	require.Empty(tk.t, rest, "CKA_EC_POINT has trailing bytes")
	k, err := ecdsa.ParseUncompressedPublicKey(curve, point)
	require.NoError(tk.t, err, "CKA_EC_POINT")
	return k
}

func (tk *tok) rsaPublic(s pkcs11.SessionHandle, pub pkcs11.ObjectHandle) *rsa.PublicKey {
	tk.t.Helper()
	n := new(big.Int).SetBytes(tk.attr(s, pub, pkcs11.CKA_MODULUS))
	e := new(big.Int).SetBytes(tk.attr(s, pub, pkcs11.CKA_PUBLIC_EXPONENT))
	require.True(tk.t, e.IsInt64())
	return &rsa.PublicKey{N: n, E: int(e.Int64())}
}

func (tk *tok) sign(s pkcs11.SessionHandle, m []*pkcs11.Mechanism, k pkcs11.ObjectHandle, msg []byte) []byte {
	tk.t.Helper()
	require.NoError(tk.t, tk.p.SignInit(s, m, k), "C_SignInit")
	sig, err := tk.p.Sign(s, msg)
	require.NoError(tk.t, err, "C_Sign")
	return sig
}

// signMulti signs msg in three C_SignUpdate parts.
func (tk *tok) signMulti(s pkcs11.SessionHandle, m []*pkcs11.Mechanism, k pkcs11.ObjectHandle, msg []byte) []byte {
	tk.t.Helper()
	require.NoError(tk.t, tk.p.SignInit(s, m, k), "C_SignInit")
	for _, part := range [][]byte{msg[:1], msg[1 : len(msg)/2], msg[len(msg)/2:]} {
		require.NoError(tk.t, tk.p.SignUpdate(s, part), "C_SignUpdate")
	}
	sig, err := tk.p.SignFinal(s)
	require.NoError(tk.t, err, "C_SignFinal")
	return sig
}

func (tk *tok) verify(s pkcs11.SessionHandle, m []*pkcs11.Mechanism, k pkcs11.ObjectHandle, msg, sig []byte) error {
	tk.t.Helper()
	require.NoError(tk.t, tk.p.VerifyInit(s, m, k), "C_VerifyInit")
	return tk.p.Verify(s, msg, sig)
}

func (tk *tok) verifyMulti(s pkcs11.SessionHandle, m []*pkcs11.Mechanism, k pkcs11.ObjectHandle, msg, sig []byte) error {
	tk.t.Helper()
	require.NoError(tk.t, tk.p.VerifyInit(s, m, k), "C_VerifyInit")
	for _, part := range [][]byte{msg[:len(msg)/3], msg[len(msg)/3:]} {
		require.NoError(tk.t, tk.p.VerifyUpdate(s, part), "C_VerifyUpdate")
	}
	return tk.p.VerifyFinal(s, sig)
}

// ecdsaRS splits a PKCS#11 ECDSA signature r || s.
func ecdsaRS(t *testing.T, sig []byte, size int) (*big.Int, *big.Int) {
	t.Helper()
	require.Len(t, sig, 2*size, "ECDSA signature is r || s")
	return new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:])
}

func TestKeysAndCrypto(t *testing.T) {
	tk := newToken(t)
	tk.initToken()
	p := tk.p
	s := tk.userSession(userPIN)
	msg := []byte("the quick brown fox jumps over the lazy dog, twice over for length")
	h256 := sha256.Sum256(msg)

	t.Run("ECDSA", func(t *testing.T) {
		for _, c := range []struct {
			name   string
			params []byte
			curve  elliptic.Curve
			size   int
			digest []byte
		}{
			{"P-256", oidP256, elliptic.P256(), 32, h256[:]},
			{"P-384", oidP384, elliptic.P384(), 48, func() []byte { h := sha512.Sum384(msg); return h[:] }()},
		} {
			t.Run(c.name, func(t *testing.T) {
				tk := *tk
				tk.t = t
				pub, priv := tk.genEC(s, c.params, "ec-"+c.name, true)
				key := tk.ecPublic(s, pub, c.curve)
				assert.Equal(t, c.params, tk.attr(s, priv, pkcs11.CKA_EC_PARAMS))

				// CKM_ECDSA signs a digest the caller made.
				sig := tk.sign(s, mech(pkcs11.CKM_ECDSA, nil), priv, c.digest)
				r, ss := ecdsaRS(t, sig, c.size)
				assert.True(t, ecdsa.Verify(key, c.digest, r, ss), "crypto/ecdsa rejects CKM_ECDSA signature")
				require.NoError(t, tk.verify(s, mech(pkcs11.CKM_ECDSA, nil), pub, c.digest, sig))

				// CKM_ECDSA_SHA256 hashes, single- and multi-part.
				for _, multi := range []bool{false, true} {
					var sig []byte
					if multi {
						sig = tk.signMulti(s, mech(pkcs11.CKM_ECDSA_SHA256, nil), priv, msg)
					} else {
						sig = tk.sign(s, mech(pkcs11.CKM_ECDSA_SHA256, nil), priv, msg)
					}
					r, ss := ecdsaRS(t, sig, c.size)
					assert.True(t, ecdsa.Verify(key, h256[:], r, ss), "crypto/ecdsa rejects CKM_ECDSA_SHA256 signature (multi-part %v)", multi)
					require.NoError(t, tk.verify(s, mech(pkcs11.CKM_ECDSA_SHA256, nil), pub, msg, sig))
					require.NoError(t, tk.verifyMulti(s, mech(pkcs11.CKM_ECDSA_SHA256, nil), pub, msg, sig))
					bad := bytes.Clone(sig)
					bad[len(bad)-1] ^= 1
					requireRV(t, tk.verify(s, mech(pkcs11.CKM_ECDSA_SHA256, nil), pub, msg, bad), pkcs11.CKR_SIGNATURE_INVALID)
				}
				// A signature crypto/ecdsa made verifies on the token.
				goPriv, err := ecdsa.GenerateKey(c.curve, rand.Reader)
				require.NoError(t, err)
				raw, err := goPriv.PublicKey.Bytes()
				require.NoError(t, err)
				point, err := asn1.Marshal(raw)
				require.NoError(t, err)
				goPub, err := p.CreateObject(s, []*pkcs11.Attribute{
					pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
					pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
					pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, c.params),
					pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, point),
					pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
				})
				require.NoError(t, err, "C_CreateObject EC public key")
				gr, gs, err := ecdsa.Sign(rand.Reader, goPriv, c.digest)
				require.NoError(t, err)
				goSig := make([]byte, 2*c.size)
				gr.FillBytes(goSig[:c.size])
				gs.FillBytes(goSig[c.size:])
				require.NoError(t, tk.verify(s, mech(pkcs11.CKM_ECDSA, nil), goPub, c.digest, goSig), "token rejects a crypto/ecdsa signature")
			})
		}
	})

	t.Run("RSA", func(t *testing.T) {
		tk := *tk
		tk.t = t
		pub, priv, err := p.GenerateKeyPair(s, mech(pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil),
			[]*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
				pkcs11.NewAttribute(pkcs11.CKA_MODULUS_BITS, 2048),
				pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}),
				pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
				pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
				pkcs11.NewAttribute(pkcs11.CKA_LABEL, "rsa"),
			},
			[]*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
				pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
				pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
				pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
				pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
				pkcs11.NewAttribute(pkcs11.CKA_LABEL, "rsa"),
			})
		require.NoError(t, err, "C_GenerateKeyPair RSA-2048")
		key := tk.rsaPublic(s, pub)
		assert.Equal(t, 2048, key.N.BitLen())
		assert.Equal(t, 65537, key.E)
		assert.True(t, tk.boolAttr(s, pub, pkcs11.CKA_TOKEN), "token object")
		_, err = p.GetAttributeValue(s, priv, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_PRIME_1, nil)})
		requireRV(t, err, pkcs11.CKR_ATTRIBUTE_SENSITIVE)

		// PKCS #1 v1.5 is deterministic: multi-part equals single-part.
		sig := tk.sign(s, mech(pkcs11.CKM_SHA256_RSA_PKCS, nil), priv, msg)
		require.NoError(t, rsa.VerifyPKCS1v15(key, crypto.SHA256, h256[:], sig), "crypto/rsa rejects CKM_SHA256_RSA_PKCS")
		// The module signs in the system's libcrypto (internal/ossl): it
		// is mapped in this process now (nothing else here loads it).
		maps, err := os.ReadFile("/proc/self/maps")
		require.NoError(t, err)
		assert.Contains(t, string(maps), "libcrypto.so.3", "the module did not load libcrypto for RSA")
		assert.Equal(t, sig, tk.signMulti(s, mech(pkcs11.CKM_SHA256_RSA_PKCS, nil), priv, msg), "multi-part signature differs")
		require.NoError(t, tk.verify(s, mech(pkcs11.CKM_SHA256_RSA_PKCS, nil), pub, msg, sig))
		require.NoError(t, tk.verifyMulti(s, mech(pkcs11.CKM_SHA256_RSA_PKCS, nil), pub, msg, sig))
		requireRV(t, tk.verify(s, mech(pkcs11.CKM_SHA256_RSA_PKCS, nil), pub, append([]byte("x"), msg...), sig), pkcs11.CKR_SIGNATURE_INVALID)

		pss := pkcs11.NewPSSParams(pkcs11.CKM_SHA256, pkcs11.CKG_MGF1_SHA256, 32)
		for _, multi := range []bool{false, true} {
			var sig []byte
			if multi {
				sig = tk.signMulti(s, mech(pkcs11.CKM_SHA256_RSA_PKCS_PSS, pss), priv, msg)
			} else {
				sig = tk.sign(s, mech(pkcs11.CKM_SHA256_RSA_PKCS_PSS, pss), priv, msg)
			}
			require.NoError(t, rsa.VerifyPSS(key, crypto.SHA256, h256[:], sig, &rsa.PSSOptions{SaltLength: 32}),
				"crypto/rsa rejects CKM_SHA256_RSA_PKCS_PSS (multi-part %v)", multi)
			require.NoError(t, tk.verifyMulti(s, mech(pkcs11.CKM_SHA256_RSA_PKCS_PSS, pss), pub, msg, sig))
		}

		// CKM_RSA_PKCS encryption both ways with crypto/rsa.
		plain := []byte("rsa pkcs#1 v1.5 secret")
		require.NoError(t, p.EncryptInit(s, mech(pkcs11.CKM_RSA_PKCS, nil), pub))
		ct, err := p.Encrypt(s, plain)
		require.NoError(t, err, "C_Encrypt RSA_PKCS")
		require.Len(t, ct, 256)
		require.NoError(t, p.DecryptInit(s, mech(pkcs11.CKM_RSA_PKCS, nil), priv))
		pt, err := p.Decrypt(s, ct)
		require.NoError(t, err, "C_Decrypt RSA_PKCS")
		assert.Equal(t, plain, pt)
		ct, err = rsa.EncryptPKCS1v15(rand.Reader, key, plain)
		require.NoError(t, err)
		require.NoError(t, p.DecryptInit(s, mech(pkcs11.CKM_RSA_PKCS, nil), priv))
		pt, err = p.Decrypt(s, ct)
		require.NoError(t, err, "C_Decrypt of a crypto/rsa ciphertext")
		assert.Equal(t, plain, pt)
	})

	t.Run("AES-GCM", func(t *testing.T) {
		tk := *tk
		tk.t = t
		sensitive := tk.genAES(s, "aes-sensitive", pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true))
		plain := bytes.Repeat([]byte("gcm plaintext "), 7)
		iv := make([]byte, 12)
		rand.Read(iv)
		aad := []byte("associated data")
		enc := func(k pkcs11.ObjectHandle, iv, aad, pt []byte) []byte {
			t.Helper()
			gp := pkcs11.NewGCMParams(iv, aad, 128)
			defer gp.Free()
			require.NoError(t, p.EncryptInit(s, mech(pkcs11.CKM_AES_GCM, gp), k), "C_EncryptInit AES_GCM")
			ct, err := p.Encrypt(s, pt)
			require.NoError(t, err, "C_Encrypt AES_GCM")
			return ct
		}
		dec := func(k pkcs11.ObjectHandle, iv, aad, ct []byte) ([]byte, error) {
			t.Helper()
			gp := pkcs11.NewGCMParams(iv, aad, 128)
			defer gp.Free()
			require.NoError(t, p.DecryptInit(s, mech(pkcs11.CKM_AES_GCM, gp), k), "C_DecryptInit AES_GCM")
			return p.Decrypt(s, ct)
		}
		ct := enc(sensitive, iv, aad, plain)
		require.Len(t, ct, len(plain)+16, "ciphertext || 128-bit tag")
		pt, err := dec(sensitive, iv, aad, ct)
		require.NoError(t, err)
		assert.Equal(t, plain, pt)
		bad := bytes.Clone(ct)
		bad[len(bad)-1] ^= 0x80
		_, err = dec(sensitive, iv, aad, bad)
		requireRV(t, err, pkcs11.CKR_ENCRYPTED_DATA_INVALID)
		_, err = dec(sensitive, iv, []byte("other data"), ct)
		requireRV(t, err, pkcs11.CKR_ENCRYPTED_DATA_INVALID)

		// An extractable key: the token's GCM agrees with crypto/cipher.
		open := tk.genAES(s, "aes-open", pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, false), pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true))
		raw := tk.attr(s, open, pkcs11.CKA_VALUE)
		require.Len(t, raw, 32)
		b, err := aes.NewCipher(raw)
		require.NoError(t, err)
		gcm, err := cipher.NewGCM(b)
		require.NoError(t, err)
		assert.Equal(t, gcm.Seal(nil, iv, plain, aad), enc(open, iv, aad, plain), "token AES-GCM differs from crypto/cipher")
		pt, err = dec(open, iv, aad, gcm.Seal(nil, iv, plain, aad))
		require.NoError(t, err)
		assert.Equal(t, plain, pt)
	})

	t.Run("Digest", func(t *testing.T) {
		require.NoError(t, p.DigestInit(s, mech(pkcs11.CKM_SHA256, nil)))
		d, err := p.Digest(s, msg)
		require.NoError(t, err, "C_Digest")
		assert.Equal(t, h256[:], d)
		require.NoError(t, p.DigestInit(s, mech(pkcs11.CKM_SHA256, nil)))
		require.NoError(t, p.DigestUpdate(s, msg[:10]))
		require.NoError(t, p.DigestUpdate(s, msg[10:]))
		d, err = p.DigestFinal(s)
		require.NoError(t, err, "C_DigestFinal")
		assert.Equal(t, h256[:], d)
	})

	t.Run("Random", func(t *testing.T) {
		a, err := p.GenerateRandom(s, 64)
		require.NoError(t, err, "C_GenerateRandom")
		b, err := p.GenerateRandom(s, 64)
		require.NoError(t, err)
		require.Len(t, a, 64)
		assert.NotEqual(t, a, b)
		assert.NotEqual(t, make([]byte, 64), a)
	})

	t.Run("Attributes", func(t *testing.T) {
		tk := *tk
		tk.t = t
		// CKA_SENSITIVE defaults to CK_TRUE; CKA_EXTRACTABLE is given (its
		// default is token-specific).
		sens := tk.genAES(s, "attr-sensitive", pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true), pkcs11.NewAttribute(pkcs11.CKA_ID, []byte{0xa1, 0xb2}),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false))
		_, err := p.GetAttributeValue(s, sens, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
		requireRV(t, err, pkcs11.CKR_ATTRIBUTE_SENSITIVE)
		for attr, want := range map[uint]bool{
			pkcs11.CKA_LOCAL:             true,
			pkcs11.CKA_SENSITIVE:         true,
			pkcs11.CKA_ALWAYS_SENSITIVE:  true,
			pkcs11.CKA_PRIVATE:           true,
			pkcs11.CKA_TOKEN:             true,
			pkcs11.CKA_ENCRYPT:           true,
			pkcs11.CKA_EXTRACTABLE:       false,
			pkcs11.CKA_NEVER_EXTRACTABLE: true,
		} {
			assert.Equal(t, want, tk.boolAttr(s, sens, attr), "sensitive generated key: attribute 0x%x", attr)
		}
		assert.Equal(t, []byte{32, 0, 0, 0, 0, 0, 0, 0}, tk.attr(s, sens, pkcs11.CKA_VALUE_LEN))

		open := tk.genAES(s, "attr-open", pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, false), pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true))
		assert.Len(t, tk.attr(s, open, pkcs11.CKA_VALUE), 32)
		for attr, want := range map[uint]bool{
			pkcs11.CKA_LOCAL:             true,
			pkcs11.CKA_SENSITIVE:         false,
			pkcs11.CKA_ALWAYS_SENSITIVE:  false,
			pkcs11.CKA_EXTRACTABLE:       true,
			pkcs11.CKA_NEVER_EXTRACTABLE: false,
		} {
			assert.Equal(t, want, tk.boolAttr(s, open, attr), "extractable generated key: attribute 0x%x", attr)
		}
		// CKA_SENSITIVE can be turned on, then the value is hidden, and it
		// cannot be turned off again.
		require.NoError(t, p.SetAttributeValue(s, open, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true)}))
		_, err = p.GetAttributeValue(s, open, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
		requireRV(t, err, pkcs11.CKR_ATTRIBUTE_SENSITIVE)
		requireRV(t, p.SetAttributeValue(s, open, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, false)}), pkcs11.CKR_ATTRIBUTE_READ_ONLY)

		// An imported key is not local.
		imp, err := p.CreateObject(s, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE, bytes.Repeat([]byte{7}, 16)),
			pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, "attr-imported"),
		})
		require.NoError(t, err, "C_CreateObject AES")
		assert.False(t, tk.boolAttr(s, imp, pkcs11.CKA_LOCAL), "imported key CKA_LOCAL")
		assert.False(t, tk.boolAttr(s, imp, pkcs11.CKA_NEVER_EXTRACTABLE), "imported key CKA_NEVER_EXTRACTABLE")
		assert.False(t, tk.boolAttr(s, imp, pkcs11.CKA_ALWAYS_SENSITIVE), "imported key CKA_ALWAYS_SENSITIVE")

		// Label can change, class cannot.
		require.NoError(t, p.SetAttributeValue(s, sens, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, "attr-renamed")}), "C_SetAttributeValue CKA_LABEL")
		assert.Equal(t, "attr-renamed", string(tk.attr(s, sens, pkcs11.CKA_LABEL)))
		requireRV(t, p.SetAttributeValue(s, sens, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_DATA)}), pkcs11.CKR_ATTRIBUTE_READ_ONLY)

		// Find by label and by CKA_ID.
		assert.Equal(t, []pkcs11.ObjectHandle{sens}, tk.find(s, pkcs11.NewAttribute(pkcs11.CKA_LABEL, "attr-renamed")))
		assert.Empty(t, tk.find(s, pkcs11.NewAttribute(pkcs11.CKA_LABEL, "attr-sensitive")), "old label still found")
		assert.Equal(t, []pkcs11.ObjectHandle{sens}, tk.find(s, pkcs11.NewAttribute(pkcs11.CKA_ID, []byte{0xa1, 0xb2})))
		assert.Equal(t, []pkcs11.ObjectHandle{open}, tk.find(s, pkcs11.NewAttribute(pkcs11.CKA_LABEL, "attr-open")))

		// A copy is a distinct object that encrypts like the original.
		cp, err := p.CopyObject(s, sens, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, "attr-copy")})
		require.NoError(t, err, "C_CopyObject")
		assert.NotEqual(t, sens, cp)
		assert.Equal(t, "attr-copy", string(tk.attr(s, cp, pkcs11.CKA_LABEL)))
		assert.Equal(t, "attr-renamed", string(tk.attr(s, sens, pkcs11.CKA_LABEL)))
		iv := make([]byte, 12)
		gp := pkcs11.NewGCMParams(iv, nil, 128)
		require.NoError(t, p.EncryptInit(s, mech(pkcs11.CKM_AES_GCM, gp), sens))
		ct, err := p.Encrypt(s, []byte("copied key"))
		gp.Free()
		require.NoError(t, err)
		gp = pkcs11.NewGCMParams(iv, nil, 128)
		require.NoError(t, p.DecryptInit(s, mech(pkcs11.CKM_AES_GCM, gp), cp))
		pt, err := p.Decrypt(s, ct)
		gp.Free()
		require.NoError(t, err, "the copy decrypts what the original encrypted")
		assert.Equal(t, []byte("copied key"), pt)

		// Destroyed objects are gone.
		require.NoError(t, p.DestroyObject(s, cp), "C_DestroyObject")
		assert.Empty(t, tk.find(s, pkcs11.NewAttribute(pkcs11.CKA_LABEL, "attr-copy")))
		_, err = p.GetAttributeValue(s, cp, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil)})
		requireRV(t, err, pkcs11.CKR_OBJECT_HANDLE_INVALID)
		requireRV(t, p.DestroyObject(s, cp), pkcs11.CKR_OBJECT_HANDLE_INVALID)
	})
}
