package e2e

import (
	"bytes"
	"database/sql"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	_ "modernc.org/sqlite"
)

// TestUnreadableSlotThroughABI: two slots, one whose token.db is garbage.
// C_Initialize succeeds, both slots are listed with their token present,
// the bad one's C_GetTokenInfo, C_OpenSession and C_InitToken answer
// CKR_TOKEN_NOT_RECOGNIZED, and the good one works. Before, C_Initialize
// failed (CKR_GENERAL_ERROR) for every slot.
func TestUnreadableSlotThroughABI(t *testing.T) {
	p := module(t)
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	bad := filepath.Join(tokens, "slot-1")
	require.NoError(t, os.MkdirAll(bad, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(bad, "token.db"), bytes.Repeat([]byte("garbage!"), 1024), 0o600))
	conf := filepath.Join(dir, "gohsm.conf")
	require.NoError(t, os.WriteFile(conf, []byte(configText(tokens)+"\n[slot 1]\nlabel = bad\n"), 0o600))
	path := append([]byte(conf), 0)
	err := p.Initialize(pkcs11.InitializeWithReserved(unsafe.Pointer(&path[0])))
	runtime.KeepAlive(path)
	require.NoError(t, err, "C_Initialize")
	t.Cleanup(func() { p.Finalize() })

	for _, present := range []bool{false, true} {
		slots, err := p.GetSlotList(present)
		require.NoError(t, err)
		assert.Equal(t, []uint{0, 1}, slots, "C_GetSlotList(%v)", present)
	}
	si, err := p.GetSlotInfo(1)
	require.NoError(t, err)
	assert.Equal(t, uint(pkcs11.CKF_TOKEN_PRESENT), si.Flags)
	_, err = p.GetTokenInfo(1)
	requireRV(t, err, pkcs11.CKR_TOKEN_NOT_RECOGNIZED)
	_, err = p.OpenSession(1, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	requireRV(t, err, pkcs11.CKR_TOKEN_NOT_RECOGNIZED)
	requireRV(t, p.InitToken(1, soPIN, "bad"), pkcs11.CKR_TOKEN_NOT_RECOGNIZED)

	require.NoError(t, p.InitToken(0, soPIN, tokenName))
	tk := &tok{t: t, p: p, dir: tokens, slot: 0}
	tk.initPIN(userPIN)
	s := tk.userSession(userPIN)
	tk.genEC(s, oidP256, "works", true)
	ti, err := p.GetTokenInfo(0)
	require.NoError(t, err)
	assert.Equal(t, tokenName, strings.TrimRight(ti.Label, " "))
}

// TestDamagedTokenThroughABI: the token record of an initialised token with
// a user and a key is deleted behind the library. C_GetTokenInfo and
// C_OpenSession answer CKR_TOKEN_NOT_RECOGNIZED, C_InitToken with another
// officer PIN is refused and leaves the users and objects, and the
// officer's own PIN re-initialises. Before, the slot read "not initialised"
// and C_InitToken with any PIN deleted every user and object.
func TestDamagedTokenThroughABI(t *testing.T) {
	tk := newToken(t)
	tk.initToken()
	s := tk.userSession(userPIN)
	tk.genEC(s, oidP256, "keep", true)
	require.NoError(t, tk.p.CloseSession(s))

	db, err := sql.Open("sqlite", "file:"+filepath.Join(tk.dir, "slot-0", "token.db")+"?_pragma=busy_timeout(10000)")
	require.NoError(t, err)
	defer db.Close()
	_, err = db.Exec(`DELETE FROM token`)
	require.NoError(t, err)
	count := func(table string) (n int) {
		require.NoError(t, db.QueryRow(`SELECT count(*) FROM `+table).Scan(&n))
		return n
	}

	_, err = tk.p.GetTokenInfo(tk.slot)
	requireRV(t, err, pkcs11.CKR_TOKEN_NOT_RECOGNIZED)
	_, err = tk.p.OpenSession(tk.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	requireRV(t, err, pkcs11.CKR_TOKEN_NOT_RECOGNIZED)
	requireRV(t, tk.p.InitToken(tk.slot, "mallory:mallory-pw", "wiped"), pkcs11.CKR_PIN_INCORRECT)
	requireRV(t, tk.p.InitToken(tk.slot, "admin:not-the-pw", "wiped"), pkcs11.CKR_PIN_INCORRECT)
	assert.Equal(t, 2, count("users"))
	assert.Equal(t, 2, count("objects"))
	require.NoError(t, tk.p.InitToken(tk.slot, soPIN, "again"))
	ti, err := tk.p.GetTokenInfo(tk.slot)
	require.NoError(t, err)
	assert.Equal(t, "again", strings.TrimRight(ti.Label, " "))
}
