package token

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/mechanisms"
	"gohsm/token/attrs"
)

func extractableAES(label string) attrs.Template {
	t := aesTemplate(label, false)
	t[ck.CKA_SENSITIVE] = attrs.Bool(false)
	t[ck.CKA_EXTRACTABLE] = attrs.Bool(true)
	return t
}

func value(t *testing.T, m *Module, h, obj ck.ULong) []byte {
	t.Helper()
	res, err := m.GetAttributeValue(h, obj, []ck.AttributeType{ck.CKA_VALUE})
	require.NoError(t, err)
	require.NoError(t, res[0].Err)
	return res[0].Value
}

// TestWrapUnwrapRoundTrip wraps a key with AES key wrap and unwraps it into
// a new object with the same value; the rules on the keys are enforced.
func TestWrapUnwrapRoundTrip(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	kek, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("kek", false))
	require.NoError(t, err)
	target, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, extractableAES("target"))
	require.NoError(t, err)
	kw := Mechanism{Type: ck.CKM_AES_KEY_WRAP}

	n, err := m.WrapKey(h, kw, kek, target, Out{Query: true})
	require.NoError(t, err)
	require.Equal(t, 40, n)
	_, err = m.WrapKey(h, kw, kek, target, Out{Buf: make([]byte, 10)})
	require.ErrorIs(t, err, ck.CKR_BUFFER_TOO_SMALL)
	wrapped := make([]byte, 40)
	n, err = m.WrapKey(h, kw, kek, target, Out{Buf: wrapped})
	require.NoError(t, err)
	require.Equal(t, 40, n)

	tmpl := attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY)), ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_AES)),
		ck.CKA_SENSITIVE: attrs.Bool(false), ck.CKA_EXTRACTABLE: attrs.Bool(true)}
	un, err := m.UnwrapKey(h, kw, kek, wrapped, tmpl)
	require.NoError(t, err)
	require.Equal(t, value(t, m, h, target), value(t, m, h, un))
	res, err := m.GetAttributeValue(h, un, []ck.AttributeType{ck.CKA_LOCAL, ck.CKA_ALWAYS_SENSITIVE})
	require.NoError(t, err)
	require.Equal(t, attrs.Bool(false), res[0].Value, "an unwrapped key is not local")
	require.Equal(t, attrs.Bool(false), res[1].Value)

	bad := bytes.Clone(wrapped)
	bad[5] ^= 1
	_, err = m.UnwrapKey(h, kw, kek, bad, tmpl)
	require.Error(t, err)

	// A key that is not extractable cannot be wrapped.
	fixed := aesTemplate("fixed", false)
	fixed[ck.CKA_EXTRACTABLE] = attrs.Bool(false)
	nx, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, fixed)
	require.NoError(t, err)
	_, err = m.WrapKey(h, kw, kek, nx, Out{Buf: wrapped})
	require.ErrorIs(t, err, ck.CKR_KEY_UNEXTRACTABLE)

	// The wrapping key needs CKA_WRAP.
	nowrap := aesTemplate("nowrap", false)
	nowrap[ck.CKA_WRAP] = attrs.Bool(false)
	nw, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, nowrap)
	require.NoError(t, err)
	_, err = m.WrapKey(h, kw, nw, target, Out{Buf: wrapped})
	require.ErrorIs(t, err, ck.CKR_KEY_FUNCTION_NOT_PERMITTED)

	// CKA_WRAP_WITH_TRUSTED needs a trusted wrapping key.
	wt := extractableAES("wt")
	wt[ck.CKA_WRAP_WITH_TRUSTED] = attrs.Bool(true)
	wtk, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, wt)
	require.NoError(t, err)
	_, err = m.WrapKey(h, kw, kek, wtk, Out{Buf: wrapped})
	require.ErrorIs(t, err, ck.CKR_KEY_NOT_WRAPPABLE)

	// CKA_WRAP_TEMPLATE: only keys matching it can be wrapped.
	wtmpl := aesTemplate("picky", false)
	wtmpl[ck.CKA_WRAP_TEMPLATE] = attrs.EncodeTemplate(attrs.Template{ck.CKA_LABEL: []byte("only-this")})
	picky, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, wtmpl)
	require.NoError(t, err)
	_, err = m.WrapKey(h, kw, picky, target, Out{Buf: wrapped})
	require.ErrorIs(t, err, ck.CKR_KEY_NOT_WRAPPABLE)

	// CKA_UNWRAP_TEMPLATE is applied to unwrapped keys, and a contradiction fails.
	utmpl := aesTemplate("unwrapper", false)
	utmpl[ck.CKA_UNWRAP_TEMPLATE] = attrs.EncodeTemplate(attrs.Template{ck.CKA_EXTRACTABLE: attrs.Bool(false)})
	unwrapper, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, utmpl)
	require.NoError(t, err)
	_, err = m.UnwrapKey(h, kw, unwrapper, wrapped, tmpl)
	require.ErrorIs(t, err, ck.CKR_TEMPLATE_INCONSISTENT, "the template asks extractable, the unwrap template not")
}

// TestWrapPrivateKeyAndShareRules wraps an EC private key as PKCS#8 with
// AES-KWP; a user the key is shared with may use it but not wrap it.
func TestWrapPrivateKeyAndShareRules(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_SO, []byte(soPIN)))
	require.NoError(t, m.CreateUser(h, "bob", 2, []byte("bob-pw")))
	require.NoError(t, m.Logout(h))
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	kek, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("kek", true))
	require.NoError(t, err)
	pub, priv := ecKeyPair(t, m, h, "ec")
	kwp := Mechanism{Type: ck.CKM_AES_KEY_WRAP_KWP}
	n, err := m.WrapKey(h, kwp, kek, priv, Out{Query: true})
	require.NoError(t, err)
	wrapped := make([]byte, n)
	n, err = m.WrapKey(h, kwp, kek, priv, Out{Buf: wrapped})
	require.NoError(t, err)
	wrapped = wrapped[:n]
	un, err := m.UnwrapKey(h, kwp, kek, wrapped, attrs.Template{
		ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_PRIVATE_KEY)), ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_EC)), ck.CKA_SIGN: attrs.Bool(true)})
	require.NoError(t, err)
	// The unwrapped key signs, the original public key verifies.
	msg := []byte("unwrapped")
	require.NoError(t, m.SignInit(h, Mechanism{Type: ck.CKM_ECDSA_SHA256}, un))
	sig := make([]byte, 64)
	_, err = m.Sign(h, msg, Out{Buf: sig})
	require.NoError(t, err)
	require.NoError(t, m.VerifyInit(h, Mechanism{Type: ck.CKM_ECDSA_SHA256}, pub))
	require.NoError(t, m.Verify(h, msg, sig))

	require.NoError(t, m.Share(h, priv, "bob", true))
	require.NoError(t, m.Share(h, kek, "bob", true))
	require.NoError(t, m.Logout(h))
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte("bob:bob-pw")))
	require.NoError(t, m.SignInit(h, Mechanism{Type: ck.CKM_ECDSA_SHA256}, priv), "a sharee may use the key")
	m.Abort(h, OpSign)
	_, err = m.WrapKey(h, kwp, kek, priv, Out{Buf: make([]byte, 256)})
	require.ErrorIs(t, err, ck.CKR_KEY_UNEXTRACTABLE, "a sharee may not export the key")
}

// TestDeriveEncryptData derives with AES_ECB_ENCRYPT_DATA and checks the
// value against an encryption with the base key; the derived key inherits
// the base key's sensitivity history.
func TestDeriveEncryptData(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	bt := aesTemplate("base", false)
	bt[ck.CKA_DERIVE] = attrs.Bool(true)
	base, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, bt)
	require.NoError(t, err)
	data := bytes.Repeat([]byte{0x42}, 32)
	dt := attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY)), ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_AES)),
		ck.CKA_VALUE_LEN: attrs.ULong(32), ck.CKA_SENSITIVE: attrs.Bool(false), ck.CKA_EXTRACTABLE: attrs.Bool(true)}
	d, err := m.DeriveKey(h, Mechanism{Type: ck.CKM_AES_ECB_ENCRYPT_DATA, Param: data}, base, dt)
	require.NoError(t, err)

	require.NoError(t, m.EncryptInit(h, Mechanism{Type: ck.CKM_AES_ECB}, base))
	want := make([]byte, 32)
	_, err = m.Encrypt(h, data, Out{Buf: want})
	require.NoError(t, err)
	require.Equal(t, want, value(t, m, h, d))
	res, err := m.GetAttributeValue(h, d, []ck.AttributeType{ck.CKA_LOCAL, ck.CKA_ALWAYS_SENSITIVE, ck.CKA_NEVER_EXTRACTABLE})
	require.NoError(t, err)
	require.Equal(t, attrs.Bool(false), res[0].Value)
	require.Equal(t, attrs.Bool(false), res[1].Value, "derived as non-sensitive")
	require.Equal(t, attrs.Bool(false), res[2].Value)

	// CKA_DERIVE false refuses.
	nd, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("noderive", false))
	require.NoError(t, err)
	_, err = m.DeriveKey(h, Mechanism{Type: ck.CKM_AES_ECB_ENCRYPT_DATA, Param: data}, nd, dt)
	require.ErrorIs(t, err, ck.CKR_KEY_FUNCTION_NOT_PERMITTED)
}

// TestMessageAEAD: the 3.0 message API through the token, with a generated IV.
func TestMessageAEAD(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	key, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("msg", false))
	require.NoError(t, err)
	require.NoError(t, m.MessageEncryptInit(h, Mechanism{Type: ck.CKM_AES_GCM}, key))
	p := &mechanisms.MessageParams{IV: make([]byte, 12), IVGenerator: ck.CKG_GENERATE_RANDOM, Tag: make([]byte, 16), TagBits: 128}
	plain := []byte("a message for the 3.0 API")
	ct := make([]byte, len(plain))
	n, err := m.Message(h, true, p, []byte("aad"), plain, Out{Buf: ct})
	require.NoError(t, err)
	require.Equal(t, len(plain), n)
	require.NotEqual(t, make([]byte, 12), p.IV, "the IV was generated")
	require.NoError(t, m.MessageFinal(h, true))

	require.NoError(t, m.MessageDecryptInit(h, Mechanism{Type: ck.CKM_AES_GCM}, key))
	q := &mechanisms.MessageParams{IV: p.IV, Tag: p.Tag, TagBits: 128}
	out := make([]byte, len(ct))
	_, err = m.Message(h, false, q, []byte("aad"), ct, Out{Buf: out})
	require.NoError(t, err)
	require.Equal(t, plain, out)
	// Parts: begin, next..., end.
	require.NoError(t, m.MessageBegin(h, false, q, []byte("aad")))
	_, err = m.MessageNext(h, false, q, ct[:5], Out{}, false)
	require.NoError(t, err)
	out2 := make([]byte, len(ct))
	n, err = m.MessageNext(h, false, q, ct[5:], Out{Buf: out2}, true)
	require.NoError(t, err)
	require.Equal(t, plain, out2[:n])
	require.NoError(t, m.MessageFinal(h, false))
}

// TestWrapWithTrusted: a key marked CKA_WRAP_WITH_TRUSTED can be wrapped
// only by a key a crypto officer marked trusted.
func TestWrapWithTrusted(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	kek, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("kek", true))
	require.NoError(t, err)
	wt := extractableAES("wt")
	wt[ck.CKA_TOKEN] = attrs.Bool(true)
	wt[ck.CKA_WRAP_WITH_TRUSTED] = attrs.Bool(true)
	target, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, wt)
	require.NoError(t, err)
	kw := Mechanism{Type: ck.CKM_AES_KEY_WRAP}
	buf := make([]byte, 40)
	_, err = m.WrapKey(h, kw, kek, target, Out{Buf: buf})
	require.ErrorIs(t, err, ck.CKR_KEY_NOT_WRAPPABLE)
	require.ErrorIs(t, m.SetTrusted(h, kek, true), ck.CKR_USER_NOT_LOGGED_IN, "a crypto user cannot mark keys trusted")
	require.ErrorIs(t, m.SetAttributeValue(h, kek, attrs.Template{ck.CKA_TRUSTED: attrs.Bool(true)}), ck.CKR_ATTRIBUTE_READ_ONLY)
	require.NoError(t, m.Logout(h))

	require.NoError(t, m.Login(h, ck.CKU_SO, []byte(soPIN)))
	require.NoError(t, m.SetTrusted(h, kek, true))
	require.NoError(t, m.Logout(h))

	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	n, err := m.WrapKey(h, kw, kek, target, Out{Buf: buf})
	require.NoError(t, err, "a trusted key wraps it")
	require.Equal(t, 40, n)
}
