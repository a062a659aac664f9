package mechanisms

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
)

// sha256DigestInfo is the DER prefix of a SHA-256 DigestInfo (RFC 8017
// §9.2, note 1).
var sha256DigestInfo = unhex("3031300d060960864801650304020105000420")

func rsaFixture(t *testing.T) fixture { return keyFixtures(t, ck.CKK_RSA)[0] }

func signOnce(t *testing.T, m *Mechanism, key, param any, msg []byte) ([]byte, error) {
	t.Helper()
	s, err := m.Sign(key, param)
	require.NoError(t, err)
	require.NoError(t, s.Update(msg))
	return s.Sign(nil)
}

func verifyOnce(t *testing.T, m *Mechanism, key, param any, msg, sig []byte) error {
	t.Helper()
	v, err := m.Verify(key, param)
	require.NoError(t, err)
	require.NoError(t, v.Update(msg))
	return v.Verify(sig)
}

func TestRSAPKCS1v15(t *testing.T) {
	f := rsaFixture(t)
	priv, pub := f.priv.(*rsa.PrivateKey), f.pub.(*rsa.PublicKey)
	msg := []byte("pkcs#1 v1.5")
	h := sha256.Sum256(msg)

	// CKM_SHA256_RSA_PKCS(msg) == CKM_RSA_PKCS(DigestInfo || SHA-256(msg))
	// == crypto/rsa's SignPKCS1v15: the scheme is deterministic.
	hashed, err := signOnce(t, row(t, ck.CKM_SHA256_RSA_PKCS), priv, nil, msg)
	require.NoError(t, err)
	raw, err := signOnce(t, row(t, ck.CKM_RSA_PKCS), priv, nil, append(sha256DigestInfo, h[:]...))
	require.NoError(t, err)
	std, err := rsa.SignPKCS1v15(nil, priv, crypto.SHA256, h[:])
	require.NoError(t, err)
	assert.Equal(t, std, hashed)
	assert.Equal(t, std, raw)
	require.NoError(t, rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], hashed))

	// Input limit of CKM_RSA_PKCS: k-11 bytes (PKCS#11 v3.0 "PKCS #1 v1.5 RSA").
	k := priv.Size()
	_, err = signOnce(t, row(t, ck.CKM_RSA_PKCS), priv, nil, make([]byte, k-11))
	assert.NoError(t, err)
	_, err = signOnce(t, row(t, ck.CKM_RSA_PKCS), priv, nil, make([]byte, k-10))
	assert.ErrorIs(t, err, ck.CKR_DATA_LEN_RANGE)
	assert.ErrorIs(t, verifyOnce(t, row(t, ck.CKM_RSA_PKCS), pub, nil, make([]byte, k-10), std), ck.CKR_DATA_LEN_RANGE)

	// Encryption: limit, wrong ciphertext length, bad padding.
	enc, err := row(t, ck.CKM_RSA_PKCS).Encrypt(pub, nil)
	require.NoError(t, err)
	_, err = enc.Once(nil, make([]byte, k-10))
	assert.ErrorIs(t, err, ck.CKR_DATA_LEN_RANGE)
	ct, err := enc.Once(nil, make([]byte, k-11))
	require.NoError(t, err)
	std2, err := rsa.DecryptPKCS1v15(nil, priv, ct)
	require.NoError(t, err)
	assert.Equal(t, make([]byte, k-11), std2)

	dec, err := row(t, ck.CKM_RSA_PKCS).Decrypt(priv, nil)
	require.NoError(t, err)
	_, err = dec.Once(nil, ct[1:])
	assert.ErrorIs(t, err, ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
	// c = 1 decrypts to m = 1, whose block 00 .. 01 is not type 2.
	one := make([]byte, k)
	one[k-1] = 1
	_, err = dec.Once(nil, one)
	assert.ErrorIs(t, err, ck.CKR_ENCRYPTED_DATA_INVALID)
}

func TestRSAPSS(t *testing.T) {
	f := rsaFixture(t)
	priv, pub := f.priv.(*rsa.PrivateKey), f.pub.(*rsa.PublicKey)
	msg := []byte("pss")
	h := sha256.Sum256(msg)
	good := &PSSParams{Hash: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA256, SaltLen: 32}

	for _, mech := range []ck.MechanismType{ck.CKM_SHA256_RSA_PKCS_PSS, ck.CKM_RSA_PKCS_PSS} {
		in := msg
		if mech == ck.CKM_RSA_PKCS_PSS {
			in = h[:]
		}
		sig, err := signOnce(t, row(t, mech), priv, good, in)
		require.NoError(t, err)
		require.NoError(t, rsa.VerifyPSS(pub, crypto.SHA256, h[:], sig, &rsa.PSSOptions{SaltLength: 32}), mech)

		std, err := rsa.SignPSS(rand.Reader, priv, crypto.SHA256, h[:], &rsa.PSSOptions{SaltLength: 32})
		require.NoError(t, err)
		assert.NoError(t, verifyOnce(t, row(t, mech), pub, good, in, std), mech)
		// The salt length is checked as given, not detected.
		assert.ErrorIs(t, verifyOnce(t, row(t, mech), pub, &PSSParams{Hash: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA256, SaltLen: 31}, in, std), ck.CKR_SIGNATURE_INVALID)
	}

	// CKM_RSA_PKCS_PSS takes a hash of the parameter's length, and any
	// hash the parameter names.
	_, err := signOnce(t, row(t, ck.CKM_RSA_PKCS_PSS), priv, good, h[:20])
	assert.ErrorIs(t, err, ck.CKR_DATA_LEN_RANGE)
	h384 := crypto.SHA384.New()
	h384.Write(msg)
	sig, err := signOnce(t, row(t, ck.CKM_RSA_PKCS_PSS), priv, &PSSParams{Hash: ck.CKM_SHA384, MGF: ck.CKG_MGF1_SHA384, SaltLen: 48}, h384.Sum(nil))
	require.NoError(t, err)
	require.NoError(t, rsa.VerifyPSS(pub, crypto.SHA384, h384.Sum(nil), sig, &rsa.PSSOptions{SaltLength: 48}))

	maxSalt := priv.Size() - 32 - 2
	_, err = signOnce(t, row(t, ck.CKM_SHA256_RSA_PKCS_PSS), priv, &PSSParams{Hash: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA256, SaltLen: maxSalt}, msg)
	assert.NoError(t, err)

	for name, p := range map[string]any{
		"hash not the mechanism's": &PSSParams{Hash: ck.CKM_SHA_1, MGF: ck.CKG_MGF1_SHA1, SaltLen: 20},
		"mgf not the hash's":       &PSSParams{Hash: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA1, SaltLen: 32},
		"unknown hash":             &PSSParams{Hash: ck.CKM_AES_GCM, MGF: ck.CKG_MGF1_SHA256, SaltLen: 32},
		"salt 0":                   &PSSParams{Hash: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA256, SaltLen: 0},
		"salt negative":            &PSSParams{Hash: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA256, SaltLen: -1},
		"salt too long":            &PSSParams{Hash: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA256, SaltLen: maxSalt + 1},
		"nil":                      (*PSSParams)(nil),
		"wrong type":               &OAEPParams{Hash: ck.CKM_SHA256},
	} {
		_, err := row(t, ck.CKM_SHA256_RSA_PKCS_PSS).Sign(priv, p)
		assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID, name)
		_, err = row(t, ck.CKM_SHA256_RSA_PKCS_PSS).Verify(pub, p)
		assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID, name)
	}
}

func TestRSAKeysFromComponents(t *testing.T) {
	priv := rsaFixture(t).priv.(*rsa.PrivateKey)
	n, e, d := priv.N.Bytes(), []byte{1, 0, 1}, priv.D.Bytes()
	p, q := priv.Primes[0].Bytes(), priv.Primes[1].Bytes()

	k, err := RSAPrivateKey(n, e, d, p, q)
	require.NoError(t, err)
	assert.True(t, priv.Equal(k))
	assert.NotNil(t, k.Precomputed.Dp)
	sig, err := signOnce(t, row(t, ck.CKM_SHA256_RSA_PKCS), k, nil, []byte("x"))
	require.NoError(t, err)

	pub, err := RSAPublicKey(n, append([]byte{0}, e...))
	require.NoError(t, err)
	assert.True(t, priv.PublicKey.Equal(pub))
	assert.NoError(t, verifyOnce(t, row(t, ck.CKM_SHA256_RSA_PKCS), pub, nil, []byte("x"), sig))

	_, err = RSAPrivateKey(n, e, d, nil, nil)
	assert.ErrorIs(t, err, ck.CKR_TEMPLATE_INCOMPLETE)
	bad := append([]byte(nil), d...)
	bad[len(bad)-1] ^= 2
	_, err = RSAPrivateKey(n, e, bad, p, q)
	assert.ErrorIs(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	_, err = RSAPrivateKey(n, e, d, q, q)
	assert.ErrorIs(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	for _, e := range [][]byte{nil, {0}, {2}, {1, 0, 0, 0, 0, 1}, {0x80, 0, 0, 1}} {
		_, err = RSAPublicKey(n, e)
		assert.ErrorIs(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID, "%x", e)
	}
	_, err = RSAPublicKey([]byte{0x10}, e)
	assert.ErrorIs(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
}
