package token

import (
	"crypto/mlkem"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token/attrs"
)

func mlkemPair(t *testing.T, m *Module, h ck.ULong, set ck.ULong, pub, priv attrs.Template) (ck.ULong, ck.ULong, error) {
	t.Helper()
	if pub == nil {
		pub = attrs.Template{}
	}
	if priv == nil {
		priv = attrs.Template{}
	}
	pub[ck.CKA_PARAMETER_SET] = attrs.ULong(set)
	return m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_ML_KEM_KEY_PAIR_GEN}, pub, priv)
}

func attrBytes(t *testing.T, m *Module, h, o ck.ULong, a ck.AttributeType) []byte {
	t.Helper()
	res, err := m.GetAttributeValue(h, o, []ck.AttributeType{a})
	require.NoError(t, err)
	require.NoError(t, res[0].Err, "%v", a)
	return res[0].Value
}

func requireRV(t *testing.T, err error, want ck.RV) {
	t.Helper()
	var rv ck.RV
	require.True(t, errors.As(err, &rv), "error %v carries no CK_RV", err)
	require.Equal(t, want, rv, "%v", err)
}

// TestMLKEMRoundTrip: keys of both supported parameter sets, encapsulation
// to a new AES key and decapsulation to one with the same value, checked
// against crypto/mlkem with the stored key material.
func TestMLKEMRoundTrip(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	for _, tc := range []struct {
		set    ck.ULong
		ekLen  int
		ctLen  int
		decaps func(seed, ct []byte) ([]byte, error)
	}{
		{ck.CKP_ML_KEM_768, mlkem.EncapsulationKeySize768, mlkem.CiphertextSize768, func(seed, ct []byte) ([]byte, error) {
			dk, err := mlkem.NewDecapsulationKey768(seed)
			if err != nil {
				return nil, err
			}
			return dk.Decapsulate(ct)
		}},
		{ck.CKP_ML_KEM_1024, mlkem.EncapsulationKeySize1024, mlkem.CiphertextSize1024, func(seed, ct []byte) ([]byte, error) {
			dk, err := mlkem.NewDecapsulationKey1024(seed)
			if err != nil {
				return nil, err
			}
			return dk.Decapsulate(ct)
		}},
	} {
		pub, priv, err := mlkemPair(t, m, h, tc.set, nil, attrs.Template{ck.CKA_SENSITIVE: attrs.Bool(false)})
		require.NoError(t, err)
		assert.Len(t, attrBytes(t, m, h, pub, ck.CKA_VALUE), tc.ekLen)
		assert.Equal(t, attrs.ULong(tc.set), attrBytes(t, m, h, priv, ck.CKA_PARAMETER_SET))
		seed := attrBytes(t, m, h, priv, ck.CKA_SEED)
		require.Len(t, seed, 64)
		assert.Equal(t, []bool{true, true}, boolAttrs(t, m, h, pub, ck.CKA_ENCAPSULATE, ck.CKA_LOCAL))
		assert.Equal(t, []bool{true}, boolAttrs(t, m, h, priv, ck.CKA_DECAPSULATE))

		mech := Mechanism{Type: ck.CKM_ML_KEM}
		secretTmpl := func() attrs.Template {
			return attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY)),
				ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_AES)), ck.CKA_SENSITIVE: attrs.Bool(false),
				ck.CKA_EXTRACTABLE: attrs.Bool(true), ck.CKA_ENCRYPT: attrs.Bool(true)}
		}
		// Length query and short buffer: the length, no key.
		n, k, err := m.EncapsulateKey(h, mech, pub, secretTmpl(), Out{Query: true})
		require.NoError(t, err)
		assert.Equal(t, tc.ctLen, n)
		assert.Zero(t, k)
		n, k, err = m.EncapsulateKey(h, mech, pub, secretTmpl(), Out{Buf: make([]byte, tc.ctLen-1)})
		requireRV(t, err, ck.CKR_BUFFER_TOO_SMALL)
		assert.Equal(t, tc.ctLen, n)
		assert.Zero(t, k)

		ct := make([]byte, tc.ctLen)
		n, ek, err := m.EncapsulateKey(h, mech, pub, secretTmpl(), Out{Buf: ct})
		require.NoError(t, err)
		require.Equal(t, tc.ctLen, n)
		dk, err := m.DecapsulateKey(h, mech, priv, secretTmpl(), ct)
		require.NoError(t, err)
		v1 := attrBytes(t, m, h, ek, ck.CKA_VALUE)
		v2 := attrBytes(t, m, h, dk, ck.CKA_VALUE)
		require.Len(t, v1, 32)
		assert.Equal(t, v1, v2, "decapsulated key equals the encapsulated one")
		want, err := tc.decaps(seed, ct)
		require.NoError(t, err)
		assert.Equal(t, want, v1, "crypto/mlkem agrees with the stored seed")
		// A derived key's rules: not local.
		assert.Equal(t, []bool{false}, boolAttrs(t, m, h, ek, ck.CKA_LOCAL))
		assert.Equal(t, []bool{false}, boolAttrs(t, m, h, dk, ck.CKA_LOCAL))
		// The private key was not sensitive: the decapsulated key is never
		// "always sensitive"; the encapsulated one (from a public key) is
		// as sensitive as made.
		assert.Equal(t, []bool{false, false}, boolAttrs(t, m, h, dk, ck.CKA_ALWAYS_SENSITIVE, ck.CKA_NEVER_EXTRACTABLE))

		// Implicit rejection: a tampered ciphertext gives another key.
		ct[0] ^= 1
		bad, err := m.DecapsulateKey(h, mech, priv, secretTmpl(), ct)
		require.NoError(t, err)
		assert.NotEqual(t, v1, attrBytes(t, m, h, bad, ck.CKA_VALUE))
		// Wrong size.
		_, err = m.DecapsulateKey(h, mech, priv, secretTmpl(), ct[1:])
		requireRV(t, err, ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
		// CKA_VALUE_LEN other than 32.
		tmpl := secretTmpl()
		tmpl[ck.CKA_VALUE_LEN] = attrs.ULong(16)
		_, err = m.DecapsulateKey(h, mech, priv, tmpl, ct)
		requireRV(t, err, ck.CKR_TEMPLATE_INCONSISTENT)
		// The wrong half of the pair.
		_, _, err = m.EncapsulateKey(h, mech, priv, secretTmpl(), Out{Buf: make([]byte, tc.ctLen)})
		requireRV(t, err, ck.CKR_KEY_FUNCTION_NOT_PERMITTED)
		_, err = m.DecapsulateKey(h, mech, pub, secretTmpl(), ct)
		requireRV(t, err, ck.CKR_KEY_FUNCTION_NOT_PERMITTED)
	}
}

// TestMLKEMUsageAndDefaults: CKA_ENCAPSULATE / CKA_DECAPSULATE false refuse
// the operation; without a template the new key is a sensitive
// generic secret; a sensitive private key makes always-sensitive keys;
// ML-KEM-512 is refused with CKR_PARAMETER_SET_NOT_SUPPORTED.
func TestMLKEMUsageAndDefaults(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	mech := Mechanism{Type: ck.CKM_ML_KEM}

	_, _, err := mlkemPair(t, m, h, ck.CKP_ML_KEM_512, nil, nil)
	requireRV(t, err, ck.CKR_PARAMETER_SET_NOT_SUPPORTED)
	_, _, err = m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_ML_KEM_KEY_PAIR_GEN}, attrs.Template{}, attrs.Template{})
	require.Error(t, err, "no CKA_PARAMETER_SET")

	pub, priv, err := mlkemPair(t, m, h, ck.CKP_ML_KEM_768,
		attrs.Template{ck.CKA_ENCAPSULATE: attrs.Bool(false)}, attrs.Template{ck.CKA_DECAPSULATE: attrs.Bool(false)})
	require.NoError(t, err)
	_, _, err = m.EncapsulateKey(h, mech, pub, nil, Out{Buf: make([]byte, 2000)})
	requireRV(t, err, ck.CKR_KEY_FUNCTION_NOT_PERMITTED)
	_, err = m.DecapsulateKey(h, mech, priv, nil, make([]byte, mlkem.CiphertextSize768))
	requireRV(t, err, ck.CKR_KEY_FUNCTION_NOT_PERMITTED)

	pub, priv, err = mlkemPair(t, m, h, ck.CKP_ML_KEM_768, nil, nil)
	require.NoError(t, err)
	ct := make([]byte, mlkem.CiphertextSize768)
	_, ek, err := m.EncapsulateKey(h, mech, pub, nil, Out{Buf: ct})
	require.NoError(t, err)
	dk, err := m.DecapsulateKey(h, mech, priv, nil, ct)
	require.NoError(t, err)
	for _, k := range []ck.ULong{ek, dk} {
		assert.Equal(t, attrs.ULong(ck.ULong(ck.CKK_GENERIC_SECRET)), attrBytes(t, m, h, k, ck.CKA_KEY_TYPE))
		assert.Equal(t, []bool{true, true, true}, boolAttrs(t, m, h, k, ck.CKA_SENSITIVE, ck.CKA_ALWAYS_SENSITIVE, ck.CKA_EXTRACTABLE))
	}
	// The seed of a sensitive private key is not revealed.
	res, err := m.GetAttributeValue(h, priv, []ck.AttributeType{ck.CKA_SEED})
	require.NoError(t, err)
	requireRV(t, res[0].Err, ck.CKR_ATTRIBUTE_SENSITIVE)
}

// TestMLKEMImport: C_CreateObject takes an ML-KEM private key as its seed
// and a public key as its encapsulation key; the expanded private key
// (CKA_VALUE) is not a form gohsm holds.
func TestMLKEMImport(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	dk, err := mlkem.GenerateKey768()
	require.NoError(t, err)
	priv, err := m.CreateObject(h, attrs.Template{
		ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_PRIVATE_KEY)), ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_ML_KEM)),
		ck.CKA_PARAMETER_SET: attrs.ULong(ck.CKP_ML_KEM_768), ck.CKA_SEED: dk.Bytes(), ck.CKA_DECAPSULATE: attrs.Bool(true),
	})
	require.NoError(t, err)
	pub, err := m.CreateObject(h, attrs.Template{
		ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_PUBLIC_KEY)), ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_ML_KEM)),
		ck.CKA_PARAMETER_SET: attrs.ULong(ck.CKP_ML_KEM_768), ck.CKA_VALUE: dk.EncapsulationKey().Bytes(),
	})
	require.NoError(t, err)
	ct := make([]byte, mlkem.CiphertextSize768)
	_, ek, err := m.EncapsulateKey(h, Mechanism{Type: ck.CKM_ML_KEM}, pub, attrs.Template{ck.CKA_SENSITIVE: attrs.Bool(false)}, Out{Buf: ct})
	require.NoError(t, err)
	want, err := dk.Decapsulate(ct)
	require.NoError(t, err)
	assert.Equal(t, want, attrBytes(t, m, h, ek, ck.CKA_VALUE))
	_, err = m.DecapsulateKey(h, Mechanism{Type: ck.CKM_ML_KEM}, priv, nil, ct)
	require.NoError(t, err)

	res, err := m.GetAttributeValue(h, priv, []ck.AttributeType{ck.CKA_VALUE})
	require.NoError(t, err)
	requireRV(t, res[0].Err, ck.CKR_ATTRIBUTE_TYPE_INVALID)
	_, err = m.CreateObject(h, attrs.Template{
		ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_PRIVATE_KEY)), ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_ML_KEM)),
		ck.CKA_PARAMETER_SET: attrs.ULong(ck.CKP_ML_KEM_768), ck.CKA_VALUE: make([]byte, 2400),
	})
	requireRV(t, err, ck.CKR_ATTRIBUTE_TYPE_INVALID)
	_, err = m.CreateObject(h, attrs.Template{
		ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_PUBLIC_KEY)), ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_ML_KEM)),
		ck.CKA_PARAMETER_SET: attrs.ULong(ck.CKP_ML_KEM_1024), ck.CKA_VALUE: dk.EncapsulationKey().Bytes(),
	})
	requireRV(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
}
