package token

import (
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token/attrs"
)

// TestPublicSessionObjects: without a login, a R/O session creates public
// session objects, keys included, and uses them; a R/W session also creates
// public token objects, which belong to nobody: every R/W session that sees
// them may change or destroy them. Private objects, and token keys whose
// secrets only a login could seal, still need a crypto user.
func TestPublicSessionObjects(t *testing.T) {
	m, _ := newToken(t)
	ro, err := m.OpenSession(3, ck.CKF_SERIAL_SESSION)
	require.NoError(t, err)
	rw := openRW(t, m)

	public := func(tmpl attrs.Template) attrs.Template {
		tmpl[ck.CKA_PRIVATE] = attrs.Bool(false)
		return tmpl
	}
	// R/O public: a session AES key, used at once.
	k, err := m.GenerateKey(ro, Mechanism{Type: ck.CKM_AES_KEY_GEN}, public(aesTemplate("pub-aes", false)))
	require.NoError(t, err, "R/O public session generates a public session key")
	require.NoError(t, m.EncryptInit(ro, Mechanism{Type: ck.CKM_AES_ECB}, k))
	ct, err := m.Encrypt(ro, make([]byte, 16), Out{Buf: make([]byte, 16)})
	require.NoError(t, err)
	require.Equal(t, 16, ct)
	// ... and an EC key pair whose private half is public (CKA_PRIVATE false).
	_, _, err = m.GenerateKeyPair(ro, Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN},
		attrs.Template{ck.CKA_EC_PARAMS: p256, ck.CKA_TOKEN: attrs.Bool(false)},
		public(attrs.Template{ck.CKA_TOKEN: attrs.Bool(false)}))
	require.NoError(t, err, "R/O public session generates a public session key pair")
	_, err = m.CreateObject(ro, attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY)),
		ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_AES)), ck.CKA_VALUE: make([]byte, 16), ck.CKA_PRIVATE: attrs.Bool(false)})
	require.NoError(t, err, "R/O public session creates a public session key")
	_, err = m.CreateObject(ro, attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_DATA)), ck.CKA_TOKEN: attrs.Bool(true), ck.CKA_PRIVATE: attrs.Bool(false)})
	require.ErrorIs(t, err, ck.CKR_SESSION_READ_ONLY, "R/O public session writes a token object")

	// Private objects need a crypto user, in either public state.
	for _, h := range []ck.ULong{ro, rw} {
		_, err = m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("priv", false))
		require.ErrorIs(t, err, ck.CKR_USER_NOT_LOGGED_IN, "a private (default) secret key without login")
		_, err = m.CreateObject(h, attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_DATA)), ck.CKA_PRIVATE: attrs.Bool(true)})
		require.ErrorIs(t, err, ck.CKR_USER_NOT_LOGGED_IN, "a private data object without login")
	}

	// R/W public: an ownerless public token object and a public token
	// key without secrets; a token key with a secret cannot be sealed.
	data, err := m.CreateObject(rw, attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_DATA)),
		ck.CKA_TOKEN: attrs.Bool(true), ck.CKA_PRIVATE: attrs.Bool(false), ck.CKA_LABEL: []byte("nobody's")})
	require.NoError(t, err, "R/W public session creates a public token object")
	o, err := m.Object(rw, data)
	require.NoError(t, err)
	require.Equal(t, "", o.Owner())
	pub, _, err := m.GenerateKeyPair(rw, Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN},
		attrs.Template{ck.CKA_EC_PARAMS: p256, ck.CKA_TOKEN: attrs.Bool(true)},
		public(attrs.Template{ck.CKA_TOKEN: attrs.Bool(false)}))
	require.NoError(t, err, "R/W public session generates a token public key (private half in the session)")
	_, err = m.GenerateKey(rw, Mechanism{Type: ck.CKM_AES_KEY_GEN}, public(aesTemplate("tok-aes", true)))
	require.ErrorIs(t, err, ck.CKR_USER_NOT_LOGGED_IN, "a token key with a secret value without login")
	require.ErrorIs(t, m.Share(rw, pub, "user", true), ck.CKR_USER_NOT_LOGGED_IN, "sharing without login")

	// A crypto user sees the ownerless object, with the same handle, and
	// may change it; so may a public session again; the officer may not.
	require.NoError(t, m.Login(rw, ck.CKU_USER, []byte(userPIN)))
	o, err = m.Object(rw, data)
	require.NoError(t, err)
	require.Equal(t, []byte("nobody's"), o.Attrs()[ck.CKA_LABEL])
	require.NoError(t, m.SetAttributeValue(rw, data, attrs.Template{ck.CKA_LABEL: []byte("user's edit")}))
	require.NoError(t, m.Logout(rw))
	require.NoError(t, m.SetAttributeValue(rw, data, attrs.Template{ck.CKA_LABEL: []byte("public edit")}))
	require.ErrorIs(t, m.SetAttributeValue(ro, data, attrs.Template{ck.CKA_LABEL: []byte("r/o edit")}), ck.CKR_SESSION_READ_ONLY)
	require.NoError(t, m.CloseSession(ro))
	require.NoError(t, m.Login(rw, ck.CKU_SO, []byte(soPIN)))
	require.ErrorIs(t, m.DestroyObject(rw, data), ck.CKR_USER_NOT_LOGGED_IN, "the crypto officer writes no objects")
	require.NoError(t, m.Logout(rw))
	require.NoError(t, m.DestroyObject(rw, data), "a R/W public session destroys an ownerless object")
	require.NoError(t, m.DestroyObject(rw, pub))
}
