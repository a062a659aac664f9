package e2e

import (
	"testing"

	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/require"
)

// TestAlwaysAuthenticate: through the C ABI, a private key with
// CKA_ALWAYS_AUTHENTICATE signs only after C_Login(CKU_CONTEXT_SPECIFIC)
// following C_SignInit, once per operation; without an operation waiting
// that login is CKR_OPERATION_NOT_INITIALIZED.
func TestAlwaysAuthenticate(t *testing.T) {
	tk := newToken(t)
	tk.initToken()
	p := tk.p
	s := tk.userSession(userPIN)
	_, priv, err := p.GenerateKeyPair(s, mech(pkcs11.CKM_EC_KEY_PAIR_GEN, nil),
		[]*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, oidP256)},
		[]*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
			pkcs11.NewAttribute(pkcs11.CKA_ALWAYS_AUTHENTICATE, true),
		})
	require.NoError(t, err)
	require.True(t, tk.boolAttr(s, priv, pkcs11.CKA_ALWAYS_AUTHENTICATE))
	ecdsa := mech(pkcs11.CKM_ECDSA_SHA256, nil)
	msg := []byte("signed after a context-specific login")

	requireRV(t, p.Login(s, pkcs11.CKU_CONTEXT_SPECIFIC, userPIN), pkcs11.CKR_OPERATION_NOT_INITIALIZED)
	require.NoError(t, p.SignInit(s, ecdsa, priv))
	_, err = p.Sign(s, msg)
	requireRV(t, err, pkcs11.CKR_USER_NOT_LOGGED_IN)

	require.NoError(t, p.SignInit(s, ecdsa, priv))
	requireRV(t, p.Login(s, pkcs11.CKU_CONTEXT_SPECIFIC, "alice:wrong"), pkcs11.CKR_PIN_INCORRECT)
	require.NoError(t, p.Login(s, pkcs11.CKU_CONTEXT_SPECIFIC, userPIN))
	sig, err := p.Sign(s, msg) // a length query, then the signature
	require.NoError(t, err)
	require.Len(t, sig, 64)

	require.NoError(t, p.SignInit(s, ecdsa, priv))
	_, err = p.Sign(s, msg)
	requireRV(t, err, pkcs11.CKR_USER_NOT_LOGGED_IN) // the login authorised one operation
}
