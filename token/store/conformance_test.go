package store_test

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/token/store"
	"gohsm/token/store/storetest"
)

// sqliteBackend opens SQLite tokens in test directories; another opening
// of a token is another Store on its directory, which is another pool of
// connections, as another process has.
type sqliteBackend struct {
	mu   sync.Mutex
	dirs map[store.Store]string
}

func (b *sqliteBackend) open(t *testing.T, dir string) store.Store {
	t.Helper()
	s, err := store.Open(dir, store.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dirs == nil {
		b.dirs = map[store.Store]string{}
	}
	b.dirs[s] = dir
	return s
}

func (b *sqliteBackend) Open(t *testing.T) store.Store { return b.open(t, t.TempDir()) }

func (b *sqliteBackend) Reopen(t *testing.T, s store.Store) store.Store {
	b.mu.Lock()
	dir, ok := b.dirs[s]
	b.mu.Unlock()
	require.True(t, ok, "Reopen of a store this backend did not open")
	return b.open(t, dir)
}

// TestConformance runs the store conformance suite against SQLite.
func TestConformance(t *testing.T) {
	storetest.Run(t, &sqliteBackend{})
}
