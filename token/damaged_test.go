package token

import (
	"database/sql"
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
