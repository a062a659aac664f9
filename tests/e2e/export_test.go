package e2e

import (
	"fmt"
	"testing"

	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/require"
)

// TestShareeReadsNoKeyValue: through the C ABI, a crypto user a key is
// shared with may sign with it but not read its value, even when the key is
// neither sensitive nor unextractable; its owner still reads it (C_WrapKey
// and C_CopyObject are refused to a sharee by the same rule).
func TestShareeReadsNoKeyValue(t *testing.T) {
	tk := newToken(t)
	tk.initToken() // CO admin, CU alice
	tk.initPIN(bobPIN)
	p := tk.p
	s := tk.session()

	require.NoError(t, p.Login(s, pkcs11.CKU_USER, userPIN))
	_, priv, err := p.GenerateKeyPair(s, mech(pkcs11.CKM_EC_KEY_PAIR_GEN, nil),
		[]*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, oidP256),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, "open-key"),
		},
		[]*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, false),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, "open-key"),
		})
	require.NoError(t, err)
	scalar := tk.attr(s, priv, pkcs11.CKA_VALUE)
	require.Len(t, scalar, 32, "the owner reads the value of a non-sensitive key")
	require.NoError(t, p.Logout(s))
	require.Equal(t, []string{fmt.Sprintf("SHARED %d", priv)}, tk.run("share", userPIN, userPIN, "open-key", "bob"))

	require.NoError(t, p.Login(s, pkcs11.CKU_USER, bobPIN))
	defer func() { require.NoError(t, p.Logout(s)) }()
	a, err := p.GetAttributeValue(s, priv, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
	if err == nil {
		require.NotEqual(t, scalar, a[0].Value, "the sharee read the private key")
	}
	requireRV(t, err, pkcs11.CKR_ATTRIBUTE_SENSITIVE)
	require.Equal(t, "open-key", string(tk.attr(s, priv, pkcs11.CKA_LABEL)), "other attributes stay readable")
	tk.sign(s, mech(pkcs11.CKM_ECDSA_SHA256, nil), priv, []byte("bob signs"))
}
