package cloudhsmcli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token"
	"gohsm/token/store"
)

// cryptoEnv is a throwaway token (cheap KDF) with an admin and two crypto
// users, alice and bob, driven through Run as CloudHSM CLI's
// single-command mode is: CLOUDHSM_ROLE and CLOUDHSM_PIN.
type cryptoEnv struct {
	t    *testing.T
	conf string
	dir  string
}

const (
	cryptoAdminPIN = "admin:officer-pw"
	cryptoAlicePIN = "alice:alice-pw"
	cryptoBobPIN   = "bob:bob-pw-12"
)

func newCryptoEnv(t *testing.T, profile string) *cryptoEnv {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "gohsm.conf")
	text := fmt.Sprintf("token_dir = %s\nkdf_time = 1\nkdf_memory = 64\nkdf_threads = 1\nlogin_cache = off\n[slot 0]\nprofile = %s\n",
		filepath.Join(dir, "tokens"), profile)
	require.NoError(t, os.WriteFile(conf, []byte(text), 0o600))
	e := &cryptoEnv{t: t, conf: conf, dir: dir}
	m := e.open()
	defer m.Close()
	s, err := m.Slot(0)
	require.NoError(t, err)
	require.NoError(t, s.InitToken([]byte(cryptoAdminPIN), "cli-crypto"))
	h, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	require.NoError(t, err)
	require.NoError(t, m.Login(h, ck.CKU_SO, []byte(cryptoAdminPIN)))
	require.NoError(t, m.CreateUser(h, "alice", store.RoleCU, []byte("alice-pw")))
	require.NoError(t, m.CreateUser(h, "bob", store.RoleCU, []byte("bob-pw-12")))
	return e
}

func (e *cryptoEnv) open() *token.Module {
	e.t.Helper()
	b, err := os.ReadFile(e.conf)
	require.NoError(e.t, err)
	cfg, err := token.ParseConfig(string(b), e.conf)
	require.NoError(e.t, err)
	cfg.LogFile = os.DevNull
	m, err := token.Open(cfg)
	require.NoError(e.t, err)
	return m
}

// as runs f in a session of the token logged in with pin (a crypto user).
func (e *cryptoEnv) as(pin string, f func(m *token.Module, h ck.ULong)) {
	e.t.Helper()
	m := e.open()
	defer m.Close()
	h, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	require.NoError(e.t, err)
	require.NoError(e.t, m.Login(h, ck.CKU_USER, []byte(pin)))
	f(m, h)
}

// run runs one command as a crypto user (pin "" runs it logged out).
func (e *cryptoEnv) run(pin string, args ...string) (int, string) {
	e.t.Helper()
	if pin == "" {
		e.t.Setenv("CLOUDHSM_ROLE", "")
		e.t.Setenv("CLOUDHSM_PIN", "")
	} else {
		e.t.Setenv("CLOUDHSM_ROLE", "crypto-user")
		e.t.Setenv("CLOUDHSM_PIN", pin)
	}
	var out, errb bytes.Buffer
	code := Run(args, strings.NewReader(""), &out, &errb, Options{Config: e.conf})
	require.Empty(e.t, errb.String())
	return code, out.String()
}

// ok runs a command that must succeed and returns its envelope's data.
func (e *cryptoEnv) ok(pin string, args ...string) json.RawMessage {
	e.t.Helper()
	code, out := e.run(pin, args...)
	require.Equal(e.t, 0, code, "%s: %s", strings.Join(args, " "), out)
	var env struct {
		Code int             `json:"error_code"`
		Data json.RawMessage `json:"data"`
	}
	require.NoError(e.t, json.Unmarshal([]byte(out), &env), out)
	require.Equal(e.t, 0, env.Code)
	return env.Data
}

// fails runs a command that must fail with CloudHSM's error envelope whose
// text contains want.
func (e *cryptoEnv) fails(pin, want string, args ...string) string {
	e.t.Helper()
	code, out := e.run(pin, args...)
	require.Equal(e.t, 1, code, "%s: %s", strings.Join(args, " "), out)
	var env struct {
		Code int    `json:"error_code"`
		Data string `json:"data"`
	}
	require.NoError(e.t, json.Unmarshal([]byte(out), &env), out)
	require.Equal(e.t, 1, env.Code)
	require.Contains(e.t, env.Data, want)
	return env.Data
}
