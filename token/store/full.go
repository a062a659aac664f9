package store

import (
	"errors"
	"syscall"

	sqlite3 "modernc.org/sqlite/lib"
)

// IsFull reports whether err says the token's file system (or the
// user's quota on it) is full: SQLite's SQLITE_FULL, which it answers for
// a write that failed with ENOSPC, or those errnos themselves. The token
// answers CKR_DEVICE_MEMORY for it, not CKR_DEVICE_ERROR: nothing is
// broken, and freeing space (destroying objects) helps.
func IsFull(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return true
	}
	return sqliteCode(err)&0xff == sqlite3.SQLITE_FULL
}
