//go:build !nopostgres

package postgres

import (
	"context"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"gohsm/token/store"
)

// TestOpenSchema: Open gives an empty database the schema, uses a
// current one, refuses an older or newer one (a *VersionError that is a
// store.ErrFormat) and a database holding something else.
func TestOpenSchema(t *testing.T) {
	ctx := context.Background()
	dsn := newDB(t)
	s, err := Open(dsn, Options{})
	require.NoError(t, err)
	g, err := s.Generation()
	require.NoError(t, err)
	require.Equal(t, uint64(0), g)
	require.NoError(t, s.Close())
	c := connect(t, dsn)
	checkOneSchema(t, c)

	s, err = Open(dsn, Options{})
	require.NoError(t, err, "a current schema")
	require.NoError(t, s.Close())

	_, err = c.Exec(ctx, `INSERT INTO schema_version (version) VALUES (4)`)
	require.NoError(t, err)
	_, err = Open(dsn, Options{})
	var ve *VersionError
	require.ErrorAs(t, err, &ve)
	require.ErrorIs(t, err, store.ErrFormat)
	require.Contains(t, err.Error(), "newer than this gohsm's 3")

	older := newDB(t)
	require.NoError(t, migrateTo(ctx, connect(t, older), 2))
	_, err = Open(older, Options{})
	require.ErrorIs(t, err, store.ErrFormat)
	require.Contains(t, err.Error(), "older than this gohsm's 3: migrate it with `gohsm store migrate`")

	foreign := newDB(t)
	_, err = connect(t, foreign).Exec(ctx, `CREATE TABLE invoices (id int)`)
	require.NoError(t, err)
	_, err = Open(foreign, Options{})
	require.ErrorIs(t, err, ErrNotStore)

	_, err = Open("host=x", Options{})
	require.ErrorContains(t, err, "not a postgres:// URL")
}

// TestOpenUnreachable: a database that does not answer is no Open error;
// the store's calls fail with ErrUnavailable within the timeout, and no
// error holds the URL's password.
func TestOpenUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	require.NoError(t, l.Close()) // refused from now on
	u := url.URL{Scheme: "postgres", User: url.UserPassword("gohsm", "s3cret-pw"), Host: l.Addr().String(), Path: "/x"}
	start := time.Now()
	s, err := Open(u.String(), Options{Timeout: time.Second})
	require.NoError(t, err)
	defer s.Close()
	_, err = s.Generation()
	require.ErrorIs(t, err, store.ErrUnavailable)
	require.NotContains(t, err.Error(), "s3cret-pw")
	require.Less(t, time.Since(start), 3*time.Second)
}
