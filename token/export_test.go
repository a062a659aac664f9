package token

import (
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/mechanisms"
	"gohsm/token/attrs"
)

// TestShareeCannotExportValue: a key shared with another crypto user may be
// used by them, but its value leaves the token only for its owner. One rule
// for every way out: C_GetAttributeValue of the value, C_WrapKey,
// C_CopyObject and C_DigestKey, even for a key that is neither sensitive
// nor unextractable. The owner still reads it.
func TestShareeCannotExportValue(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_SO, []byte(soPIN)))
	require.NoError(t, m.CreateUser(h, "bob", 2, []byte("bob-pw")))
	require.NoError(t, m.Logout(h))

	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	tk := extractableAES("open")
	tk[ck.CKA_TOKEN] = attrs.Bool(true)
	key, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, tk)
	require.NoError(t, err)
	kek, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("kek", true))
	require.NoError(t, err)
	ownerValue := value(t, m, h, key)
	require.Len(t, ownerValue, 32, "the owner reads a non-sensitive key's value")
	require.NoError(t, m.Share(h, key, "bob", true))
	require.NoError(t, m.Share(h, kek, "bob", true))
	require.NoError(t, m.Logout(h))

	require.NoError(t, m.Login(h, ck.CKU_USER, []byte("bob:bob-pw")))
	res, err := m.GetAttributeValue(h, key, []ck.AttributeType{ck.CKA_LABEL, ck.CKA_VALUE, ck.CKA_VALUE_LEN})
	require.NoError(t, err)
	require.NoError(t, res[0].Err, "other attributes stay readable")
	require.NotEqual(t, ownerValue, res[1].Value, "the sharee read the value")
	require.ErrorIs(t, res[1].Err, ck.CKR_ATTRIBUTE_SENSITIVE)
	require.NoError(t, res[2].Err)

	_, err = m.WrapKey(h, Mechanism{Type: ck.CKM_AES_KEY_WRAP}, kek, key, Out{Buf: make([]byte, 64)})
	require.ErrorIs(t, err, ck.CKR_KEY_UNEXTRACTABLE)
	_, err = m.CopyObject(h, key, attrs.Template{ck.CKA_TOKEN: attrs.Bool(false)})
	require.ErrorIs(t, err, ck.CKR_ACTION_PROHIBITED)
	require.NoError(t, m.DigestInit(h, Mechanism{Type: ck.CKM_SHA256}))
	require.ErrorIs(t, m.DigestKey(h, key), ck.CKR_KEY_INDIGESTIBLE, "a digest of the value is a function of it")

	// Nor may the sharee put the key's value into a key of their own.
	own, err := m.CreateObject(h, attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY)),
		ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_GENERIC_SECRET)), ck.CKA_VALUE: []byte("bob's own key"),
		ck.CKA_DERIVE: attrs.Bool(true), ck.CKA_SENSITIVE: attrs.Bool(false), ck.CKA_EXTRACTABLE: attrs.Bool(true)})
	require.NoError(t, err)
	_, err = m.DeriveKey(h, Mechanism{Type: ck.CKM_CONCATENATE_BASE_AND_KEY, Param: mechanisms.KeyHandle(key)}, own,
		attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY)), ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_GENERIC_SECRET)),
			ck.CKA_SENSITIVE: attrs.Bool(false), ck.CKA_EXTRACTABLE: attrs.Bool(true)})
	require.ErrorIs(t, err, ck.CKR_KEY_FUNCTION_NOT_PERMITTED)

	// Using the key is what sharing is for.
	require.NoError(t, m.EncryptInit(h, Mechanism{Type: ck.CKM_AES_GCM, Param: gcmParams()}, key))
	m.Abort(h, OpEncrypt)
	require.NoError(t, m.Logout(h))

	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	require.Equal(t, ownerValue, value(t, m, h, key))
	require.NoError(t, m.DigestInit(h, Mechanism{Type: ck.CKM_SHA256}))
	require.NoError(t, m.DigestKey(h, key), "the owner may digest the key")
}
