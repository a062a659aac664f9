package postgres

import (
	"context"
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

// pgBackend opens stores on fresh schemas of one database of the shared
// test server (a schema is made in milliseconds, a database in up to a
// second on a loaded machine); another opening is another Store (another
// pool, listener and registry connection) on the same URL, as another
// host has.
type pgBackend struct {
	db   string // the database's URL
	mu   sync.Mutex
	seq  int
	urls map[store.Store]string
}

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

func (b *pgBackend) Open(t *testing.T) store.Store {
	b.mu.Lock()
	b.seq++
	schema := fmt.Sprintf("conf_%d", b.seq)
	b.mu.Unlock()
	c := connect(t, b.db)
	_, err := c.Exec(context.Background(), `CREATE SCHEMA `+schema)
	require.NoError(t, err)
	t.Cleanup(func() { // after the stores' Close (cleanups run last first)
		_, err := c.Exec(context.Background(), `DROP SCHEMA `+schema+` CASCADE`)
		require.NoError(t, err)
	})
	return b.open(t, withSchema(t, b.db, schema))
}

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
	storetest.Run(t, &pgBackend{db: pgtest.Shared(t).NewDatabase(t, "conformance")})
}
