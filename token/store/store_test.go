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

func TestToken(t *testing.T) {
	s := openTest(t, t.TempDir())
	assert.ErrorIs(t, s.SetTokenLabel("x"), ErrNotInitialized)
	assert.Error(t, s.InitToken(TokenRecord{Label: "t"}, user("cu", RoleCU)), "first user must be a CO")

	tr := TokenRecord{Label: "first", SerialNumber: "0000000000000001", Created: 42}
	require.NoError(t, s.InitToken(tr, user("Admin", RoleCO)))
	got, err := s.Token()
	require.NoError(t, err)
	assert.Equal(t, tr, *got)
	require.NoError(t, s.SetTokenLabel("renamed"))
	got, err = s.Token()
	require.NoError(t, err)
	assert.Equal(t, "renamed", got.Label)

	// Reinitialising removes every user and object.
	require.NoError(t, s.CreateUser(user("alice", RoleCU)))
	o, err := s.CreateObject(obj("u1", "alice", true, "k"))
	require.NoError(t, err)
	require.NoError(t, s.InitToken(TokenRecord{Label: "second"}, user("root", RoleCO)))
	users, err := s.Users()
	require.NoError(t, err)
	require.Len(t, users, 1)
	assert.Equal(t, "root", users[0].Name)
	_, err = s.Object(o.ID)
	assert.ErrorIs(t, err, ErrNotFound)

	// Handles are never recycled, even across InitToken.
	o2, err := s.CreateObject(obj("u1", "", false, "k"))
	require.NoError(t, err)
	assert.Greater(t, o2.ID, o.ID)
}

func TestUsers(t *testing.T) {
	s := initTest(t)
	assert.ErrorIs(t, s.CreateUser(user("ALICE", RoleCU)), ErrExists, "names are case-insensitive")
	assert.Error(t, s.CreateUser(user("", RoleCU)))
	assert.Error(t, s.CreateUser(user("x", Role(7))))

	u, err := s.User("Alice")
	require.NoError(t, err)
	assert.Equal(t, user("alice", RoleCU), *u)
	_, err = s.User("carol")
	assert.ErrorIs(t, err, ErrNotFound)

	users, err := s.Users()
	require.NoError(t, err)
	var names []string
	for _, u := range users {
		names = append(names, u.Name)
	}
	assert.Equal(t, []string{"admin", "alice", "bob"}, names)

	upd := *u
	upd.Name = "ALICE"
	upd.Role = RoleCO // ignored: UpdateUser changes password material and lockout only
	upd.KDF = KDFParams{Time: 3, Memory: 1024, Threads: 2}
	upd.Salt, upd.WrappedKey = []byte("s2"), []byte("w2")
	upd.FailedLogins, upd.Locked = 5, true
	require.NoError(t, s.UpdateUser(upd))
	u, err = s.User("alice")
	require.NoError(t, err)
	upd.Name, upd.Role = "alice", RoleCU
	assert.Equal(t, upd, *u)
	assert.ErrorIs(t, s.UpdateUser(user("carol", RoleCU)), ErrNotFound)

	// A user with no password yet has empty key material.
	require.NoError(t, s.CreateUser(UserRecord{Name: "dave", Role: RoleCU}))
	u, err = s.User("dave")
	require.NoError(t, err)
	assert.Empty(t, u.WrappedKey)

	require.NoError(t, s.DeleteUser("DAVE"))
	_, err = s.User("dave")
	assert.ErrorIs(t, err, ErrNotFound)
	assert.ErrorIs(t, s.DeleteUser("dave"), ErrNotFound)
}

func TestLoginCounting(t *testing.T) {
	s := initTest(t)
	for i := 1; i <= 3; i++ {
		require.NoError(t, s.BeginLogin("ALICE", 3))
		n, locked, err := s.LoginFailed("ALICE", 3)
		require.NoError(t, err)
		assert.Equal(t, i, n)
		assert.Equal(t, i == 3, locked)
	}
	assert.ErrorIs(t, s.BeginLogin("alice", 3), ErrLocked, "a locked user gets no attempt")
	// A success that ends after the user was locked is refused, and the
	// lock stays.
	assert.ErrorIs(t, s.LoginSucceeded("alice"), ErrLocked)
	u, err := s.User("alice")
	require.NoError(t, err)
	assert.Equal(t, 3, u.FailedLogins)
	assert.True(t, u.Locked)

	// The attempt counts as a failure from the moment it is reserved; a
	// success resets the count.
	require.NoError(t, s.BeginLogin("bob", 3))
	require.NoError(t, s.BeginLogin("bob", 3))
	u, err = s.User("bob")
	require.NoError(t, err)
	assert.Equal(t, 2, u.FailedLogins)
	n, locked, err := s.LoginFailed("bob", 3)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	assert.False(t, locked)
	require.NoError(t, s.LoginSucceeded("bob"))
	u, err = s.User("bob")
	require.NoError(t, err)
	assert.Equal(t, 0, u.FailedLogins)

	for range 10 {
		require.NoError(t, s.BeginLogin("bob", 0))
		_, locked, err := s.LoginFailed("bob", 0)
		require.NoError(t, err)
		assert.False(t, locked, "threshold 0 never locks")
	}
	assert.ErrorIs(t, s.BeginLogin("carol", 3), ErrNotFound)
	_, _, err = s.LoginFailed("carol", 3)
	assert.ErrorIs(t, err, ErrNotFound)
	assert.ErrorIs(t, s.LoginSucceeded("carol"), ErrNotFound)
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

func TestObjects(t *testing.T) {
	s := initTest(t)
	in := obj("uid-1", "Alice", true, "key one")
	in.Attrs[ck.CKA_ID] = []byte{} // empty values survive
	got, err := s.CreateObject(in)
	require.NoError(t, err)
	assert.NotZero(t, got.ID)
	assert.Equal(t, int64(1), got.Version)
	assert.Equal(t, "alice", got.Owner)

	rd, err := s.Object(got.ID)
	require.NoError(t, err)
	assert.Equal(t, got, *rd)
	assert.NotNil(t, rd.Attrs[ck.CKA_ID])

	_, err = s.CreateObject(obj("uid-1", "", false, "dup"))
	assert.ErrorIs(t, err, ErrExists)
	_, err = s.CreateObject(obj("uid-2", "nobody", false, "x"))
	assert.ErrorIs(t, err, ErrNotFound)
	_, err = s.CreateObject(ObjectRecord{})
	assert.Error(t, err)
	both := obj("uid-3", "", false, "x")
	both.Attrs[ck.CKA_VALUE] = []byte("plain")
	_, err = s.CreateObject(both)
	assert.Error(t, err, "an attribute cannot be plain and sealed")

	// Update with the current version succeeds and bumps it.
	upd := *rd
	upd.Attrs = map[ck.AttributeType][]byte{ck.CKA_LABEL: []byte("renamed")}
	upd.Sealed = map[ck.AttributeType][]byte{ck.CKA_VALUE: []byte("v2")}
	upd.Private = false
	v, _, err := s.UpdateObject(upd)
	require.NoError(t, err)
	assert.Equal(t, int64(2), v)
	ver, err := s.ObjectVersion(got.ID)
	require.NoError(t, err)
	assert.Equal(t, int64(2), ver)
	rd2, err := s.Object(got.ID)
	require.NoError(t, err)
	assert.Equal(t, upd.Attrs, rd2.Attrs)
	assert.Equal(t, upd.Sealed, rd2.Sealed)
	assert.False(t, rd2.Private)
	assert.Equal(t, "alice", rd2.Owner)

	// A stale version is a conflict and changes nothing.
	_, _, err = s.UpdateObject(upd)
	assert.ErrorIs(t, err, ErrConflict)
	rd3, err := s.Object(got.ID)
	require.NoError(t, err)
	assert.Equal(t, rd2, rd3)

	_, _, err = s.UpdateObject(ObjectRecord{ID: 999999, Version: 1})
	assert.ErrorIs(t, err, ErrNotFound)
	_, err = s.ObjectVersion(999999)
	assert.ErrorIs(t, err, ErrNotFound)

	_, err = s.DeleteObject(got.ID)
	require.NoError(t, err)
	_, err = s.DeleteObject(got.ID)
	assert.ErrorIs(t, err, ErrNotFound)
	_, err = s.Object(got.ID)
	assert.ErrorIs(t, err, ErrNotFound)
	var n int
	require.NoError(t, s.(*sqliteStore).db.QueryRow(`SELECT (SELECT count(*) FROM attrs) + (SELECT count(*) FROM sealed)`).Scan(&n))
	assert.Zero(t, n, "attributes go with their object")

	// The deleted handle is never handed out again.
	again, err := s.CreateObject(obj("uid-1", "", false, "again"))
	require.NoError(t, err)
	assert.Greater(t, again.ID, got.ID)
}

func TestOwnershipAndDeleteUser(t *testing.T) {
	s := initTest(t)
	a, err := s.CreateObject(obj("a1", "alice", true, "a"))
	require.NoError(t, err)
	_, err = s.CreateObject(obj("a2", "alice", false, "a"))
	require.NoError(t, err)
	n, err := s.CountOwned("ALICE")
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	n, err = s.CountOwned("bob")
	require.NoError(t, err)
	assert.Zero(t, n)

	err = s.DeleteUser("alice")
	assert.ErrorIs(t, err, ErrInUse)

	// Deleting bob removes bob's shares.
	require.NoError(t, s.Share(a.ID, "bob", nil))
	require.NoError(t, s.DeleteUser("bob"))
	sh, err := s.SharedWith(a.ID)
	require.NoError(t, err)
	assert.Empty(t, sh)
}

func TestShares(t *testing.T) {
	s := initTest(t)
	require.NoError(t, s.CreateUser(user("carol", RoleCU)))
	a, err := s.CreateObject(obj("a1", "alice", true, "a"))
	require.NoError(t, err)

	require.NoError(t, s.Share(a.ID, "Carol", nil))
	require.NoError(t, s.Share(a.ID, "bob", nil))
	assert.ErrorIs(t, s.Share(a.ID, "bob", nil), ErrExists)
	assert.ErrorIs(t, s.Share(a.ID, "nobody", nil), ErrNotFound)
	assert.ErrorIs(t, s.Share(999999, "bob", nil), ErrNotFound)
	sh, err := s.SharedWith(a.ID)
	require.NoError(t, err)
	assert.Equal(t, []string{"bob", "carol"}, sh)

	require.NoError(t, s.Unshare(a.ID, "BOB"))
	assert.ErrorIs(t, s.Unshare(a.ID, "bob"), ErrNotFound)
	sh, err = s.SharedWith(a.ID)
	require.NoError(t, err)
	assert.Equal(t, []string{"carol"}, sh)
	_, err = s.SharedWith(999999)
	assert.ErrorIs(t, err, ErrNotFound)

	// Shares go with the object.
	_, err = s.DeleteObject(a.ID)
	require.NoError(t, err)
	var n int
	require.NoError(t, s.(*sqliteStore).db.QueryRow(`SELECT count(*) FROM shares`).Scan(&n))
	assert.Zero(t, n)
}

func TestFindVisibility(t *testing.T) {
	s := initTest(t)
	mk := func(uid, owner string, private bool, label string) int64 {
		o, err := s.CreateObject(obj(uid, owner, private, label))
		require.NoError(t, err)
		return o.ID
	}
	pub := mk("pub", "alice", false, "k")
	alicePriv := mk("ap", "alice", true, "k")
	bobPriv := mk("bp", "bob", true, "k")
	anonPriv := mk("np", "", true, "k") // private with no owner: visible to nobody by ownership
	other := mk("o", "", false, "other")
	require.NoError(t, s.Share(bobPriv, "alice", nil))

	find := func(viewer string, match map[ck.AttributeType][]byte) []int64 {
		ids, err := s.Find(Query{Match: match, Viewer: viewer})
		require.NoError(t, err)
		return ids
	}
	all := map[ck.AttributeType][]byte(nil)
	assert.Equal(t, []int64{pub, other}, find("", all))
	assert.Equal(t, []int64{pub, alicePriv, bobPriv, other}, find("alice", all))
	assert.Equal(t, []int64{pub, alicePriv, bobPriv, other}, find("ALICE", all))
	assert.Equal(t, []int64{pub, bobPriv, other}, find("bob", all))
	assert.Equal(t, []int64{pub, other}, find("admin", all))
	_ = anonPriv

	label := func(l string) map[ck.AttributeType][]byte {
		return map[ck.AttributeType][]byte{ck.CKA_LABEL: []byte(l)}
	}
	assert.Equal(t, []int64{pub, alicePriv, bobPriv}, find("alice", label("k")))
	assert.Equal(t, []int64{other}, find("alice", label("other")))
	assert.Empty(t, find("alice", label("none")))
	assert.Empty(t, find("alice", label("K")), "byte-for-byte")

	// Several attributes intersect.
	m := label("k")
	m[ck.CKA_CLASS] = ulong(uint64(ck.CKO_SECRET_KEY))
	assert.Equal(t, []int64{pub, alicePriv, bobPriv}, find("alice", m))
	m[ck.CKA_CLASS] = ulong(uint64(ck.CKO_PRIVATE_KEY))
	assert.Empty(t, find("alice", m))

	// Sealed attributes are not searchable.
	assert.Empty(t, find("alice", map[ck.AttributeType][]byte{ck.CKA_VALUE: []byte("sealed-pub")}))

	// An empty value matches an empty attribute only.
	e := obj("e", "", false, "")
	id, err := s.CreateObject(e)
	require.NoError(t, err)
	assert.Equal(t, []int64{id.ID}, find("", label("")))
}

// A second Store on the same directory is a different set of connections,
// exactly as another process is to SQLite.
func TestGenerationSeesOtherConnections(t *testing.T) {
	t.Run("wal-index", func(t *testing.T) { testGeneration(t, false) })
	t.Run("data_version", func(t *testing.T) { testGeneration(t, true) })
}

func testGeneration(t *testing.T, fallback bool) {
	dir := t.TempDir()
	a := openTest(t, dir)
	b := openTest(t, dir)
	require.NotNil(t, a.(*sqliteStore).shmF)
	if fallback {
		a.(*sqliteStore).shmF = nil
	}

	g0, err := a.Generation()
	require.NoError(t, err)
	g, err := a.Generation()
	require.NoError(t, err)
	assert.Equal(t, g0, g, "no commit, no change")

	require.NoError(t, b.InitToken(TokenRecord{Label: "x"}, user("admin", RoleCO)))
	g1, err := a.Generation()
	require.NoError(t, err)
	assert.NotEqual(t, g0, g1, "commit by another connection")

	// Own commit.
	ga, err := a.Generation()
	require.NoError(t, err)
	require.NoError(t, a.SetTokenLabel("y"))
	g2, err := a.Generation()
	require.NoError(t, err)
	assert.NotEqual(t, ga, g2, "own commit")

	// Many commits by the other side, each noticed.
	for i := range 20 {
		prev, err := a.Generation()
		require.NoError(t, err)
		_, err = b.CreateObject(obj(fmt.Sprint("g", i), "", false, "l"))
		require.NoError(t, err)
		cur, err := a.Generation()
		require.NoError(t, err)
		require.NotEqual(t, prev, cur, "commit %d", i)
	}

	// A failed write is not a commit.
	gb, err := a.Generation()
	require.NoError(t, err)
	_, err = b.CreateObject(obj("g0", "", false, "dup"))
	require.ErrorIs(t, err, ErrExists)
	ga2, err := a.Generation()
	require.NoError(t, err)
	assert.Equal(t, gb, ga2)
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
