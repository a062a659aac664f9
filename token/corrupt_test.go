package token

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"gohsm/internal/ck"
	"gohsm/token/store"
)

// TestCorruptObjectIsDeviceError: a stored key whose material another
// writer removed or mangled (the token validated it when it was made) is
// a device error when used: CKR_DEVICE_ERROR, not the template codes
// (CKR_TEMPLATE_INCOMPLETE, CKR_ATTRIBUTE_VALUE_INVALID) that would blame
// a template the caller never passed.
func TestCorruptObjectIsDeviceError(t *testing.T) {
	skipOnPostgres(t, "it corrupts a record in the SQLite token file")
	m, dir := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	aes, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("corrupt-aes", true))
	require.NoError(t, err)
	_, ecPriv := ecKeyPair(t, m, h, "corrupt-ec")

	db, err := sql.Open("sqlite", findDB(t, dir))
	require.NoError(t, err)
	defer db.Close()
	// The AES key loses its (sealed) value; the EC key's curve is garbage.
	res, err := db.Exec(`DELETE FROM sealed WHERE object_id = ? AND type = ?`, int64(aes), int64(ck.CKA_VALUE))
	require.NoError(t, err)
	n, _ := res.RowsAffected()
	require.EqualValues(t, 1, n)
	res, err = db.Exec(`UPDATE attrs SET value = ? WHERE object_id = ? AND type = ?`, []byte{0x06, 0x01, 0x00}, int64(ecPriv), int64(ck.CKA_EC_PARAMS))
	require.NoError(t, err)
	n, _ = res.RowsAffected()
	require.EqualValues(t, 1, n)

	err = m.EncryptInit(h, Mechanism{Type: ck.CKM_AES_GCM, Param: gcmParamsValue()}, aes)
	assert.ErrorIs(t, err, ck.CKR_DEVICE_ERROR, "AES key without its value: %v", err)
	err = m.SignInit(h, Mechanism{Type: ck.CKM_ECDSA}, ecPriv)
	assert.ErrorIs(t, err, ck.CKR_DEVICE_ERROR, "EC key with a garbage curve: %v", err)
}

// findDB is the token database under dir (the slot's directory name is
// the configuration's business).
func findDB(t *testing.T, dir string) string {
	t.Helper()
	ms, err := filepath.Glob(filepath.Join(dir, "*", store.DBName))
	require.NoError(t, err)
	if len(ms) == 0 {
		ms, err = filepath.Glob(filepath.Join(dir, store.DBName))
		require.NoError(t, err)
	}
	require.Len(t, ms, 1)
	return ms[0]
}
