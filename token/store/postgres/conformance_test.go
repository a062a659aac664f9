//go:build !nopostgres

package postgres

import (
	"context"
	"crypto/rand"
	"fmt"
	neturl "net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"gohsm/internal/testenv/pgtest"
	"gohsm/token/store"
	"gohsm/token/store/storetest"
)

// pgBackend opens stores on schemas of one database of the shared test
// server (a schema is made in milliseconds, a database in up to a second
// on a loaded machine); another opening is another Store (another pool,
// listener and registry connection) on the same URL, as another host has.
//
// Making the schema's tables costs 0.2-0.5 s on a loaded machine, as much
// as a test of the suite: a schema whose test has ended (its Stores
// closed) is emptied and used again, as a new store: every token record,
// user, object, audit record, quorum record and login removed, and a new
// audit key, as a new schema has (TestOpenSchema and the migration tests
// cover Open on an empty database).
type pgBackend struct {
	mu   sync.Mutex
	db   string   // the database's URL; made on first use
	seq  int      // schemas made
	free []string // emptied schemas
	urls map[store.Store]string
}

// tests is the package's backend: the conformance suite's, and the
// tests' that need a store of their own (freshURL).
var tests pgBackend

func (b *pgBackend) open(t *testing.T, url string) store.Store {
	t.Helper()
	s, err := Open(url, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.urls == nil {
		b.urls = map[store.Store]string{}
	}
	b.urls[s] = url
	return s
}

func (b *pgBackend) Open(t *testing.T) store.Store { return b.open(t, b.url(t)) }

// url is the URL of an empty schema (new, or emptied) of b's database,
// the test's until its end, when it is emptied for the next: the test's
// Stores must be closed by then (a t.Cleanup registered after url's).
func (b *pgBackend) url(t *testing.T) string {
	ctx := context.Background()
	b.mu.Lock()
	if b.db == "" {
		// A database for the test binary: pgtest.Main removes the server.
		srv := pgtest.Shared(t)
		b.db = srv.DSN("pgcore")
		c := connect(t, srv.DSN("postgres"))
		if _, err := c.Exec(ctx, `CREATE DATABASE pgcore`); err != nil {
			b.mu.Unlock()
			t.Fatal(err)
		}
	}
	var schema string
	if n := len(b.free); n > 0 {
		schema, b.free = b.free[n-1], b.free[:n-1]
	} else {
		b.seq++
		schema = fmt.Sprintf("store_%d", b.seq)
	}
	b.mu.Unlock()
	c := connect(t, b.db+"&application_name=gohsm-tests") // not a store's (TestConnectionsTerminated)
	_, err := c.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+schema)
	require.NoError(t, err)
	t.Cleanup(func() { // after the stores' Close (cleanups run last first)
		var tables *string
		require.NoError(t, c.QueryRow(ctx, `SELECT string_agg(quote_ident(schemaname) || '.' || quote_ident(tablename), ', ')
			FROM pg_tables WHERE schemaname = $1 AND tablename NOT IN ('schema_version', 'generation')`, schema).Scan(&tables))
		if tables == nil {
			return // never opened: nothing to empty
		}
		if _, err := c.Exec(ctx, `TRUNCATE `+*tables+` CASCADE`); err != nil {
			t.Errorf("empty schema %s: %v", schema, err)
			return // not used again
		}
		key := make([]byte, 32)
		rand.Read(key)
		_, err := c.Exec(ctx, `INSERT INTO `+schema+`.meta (key, value) VALUES ('audit_key', $1)`, key)
		require.NoError(t, err)
		b.mu.Lock()
		b.free = append(b.free, schema)
		b.mu.Unlock()
	})
	return withSchema(t, b.db, schema)
}

// freshURL is the URL of an empty token store of the test's own.
func freshURL(t *testing.T) string { return tests.url(t) }

// withSchema is url with search_path set to schema.
func withSchema(t *testing.T, db, schema string) string {
	u, err := neturl.Parse(db)
	require.NoError(t, err)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func (b *pgBackend) Reopen(t *testing.T, s store.Store) store.Store {
	b.mu.Lock()
	url, ok := b.urls[s]
	b.mu.Unlock()
	require.True(t, ok, "Reopen of a store this backend did not open")
	return b.open(t, url)
}

// GenerationLag bounds the notification's travel from one Store's commit
// to another's Generation (TestNotificationLatency measures it: well
// under a millisecond on loopback); generous for a loaded CI machine.
func (b *pgBackend) GenerationLag() time.Duration { return time.Second }

// AddDeadLogin records l through another opening that is then closed
// without logging out: its connection, and so the login's lock, is gone,
// as when a process is killed.
func (b *pgBackend) AddDeadLogin(t *testing.T, s store.Store, l store.Login) {
	o := b.Reopen(t, s)
	require.NoError(t, o.AddLogin(l))
	require.NoError(t, o.Close())
}

// TestConformance runs the store conformance suite against PostgreSQL.
func TestConformance(t *testing.T) {
	storetest.Run(t, &tests)
}
