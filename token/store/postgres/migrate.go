//go:build !nopostgres

package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"gohsm/token/store"
)

// DB is what Migrate and CheckVersion need of a connection: a *pgx.Conn or a
// pgxpool.Pool.
type DB interface {
	Begin(ctx context.Context) (pgx.Tx, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// migrateLock is the pg_advisory_xact_lock key every migration transaction
// takes ("ghs1migr"), so that of several openers of an empty database one
// creates the schema and the others find it made.
const migrateLock int64 = 0x676873316d696772

// VersionError says that the database's schema is not the one this build
// writes.
type VersionError struct {
	Database, Code int
}

func (e *VersionError) Error() string {
	if e.Database > e.Code {
		return fmt.Sprintf("token store schema version %d is newer than this gohsm's %d: upgrade gohsm", e.Database, e.Code)
	}
	return fmt.Sprintf("token store schema version %d is older than this gohsm's %d: migrate it with `gohsm store migrate`", e.Database, e.Code)
}

// Unwrap makes a VersionError a store.ErrFormat (errors.Is).
func (e *VersionError) Unwrap() error { return store.ErrFormat }

// ErrNotStore is returned for a database schema that holds tables but no
// schema_version: not a token store, so nothing is added to it.
var ErrNotStore = errors.New("not a gohsm token store")

// CheckVersion reads the database's schema version (0: none yet) and
// returns a *VersionError unless it is this build's.
func CheckVersion(ctx context.Context, db DB) error {
	v, err := version(ctx, db)
	if err != nil {
		return err
	}
	if v != Version {
		return &VersionError{Database: v, Code: Version}
	}
	return nil
}

// Migrate brings the database to this build's schema: an empty one gets it
// all, an older one the migrations it lacks, together in one transaction
// under the advisory lock; a newer one is refused with a *VersionError.
// A current one costs one query and no lock.
func Migrate(ctx context.Context, db DB) error {
	return migrateTo(ctx, db, Version)
}

func migrateTo(ctx context.Context, db DB, target int) error {
	v, err := version(ctx, db)
	if err != nil {
		return err
	}
	if v > Version {
		return &VersionError{Database: v, Code: Version}
	}
	for v < target {
		if v, err = step(ctx, db, target); err != nil {
			return err
		}
	}
	return nil
}

// step applies every migration still missing once the lock is held, in
// that one transaction, and returns the version it leaves. One
// transaction: an opener that finds no schema_version lock-free and an
// opener that reads the version under the lock never see an intermediate
// version of another opener's migration (tests/hosts:TestSchemaRace caught
// version 2 of a database being created, when each migration had a
// transaction of its own and the lock was let go between them).
func step(ctx context.Context, db DB, target int) (int, error) {
	tx, err := db.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("postgres: migrate: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLock); err != nil {
		return 0, fmt.Errorf("postgres: migration lock: %w", err)
	}
	v, err := version(ctx, tx)
	if err != nil {
		return 0, err
	}
	if v > Version {
		return v, &VersionError{Database: v, Code: Version}
	}
	if v >= target {
		return v, nil // another opener did it while we waited for the lock
	}
	if v == 0 {
		if _, err := tx.Exec(ctx, `CREATE TABLE schema_version (
	version INTEGER PRIMARY KEY CHECK (version >= 1),
	applied TIMESTAMPTZ NOT NULL DEFAULT now()
)`); err != nil {
			return 0, fmt.Errorf("postgres: create schema_version: %w", err)
		}
	}
	from := v
	for ; v < target; v++ {
		m := migrations[v]
		for _, s := range m.stmts {
			if _, err := tx.Exec(ctx, s); err != nil {
				return 0, fmt.Errorf("postgres: migrate schema %d to %d: %w", v, v+1, err)
			}
		}
		if m.fill != nil {
			if err := m.fill(ctx, tx); err != nil {
				return 0, fmt.Errorf("postgres: migrate schema %d to %d: %w", v, v+1, err)
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_version (version) VALUES ($1)`, v+1); err != nil {
			return 0, fmt.Errorf("postgres: record schema version %d: %w", v+1, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("postgres: migrate schema %d to %d: %w", from, target, err)
	}
	return v, nil
}

// settledVersion reads the schema version under the migration lock: a
// migration under way in another opener has then committed (or rolled
// back), so the version read is no intermediate step of it.
func settledVersion(ctx context.Context, db DB) (int, error) {
	tx, err := db.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("postgres: read schema version: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLock); err != nil {
		return 0, fmt.Errorf("postgres: migration lock: %w", err)
	}
	return version(ctx, tx)
}

type queryRower interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// version is the schema version of the connection's current schema (the
// first of search_path): 0 when it is empty, ErrNotStore when it holds
// something else.
func version(ctx context.Context, q queryRower) (int, error) {
	var schema *string
	var rels int
	var have bool
	err := q.QueryRow(ctx, `SELECT current_schema(),
	(SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = current_schema()),
	EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'schema_version')`).
		Scan(&schema, &rels, &have)
	if err != nil {
		return 0, fmt.Errorf("postgres: read schema version: %w", err)
	}
	switch {
	case schema == nil:
		return 0, fmt.Errorf("postgres: no schema to use (search_path names none that exists)")
	case !have && rels > 0:
		return 0, fmt.Errorf("postgres: schema %q holds %d relations but no schema_version: %w", *schema, rels, ErrNotStore)
	case !have:
		return 0, nil
	}
	var v int
	if err := q.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("postgres: read schema version: %w", err)
	}
	return v, nil
}
