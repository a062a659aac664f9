package store

import (
	"database/sql"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
)

// testKDF keeps argon2id cheap in tests; DefaultKDF costs ~100 ms a call.
var testKDF = KDFParams{Time: 1, Memory: 64, Threads: 1}

func openTest(t testing.TB, dir string) Store {
	t.Helper()
	s, err := Open(dir, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func ulong(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

func user(name string, role Role) UserRecord {
	return UserRecord{Name: name, Role: role, KDF: testKDF, Salt: []byte("salt-" + name), WrappedKey: []byte("wk-" + name), KeyVersion: KeyV2}
}

func obj(uid, owner string, private bool, label string) ObjectRecord {
	return ObjectRecord{
		UniqueID: uid, Owner: owner, Private: private,
		Attrs: map[ck.AttributeType][]byte{
			ck.CKA_CLASS: ulong(uint64(ck.CKO_SECRET_KEY)),
			ck.CKA_LABEL: []byte(label),
			ck.CKA_TOKEN: {1},
		},
		Sealed: map[ck.AttributeType][]byte{ck.CKA_VALUE: []byte("sealed-" + uid)},
	}
}

// initTest returns a store with a token, CO "admin" and CUs "alice", "bob".
func initTest(t testing.TB) Store {
	t.Helper()
	s := openTest(t, t.TempDir())
	require.NoError(t, s.InitToken(TokenRecord{Label: "test", SerialNumber: "0123456789abcdef", Created: 1700000000}, user("admin", RoleCO)))
	require.NoError(t, s.CreateUser(user("alice", RoleCU)))
	require.NoError(t, s.CreateUser(user("bob", RoleCU)))
	return s
}

func TestOpenCreatesPrivateDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "tok")
	s := openTest(t, dir)
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	fi, err = os.Stat(filepath.Join(dir, DBName))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	_, err = s.Token()
	assert.ErrorIs(t, err, ErrNotInitialized)
}

func TestOpenOptions(t *testing.T) {
	_, err := Open(t.TempDir(), Options{Sync: "sometimes"})
	assert.Error(t, err)

	s, err := Open(t.TempDir(), Options{Sync: "full"})
	require.NoError(t, err)
	defer s.Close()
	var lvl int
	require.NoError(t, s.(*sqliteStore).db.QueryRow(`PRAGMA synchronous`).Scan(&lvl))
	assert.Equal(t, 2, lvl, "FULL")
	var mode string
	require.NoError(t, s.(*sqliteStore).db.QueryRow(`PRAGMA journal_mode`).Scan(&mode))
	assert.Equal(t, "wal", mode)
}

func TestOpenRefusesForeignDatabase(t *testing.T) {
	dir := t.TempDir()
	db, err := sql.Open("sqlite", filepath.Join(dir, DBName))
	require.NoError(t, err)
	_, err = db.Exec(`CREATE TABLE notes (x)`)
	require.NoError(t, err)
	require.NoError(t, db.Close())
	_, err = Open(dir, Options{})
	assert.ErrorIs(t, err, ErrFormat)
}

func TestFormatVersion(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	require.NoError(t, err)
	_, err = s.(*sqliteStore).db.Exec(`UPDATE meta SET value = ? WHERE key = 'format_version'`, formatVersion+1)
	require.NoError(t, err)
	require.NoError(t, s.Close())

	_, err = Open(dir, Options{})
	assert.ErrorIs(t, err, ErrFormat)
	assert.ErrorContains(t, err, "newer than this build")
}

func TestMigrationHook(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	require.NoError(t, err)
	require.NoError(t, s.Close())

	// Pretend to be a build that writes the next format.
	cur := formatVersion
	formatVersion = cur + 1
	migrations[cur] = func(tx execer) error {
		_, err := tx.Exec(`CREATE TABLE v2_extra (x)`)
		return err
	}
	t.Cleanup(func() { formatVersion = cur; delete(migrations, cur) })

	s, err = Open(dir, Options{})
	require.NoError(t, err)
	defer s.Close()
	var v, n int
	db := s.(*sqliteStore).db
	require.NoError(t, db.QueryRow(`SELECT value FROM meta WHERE key = 'format_version'`).Scan(&v))
	assert.Equal(t, cur+1, v)
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name = 'v2_extra'`).Scan(&n))
	assert.Equal(t, 1, n)
}

func TestMissingMigration(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	cur := formatVersion
	formatVersion = cur + 1
	t.Cleanup(func() { formatVersion = cur })
	_, err = Open(dir, Options{})
	assert.ErrorIs(t, err, ErrFormat)
}

// TestBeginLoginWaitsForAttemptsInFlight: with the threshold filled by
// attempts in flight, BeginLogin waits for one to end; when none ends (their
// processes died), the user is locked.
func TestBeginLoginWaitsForAttemptsInFlight(t *testing.T) {
	defer func(d time.Duration) { loginWait = d }(loginWait)
	loginWait = 300 * time.Millisecond
	s := initTest(t)
	require.NoError(t, s.BeginLogin("alice", 2))
	require.NoError(t, s.BeginLogin("alice", 2))
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- s.BeginLogin("alice", 2) }()
	time.Sleep(50 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("a third attempt was let in while two were in flight against threshold 2: %v", err)
	default:
	}
	require.NoError(t, s.LoginSucceeded("alice"))
	require.NoError(t, <-done, "the waiting attempt goes in once one in flight succeeded")
	assert.Less(t, time.Since(start), loginWait)

	require.NoError(t, s.BeginLogin("bob", 2))
	require.NoError(t, s.BeginLogin("bob", 2))
	assert.ErrorIs(t, s.BeginLogin("bob", 2), ErrLocked)
	u, err := s.User("bob")
	require.NoError(t, err)
	assert.True(t, u.Locked, "attempts that never ended lock the user once the wait is over")
	assert.Equal(t, 2, u.FailedLogins)
}

// TestGenerationWithoutWALIndex: with the -shm header unmapped,
// Generation falls back to PRAGMA data_version and still sees another
// connection's commits (storetest's Generation covers the mapped header,
// the default).
func TestGenerationWithoutWALIndex(t *testing.T) {
	dir := t.TempDir()
	a := openTest(t, dir)
	b := openTest(t, dir)
	require.NotNil(t, a.(*sqliteStore).shmF, "the WAL-index is mapped by default")
	withoutWALIndex(t, a.(*sqliteStore))

	g0, err := a.Generation()
	require.NoError(t, err)
	g, err := a.Generation()
	require.NoError(t, err)
	assert.Equal(t, g0, g, "no commit, no change")
	require.NoError(t, b.InitToken(TokenRecord{Label: "x"}, user("admin", RoleCO)))
	g1, err := a.Generation()
	require.NoError(t, err)
	assert.NotEqual(t, g0, g1, "commit by another connection")
	require.NoError(t, a.SetTokenLabel("y"))
	g2, err := a.Generation()
	require.NoError(t, err)
	assert.NotEqual(t, g1, g2, "own commit")
	_, err = b.CreateObject(obj("g0", "", false, "l"))
	require.NoError(t, err)
	g3, err := a.Generation()
	require.NoError(t, err)
	assert.NotEqual(t, g2, g3)
	_, err = b.CreateObject(obj("g0", "", false, "dup"))
	require.ErrorIs(t, err, ErrExists)
	g4, err := a.Generation()
	require.NoError(t, err)
	assert.Equal(t, g3, g4, "a failed write is not a commit")
}

// TestDeleteLeavesNoRows: an object's attributes, sealed values, shares
// and key quorum rows go with it (storetest sees only that they are not
// readable; here no row is left behind).
func TestDeleteLeavesNoRows(t *testing.T) {
	s := initTest(t)
	a, err := s.CreateObject(obj("a1", "alice", true, "a"))
	require.NoError(t, err)
	require.NoError(t, s.Share(a.ID, "bob", []byte("dk")))
	require.NoError(t, s.SetKeyQuorum(a.ID, 2, 0))
	count := func() (n int) {
		require.NoError(t, s.(*sqliteStore).db.QueryRow(`SELECT (SELECT count(*) FROM attrs) + (SELECT count(*) FROM sealed) +
			(SELECT count(*) FROM shares) + (SELECT count(*) FROM key_quorum)`).Scan(&n))
		return n
	}
	require.NotZero(t, count())
	_, err = s.DeleteObject(a.ID)
	require.NoError(t, err)
	assert.Zero(t, count(), "rows go with their object")
}

// Two Stores of one process share the -shm descriptor; closing one must not
// close it under the other (that would drop SQLite's locks of the other).
func TestSharedSHMDescriptor(t *testing.T) {
	dir := t.TempDir()
	a := openTest(t, dir)
	link := filepath.Join(t.TempDir(), "link")
	require.NoError(t, os.Symlink(dir, link))
	b := openTest(t, link)
	fa, fb := a.(*sqliteStore).shmF, b.(*sqliteStore).shmF
	require.NotNil(t, fa)
	assert.Same(t, fa, fb, "same token through a symlink shares the descriptor")

	require.NoError(t, a.Close())
	g0, err := b.Generation()
	require.NoError(t, err)
	c := openTest(t, dir)
	require.NoError(t, c.InitToken(TokenRecord{Label: "x"}, user("admin", RoleCO)))
	g1, err := b.Generation()
	require.NoError(t, err)
	assert.NotEqual(t, g0, g1)
	require.NoError(t, b.Close())
	require.NoError(t, c.Close())
	shmRefs.Lock()
	defer shmRefs.Unlock()
	assert.Empty(t, shmRefs.m, "last close releases the descriptor")
}

func TestClose(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "second close is a no-op")
	_, err = s.Generation()
	assert.Error(t, err)
	_, err = s.Token()
	assert.Error(t, err)
}

// Goroutines of one process share the pool: writers queue on the database
// lock while holding a connection, and none may need a second one to finish
// (see txn), or the pool would deadlock.
func TestConcurrentGoroutines(t *testing.T) {
	s := initTest(t)
	const workers, each = 12, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				o, err := s.CreateObject(obj(fmt.Sprintf("w%d-%d", w, i), "alice", i%2 == 0, fmt.Sprint("w", w)))
				if err != nil {
					errs <- err
					return
				}
				if _, err := s.Object(o.ID); err != nil {
					errs <- err
					return
				}
				if _, err := s.Find(Query{Match: map[ck.AttributeType][]byte{ck.CKA_LABEL: []byte(fmt.Sprint("w", w))}, Viewer: "alice"}); err != nil {
					errs <- err
					return
				}
				if _, err := s.Generation(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	ids, err := s.Find(Query{Viewer: "alice"})
	require.NoError(t, err)
	assert.Len(t, ids, workers*each)
}
