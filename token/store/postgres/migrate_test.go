//go:build !nopostgres

package postgres

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"gohsm/internal/testenv/pgtest"
)

func TestMain(m *testing.M) {
	if dsn := os.Getenv("GOHSM_PG_MIGRATE"); dsn != "" {
		migrateHelper(dsn) // a process of TestMigrateProcesses
	}
	if dsn := os.Getenv("GOHSM_PG_LOGIN_HELPER"); dsn != "" {
		loginHelper(dsn) // the process TestLoginKilled kills
	}
	pgtest.Main(m)
}

// newDB is an empty database of the shared test server, its DSN.
func newDB(t *testing.T) string {
	t.Helper()
	return pgtest.Shared(t).NewDatabase(t, t.Name())
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	c, err := Connect(context.Background(), dsn)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// tables lists the current schema's tables.
func tables(t *testing.T, c *pgx.Conn) []string {
	t.Helper()
	rows, err := c.Query(context.Background(),
		`SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename`)
	require.NoError(t, err)
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return names
}

// versions lists schema_version's rows.
func versions(t *testing.T, c *pgx.Conn) []int {
	t.Helper()
	rows, err := c.Query(context.Background(), `SELECT version FROM schema_version ORDER BY version`)
	require.NoError(t, err)
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int])
	require.NoError(t, err)
	return vs
}

// format3 is every table of token format 3 (token/store/schema.go,
// logins.go), schema_version and generation.
var format3 = []string{"attrs", "audit", "generation", "key_quorum", "logins", "meta", "object_keys", "objects",
	"quorum_keys", "quorum_tokens", "quorum_values", "schema_version", "sealed", "shares", "token", "users"}

func TestMigrateEmpty(t *testing.T) {
	ctx := context.Background()
	c := connect(t, newDB(t))
	require.Equal(t, &VersionError{Database: 0, Code: Version}, CheckVersion(ctx, c))
	require.NoError(t, Migrate(ctx, c))
	require.NoError(t, CheckVersion(ctx, c))
	require.Equal(t, 3, Version, "a new migration: update format3 and this test")
	require.Equal(t, format3, tables(t, c))
	require.Equal(t, []int{1, 2, 3}, versions(t, c))
	var key []byte
	require.NoError(t, c.QueryRow(ctx, `SELECT value FROM meta WHERE key = 'audit_key'`).Scan(&key))
	require.Len(t, key, 32)
	require.NotEqual(t, make([]byte, 32), key)

	// Again: nothing to do, nothing done.
	require.NoError(t, Migrate(ctx, c))
	require.Equal(t, []int{1, 2, 3}, versions(t, c))
	var again []byte
	require.NoError(t, c.QueryRow(ctx, `SELECT value FROM meta WHERE key = 'audit_key'`).Scan(&again))
	require.Equal(t, key, again)
}

// TestMigrateConcurrent: openers racing on an empty database (each with its
// own connection) end with one schema and no error: one made it, the
// others waited on the advisory lock and found it made.
func TestMigrateConcurrent(t *testing.T) {
	ctx := context.Background()
	dsn := newDB(t)
	const n = 8
	conns := make([]*pgx.Conn, n)
	for i := range conns {
		conns[i] = connect(t, dsn)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = Migrate(ctx, conns[i])
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "opener %d", i)
	}
	checkOneSchema(t, conns[0])
}

// checkOneSchema: the schema is whole and was made once (a second run of a
// migration would have failed on CREATE TABLE, or added a second key).
func checkOneSchema(t *testing.T, c *pgx.Conn) {
	t.Helper()
	require.Equal(t, format3, tables(t, c))
	require.Equal(t, []int{1, 2, 3}, versions(t, c))
	var keys int
	require.NoError(t, c.QueryRow(context.Background(), `SELECT count(*) FROM meta WHERE key = 'audit_key'`).Scan(&keys))
	require.Equal(t, 1, keys)
}

// TestMigrateProcesses: the same race between processes (this test binary
// run again, migrating in TestMain), as between hosts.
func TestMigrateProcesses(t *testing.T) {
	dsn := newDB(t)
	const n = 3
	cmds := make([]*exec.Cmd, n)
	outs := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range cmds {
		cmds[i] = exec.Command(os.Args[0])
		cmds[i].Env = append(os.Environ(), "GOHSM_PG_MIGRATE="+dsn)
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = cmds[i].CombinedOutput()
		}()
	}
	wg.Wait()
	for i := range cmds {
		require.NoError(t, errs[i], "process %d: %s", i, outs[i])
		require.Contains(t, string(outs[i]), "migrated", "process %d ran the helper: %s", i, outs[i])
	}
	checkOneSchema(t, connect(t, dsn))
}

// migrateHelper is one racing process of TestMigrateProcesses.
func migrateHelper(dsn string) {
	ctx := context.Background()
	c, err := Connect(ctx, dsn)
	if err == nil {
		err = Migrate(ctx, c)
		c.Close(ctx)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("migrated")
	os.Exit(0)
}

// TestMigrateNewer: a database migrated by a newer gohsm is refused, and
// left as it is.
func TestMigrateNewer(t *testing.T) {
	ctx := context.Background()
	c := connect(t, newDB(t))
	require.NoError(t, Migrate(ctx, c))
	_, err := c.Exec(ctx, `INSERT INTO schema_version (version) VALUES (4), (5)`)
	require.NoError(t, err)

	err = Migrate(ctx, c)
	var ve *VersionError
	require.ErrorAs(t, err, &ve)
	require.EqualError(t, err, "token store schema version 5 is newer than this gohsm's 3: upgrade gohsm")
	require.Equal(t, err, CheckVersion(ctx, c))
	require.Equal(t, []int{1, 2, 3, 4, 5}, versions(t, c))

	// Found newer only once the lock is held (a newer gohsm won the race).
	require.ErrorAs(t, migrateStep(t, c), &ve)
}

// migrateStep runs one locked step as if the unlocked read had seen
// version 0.
func migrateStep(t *testing.T, c *pgx.Conn) error {
	t.Helper()
	_, err := step(context.Background(), c, Version)
	return err
}

// TestMigrateOlder: a database left at version 1 is refused by CheckVersion
// and brought forward by Migrate, keeping its rows.
func TestMigrateOlder(t *testing.T) {
	ctx := context.Background()
	c := connect(t, newDB(t))
	require.NoError(t, migrateTo(ctx, c, 1))
	require.Equal(t, []int{1}, versions(t, c))
	require.EqualError(t, CheckVersion(ctx, c), "token store schema version 1 is older than this gohsm's 3: migrate it with `gohsm store migrate`")
	_, err := c.Exec(ctx, `INSERT INTO users (name, role, kdf_time, kdf_memory, kdf_threads, salt, wrapped_key)
		VALUES ('alice', 2, 1, 64, 1, '\x01', '\x02')`)
	require.NoError(t, err)

	require.NoError(t, Migrate(ctx, c))
	checkOneSchema(t, c)
	var kv int
	var pub []byte
	require.NoError(t, c.QueryRow(ctx, `SELECT key_version, public_key FROM users WHERE name = 'alice'`).Scan(&kv, &pub))
	require.Equal(t, 1, kv, "a format-1 user's key is the token key")
	require.Empty(t, pub)
}

// TestMigrateNotStore: a database that holds something else is not added
// to.
func TestMigrateNotStore(t *testing.T) {
	ctx := context.Background()
	c := connect(t, newDB(t))
	_, err := c.Exec(ctx, `CREATE TABLE invoices (id int)`)
	require.NoError(t, err)
	err = Migrate(ctx, c)
	require.ErrorIs(t, err, ErrNotStore)
	require.ErrorIs(t, CheckVersion(ctx, c), ErrNotStore)
	require.Equal(t, []string{"invoices"}, tables(t, c))
}

// TestMigrateLockWait: a migration waiting for the lock gives up with its
// context, holding nothing.
func TestMigrateLockWait(t *testing.T) {
	ctx := context.Background()
	dsn := newDB(t)
	holder := connect(t, dsn)
	tx, err := holder.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLock)
	require.NoError(t, err)

	c := connect(t, dsn)
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	err = Migrate(short, c)
	require.Error(t, err, "Migrate went past a held lock")
	require.True(t, errors.Is(err, context.DeadlineExceeded) || short.Err() != nil, "%v", err)
	require.NoError(t, tx.Rollback(ctx))

	c = connect(t, dsn)
	require.NoError(t, Migrate(ctx, c))
	checkOneSchema(t, c)
}

// TestSchemaConstraints: the constraints SQLite's schema has hold here too.
func TestSchemaConstraints(t *testing.T) {
	ctx := context.Background()
	c := connect(t, newDB(t))
	require.NoError(t, Migrate(ctx, c))
	exec := func(sql string, args ...any) error {
		_, err := c.Exec(ctx, sql, args...)
		return err
	}
	user := `INSERT INTO users (name, role, kdf_time, kdf_memory, kdf_threads, salt, wrapped_key) VALUES ($1, $2, 1, 64, 1, '\x01', '\x02')`
	require.NoError(t, exec(user, "alice", 2))
	require.NoError(t, exec(user, "bob", 1))
	for _, bad := range []struct {
		name string
		role int
	}{{"Carol", 2}, {"", 2}, {"carol", 3}, {"alice", 2}} {
		require.Error(t, exec(user, bad.name, bad.role), "%+v", bad)
	}
	require.NoError(t, exec(`INSERT INTO token (id, label, serial, created) VALUES (1, 't', 's', 0)`))
	require.Error(t, exec(`INSERT INTO token (id, label, serial, created) VALUES (2, 't', 's', 0)`))

	// Object IDs (handles) come from the identity, increasing, never reused.
	var ids []int64
	for _, u := range []string{"a", "b", "c"} {
		var id int64
		require.NoError(t, c.QueryRow(ctx, `INSERT INTO objects (unique_id, owner, private, version)
			VALUES ($1, 'alice', true, 1) RETURNING id`, u).Scan(&id))
		ids = append(ids, id)
	}
	require.True(t, sort.SliceIsSorted(ids, func(i, j int) bool { return ids[i] < ids[j] }) && ids[0] >= 1, "%v", ids)
	require.Error(t, exec(`INSERT INTO objects (unique_id, private, version) VALUES ('a', false, 1)`), "unique_id")
	require.Error(t, exec(`INSERT INTO objects (unique_id, owner, private, version) VALUES ('z', 'nobody', false, 1)`), "owner")
	require.NoError(t, exec(`DELETE FROM objects WHERE id = $1`, ids[2]))
	var next int64
	require.NoError(t, c.QueryRow(ctx, `INSERT INTO objects (unique_id, private, version) VALUES ('d', false, 1) RETURNING id`).Scan(&next))
	require.Greater(t, next, ids[2], "a deleted object's ID is not handed out again")

	o := ids[0]
	// A certificate-sized value, incompressible (zeros would be compressed
	// below the limit): a B-tree entry of (type, value) would be refused.
	big := make([]byte, 8<<10)
	rand.Read(big)
	require.NoError(t, exec(`INSERT INTO attrs (object_id, type, value) VALUES ($1, 17, $2)`, o, big))
	require.NoError(t, exec(`INSERT INTO attrs (object_id, type, value) VALUES ($1, $2, '\x00')`, o, int64(0x80000001)))
	require.Error(t, exec(`INSERT INTO attrs (object_id, type, value) VALUES ($1, 17, '\x00')`, o), "(object_id, type) is the key")
	var found int64
	require.NoError(t, c.QueryRow(ctx, `SELECT object_id FROM attrs WHERE type = 17 AND sha256(value) = sha256($1) AND value = $1`, big).Scan(&found))
	require.Equal(t, o, found)
	require.NoError(t, exec(`INSERT INTO sealed (object_id, type, value) VALUES ($1, 17, '\x00')`, o))
	require.NoError(t, exec(`INSERT INTO shares (object_id, username) VALUES ($1, 'bob')`, o))
	require.NoError(t, exec(`INSERT INTO object_keys (object_id, username, value) VALUES ($1, 'bob', '\x00')`, o))
	require.NoError(t, exec(`INSERT INTO key_quorum (object_id, use_value, manage_value) VALUES ($1, 2, 8)`, o))
	require.Error(t, exec(`INSERT INTO key_quorum (object_id, use_value, manage_value) VALUES ($1, 9, 0)`, ids[1]))
	require.Error(t, exec(`INSERT INTO shares (object_id, username) VALUES ($1, 'nobody')`, o))
	require.Error(t, exec(`INSERT INTO quorum_values (service, value) VALUES ('user', 0)`))
	require.Error(t, exec(`INSERT INTO audit (stream, seq, record, mac) VALUES ('hsm', -1, '\x00', '\x00')`))
	require.NoError(t, exec(`INSERT INTO quorum_keys (username, public_key) VALUES ('bob', '\x00')`))
	require.NoError(t, exec(`INSERT INTO logins (instance, username, pid, started, boot, pidns, since) VALUES (1, 'bob', 1, 1, 'b', 'p', 1)`))

	require.Error(t, exec(`DELETE FROM users WHERE name = 'alice'`), "alice owns objects")
	// Deleting bob takes his shares, wrapped keys, quorum key and logins.
	require.NoError(t, exec(`DELETE FROM users WHERE name = 'bob'`))
	// Deleting the object takes its attributes, sealed values, shares, keys
	// and quorum values.
	require.NoError(t, exec(`INSERT INTO shares (object_id, username) VALUES ($1, 'alice')`, o))
	require.NoError(t, exec(`DELETE FROM objects WHERE id = $1`, o))
	for _, table := range []string{"quorum_keys", "logins", "object_keys", "shares", "key_quorum", "sealed"} {
		var n int
		require.NoError(t, c.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n))
		require.Zero(t, n, table)
	}
	var n int
	require.NoError(t, c.QueryRow(ctx, `SELECT count(*) FROM attrs WHERE object_id = $1`, o).Scan(&n))
	require.Zero(t, n)
}

// TestMigrateSchemas: the store lives in the current schema, so one
// database can hold several tokens (search_path in the URL); a search_path
// naming no existing schema is an error, not tables in some other schema.
func TestMigrateSchemas(t *testing.T) {
	ctx := context.Background()
	dsn := newDB(t)
	admin := connect(t, dsn)
	_, err := admin.Exec(ctx, `CREATE SCHEMA slot1; CREATE SCHEMA slot2`)
	require.NoError(t, err)
	with := func(path string) string {
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		return dsn + sep + "search_path=" + path
	}
	one, two := connect(t, with("slot1")), connect(t, with("slot2"))
	require.NoError(t, Migrate(ctx, one))
	require.Equal(t, &VersionError{Database: 0, Code: Version}, CheckVersion(ctx, two), "slot2 is still empty")
	require.NoError(t, Migrate(ctx, two))
	checkOneSchema(t, one)
	checkOneSchema(t, two)
	require.Empty(t, tables(t, admin), "public holds nothing")

	err = Migrate(ctx, connect(t, with("nosuch")))
	require.ErrorContains(t, err, "no schema to use")
}
