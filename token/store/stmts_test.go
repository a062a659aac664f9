package store

import (
	"database/sql"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestStmtCachePreparesOutsideItsLock: with every pool connection held by
// a read transaction, a goroutine caching a new statement waits in Prepare
// for a connection. The transactions' own lookups in the cache (peek) must
// not wait behind it, or no transaction would ever end and give its
// connection back.
func TestStmtCachePreparesOutsideItsLock(t *testing.T) {
	s, ok := openTest(t, t.TempDir()).(*sqliteStore)
	require.True(t, ok)
	stats := s.db.Stats()
	free := stats.MaxOpenConnections - stats.InUse
	require.Positive(t, stats.MaxOpenConnections, "the pool is bounded")
	var txs []*sql.Tx
	defer func() {
		for _, tx := range txs {
			tx.Rollback()
		}
	}()
	for range free {
		tx, err := s.db.Begin()
		require.NoError(t, err)
		txs = append(txs, tx)
	}
	require.Equal(t, stats.MaxOpenConnections, s.db.Stats().InUse, "every connection held")

	prepared := make(chan error, 1)
	go func() {
		_, err := s.stmts.get("SELECT 1 + 1")
		prepared <- err
	}()
	// Until it has waited for a connection, the test proves nothing.
	deadline := time.Now().Add(10 * time.Second)
	for s.db.Stats().WaitCount == stats.WaitCount && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	require.Greater(t, s.db.Stats().WaitCount, stats.WaitCount, "the prepare did not wait for a connection")

	peeked := make(chan struct{})
	go func() {
		s.stmts.peek("SELECT 2")
		close(peeked)
	}()
	select {
	case <-peeked:
	case <-time.After(5 * time.Second):
		t.Error("peek waited behind a prepare that waits for a connection")
	}

	for _, tx := range txs {
		require.NoError(t, tx.Rollback())
	}
	txs = nil
	select {
	case err := <-prepared:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the prepare did not finish once the connections came back")
	}
	require.NotNil(t, s.stmts.peek("SELECT 1 + 1"), "cached")
}
