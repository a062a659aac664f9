package token

import (
	"bytes"
	"crypto/mldsa"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/mechanisms"
	"gohsm/token/attrs"
)

// TestMLDSAImportExportWrap: an ML-DSA private key imported from its seed
// (C_CreateObject) gets the expanded CKA_VALUE; extractable and not
// sensitive, both forms read back equal to the key's; it signs what the
// imported public key verifies. A sensitive copy refuses both forms
// (CKR_ATTRIBUTE_SENSITIVE). C_WrapKey under AES key wrap with padding
// (the key's PKCS#8, which crypto/x509 writes for ML-DSA) and C_UnwrapKey
// restore the same seed, expanded key and parameter set. C_VerifyUpdate is
// refused (single-part verification).
func TestMLDSAImportExportWrap(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))

	seed := bytes.Repeat([]byte{0x5a}, 32)
	sk, err := mechanisms.MLDSAPrivateKey(ck.CKP_ML_DSA_65, seed)
	require.NoError(t, err)
	expanded := mechanisms.MLDSAExpandedKey(sk)
	privT := func(sensitive bool) attrs.Template {
		return attrs.Template{
			ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_PRIVATE_KEY)), ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_ML_DSA)),
			ck.CKA_PARAMETER_SET: attrs.ULong(ck.CKP_ML_DSA_65), ck.CKA_SEED: seed,
			ck.CKA_SENSITIVE: attrs.Bool(sensitive), ck.CKA_EXTRACTABLE: attrs.Bool(true), ck.CKA_SIGN: attrs.Bool(true),
		}
	}
	priv, err := m.CreateObject(h, privT(false))
	require.NoError(t, err)
	pub, err := m.CreateObject(h, attrs.Template{
		ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_PUBLIC_KEY)), ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_ML_DSA)),
		ck.CKA_PARAMETER_SET: attrs.ULong(ck.CKP_ML_DSA_65), ck.CKA_VALUE: sk.PublicKey().Bytes(), ck.CKA_VERIFY: attrs.Bool(true),
	})
	require.NoError(t, err)

	res, err := m.GetAttributeValue(h, priv, []ck.AttributeType{ck.CKA_SEED, ck.CKA_VALUE, ck.CKA_PARAMETER_SET})
	require.NoError(t, err)
	assert.Equal(t, seed, res[0].Value)
	assert.Equal(t, expanded, res[1].Value)
	assert.Equal(t, attrs.ULong(ck.CKP_ML_DSA_65), res[2].Value)

	sens, err := m.CreateObject(h, privT(true))
	require.NoError(t, err)
	res, err = m.GetAttributeValue(h, sens, []ck.AttributeType{ck.CKA_SEED, ck.CKA_VALUE, ck.CKA_PARAMETER_SET})
	require.NoError(t, err) // per attribute, as the C boundary reports them
	assert.ErrorIs(t, res[0].Err, ck.CKR_ATTRIBUTE_SENSITIVE)
	assert.ErrorIs(t, res[1].Err, ck.CKR_ATTRIBUTE_SENSITIVE)
	assert.NoError(t, res[2].Err)

	// Sign through the token, verify with the imported public key and
	// with crypto/mldsa.
	msg := []byte("through the token")
	param := &mechanisms.SignContextParams{Hedge: ck.CKH_DETERMINISTIC_REQUIRED, Context: []byte("t")}
	require.NoError(t, m.SignInit(h, Mechanism{Type: ck.CKM_ML_DSA, Param: param}, sens))
	sig := make([]byte, 4000)
	n, err := m.Sign(h, msg, Out{Buf: sig})
	require.NoError(t, err)
	sig = sig[:n]
	require.Len(t, sig, mldsa.MLDSA65().SignatureSize())
	require.NoError(t, mldsa.Verify(sk.PublicKey(), msg, sig, &mldsa.Options{Context: "t"}))
	require.NoError(t, m.VerifyInit(h, Mechanism{Type: ck.CKM_ML_DSA, Param: param}, pub))
	require.NoError(t, m.Verify(h, msg, sig))
	require.NoError(t, m.VerifyInit(h, Mechanism{Type: ck.CKM_ML_DSA, Param: param}, pub))
	require.ErrorIs(t, m.VerifyUpdate(h, msg), ck.CKR_FUNCTION_NOT_SUPPORTED)

	// Wrap: no panic; a clean refusal or a faithful round trip.
	kek, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("kek", true))
	require.NoError(t, err)
	wrapped := make([]byte, 16000)
	wn, err := m.WrapKey(h, Mechanism{Type: ck.CKM_AES_KEY_WRAP_PAD}, kek, priv, Out{Buf: wrapped})
	require.NoError(t, err, "crypto/x509 writes ML-DSA PKCS#8")
	un, err := m.UnwrapKey(h, Mechanism{Type: ck.CKM_AES_KEY_WRAP_PAD}, kek, wrapped[:wn], attrs.Template{
		ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_PRIVATE_KEY)), ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_ML_DSA)),
		ck.CKA_SENSITIVE: attrs.Bool(false), ck.CKA_EXTRACTABLE: attrs.Bool(true)})
	require.NoError(t, err)
	res, err = m.GetAttributeValue(h, un, []ck.AttributeType{ck.CKA_SEED, ck.CKA_VALUE, ck.CKA_PARAMETER_SET})
	require.NoError(t, err)
	assert.Equal(t, seed, res[0].Value)
	assert.Equal(t, expanded, res[1].Value)
	assert.Equal(t, attrs.ULong(ck.CKP_ML_DSA_65), res[2].Value)
}
