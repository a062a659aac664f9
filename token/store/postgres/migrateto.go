//go:build !nopostgres

package postgres

import "context"

// MigrateTo brings an empty or older database to schema version target
// (at most Version) as Migrate does: for tests and tools that need a
// database of an older version than this build's (gohsm store migrate's
// tests).
func MigrateTo(ctx context.Context, db DB, target int) error {
	if target < 1 || target > Version {
		return &VersionError{Database: target, Code: Version}
	}
	return migrateTo(ctx, db, target)
}
