package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// withoutWALIndex puts s on Generation's data_version fallback, as a store
// runs whose -shm header cannot be read: the generation connection is then
// Generation's alone, no longer lent to reads.
func withoutWALIndex(t testing.TB, s *sqliteStore) {
	t.Helper()
	s.genMu.Lock()
	s.shmF = nil
	s.fastHdr.Store(nil)
	s.genMu.Unlock()
	require.NoError(t, s.dedicateGen())
}

// TestOneConnectionForReads: a process that opens an existing token and
// only reads it (pkcs11-tool -L: C_Initialize, C_GetTokenInfo) opens one
// SQLite connection, the one Open read the schema on; each opened
// connection parses the whole schema again (docs/bench.md, "Start-up,
// second pass"). A write opens the writer's; reads then still share one.
func TestOneConnectionForReads(t *testing.T) {
	dir := t.TempDir()
	mk := openTest(t, dir)
	require.NoError(t, mk.InitToken(TokenRecord{Label: "one"}, user("admin", RoleCO)))
	_, err := mk.CreateObject(obj("k", "", false, "x"))
	require.NoError(t, err)
	require.NoError(t, mk.Close())

	ss := openTest(t, dir).(*sqliteStore)
	assert.Equal(t, 1, ss.db.Stats().OpenConnections, "after Open")
	_, err = ss.Token()
	require.NoError(t, err)
	_, err = ss.User("admin")
	require.NoError(t, err)
	_, err = ss.Users()
	require.NoError(t, err)
	ids, err := ss.Find(Query{})
	require.NoError(t, err)
	require.Len(t, ids, 1)
	_, err = ss.Object(ids[0])
	require.NoError(t, err)
	_, err = ss.Generation()
	require.NoError(t, err)
	assert.Equal(t, 1, ss.db.Stats().OpenConnections, "after reads")

	require.NoError(t, ss.SetTokenLabel("two"))
	_, err = ss.Token()
	require.NoError(t, err)
	_, err = ss.Find(Query{})
	require.NoError(t, err)
	assert.Equal(t, 2, ss.db.Stats().OpenConnections, "reader and writer")
}

// TestReadersWaitForAFreeOne: with maxReaders reads in progress, another
// waits for one of them to end (it neither fails nor opens more), and
// every one sees its own snapshot.
func TestReadersWaitForAFreeOne(t *testing.T) {
	ss := initTest(t).(*sqliteStore)
	release := make(chan struct{})
	started := make(chan struct{}, maxReaders)
	done := make(chan error, maxReaders+1)
	for range maxReaders {
		go func() {
			done <- ss.read(func(tx *txn) error {
				var n int
				if err := tx.QueryRow(`SELECT count(*) FROM objects`).Scan(&n); err != nil {
					return err
				}
				started <- struct{}{}
				<-release
				return nil
			})
		}()
	}
	for range maxReaders {
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			t.Fatal("the reads did not all start")
		}
	}
	open := ss.db.Stats().OpenConnections
	go func() {
		_, err := ss.Token()
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("a read beyond maxReaders did not wait: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	assert.Equal(t, open, ss.db.Stats().OpenConnections, "no connection beyond the cap")
	close(release)
	for range maxReaders + 1 {
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Fatal("a read never ended")
		}
	}
	ss.readers.mu.Lock()
	idle, opened := len(ss.readers.free), ss.readers.open
	ss.readers.mu.Unlock()
	assert.Equal(t, maxIdleReaders, idle, "idle readers kept")
	assert.Equal(t, maxIdleReaders, opened, "the others closed")
}

// TestBrokenReaderIsNotLentAgain: a reader left inside a transaction (as
// a ROLLBACK that failed would leave it) is not lent again; the generation
// connection so left stays open (it keeps -shm alive) but is no longer
// lent, and reads go on on another connection.
func TestBrokenReaderIsNotLentAgain(t *testing.T) {
	ss := initTest(t).(*sqliteStore)
	h, err := ss.readers.get()
	require.NoError(t, err)
	require.Same(t, ss.readers.gen, h, "the only connection is the generation one")
	_, err = h.conn.ExecContext(context.Background(), `BEGIN`)
	require.NoError(t, err)
	require.NoError(t, h.queryRow(`SELECT count(*) FROM objects`).Scan(new(int)))
	ss.readers.put(h, true)
	assert.NotNil(t, ss.readers.gen.conn, "kept open")

	before, err := ss.Generation()
	require.NoError(t, err)
	_, err = ss.CreateObject(obj("after", "", false, "x"))
	require.NoError(t, err)
	ids, err := ss.Find(Query{})
	require.NoError(t, err)
	assert.Len(t, ids, 1, "a read on another connection sees the commit")
	after, err := ss.Generation()
	require.NoError(t, err)
	assert.NotEqual(t, before, after)
	ss.readers.mu.Lock()
	assert.NotContains(t, ss.readers.free, ss.readers.gen, "not lent again")
	ss.readers.mu.Unlock()
}

// TestGenerationKeepsSHMAlive: with the only connection of this store
// lent to reads, another opener's close (the last but ours) must not
// delete -shm: the store still sees commits made after it.
func TestGenerationKeepsSHMAlive(t *testing.T) {
	dir := t.TempDir()
	mk := openTest(t, dir)
	require.NoError(t, mk.InitToken(TokenRecord{Label: "x"}, user("admin", RoleCO)))
	require.NoError(t, mk.Close())
	a := openTest(t, dir)
	_, err := a.Token()
	require.NoError(t, err)
	require.Equal(t, 1, a.(*sqliteStore).db.Stats().OpenConnections)
	b, err := Open(dir, Options{})
	require.NoError(t, err)
	require.NoError(t, b.Close())
	_, err = os.Stat(filepath.Join(dir, DBName+"-shm"))
	require.NoError(t, err, "-shm still there")
	g0, err := a.Generation()
	require.NoError(t, err)
	c, err := Open(dir, Options{})
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetTokenLabel("y"))
	g1, err := a.Generation()
	require.NoError(t, err)
	assert.NotEqual(t, g0, g1)
}
