package console_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token"
	"gohsm/token/quorum"
)

// TestAPIQuorum: with the user service's quorum value at 2, an officer's
// user create through the console is refused by the token: 409 with the
// stable code quorum_approval_required and CKR_FUNCTION_REJECTED, and
// nobody is created. (Officers admin and admin2 register approver keys,
// as cloudhsm-cli's quorum commands do.)
func TestAPIQuorum(t *testing.T) {
	e := newEnv(t)
	m, err := token.OpenTool(e.conf)
	require.NoError(t, err)
	h, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	require.NoError(t, err)
	require.NoError(t, m.Login(h, ck.CKU_SO, []byte(officer+":"+officerPW)))
	co, err := token.ParseRole("crypto-officer")
	require.NoError(t, err)
	require.NoError(t, m.CreateUser(h, "admin2", co, []byte("officer-pw2")))
	keys := map[string]*rsa.PrivateKey{}
	for _, name := range []string{officer, "admin2"} {
		_ = m.Logout(h)
		pin := officer + ":" + officerPW
		if name == "admin2" {
			pin = "admin2:officer-pw2"
		}
		require.NoError(t, m.Login(h, ck.CKU_SO, []byte(pin)))
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		require.NoError(t, err)
		keys[name] = k
		approval, err := m.GenerateQuorumToken(h, quorum.Registration)
		require.NoError(t, err)
		f := quorum.NewRegistrationFile(approval)
		sig, err := quorum.Sign(k, approval)
		require.NoError(t, err)
		f.Tokens[0].Signed = base64.StdEncoding.EncodeToString(sig)
		b, err := json.Marshal(f)
		require.NoError(t, err)
		der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
		require.NoError(t, err)
		require.NoError(t, m.RegisterQuorumKey(h, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), b))
	}
	_ = m.Logout(h)
	require.NoError(t, m.Login(h, ck.CKU_SO, []byte(officer+":"+officerPW)))
	_, err = m.SetQuorumValue(h, quorum.Quorum, 2)
	require.NoError(t, err)
	approval, err := m.GenerateQuorumToken(h, quorum.Quorum)
	require.NoError(t, err)
	f := quorum.NewTokenFile(approval)
	for _, name := range []string{officer, "admin2"} {
		sig, err := quorum.Sign(keys[name], approval)
		require.NoError(t, err)
		f.Signatures = append(f.Signatures, quorum.Signature{Username: name, Signature: base64.StdEncoding.EncodeToString(sig)})
	}
	b, err := json.Marshal(f)
	require.NoError(t, err)
	require.NoError(t, m.ApproveQuorumToken(h, b))
	_, err = m.SetQuorumValue(h, quorum.User, 2)
	require.NoError(t, err)
	require.NoError(t, m.Logout(h))
	require.NoError(t, m.Close())

	c := e.officer()
	c.do("POST", "/api/v1/users", map[string]any{"username": "carol", "role": "crypto-user", "password": "carol-pw"}).
		want(t, http.StatusConflict, quorum.CodeApprovalRequired, "CKR_FUNCTION_REJECTED")
	assert.NotContains(t, c.users(t), "carol")
	c.do("DELETE", "/api/v1/users/bob", nil).want(t, http.StatusConflict, quorum.CodeApprovalRequired, "CKR_FUNCTION_REJECTED")
	assert.Contains(t, c.users(t), "bob")
}
