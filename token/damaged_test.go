package token

import (
	"bytes"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token/store"
)

// TestDamagedTokenNeedsOfficer: a token whose record is lost while its
// users and objects remain is reported as damaged (CKR_TOKEN_NOT_RECOGNIZED
// from C_GetTokenInfo and C_OpenSession), and C_InitToken re-initialises it
// only for one of its officers. Before, the slot reported "not initialised"
// and C_InitToken with any officer PIN deleted every user and object.
func TestDamagedTokenNeedsOfficer(t *testing.T) {
	skipOnPostgres(t, "it damages the SQLite token file")
	m, dir := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	_, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("keep me", true))
	require.NoError(t, err)
	require.NoError(t, m.CloseSession(h))

	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "slot-3", store.DBName)+"?_pragma=busy_timeout(10000)")
	require.NoError(t, err)
	defer db.Close()
	_, err = db.Exec(`DELETE FROM token`)
	require.NoError(t, err)
	count := func(table string) (n int) {
		require.NoError(t, db.QueryRow(`SELECT count(*) FROM `+table).Scan(&n))
		return n
	}

	s, err := m.Slot(3)
	require.NoError(t, err)
	_, err = s.TokenInfo()
	assert.ErrorIs(t, err, ck.CKR_TOKEN_NOT_RECOGNIZED)
	_, err = m.OpenSession(3, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	assert.ErrorIs(t, err, ck.CKR_TOKEN_NOT_RECOGNIZED)

	for _, pin := range []string{"admin:another-pw", "mallory:mallory-pw", "user:user-pw-1", "any-pin"} {
		assert.ErrorIs(t, s.InitToken([]byte(pin), "wiped"), ck.CKR_PIN_INCORRECT, pin)
		assert.Equal(t, 2, count("users"), "users after C_InitToken(%q)", pin)
		assert.Equal(t, 1, count("objects"), "objects after C_InitToken(%q)", pin)
	}
	// The officer recovers the token by re-initialising it.
	require.NoError(t, s.InitToken([]byte(soPIN), "again"))
	ti, err := s.TokenInfo()
	require.NoError(t, err)
	assert.Equal(t, "again", ti.Label)
	assert.Equal(t, 0, count("objects"))
}

// TestUnreadableSlotKeepsOthers: with two slots, one whose token.db is
// garbage, the module opens (C_Initialize succeeds), the good slot works,
// and the bad one answers CKR_TOKEN_NOT_RECOGNIZED. Before, Open failed
// for every slot. (chmod 000 does not stop root, so the file is corrupted
// instead.)
func TestUnreadableSlotKeepsOthers(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "slot-5")
	require.NoError(t, os.MkdirAll(bad, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(bad, store.DBName), bytes.Repeat([]byte("not a token "), 1000), 0o600))
	cfg, err := ParseConfig(fmt.Sprintf("token_dir = %s\nkdf_time = 1\nkdf_memory = 64\nkdf_threads = 1\nlogin_cache = off\nlog_level = error\n[slot 3]\nlabel = good\n[slot 5]\nlabel = bad\n", dir), "test")
	require.NoError(t, err)
	m, err := Open(cfg)
	require.NoError(t, err)
	defer m.Close()
	assert.Equal(t, []ck.ULong{3, 5}, m.SlotIDs())

	s5, err := m.Slot(5)
	require.NoError(t, err)
	assert.Equal(t, ck.CKF_TOKEN_PRESENT, s5.SlotInfo().Flags)
	_, err = s5.TokenInfo()
	assert.ErrorIs(t, err, ck.CKR_TOKEN_NOT_RECOGNIZED)
	_, err = m.OpenSession(5, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	assert.ErrorIs(t, err, ck.CKR_TOKEN_NOT_RECOGNIZED)
	assert.ErrorIs(t, s5.InitToken([]byte(soPIN), "x"), ck.CKR_TOKEN_NOT_RECOGNIZED)
	_, err = m.Mechanisms(5)
	assert.NoError(t, err, "the slot's mechanisms do not depend on its token")

	s3, err := m.Slot(3)
	require.NoError(t, err)
	require.NoError(t, s3.InitToken([]byte(soPIN), "good"))
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_SO, []byte(soPIN)))
	require.NoError(t, m.InitPIN(h, []byte(userPIN)))
	require.NoError(t, m.Logout(h))
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	_, err = m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("k", true))
	require.NoError(t, err)
	ti, err := s3.TokenInfo()
	require.NoError(t, err)
	assert.Equal(t, "good", ti.Label)
	got, err := os.ReadFile(filepath.Join(bad, store.DBName))
	require.NoError(t, err)
	assert.True(t, bytes.HasPrefix(got, []byte("not a token ")), "the bad token's file is left as it was")
}
