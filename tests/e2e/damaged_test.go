package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// initializeWith runs C_Initialize with a configuration file holding text,
// and C_Finalize when the test ends.
func initializeWith(t *testing.T, p *pkcs11.Ctx, dir, text string) {
	t.Helper()
	conf := filepath.Join(dir, "gohsm.conf")
	require.NoError(t, os.WriteFile(conf, []byte(text), 0o600))
	path := append([]byte(conf), 0)
	err := p.Initialize(pkcs11.InitializeWithReserved(unsafe.Pointer(&path[0])))
	runtime.KeepAlive(path)
	require.NoError(t, err, "C_Initialize")
	t.Cleanup(func() { p.Finalize() })
}

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
	initializeWith(t, p, dir, configText(tokens)+"\n[slot 1]\nlabel = bad\n")

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
