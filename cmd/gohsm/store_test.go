package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/internal/testenv/pgtest"
	"gohsm/token"
	"gohsm/token/attrs"
	"gohsm/token/store/postgres"
)

// The store commands and moving a token between backends, against a real
// PostgreSQL server (pgtest).

// pgCLI is a CLI whose slot 0 keeps its token in the database of dsn.
func pgCLI(t *testing.T, dsn string) *cli {
	c := newCLI(t)
	c.conf = testConfig(t, "[slot 0]\nstore = "+dsn+"\n")
	return c
}

type storeStatusJSON struct {
	Backend       string `json:"backend"`
	URL           string `json:"url"`
	Reachable     bool   `json:"reachable"`
	SchemaVersion int    `json:"schema_version"`
	CodeVersion   int    `json:"code_version"`
	Error         string `json:"error"`
}

func TestStoreStatusAndMigrate(t *testing.T) {
	srv := pgtest.Shared(t)
	ctx := context.Background()

	// SQLite: nothing to migrate.
	c := newCLI(t)
	var st storeStatusJSON
	c.data(&st, "store", "status")
	require.Equal(t, storeStatusJSON{Backend: "sqlite", Reachable: true, SchemaVersion: postgres.Version, CodeVersion: postgres.Version}, st)
	require.Contains(t, c.ok("store", "migrate"), "nothing to migrate")

	// A current database; the password of the URL is never shown.
	dsn := srv.NewDatabase(t, "status")
	withPW := strings.Replace(dsn, "@", ":s3cret-pw@", 1) // trust authentication ignores it
	c = pgCLI(t, withPW)
	c.data(&st, "store", "status")
	require.Equal(t, "postgres", st.Backend)
	require.True(t, st.Reachable)
	require.Equal(t, postgres.Version, st.SchemaVersion, "Open made the schema")
	require.Contains(t, st.URL, ":xxxxx@")
	out := c.ok("store", "status")
	require.Contains(t, out, "database reachable")
	require.Contains(t, out, fmt.Sprintf("schema version %d (this gohsm: %d)", postgres.Version, postgres.Version))
	require.NotContains(t, out, "s3cret-pw")
	require.Contains(t, c.ok("store", "migrate"), "nothing to migrate")

	// An older database: refused until migrated.
	older := srv.NewDatabase(t, "older")
	conn, err := postgres.Connect(ctx, older)
	require.NoError(t, err)
	require.NoError(t, postgres.MigrateTo(ctx, conn, 1))
	conn.Close(ctx)
	c = pgCLI(t, older)
	c.fails([]string{"store status: slot 0: ", "version 1 is older than this gohsm's", "gohsm store migrate"}, "store", "status")
	c.fails([]string{"CKR_TOKEN_NOT_RECOGNIZED", "gohsm store migrate"}, "key", "list", "--pin", alicePIN)
	require.Contains(t, c.ok("store", "migrate"), fmt.Sprintf("slot 0: migrated schema version 1 to %d", postgres.Version))
	c.data(&st, "store", "status")
	require.Equal(t, postgres.Version, st.SchemaVersion)
	c.ok("token", "init", "--label", "migrated", "--pin", coPIN)

	// A newer one: refused by every command, with the message.
	newer := srv.NewDatabase(t, "newer")
	conn, err = postgres.Connect(ctx, newer)
	require.NoError(t, err)
	require.NoError(t, postgres.Migrate(ctx, conn))
	_, err = conn.Exec(ctx, `INSERT INTO schema_version (version) VALUES ($1)`, postgres.Version+1)
	require.NoError(t, err)
	conn.Close(ctx)
	c = pgCLI(t, newer)
	want := fmt.Sprintf("schema version %d is newer than this gohsm's %d: upgrade gohsm", postgres.Version+1, postgres.Version)
	c.fails([]string{want}, "store", "status")
	r := c.run("--json", "store", "status")
	require.Equal(t, 1, r.code)
	var je jsonError
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &je), r.stdout)
	require.Equal(t, codeStoreVersion, je.Kind)
	c.fails([]string{"CKR_TOKEN_NOT_RECOGNIZED", want}, "key", "list", "--pin", alicePIN)
	c.fails([]string{"newer"}, "store", "migrate")

	// No server there: unreachable, said fast (connect_timeout).
	c = pgCLI(t, "postgres://nobody:s3cret-pw@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
	r = c.run("store", "status")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stdout, "database unreachable")
	require.Contains(t, r.stderr, "store status: slot 0: ")
	require.NotContains(t, r.stdout+r.stderr, "s3cret-pw")
}

// signOnce logs alice in through the token API on the CLI's configuration
// and signs with her key labelled k1.
func signOnce(t *testing.T, c *cli) {
	t.Helper()
	m, err := token.OpenTool(c.conf)
	require.NoError(t, err)
	defer m.Close()
	h, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	require.NoError(t, err)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(alicePIN)))
	require.NoError(t, m.FindObjectsInit(h, attrs.Template{ck.CKA_LABEL: []byte("k1"), ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_PRIVATE_KEY))}))
	keys, err := m.FindObjects(h, 2)
	require.NoError(t, err)
	require.NoError(t, m.FindObjectsFinal(h))
	require.Len(t, keys, 1)
	require.NoError(t, m.SignInit(h, token.Mechanism{Type: ck.CKM_ECDSA}, keys[0]))
	d := sha256.Sum256([]byte("moved"))
	_, err = m.Sign(h, d[:], token.Out{Buf: make([]byte, 64)})
	require.NoError(t, err)
}

// TestExportImportBackends: a token moves SQLite -> PostgreSQL -> SQLite
// with its users, keys (same handles, owners, shares) and audit chain:
// on each, users log in, keys sign and audit verify passes.
func TestExportImportBackends(t *testing.T) {
	dir := t.TempDir()
	src := newCLI(t)
	src.setup()
	src.ok("key", "generate", "ec", "--curve", "P-256", "--label", "k1", "--pin", alicePIN)
	src.ok("key", "generate", "aes", "--bits", "256", "--label", "k2", "--pin", alicePIN)
	src.ok("key", "share", "--label", "k2", "--username", "bob", "--pin", alicePIN)
	users, keys := src.users(), src.keys(alicePIN)
	signOnce(t, src)

	f1 := filepath.Join(dir, "from-sqlite.gohsm-backup")
	src.fails([]string{"CKR_PIN_INCORRECT"}, "token", "export", "--out", f1, "--pin", "admin:wrong-pw")
	var info map[string]any
	src.data(&info, "token", "export", "--out", f1, "--pin", coPIN)
	require.Equal(t, "cli-test", info["label"])

	pg := pgCLI(t, pgtest.Shared(t).NewDatabase(t, "import"))
	require.Contains(t, pg.ok("token", "import", f1), "imported token \"cli-test\"")
	require.Equal(t, users, pg.users())
	require.Equal(t, keys, pg.keys(alicePIN))
	signOnce(t, pg)
	require.Contains(t, pg.ok("audit", "verify"), "verified")
	// An initialised token is replaced only when told to.
	r := pg.run("token", "import", f1)
	require.Equal(t, exitUsage, r.code, r.stderr)
	require.Contains(t, r.stderr, "pass --replace")
	pg.ok("key", "generate", "aes", "--bits", "128", "--label", "only-on-pg", "--pin", alicePIN)

	f2 := filepath.Join(dir, "from-pg.gohsm-backup")
	pg.ok("token", "export", "--out", f2, "--pin", coPIN)
	pgKeys := pg.keys(alicePIN)
	require.Len(t, pgKeys, len(keys)+1)

	dst := newCLI(t)
	dst.ok("token", "import", f2)
	require.Equal(t, users, dst.users())
	require.Equal(t, pgKeys, dst.keys(alicePIN))
	signOnce(t, dst)
	require.Contains(t, dst.ok("audit", "verify"), "verified")

	// Back into PostgreSQL over the token there.
	pg.ok("token", "import", f1, "--replace")
	require.Equal(t, keys, pg.keys(alicePIN))
	require.Contains(t, pg.ok("audit", "verify"), "verified")
	// Not a backup: refused, the token left as it was.
	pg.fails([]string{"CKR_DATA_INVALID"}, "token", "import", pg.conf, "--replace")
	require.Equal(t, keys, pg.keys(alicePIN))
}

// TestExportImportSQLite: the same commands between two SQLite slots
// (no server needed), and their refusals.
func TestExportImportSQLite(t *testing.T) {
	src := newCLI(t)
	src.setup()
	src.ok("key", "generate", "ec", "--curve", "P-256", "--label", "k1", "--pin", alicePIN)
	f := filepath.Join(t.TempDir(), "t.gohsm-backup")
	r := src.run("token", "export", "--pin", coPIN)
	require.Equal(t, exitUsage, r.code)
	require.Contains(t, r.stderr, "--out is required")
	src.fails([]string{"CKR_PIN_INCORRECT", "no such crypto officer"}, "token", "export", "--out", f, "--pin", alicePIN)
	src.ok("token", "export", "--out", f, "--pin", coPIN)
	dst := newCLI(t)
	r = dst.run("token", "import")
	require.Equal(t, exitUsage, r.code)
	require.Contains(t, r.stderr, "missing FILE")
	require.Contains(t, dst.ok("token", "import", f), "imported token \"cli-test\"")
	require.Equal(t, src.users(), dst.users())
	require.Equal(t, src.keys(alicePIN), dst.keys(alicePIN))
	signOnce(t, dst)
	require.Contains(t, dst.ok("audit", "verify"), "verified")
	dst.fails([]string{"CKR_ARGUMENTS_BAD"}, "token", "import", filepath.Join(t.TempDir(), "missing"), "--replace")
}
