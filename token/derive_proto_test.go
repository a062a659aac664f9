package token

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token/attrs"
)

// TestDerivedUnwrappedSharePrototype: a key made by C_DeriveKey or
// C_UnwrapKey is built over its schema's prototype, as a generated one:
// the three share it, and the derived and unwrapped keys read back their
// value, their check value (computed when read) and what the operation
// decides.
func TestDerivedUnwrappedSharePrototype(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	bt := aesTemplate("base", false)
	bt[ck.CKA_DERIVE] = attrs.Bool(true)
	base, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, bt)
	require.NoError(t, err)
	target, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, extractableAES("target"))
	require.NoError(t, err)
	kw := Mechanism{Type: ck.CKM_AES_KEY_WRAP}
	wrapped := make([]byte, 40)
	_, err = m.WrapKey(h, kw, base, target, Out{Buf: wrapped})
	require.NoError(t, err)

	tmpl := attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY)), ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_AES)),
		ck.CKA_SENSITIVE: attrs.Bool(false), ck.CKA_EXTRACTABLE: attrs.Bool(true)}
	un, err := m.UnwrapKey(h, kw, base, wrapped, tmpl)
	require.NoError(t, err)
	data := bytes.Repeat([]byte{0x42}, 32)
	dt := attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY)), ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_AES)),
		ck.CKA_VALUE_LEN: attrs.ULong(32), ck.CKA_SENSITIVE: attrs.Bool(false), ck.CKA_EXTRACTABLE: attrs.Bool(true)}
	d, err := m.DeriveKey(h, Mechanism{Type: ck.CKM_AES_ECB_ENCRYPT_DATA, Param: data}, base, dt)
	require.NoError(t, err)

	gen := sessObject(t, m, target)
	for _, k := range []ck.ULong{un, d} {
		o := sessObject(t, m, k)
		require.True(t, o.attrs.SharesBase(&gen.attrs), "key %d shares the generated key's prototype", k)
		v := value(t, m, h, k)
		require.Len(t, v, 32)
		res, err := m.GetAttributeValue(h, k, []ck.AttributeType{ck.CKA_CHECK_VALUE, ck.CKA_VALUE_LEN, ck.CKA_LOCAL,
			ck.CKA_KEY_GEN_MECHANISM, ck.CKA_ALWAYS_SENSITIVE, ck.CKA_NEVER_EXTRACTABLE})
		require.NoError(t, err)
		for _, r := range res {
			require.NoError(t, r.Err)
		}
		require.Equal(t, attrs.CheckValue(ck.CKK_AES, v), res[0].Value)
		require.Equal(t, attrs.ULong(32), res[1].Value)
		require.Equal(t, attrs.Bool(false), res[2].Value, "not local")
		require.Equal(t, attrs.ULong(ck.CK_UNAVAILABLE_INFORMATION), res[3].Value)
		require.Equal(t, attrs.Bool(false), res[4].Value)
		require.Equal(t, attrs.Bool(false), res[5].Value)
	}
	require.Equal(t, value(t, m, h, target), value(t, m, h, un))
}
