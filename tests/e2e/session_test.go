package e2e

import (
	"fmt"
	"testing"

	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSessionObjectsDieWithTheirSession: a session key made in session 1 is
// usable from session 2 until session 1 closes.
func TestSessionObjectsDieWithTheirSession(t *testing.T) {
	tk := newToken(t)
	tk.initToken()
	p := tk.p
	s1 := tk.userSession(userPIN)
	s2 := tk.session()
	k := tk.genAES(s1, "session-key", pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false))
	assert.False(t, tk.boolAttr(s2, k, pkcs11.CKA_TOKEN))
	assert.Equal(t, []pkcs11.ObjectHandle{k}, tk.find(s2, pkcs11.NewAttribute(pkcs11.CKA_LABEL, "session-key")))

	iv := make([]byte, 12)
	gp := pkcs11.NewGCMParams(iv, nil, 128)
	require.NoError(t, p.EncryptInit(s2, mech(pkcs11.CKM_AES_GCM, gp), k), "session 2 uses session 1's key")
	ct, err := p.Encrypt(s2, []byte("session object"))
	gp.Free()
	require.NoError(t, err)
	gp = pkcs11.NewGCMParams(iv, nil, 128)
	require.NoError(t, p.DecryptInit(s1, mech(pkcs11.CKM_AES_GCM, gp), k))
	pt, err := p.Decrypt(s1, ct)
	gp.Free()
	require.NoError(t, err)
	assert.Equal(t, []byte("session object"), pt)

	// Another process never sees session objects: it lists the token data
	// object (so its listing works) and not the session one.
	_, err = p.CreateObject(s1, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_DATA),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, "session-data"),
	})
	require.NoError(t, err)
	tokenData, err := p.CreateObject(s1, dataObject("token-data"))
	require.NoError(t, err)
	assert.Len(t, tk.find(s2, pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_DATA)), 2)
	assert.Equal(t, []string{fmt.Sprintf("%d token-data", tokenData)}, tk.run("list", userPIN),
		"another process lists exactly this one's token data object")
	require.NoError(t, p.DestroyObject(s1, tokenData))

	require.NoError(t, p.CloseSession(s1))
	assert.Equal(t, uint(pkcs11.CKS_RW_USER_FUNCTIONS), tk.state(s2), "closing one of two sessions keeps the login")
	gp = pkcs11.NewGCMParams(iv, nil, 128)
	defer gp.Free()
	requireRV(t, p.EncryptInit(s2, mech(pkcs11.CKM_AES_GCM, gp), k), pkcs11.CKR_KEY_HANDLE_INVALID)
	_, err = p.GetAttributeValue(s2, k, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil)})
	requireRV(t, err, pkcs11.CKR_OBJECT_HANDLE_INVALID)
	assert.Empty(t, tk.find(s2, pkcs11.NewAttribute(pkcs11.CKA_LABEL, "session-key")))
	assert.Empty(t, tk.find(s2, pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_DATA)), "session 1's data object outlived it")
	requireRV(t, p.DestroyObject(s2, k), pkcs11.CKR_OBJECT_HANDLE_INVALID)
}
