package store_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/token/store"
	"gohsm/token/store/storetest"
)

func openSQLite(t *testing.T, dir string) store.Store {
	t.Helper()
	s, err := store.Open(dir, store.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// TestExportImportFile: ExportFile writes a backup file that Restore and
// ImportFile both take, with the same records; a Backup file imports too;
// ImportFile refuses a non-empty token without replace and a damaged file.
func TestExportImportFile(t *testing.T) {
	src := openSQLite(t, t.TempDir())
	storetest.Populate(t, src)
	want, err := src.(store.Mover).Export()
	require.NoError(t, err)

	out := filepath.Join(t.TempDir(), "token.backup")
	info, err := store.ExportFile(src, out)
	require.NoError(t, err)
	assert.Equal(t, "fedcba9876543210", info.Serial)
	assert.Equal(t, "moved", info.Label)
	got, err := store.ReadBackupInfo(out)
	require.NoError(t, err)
	assert.Equal(t, info, got)

	// Restore takes it as any backup.
	dir := t.TempDir()
	_, err = store.Restore(dir, out, store.RestoreOptions{})
	require.NoError(t, err)
	snap, err := openSQLite(t, dir).(store.Mover).Export()
	require.NoError(t, err)
	assert.Equal(t, want, snap)

	// ImportFile into an empty token.
	dst := openSQLite(t, t.TempDir())
	_, err = store.ImportFile(dst, out, false)
	require.NoError(t, err)
	snap, err = dst.(store.Mover).Export()
	require.NoError(t, err)
	assert.Equal(t, want, snap)
	_, err = store.ImportFile(dst, out, false)
	assert.ErrorIs(t, err, store.ErrExists)

	// A file Backup wrote imports the same.
	bk := filepath.Join(t.TempDir(), "b")
	_, err = src.Backup(bk)
	require.NoError(t, err)
	_, err = store.ImportFile(dst, bk, true)
	require.NoError(t, err)
	snap, err = dst.(store.Mover).Export()
	require.NoError(t, err)
	assert.Equal(t, want, snap)

	// A damaged file changes nothing.
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	b[len(b)-100] ^= 1
	bad := filepath.Join(t.TempDir(), "bad")
	require.NoError(t, os.WriteFile(bad, b, 0o600))
	_, err = store.ImportFile(dst, bad, true)
	assert.ErrorIs(t, err, store.ErrBackup)

	// ExportFile refuses to overwrite what is not a backup, and an
	// uninitialised token.
	notBackup := filepath.Join(t.TempDir(), "cfg")
	require.NoError(t, os.WriteFile(notBackup, []byte("keep me"), 0o600))
	_, err = store.ExportFile(src, notBackup)
	assert.ErrorIs(t, err, store.ErrExists)
	_, err = store.ExportFile(openSQLite(t, t.TempDir()), filepath.Join(t.TempDir(), "x"))
	assert.ErrorIs(t, err, store.ErrNotInitialized)
}
