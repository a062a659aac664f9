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

// TestOneConnection: a process that opens an existing token and reads it
// (pkcs11-tool -L: C_Initialize, C_GetTokenInfo) or also writes it (a
// login's registry entry) opens one SQLite connection, the one Open read
// the schema on; each opened connection parses the whole schema again
// (docs/bench.md, "Start-up, second pass").
func TestOneConnection(t *testing.T) {
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
	assert.Equal(t, 1, ss.db.Stats().OpenConnections, "after a write and reads")
}

// TestConnsWaitForAFreeOne: with maxConns reads in progress, another read
// and a write wait for one of them to end (neither fails nor opens a
// connection more), and only maxIdleConns stay open afterwards.
func TestConnsWaitForAFreeOne(t *testing.T) {
	ss := initTest(t).(*sqliteStore)
	release := make(chan struct{})
	started := make(chan struct{}, maxConns)
	done := make(chan error, maxConns+2)
	for range maxConns {
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
	for range maxConns {
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
	go func() {
		done <- ss.SetTokenLabel("waited")
	}()
	select {
	case err := <-done:
		t.Fatalf("a read or write beyond maxConns did not wait: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	assert.Equal(t, open, ss.db.Stats().OpenConnections, "no connection beyond the cap")
	close(release)
	for range maxConns + 2 {
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Fatal("a read never ended")
		}
	}
	ss.conns.mu.Lock()
	idle, opened := len(ss.conns.free), ss.conns.open
	ss.conns.mu.Unlock()
	assert.Equal(t, maxIdleConns, idle, "idle readers kept")
	assert.Equal(t, maxIdleConns, opened, "the others closed")
}

// TestBrokenConnIsNotLentAgain: a connection put back as broken (a BEGIN
// or ROLLBACK failed on it) is not lent again; the generation connection
// so put back stays open (it keeps -shm alive), and reads and writes go
// on on another connection.
func TestBrokenConnIsNotLentAgain(t *testing.T) {
	ss := initTest(t).(*sqliteStore)
	h, err := ss.conns.get()
	require.NoError(t, err)
	require.Same(t, ss.conns.gen, h, "the only connection: the generation one")
	_, err = h.conn.ExecContext(context.Background(), `BEGIN`)
	require.NoError(t, err)
	require.NoError(t, h.queryRow(`SELECT count(*) FROM objects`).Scan(new(int)))
	ss.conns.put(h, true)
	assert.NotNil(t, ss.conns.gen.conn, "kept open")

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
	ss.conns.mu.Lock()
	assert.NotContains(t, ss.conns.free, ss.conns.gen, "not lent again")
	ss.conns.mu.Unlock()
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

// TestCloseWaitsForTheGenerationConnection: a transaction that holds the
// generation connection when Close starts finishes on it (as database/sql
// lets the others finish), and Close then closes it.
func TestCloseWaitsForTheGenerationConnection(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	require.NoError(t, err)
	ss := s.(*sqliteStore)
	started, closing := make(chan struct{}), make(chan struct{})
	readErr := make(chan error, 1)
	go func() {
		readErr <- ss.read(func(tx *txn) error {
			require.Same(t, ss.conns.gen, tx.c, "the only connection")
			close(started)
			<-closing
			time.Sleep(100 * time.Millisecond) // let Close get to the connection
			var n int
			return tx.QueryRow(`SELECT count(*) FROM sqlite_master`).Scan(&n)
		})
	}()
	<-started
	closed := make(chan error, 1)
	go func() {
		close(closing)
		closed <- s.Close()
	}()
	require.NoError(t, <-readErr, "the read finished on its connection")
	require.NoError(t, <-closed)
	assert.Nil(t, ss.conns.gen.conn, "then closed")
}
