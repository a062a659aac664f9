package token

import (
	"crypto/ecdh"
	"crypto/rand"
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/mechanisms"
	"gohsm/token/attrs"
)

// alwaysAuthEC generates a P-256 pair whose private key has
// CKA_ALWAYS_AUTHENTICATE as given.
func alwaysAuthEC(t *testing.T, m *Module, h ck.ULong, always bool) (pub, priv ck.ULong) {
	t.Helper()
	pub, priv, err := m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN},
		attrs.Template{ck.CKA_EC_PARAMS: p256},
		attrs.Template{ck.CKA_SIGN: attrs.Bool(true), ck.CKA_DERIVE: attrs.Bool(true), ck.CKA_ALWAYS_AUTHENTICATE: attrs.Bool(always)})
	require.NoError(t, err)
	return pub, priv
}

func signOnce(m *Module, h ck.ULong, msg []byte) ([]byte, error) {
	sig := make([]byte, 64)
	n, err := m.Sign(h, msg, Out{Buf: sig})
	return sig[:n], err
}

// TestAlwaysAuthenticate: a private key with CKA_ALWAYS_AUTHENTICATE needs
// C_Login(CKU_CONTEXT_SPECIFIC) after each C_*Init (PKCS#11 v3.0 §4.9 and
// C_Login; v2.20 §10.9 spells it out): the next call without it is
// CKR_USER_NOT_LOGGED_IN and ends the operation; the right PIN authorises
// exactly that one operation; a wrong one is CKR_PIN_INCORRECT, counts
// towards the lockout, and leaves the operation waiting; with no operation
// waiting for it the login is CKR_OPERATION_NOT_INITIALIZED and an active
// operation is unaffected.
func TestAlwaysAuthenticate(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	pub, priv := alwaysAuthEC(t, m, h, true)
	ecdsaMech := Mechanism{Type: ck.CKM_ECDSA_SHA256}
	msg := []byte("re-authenticated")
	ctxLogin := func(pin string) error { return m.Login(h, ck.CKU_CONTEXT_SPECIFIC, []byte(pin)) }

	res, err := m.GetAttributeValue(h, priv, []ck.AttributeType{ck.CKA_ALWAYS_AUTHENTICATE})
	require.NoError(t, err)
	require.Equal(t, attrs.Bool(true), res[0].Value)

	require.ErrorIs(t, ctxLogin(userPIN), ck.CKR_OPERATION_NOT_INITIALIZED, "no operation waiting")

	// Without the context-specific login the key does not sign, and the
	// failed call ends the operation.
	require.NoError(t, m.SignInit(h, ecdsaMech, priv))
	_, err = signOnce(m, h, msg)
	require.ErrorIs(t, err, ck.CKR_USER_NOT_LOGGED_IN)
	_, err = signOnce(m, h, msg)
	require.ErrorIs(t, err, ck.CKR_OPERATION_NOT_INITIALIZED)

	// A wrong PIN leaves the operation unauthorised.
	require.NoError(t, m.SignInit(h, ecdsaMech, priv))
	require.ErrorIs(t, ctxLogin("user:wrong"), ck.CKR_PIN_INCORRECT)
	require.ErrorIs(t, ctxLogin("wrong"), ck.CKR_PIN_INCORRECT, "a bare password is the logged-in user's")
	_, err = signOnce(m, h, msg)
	require.ErrorIs(t, err, ck.CKR_USER_NOT_LOGGED_IN)

	// The right PIN authorises one operation, through a length query and
	// the signature; the next one needs it again.
	require.NoError(t, m.SignInit(h, ecdsaMech, priv))
	require.NoError(t, ctxLogin(userPIN))
	n, err := m.Sign(h, msg, Out{Query: true})
	require.NoError(t, err)
	require.Equal(t, 64, n)
	sig, err := signOnce(m, h, msg)
	require.NoError(t, err)
	require.NoError(t, m.VerifyInit(h, ecdsaMech, pub), "the public key needs no re-authentication")
	require.NoError(t, m.Verify(h, msg, sig))
	require.ErrorIs(t, ctxLogin(userPIN), ck.CKR_OPERATION_NOT_INITIALIZED, "the operation is over")
	require.NoError(t, m.SignInit(h, ecdsaMech, priv))
	_, err = signOnce(m, h, msg)
	require.ErrorIs(t, err, ck.CKR_USER_NOT_LOGGED_IN, "one login, one operation")

	// Multi-part, with the password alone (the logged-in user's).
	require.NoError(t, m.SignInit(h, ecdsaMech, priv))
	require.NoError(t, ctxLogin("user-pw-1"))
	require.NoError(t, m.SignUpdate(h, msg))
	_, err = m.SignFinal(h, Out{Buf: make([]byte, 64)})
	require.NoError(t, err)

	// A key without the attribute: the login is refused and the operation
	// goes on.
	_, plainKey := alwaysAuthEC(t, m, h, false)
	require.NoError(t, m.SignInit(h, ecdsaMech, plainKey))
	require.ErrorIs(t, ctxLogin(userPIN), ck.CKR_OPERATION_NOT_INITIALIZED)
	_, err = signOnce(m, h, msg)
	require.NoError(t, err)

	// C_DeriveKey has no point at which to log in: the key is refused.
	peer, err := ecdh.P256().GenerateKey(rand.Reader)
	require.NoError(t, err)
	ecdhMech := Mechanism{Type: ck.CKM_ECDH1_DERIVE, Param: &mechanisms.ECDH1Params{KDF: ck.CKD_NULL, PublicData: peer.PublicKey().Bytes()}}
	secret := attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY)), ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_GENERIC_SECRET))}
	_, err = m.DeriveKey(h, ecdhMech, priv, secret)
	require.ErrorIs(t, err, ck.CKR_USER_NOT_LOGGED_IN)
	_, err = m.DeriveKey(h, ecdhMech, plainKey, secret)
	require.NoError(t, err)

	// The attribute needs CKA_PRIVATE (v2.20 §10.9: "may only be set to
	// CK_TRUE when CKA_PRIVATE is also CK_TRUE").
	_, _, err = m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN}, attrs.Template{ck.CKA_EC_PARAMS: p256},
		attrs.Template{ck.CKA_PRIVATE: attrs.Bool(false), ck.CKA_ALWAYS_AUTHENTICATE: attrs.Bool(true)})
	require.ErrorIs(t, err, ck.CKR_TEMPLATE_INCONSISTENT)
	_, err = m.CopyObject(h, priv, attrs.Template{ck.CKA_PRIVATE: attrs.Bool(false)})
	require.ErrorIs(t, err, ck.CKR_TEMPLATE_INCONSISTENT)
}

// TestAlwaysAuthenticateDecrypt: the same for C_DecryptInit with an RSA key.
func TestAlwaysAuthenticateDecrypt(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	pub, priv, err := m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_RSA_PKCS_KEY_PAIR_GEN},
		attrs.Template{ck.CKA_MODULUS_BITS: attrs.ULong(2048)},
		attrs.Template{ck.CKA_ALWAYS_AUTHENTICATE: attrs.Bool(true)})
	require.NoError(t, err)
	pkcs1 := Mechanism{Type: ck.CKM_RSA_PKCS}
	require.NoError(t, m.EncryptInit(h, pkcs1, pub))
	ct := make([]byte, 256)
	_, err = m.Encrypt(h, []byte("secret"), Out{Buf: ct})
	require.NoError(t, err)

	pt := make([]byte, 256)
	require.NoError(t, m.DecryptInit(h, pkcs1, priv))
	_, err = m.Decrypt(h, ct, Out{Buf: pt})
	require.ErrorIs(t, err, ck.CKR_USER_NOT_LOGGED_IN)
	require.NoError(t, m.DecryptInit(h, pkcs1, priv))
	require.NoError(t, m.Login(h, ck.CKU_CONTEXT_SPECIFIC, []byte(userPIN)))
	n, err := m.Decrypt(h, ct, Out{Buf: pt})
	require.NoError(t, err)
	require.Equal(t, "secret", string(pt[:n]))
}

// TestAlwaysAuthenticateLockout: wrong context-specific PINs count towards
// the user's lockout like wrong C_Login PINs; once locked, the
// context-specific login is CKR_PIN_LOCKED and logs the user out (v2.20
// §10.9).
func TestAlwaysAuthenticateLockout(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	_, priv := alwaysAuthEC(t, m, h, true)
	require.NoError(t, m.SignInit(h, Mechanism{Type: ck.CKM_ECDSA_SHA256}, priv))
	for range m.cfg.LockoutThreshold {
		require.ErrorIs(t, m.Login(h, ck.CKU_CONTEXT_SPECIFIC, []byte("user:wrong")), ck.CKR_PIN_INCORRECT)
	}
	require.ErrorIs(t, m.Login(h, ck.CKU_CONTEXT_SPECIFIC, []byte(userPIN)), ck.CKR_PIN_LOCKED)
	info, err := m.SessionInfo(h)
	require.NoError(t, err)
	require.Equal(t, ck.CKS_RW_PUBLIC_SESSION, info.State, "a locked user is logged out")
	_, err = signOnce(m, h, []byte("x"))
	require.ErrorIs(t, err, ck.CKR_OPERATION_NOT_INITIALIZED)
}
