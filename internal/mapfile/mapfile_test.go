package mapfile

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestGrowAllocates(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, Grow(f, 1<<20))
	var st unix.Stat_t
	require.NoError(t, unix.Fstat(int(f.Fd()), &st))
	require.EqualValues(t, 1<<20, st.Size)
	require.GreaterOrEqual(t, st.Blocks*512, int64(1<<20), "the file is sparse: a write through a mapping could fault")
	// Never shrinks.
	require.NoError(t, Grow(f, 4096))
	fi, err := f.Stat()
	require.NoError(t, err)
	require.EqualValues(t, 1<<20, fi.Size())
}

// TestGrowFullDisk: on a file system too small for the file, Grow is an
// ENOSPC error (a plain truncate would succeed and leave a mapping that
// faults when written).
func TestGrowFullDisk(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "small")
	require.NoError(t, os.Mkdir(dir, 0o700))
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=1m,mode=0700"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mounting a tmpfs (CI runs as root): %v", err)
		}
		t.Skipf("mounting a tmpfs needs root: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	f, err := os.Create(filepath.Join(dir, "f"))
	require.NoError(t, err)
	defer f.Close()
	err = Grow(f, 4<<20)
	require.Error(t, err)
	require.True(t, errors.Is(err, unix.ENOSPC), "%v", err)
}
