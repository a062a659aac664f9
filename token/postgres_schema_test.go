//go:build !nopostgres

package token

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/internal/testenv/pgtest"
	"gohsm/token/store/postgres"
)

// TestPostgresSlotSchemaVersion: a database of a newer or older schema
// version leaves the slot's token not recognised, the module log and
// the error saying what to do; store migrate mends the older one and the
// slot works again in the same module.
func TestPostgresSlotSchemaVersion(t *testing.T) {
	srv := pgtest.Shared(t)
	ctx := context.Background()

	newer := srv.NewDatabase(t, "newer")
	c, err := postgres.Connect(ctx, newer)
	require.NoError(t, err)
	require.NoError(t, postgres.Migrate(ctx, c))
	_, err = c.Exec(ctx, `INSERT INTO schema_version (version) VALUES ($1)`, postgres.Version+1)
	require.NoError(t, err)
	c.Close(ctx)
	m, s, logf := pgModule(t, newer, "")
	_, err = s.TokenInfo()
	require.ErrorIs(t, err, ck.CKR_TOKEN_NOT_RECOGNIZED)
	want := fmt.Sprintf("schema version %d is newer than this gohsm's %d: upgrade gohsm", postgres.Version+1, postgres.Version)
	require.ErrorContains(t, err, want)
	_, err = m.OpenSession(3, ck.CKF_SERIAL_SESSION)
	require.ErrorIs(t, err, ck.CKR_TOKEN_NOT_RECOGNIZED)
	log, err := os.ReadFile(logf)
	require.NoError(t, err)
	require.Contains(t, string(log), want)
	_, _, err = s.MigrateStore()
	require.ErrorIs(t, err, ck.CKR_DEVICE_ERROR)
	require.ErrorContains(t, err, "newer")

	older := srv.NewDatabase(t, "older")
	c, err = postgres.Connect(ctx, older)
	require.NoError(t, err)
	require.NoError(t, postgres.MigrateTo(ctx, c, 2))
	c.Close(ctx)
	m, s, _ = pgModule(t, older, "")
	_, err = s.TokenInfo()
	require.ErrorIs(t, err, ck.CKR_TOKEN_NOT_RECOGNIZED)
	require.ErrorContains(t, err, "older than this gohsm's")
	require.ErrorContains(t, err, "gohsm store migrate")
	st := s.StoreStatus()
	require.Equal(t, 2, st.SchemaVersion)
	require.True(t, st.Reachable)
	require.Contains(t, st.Error, "older")

	before, after, err := s.MigrateStore()
	require.NoError(t, err)
	require.Equal(t, [2]int{2, postgres.Version}, [2]int{before, after})
	before, after, err = s.MigrateStore()
	require.NoError(t, err)
	require.Equal(t, [2]int{postgres.Version, postgres.Version}, [2]int{before, after})
	// The slot opened its store again: the token is usable in this module.
	require.NoError(t, m.CloseSession(initTestToken(t, m)))
	require.Empty(t, s.StoreStatus().Error)
}
