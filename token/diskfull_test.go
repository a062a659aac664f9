package token

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token/attrs"
)

// TestDiskFullIsDeviceMemory: a token whose file system is full answers
// CKR_DEVICE_MEMORY ("the token does not have sufficient memory to
// perform the requested function", PKCS #11 v3.0 section 5.1.3), not
// CKR_DEVICE_ERROR, and stays usable.
//
// The file system is a 2 MiB tmpfs: mounting one needs root (CI runs as
// root), and it fails writes with ENOSPC, which is what a full disk does.
// RLIMIT_FSIZE was the other way without a real disk to fill, but it
// fails writes with EFBIG, which SQLite reports as an I/O error, not as
// SQLITE_FULL, so it would test something else.
func TestDiskFullIsDeviceMemory(t *testing.T) {
	skipOnPostgres(t, "it fills the disk under the SQLite token file")
	dir := filepath.Join(t.TempDir(), "small")
	require.NoError(t, os.Mkdir(dir, 0o700))
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=2m,mode=0700"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mounting a tmpfs (CI runs as root): %v", err)
		}
		t.Skipf("mounting a tmpfs needs root: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })

	m, err := Open(testConfig(t, dir))
	require.NoError(t, err)
	defer m.Close()
	s, err := m.Slot(3)
	require.NoError(t, err)
	require.NoError(t, s.InitToken([]byte(soPIN), "t"))
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_SO, []byte(soPIN)))
	require.NoError(t, m.InitPIN(h, []byte(userPIN)))
	require.NoError(t, m.Logout(h))
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))

	value := make([]byte, 64<<10)
	var made []ck.ULong
	for i := 0; ; i++ {
		require.Less(t, i, 100, "2 MiB never filled up with 64 KiB objects")
		o, err := m.CreateObject(h, attrs.Template{
			ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_DATA)), ck.CKA_TOKEN: attrs.Bool(true),
			ck.CKA_PRIVATE: attrs.Bool(false), ck.CKA_LABEL: []byte(fmt.Sprint("fill-", i)), ck.CKA_VALUE: value,
		})
		if err != nil {
			require.True(t, errors.Is(err, ck.CKR_DEVICE_MEMORY), "after %d objects: %v", i, err)
			t.Logf("full after %d objects of 64 KiB: %v", i, err)
			break
		}
		made = append(made, o)
	}
	require.NotEmpty(t, made)
	// Nothing lost or half-written: every object made is found, and the
	// failed one is not. (Destroying one may need room in the WAL too, so
	// it can fail the same way on a full disk.)
	require.NoError(t, m.FindObjectsInit(h, attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_DATA))}))
	found, err := m.FindObjects(h, 1000)
	require.NoError(t, err)
	require.Equal(t, made, found)
	require.NoError(t, m.FindObjectsFinal(h))
	if err := m.DestroyObject(h, made[0]); err != nil {
		require.True(t, errors.Is(err, ck.CKR_DEVICE_MEMORY), "destroy on a full disk: %v", err)
	}
}
