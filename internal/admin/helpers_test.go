package admin

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token"
	"gohsm/token/store"
)

const (
	coPIN    = "admin:officer-pw"
	alicePIN = "alice:alice-pw"
	bobPIN   = "bob:bob-pass"
)

// tok is a temporary token with a crypto officer (admin) and two crypto
// users (alice, bob), each login on a module of its own as the console's
// web sessions have.
type tok struct {
	t    *testing.T
	conf string
}

func newTok(t *testing.T, extra string) *tok {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "gohsm.conf")
	text := fmt.Sprintf("token_dir = %s\nkdf_time = 1\nkdf_memory = 64\nkdf_threads = 1\nlogin_cache = off\n%s", filepath.Join(dir, "tokens"), extra)
	require.NoError(t, os.WriteFile(conf, []byte(text), 0o600))
	k := &tok{t: t, conf: conf}
	m, err := token.OpenTool(conf)
	require.NoError(t, err)
	defer m.Close()
	s, err := m.Slot(m.SlotIDs()[0])
	require.NoError(t, err)
	require.NoError(t, s.InitToken([]byte(coPIN), "admin-test"))
	h := k.sessionOn(m)
	_, err = Login(m, h, []byte(coPIN), NeedCO)
	require.NoError(t, err)
	require.NoError(t, m.CreateUser(h, "alice", store.RoleCU, []byte("alice-pw")))
	require.NoError(t, m.CreateUser(h, "bob", store.RoleCU, []byte("bob-pass")))
	return k
}

func (k *tok) sessionOn(m *token.Module) ck.ULong {
	k.t.Helper()
	h, err := m.OpenSession(m.SlotIDs()[0], ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	require.NoError(k.t, err)
	return h
}

// module opens a module of its own with a session, closed at the test's
// end.
func (k *tok) module() (*token.Module, ck.ULong) {
	k.t.Helper()
	m, err := token.OpenTool(k.conf)
	require.NoError(k.t, err)
	k.t.Cleanup(func() { m.Close() })
	return m, k.sessionOn(m)
}

// login is module logged in with pin as NeedAny does (the console's rule).
func (k *tok) login(pin string) (*token.Module, ck.ULong) {
	k.t.Helper()
	m, h := k.module()
	_, err := Login(m, h, []byte(pin), NeedAny)
	require.NoError(k.t, err)
	return m, h
}
