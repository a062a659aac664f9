package postgres

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"gohsm/internal/testenv/pgtest"
	"gohsm/token/store"
	"gohsm/token/store/storetest"
)

// pgBackend opens stores on fresh databases of the shared test server;
// another opening is another Store (another pool, listener and registry
// connection) on the same URL, as another host has.
type pgBackend struct {
	mu   sync.Mutex
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
	return b.open(t, pgtest.Shared(t).NewDatabase(t, "conf"))
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
func (b *pgBackend) GenerationLag() time.Duration { return 2 * time.Second }

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
	storetest.Run(t, &pgBackend{})
}
