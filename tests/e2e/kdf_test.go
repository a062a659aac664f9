package e2e

import (
	"path/filepath"
	"runtime"
	"testing"
	"unsafe"

	"github.com/miekg/pkcs11"

	"gohsm/internal/testenv/pgtest"
)

// TestInitializeRefusesKDFOutOfBounds: argon2id settings out of bounds in
// the configuration (C_Initialize pReserved text) fail C_Initialize with
// CKR_ARGUMENTS_BAD, before any token is touched. Before, kdf_time up to
// 100 and kdf_memory up to 4 GiB were accepted, and the first C_InitToken
// ran for minutes (or ran out of memory) holding the slot.
func TestInitializeRefusesKDFOutOfBounds(t *testing.T) {
	p := module(t)
	dir := filepath.Join(t.TempDir(), "tokens")
	store := pgtest.SlotStore(t, "kdf")
	for _, extra := range []string{
		"kdf_time = 17",
		"kdf_time = 100",
		"kdf_memory = 4194304",
		"kdf_time = 2\nkdf_memory = 1048576",
	} {
		text := append([]byte(configText(dir, store, extra)), 0)
		err := p.Initialize(pkcs11.InitializeWithReserved(unsafe.Pointer(&text[0])))
		runtime.KeepAlive(text)
		if err == nil {
			p.Finalize()
		}
		requireRV(t, err, pkcs11.CKR_ARGUMENTS_BAD)
	}
}
