//go:build !nopostgres

package postgres

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// go test ./token/store/postgres -run Golden -update rewrites the golden
// schema; do so only when adding a migration (a shipped one never changes).
var update = flag.Bool("update", false, "rewrite testdata golden files")

// describe is the current schema as the catalog holds it: each table's
// columns, constraints and indexes, in a stable order.
func describe(t *testing.T, c *pgx.Conn) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	for _, q := range []string{
		`SELECT format('column %s.%s %s%s%s', table_name, column_name, data_type,
			CASE WHEN is_nullable = 'NO' THEN ' NOT NULL' ELSE '' END,
			CASE WHEN is_identity = 'YES' THEN ' IDENTITY ' || identity_generation
				WHEN column_default IS NOT NULL THEN ' DEFAULT ' || column_default ELSE '' END)
		FROM information_schema.columns WHERE table_schema = current_schema()
		ORDER BY table_name, ordinal_position`,
		`SELECT format('constraint %s %s', conrelid::regclass, pg_get_constraintdef(oid))
		FROM pg_constraint WHERE connamespace = current_schema()::regnamespace
		ORDER BY conrelid::regclass::text, pg_get_constraintdef(oid)`,
		`SELECT format('index %s', indexdef) FROM pg_indexes WHERE schemaname = current_schema()
		ORDER BY tablename, indexname`,
	} {
		rows, err := c.Query(ctx, q)
		require.NoError(t, err)
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		for _, l := range lines {
			fmt.Fprintln(&b, l)
		}
	}
	return b.String()
}

// TestGoldenSchema: the schema the migrations make is the one recorded in
// testdata, so a shipped migration cannot change under a database that
// already ran it, and the schema is reviewable in one file.
func TestGoldenSchema(t *testing.T) {
	c := connect(t, newDB(t))
	require.NoError(t, Migrate(context.Background(), c))
	got := describe(t, c)
	path := filepath.Join("testdata", fmt.Sprintf("schema-v%d.txt", Version))
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "go test ./token/store/postgres -run Golden -update writes it")
	require.Equal(t, string(want), got)
}
