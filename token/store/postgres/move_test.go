package postgres

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/token/store"
	"gohsm/token/store/storetest"
)

// openPG opens a Store on dsn, closed at the test's end.
func openPG(t *testing.T, dsn string) store.Store {
	t.Helper()
	s, err := Open(dsn, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func openSQLite(t *testing.T) store.Store {
	t.Helper()
	s, err := store.Open(t.TempDir(), store.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func exportOf(t *testing.T, s store.Store) *store.Snapshot {
	t.Helper()
	snap, err := s.(store.Mover).Export()
	require.NoError(t, err)
	return snap
}

// TestMoveSQLiteToPostgresAndBack: a token of every kind of record moved
// SQLite -> PostgreSQL -> SQLite keeps users, objects (IDs, versions,
// attributes, sealed values, keys, key quorums), shares, quorum records,
// meta and every audit stream record for record, and each copy's audit
// chains verify under its key. The PostgreSQL copy works on: the chain
// goes on, new IDs come after every ID handed out, Backup writes a file
// a SQLite token restores from.
func TestMoveSQLiteToPostgresAndBack(t *testing.T) {
	src := openSQLite(t)
	storetest.Populate(t, src)
	want := exportOf(t, src)
	storetest.VerifyAuditChains(t, want)

	dsn := newDB(t)
	pg := openPG(t, dsn)
	require.NoError(t, pg.(store.Mover).Import(want, false))
	got := exportOf(t, pg)
	assert.Equal(t, want, got, "PostgreSQL holds the same records")
	assert.Equal(t, want, exportOf(t, openPG(t, dsn)), "another opening too")

	back := openSQLite(t)
	require.NoError(t, back.(store.Mover).Import(got, false))
	assert.Equal(t, want, exportOf(t, back), "and SQLite again")

	// Readers on PostgreSQL see what the SQLite token had.
	chain, err := pg.AuditChain("hsm-1")
	require.NoError(t, err)
	wantChain, err := src.AuditChain("hsm-1")
	require.NoError(t, err)
	assert.Equal(t, wantChain, chain)
	streams, err := pg.AuditStreams()
	require.NoError(t, err)
	wantStreams, err := src.AuditStreams()
	require.NoError(t, err)
	assert.Equal(t, wantStreams, streams)
	for _, stream := range wantStreams {
		st, err := pg.AuditState(stream)
		require.NoError(t, err)
		w, err := src.AuditState(stream)
		require.NoError(t, err)
		assert.Equal(t, w, st, stream)
	}
	qt, err := pg.QuorumTokens()
	require.NoError(t, err)
	wqt, err := src.QuorumTokens()
	require.NoError(t, err)
	assert.Equal(t, wqt, qt)
	for _, u := range []string{"alice", "bob", "dave"} {
		k, err := pg.SharedKeyQuorums(u)
		require.NoError(t, err)
		w, err := src.SharedKeyQuorums(u)
		require.NoError(t, err)
		assert.Equal(t, w, k, u)
	}

	// The chain goes on on PostgreSQL, and on SQLite after the way back.
	require.NoError(t, pg.Audit(store.AuditEvent{Stream: "hsm-1", Record: []byte("on postgres")}))
	require.NoError(t, pg.Audit(store.AuditEvent{Record: []byte("on postgres")}))
	q, err := pg.AddQuorumToken(store.QuorumToken{Service: "user", User: "alice", Approval: []byte("x"), Created: 1, Expires: 1 << 40}, 1, false, 10)
	require.NoError(t, err)
	assert.Greater(t, q, want.QuorumTokenSeq, "a quorum token ID never handed out")
	after := exportOf(t, pg)
	storetest.VerifyAuditChains(t, after)
	assert.Len(t, after.Audit, len(want.Audit)+2)

	// Backup of the PostgreSQL token is a backup file SQLite restores.
	file := filepath.Join(t.TempDir(), "pg.backup")
	info, err := pg.Backup(file)
	require.NoError(t, err)
	assert.Equal(t, want.Token.SerialNumber, info.Serial)
	dir := t.TempDir()
	_, err = store.Restore(dir, file, store.RestoreOptions{})
	require.NoError(t, err)
	restored, err := store.Open(dir, store.Options{})
	require.NoError(t, err)
	defer restored.Close()
	assert.Equal(t, after, exportOf(t, restored))

	// ImportFile with replace puts the SQLite token back over it.
	sqliteFile := filepath.Join(t.TempDir(), "sqlite.backup")
	_, err = store.ExportFile(src, sqliteFile)
	require.NoError(t, err)
	_, err = store.ImportFile(pg, sqliteFile, false)
	require.ErrorIs(t, err, store.ErrExists)
	assert.Equal(t, after, exportOf(t, pg), "a refused import changes nothing")
	_, err = store.ImportFile(pg, sqliteFile, true)
	require.NoError(t, err)
	final := exportOf(t, pg)
	assert.GreaterOrEqual(t, final.QuorumTokenSeq, q, "the sequence does not go back")
	final.QuorumTokenSeq = want.QuorumTokenSeq
	assert.Equal(t, want, final)
}

// TestMoveConformance runs the suite's move tests on PostgreSQL (the whole
// suite runs in TestConformance once every method is there).
func TestMoveConformance(t *testing.T) {
	b := &moveBackend{}
	for _, name := range []string{"MoveRoundTrip", "MoveRefusesNonEmpty", "MoveBadSnapshot"} {
		t.Run(name, func(t *testing.T) { storetest.RunOne(t, b, name) })
	}
}

type moveBackend struct {
	mu   sync.Mutex
	dsns map[store.Store]string
}

func (b *moveBackend) Open(t *testing.T) store.Store {
	dsn := newDB(t)
	s := openPG(t, dsn)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dsns == nil {
		b.dsns = map[store.Store]string{}
	}
	b.dsns[s] = dsn
	return s
}

func (b *moveBackend) Reopen(t *testing.T, s store.Store) store.Store {
	b.mu.Lock()
	dsn, ok := b.dsns[s]
	b.mu.Unlock()
	require.True(t, ok)
	return openPG(t, dsn)
}

func (b *moveBackend) GenerationLag() time.Duration { return 2 * time.Second }

// TestAuditConcurrent: 2 Stores x 4 goroutines appending at once to two
// streams (and creating audited objects) leave each stream one sequence,
// no gap, no duplicate, every record chained to the one before.
func TestAuditConcurrent(t *testing.T) {
	dsn := newDB(t)
	stores := []store.Store{openPG(t, dsn), openPG(t, dsn)}
	const per = 25
	var wg sync.WaitGroup
	errs := make(chan error, 8*per)
	start := time.Now()
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := stores[i%2]
			for j := range per {
				ev := []store.AuditEvent{{Record: []byte(fmt.Sprint(i, "/", j))}}
				if j%5 == 0 {
					ev = append(ev, store.AuditEvent{Stream: "hsm-1", Record: []byte(fmt.Sprint("b ", i, "/", j))})
				}
				errs <- s.Audit(ev...)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	t.Logf("%d audited writes from 2 stores x 4 goroutines in %v", 8*per, time.Since(start))
	snap := exportOf(t, stores[0])
	storetest.VerifyAuditChains(t, snap)
	n := map[string]int{}
	seen := map[string]bool{}
	for _, r := range snap.Audit {
		n[r.Stream]++
		require.False(t, seen[string(r.Record)], "record %q once", r.Record)
		seen[string(r.Record)] = true
	}
	assert.Equal(t, map[string]int{store.DefaultStream: 8 * per, "hsm-1": 8 * per / 5}, n)
	assert.Equal(t, uint64(8*per-1), snap.AuditHeads[store.DefaultStream].Seq)
}
