package admin

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"gohsm/internal/ck"
	"gohsm/token"
	"gohsm/token/store"
)

// Backup writes what `gohsm token backup --out` writes (a consistent
// snapshot of the token, sealed as at rest) to w, for session h, which
// must be a crypto officer's (token.Module.BackupSession: the audit log
// names the officer). The snapshot is taken into a private temporary
// directory, copied to w, then removed: nothing is written to w unless
// the snapshot was taken (an error before is the token's: a session that
// is not an officer's is CKR_USER_NOT_LOGGED_IN). The info is the file's
// header (its Size and SHA256 are the database's after it, as `token
// backup` reports).
func Backup(m *token.Module, h ck.ULong, w io.Writer) (store.BackupInfo, error) {
	dir, err := os.MkdirTemp("", "gohsm-backup-")
	if err != nil {
		return store.BackupInfo{}, fmt.Errorf("admin: backup: %v: %w", err, ck.CKR_DEVICE_ERROR)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "token.gohsm-backup")
	info, err := m.BackupSession(h, path)
	if err != nil {
		return info, err
	}
	f, err := os.Open(path)
	if err != nil {
		return info, fmt.Errorf("admin: backup: %v: %w", err, ck.CKR_DEVICE_ERROR)
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil {
		return info, fmt.Errorf("admin: backup: writing: %w", err)
	}
	return info, nil
}
