package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token"
	"gohsm/token/quorum"
)

// Approver keys are costly to make: three, shared by the tests.
var (
	approverOnce sync.Once
	approverKeys map[string]*rsa.PrivateKey
)

var officerPINs = map[string]string{"admin": coPIN, "admin2": "admin2:officer-pw2", "admin3": "admin3:officer-pw3"}

// quorumCLI is a CLI token with officers admin, admin2 and admin3, each
// with a registered approver key, and the user service's quorum value at 2
// (the quorum service's too, as the user's may not exceed it), in a slot
// of the given profile.
func quorumCLI(t *testing.T, profile string) *cli {
	t.Helper()
	approverOnce.Do(func() {
		approverKeys = map[string]*rsa.PrivateKey{}
		for name := range officerPINs {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			approverKeys[name] = k
		}
	})
	c := newCLI(t)
	c.conf = testConfig(t, "[slot 0]\nprofile = "+profile+"\n")
	c.ok("token", "init", "--label", "quorum", "--pin", coPIN)
	c.ok("user", "create", "--username", "admin2", "--role", "crypto-officer", "--password", "officer-pw2", "--pin", coPIN)
	c.ok("user", "create", "--username", "admin3", "--role", "crypto-officer", "--password", "officer-pw3", "--pin", coPIN)
	c.withModule(func(m *token.Module, h ck.ULong) {
		for _, name := range []string{"admin", "admin2", "admin3"} {
			_ = m.Logout(h)
			require.NoError(t, m.Login(h, ck.CKU_SO, []byte(officerPINs[name])))
			approval, err := m.GenerateQuorumToken(h, quorum.Registration)
			require.NoError(t, err)
			f := quorum.NewRegistrationFile(approval)
			sig, err := quorum.Sign(approverKeys[name], approval)
			require.NoError(t, err)
			f.Tokens[0].Signed = base64.StdEncoding.EncodeToString(sig)
			b, _ := json.Marshal(f)
			der, _ := x509.MarshalPKIXPublicKey(&approverKeys[name].PublicKey)
			require.NoError(t, m.RegisterQuorumKey(h, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), b))
		}
		_ = m.Logout(h)
		require.NoError(t, m.Login(h, ck.CKU_SO, []byte(coPIN)))
		_, err := m.SetQuorumValue(h, quorum.Quorum, 2)
		require.NoError(t, err)
		require.NoError(t, m.ApproveQuorumToken(h, signedToken(t, m, h, quorum.Quorum, "admin", "admin2")))
		_, err = m.SetQuorumValue(h, quorum.User, 2)
		require.NoError(t, err)
	})
	return c
}

// withModule opens the CLI's token in-process, with a read-write session,
// for what gohsm's CLI has no command for (quorum set-up: cloudhsm-cli's).
func (c *cli) withModule(f func(m *token.Module, h ck.ULong)) {
	c.t.Helper()
	text, err := os.ReadFile(c.conf)
	require.NoError(c.t, err)
	cfg, err := token.ParseConfig(string(text), c.conf)
	require.NoError(c.t, err)
	m, err := token.Open(cfg)
	require.NoError(c.t, err)
	defer m.Close()
	h, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	require.NoError(c.t, err)
	f(m, h)
}

// signedToken generates a token of svc for the logged-in user and returns
// its file signed by approvers, as `quorum token-sign generate` and the
// approvers' openssl would.
func signedToken(t *testing.T, m *token.Module, h ck.ULong, svc quorum.Service, approvers ...string) []byte {
	t.Helper()
	approval, err := m.GenerateQuorumToken(h, svc)
	require.NoError(t, err)
	f := quorum.NewTokenFile(approval)
	for _, a := range approvers {
		sig, err := quorum.Sign(approverKeys[a], approval)
		require.NoError(t, err)
		f.Signatures = append(f.Signatures, quorum.Signature{Username: a, Signature: base64.StdEncoding.EncodeToString(sig)})
	}
	b, err := json.Marshal(f)
	require.NoError(t, err)
	return b
}

// jsonErr runs a command that must fail with --json and returns its ckr
// and code.
func (c *cli) jsonErr(args ...string) (ckr, code string) {
	c.t.Helper()
	r := c.run(append([]string{"--json"}, args...)...)
	require.Equal(c.t, 1, r.code, "stdout %q stderr %q", r.stdout, r.stderr)
	var e jsonError
	require.NoError(c.t, json.Unmarshal([]byte(r.stdout), &e), r.stdout)
	return e.CKR, e.Kind
}

// TestQuorumRefusalCode: with the user service's quorum value at 2, gohsm
// user create without an approval is refused with the stable code
// quorum_approval_required and the CKR it always had
// (CKR_FUNCTION_REJECTED), and creates nobody, in both profiles.
func TestQuorumRefusalCode(t *testing.T) {
	for _, profile := range []string{"standard", "cloudhsm"} {
		t.Run(profile, func(t *testing.T) { testQuorumRefusalCode(t, profile) })
	}
}

func testQuorumRefusalCode(t *testing.T, profile string) {
	c := quorumCLI(t, profile)
	ckr, code := c.jsonErr("user", "create", "--username", "carol", "--role", "crypto-user", "--password", "carol-pw", "--pin", coPIN)
	require.Equal(t, "CKR_FUNCTION_REJECTED", ckr)
	require.Equal(t, quorum.CodeApprovalRequired, code)
	require.NotContains(t, c.users(), "carol")
}

// officerToken generates, as officer, a token of the user service signed
// by approvers, and writes it to a file in the test's directory.
func (c *cli) officerToken(officer string, approvers ...string) string {
	c.t.Helper()
	path := filepath.Join(c.t.TempDir(), officer+"-token.json")
	c.withModule(func(m *token.Module, h ck.ULong) {
		require.NoError(c.t, m.Login(h, ck.CKU_SO, []byte(officerPINs[officer])))
		require.NoError(c.t, os.WriteFile(path, signedToken(c.t, m, h, quorum.User, approvers...), 0o600))
	})
	return path
}

// TestUserApproval: with the user service's quorum value at 2, gohsm's
// user create, change-password and delete take --approval FILE, the
// token file cloudhsm-cli uses: one approver is too few
// (quorum_too_few_approvals), two registered officers let the operation
// through, and the token is then used up (quorum_token_unknown). Both
// profiles.
func TestUserApproval(t *testing.T) {
	for _, profile := range []string{"standard", "cloudhsm"} {
		t.Run(profile, func(t *testing.T) { testUserApproval(t, profile) })
	}
}

func testUserApproval(t *testing.T, profile string) {
	c := quorumCLI(t, profile)
	create := []string{"user", "create", "--username", "carol", "--role", "crypto-user", "--password", "carol-pw"}

	few := c.officerToken("admin", "admin2")
	ckr, code := c.jsonErr(append(create, "--approval", few, "--pin", coPIN)...)
	require.Equal(t, "CKR_FUNCTION_REJECTED", ckr)
	require.Equal(t, quorum.CodeTooFewApprovals, code)
	require.NotContains(t, c.users(), "carol")

	ok := c.officerToken("admin2", "admin", "admin3")
	c.ok(append(create, "--approval", ok, "--pin", officerPINs["admin2"])...)
	require.Contains(t, c.users(), "carol")
	_, code = c.jsonErr("user", "delete", "--username", "carol", "--approval", ok, "--pin", officerPINs["admin2"])
	require.Equal(t, quorum.CodeTokenUnknown, code, "a token approves one operation")

	_, code = c.jsonErr("user", "change-password", "--username", "carol", "--password", "carol-pw2", "--pin", officerPINs["admin3"])
	require.Equal(t, quorum.CodeApprovalRequired, code)
	c.ok("user", "change-password", "--username", "carol", "--password", "carol-pw2",
		"--approval", c.officerToken("admin3", "admin", "admin2"), "--pin", officerPINs["admin3"])
	c.ok("key", "list", "--pin", "carol:carol-pw2")

	c.ok("user", "delete", "--username", "carol",
		"--approval", c.officerToken("admin3", "admin", "admin2"), "--pin", officerPINs["admin3"])
	require.NotContains(t, c.users(), "carol")

	r := c.run("user", "delete", "--username", "admin2", "--approval", filepath.Join(t.TempDir(), "missing.json"), "--pin", coPIN)
	require.Equal(t, 2, r.code, "an unreadable --approval file is a usage error: %s", r.stderr)
	require.Contains(t, r.stderr, "--approval")
}
