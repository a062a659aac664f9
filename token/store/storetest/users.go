package storetest

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/token/store"
)

// testToken: the token record, reinitialisation, and handles never
// recycled across it.
func testToken(t *testing.T, b Backend) {
	s := b.Open(t)
	_, err := s.Token()
	assert.ErrorIs(t, err, store.ErrNotInitialized)
	assert.ErrorIs(t, s.SetTokenLabel("x"), store.ErrNotInitialized)
	assert.Error(t, s.InitToken(store.TokenRecord{Label: "t"}, user("cu", store.RoleCU)), "first user must be a CO")

	tr := store.TokenRecord{Label: "first", SerialNumber: "0000000000000001", Created: 42, EscrowPublic: []byte("escrow")}
	require.NoError(t, s.InitToken(tr, user("Admin", store.RoleCO)))
	got, err := s.Token()
	require.NoError(t, err)
	assert.Equal(t, tr, *got)
	require.NoError(t, s.SetTokenLabel("renamed"))
	got, err = s.Token()
	require.NoError(t, err)
	assert.Equal(t, "renamed", got.Label)
	assert.ErrorIs(t, s.CreateToken(tr, user("other", store.RoleCO)), store.ErrExists, "CreateToken only on an empty token")

	// Reinitialising removes every user and object.
	require.NoError(t, s.CreateUser(user("alice", store.RoleCU)))
	o, err := s.CreateObject(obj("u1", "alice", true, "k"))
	require.NoError(t, err)
	require.NoError(t, s.InitToken(store.TokenRecord{Label: "second"}, user("root", store.RoleCO)))
	users, err := s.Users()
	require.NoError(t, err)
	require.Len(t, users, 1)
	assert.Equal(t, "root", users[0].Name)
	_, err = s.Object(o.ID)
	assert.ErrorIs(t, err, store.ErrNotFound)

	// Handles are never recycled, even across InitToken.
	o2, err := s.CreateObject(obj("u1", "", false, "k"))
	require.NoError(t, err)
	assert.Greater(t, o2.ID, o.ID)

	// CreateToken on an empty token, seen by another opening.
	e := b.Open(t)
	require.NoError(t, e.CreateToken(tr, user("admin", store.RoleCO)))
	got, err = b.Reopen(t, e).Token()
	require.NoError(t, err)
	assert.Equal(t, tr, *got)
}

func testUsers(t *testing.T, b Backend) {
	s := initialized(t, b)
	assert.ErrorIs(t, s.CreateUser(user("ALICE", store.RoleCU)), store.ErrExists, "names are case-insensitive")
	assert.Error(t, s.CreateUser(user("", store.RoleCU)))
	assert.Error(t, s.CreateUser(user("x", store.Role(7))))

	u, err := s.User("Alice")
	require.NoError(t, err)
	assert.Equal(t, user("alice", store.RoleCU), *u)
	_, err = s.User("carol")
	assert.ErrorIs(t, err, store.ErrNotFound)

	users, err := s.Users()
	require.NoError(t, err)
	var names []string
	for _, u := range users {
		names = append(names, u.Name)
	}
	assert.Equal(t, []string{"admin", "alice", "bob"}, names)

	upd := *u
	upd.Name = "ALICE"
	upd.Role = store.RoleCO // ignored: UpdateUser changes password material and lockout only
	upd.KDF = store.KDFParams{Time: 3, Memory: 1024, Threads: 2}
	upd.Salt, upd.WrappedKey = []byte("s2"), []byte("w2")
	upd.FailedLogins, upd.Locked = 5, true
	require.NoError(t, s.UpdateUser(upd))
	u, err = b.Reopen(t, s).User("alice")
	require.NoError(t, err)
	upd.Name, upd.Role = "alice", store.RoleCU
	assert.Equal(t, upd, *u, "as another opening reads it")
	assert.ErrorIs(t, s.UpdateUser(user("carol", store.RoleCU)), store.ErrNotFound)

	// A user with no password yet has empty key material.
	require.NoError(t, s.CreateUser(store.UserRecord{Name: "dave", Role: store.RoleCU}))
	u, err = s.User("dave")
	require.NoError(t, err)
	assert.Empty(t, u.WrappedKey)

	require.NoError(t, s.DeleteUser("DAVE"))
	_, err = s.User("dave")
	assert.ErrorIs(t, err, store.ErrNotFound)
	assert.ErrorIs(t, s.DeleteUser("dave"), store.ErrNotFound)
}

// testCreateUserLimit: the user past the limit is ErrQuota; 0 is no limit.
func testCreateUserLimit(t *testing.T, b Backend) {
	s := initialized(t, b) // admin, alice, bob
	assert.ErrorIs(t, s.CreateUserLimit(user("carol", store.RoleCU), 3), store.ErrQuota)
	require.NoError(t, s.CreateUserLimit(user("carol", store.RoleCU), 4))
	require.NoError(t, s.CreateUserLimit(user("dave", store.RoleCU), 0))
	assert.ErrorIs(t, s.CreateUserLimit(user("dave", store.RoleCU), 0), store.ErrExists)
}

func testLoginCounting(t *testing.T, b Backend) {
	s := initialized(t, b)
	for i := 1; i <= 3; i++ {
		require.NoError(t, s.BeginLogin("ALICE", 3))
		n, locked, err := s.LoginFailed("ALICE", 3)
		require.NoError(t, err)
		assert.Equal(t, i, n)
		assert.Equal(t, i == 3, locked)
	}
	assert.ErrorIs(t, s.BeginLogin("alice", 3), store.ErrLocked, "a locked user gets no attempt")
	// A success that ends after the user was locked is refused, and the
	// lock stays.
	assert.ErrorIs(t, s.LoginSucceeded("alice"), store.ErrLocked)
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
	assert.ErrorIs(t, s.BeginLogin("carol", 3), store.ErrNotFound)
	_, _, err = s.LoginFailed("carol", 3)
	assert.ErrorIs(t, err, store.ErrNotFound)
	assert.ErrorIs(t, s.LoginSucceeded("carol"), store.ErrNotFound)
}

// testLockoutAcrossOpenings: failures counted by two openings add up (3
// on one + 2 on the other = locked on both).
func testLockoutAcrossOpenings(t *testing.T, b Backend) {
	a := initialized(t, b)
	o := b.Reopen(t, a)
	fail := func(s store.Store) (int, bool) {
		require.NoError(t, s.BeginLogin("alice", 5))
		n, locked, err := s.LoginFailed("alice", 5)
		require.NoError(t, err)
		return n, locked
	}
	for range 3 {
		fail(a)
	}
	n, _ := fail(o)
	assert.Equal(t, 4, n, "the other opening counts on from 3")
	n, locked := fail(o)
	assert.Equal(t, 5, n)
	assert.True(t, locked)
	assert.ErrorIs(t, a.BeginLogin("alice", 5), store.ErrLocked, "locked for the first opening too")
}

// testConcurrentWrongPasswords: wrong passwords tried at once from two
// openings are let in exactly threshold times, then the user is locked
// everywhere: the count is kept in transactions, not in caches.
func testConcurrentWrongPasswords(t *testing.T, b Backend) {
	a := initialized(t, b)
	openings := []store.Store{a, b.Reopen(t, a)}
	const threshold = 5
	var admitted atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		s := openings[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 4 * threshold { // bounded: a store that never locks must not hang the test
				err := s.BeginLogin("alice", threshold)
				if errors.Is(err, store.ErrLocked) {
					return
				}
				if err != nil {
					errs <- err
					return
				}
				admitted.Add(1)
				if _, _, err := s.LoginFailed("alice", threshold); err != nil {
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
	assert.Equal(t, int32(threshold), admitted.Load(), "attempts let in")
	for _, s := range openings {
		u, err := s.User("alice")
		require.NoError(t, err)
		assert.True(t, u.Locked)
		assert.Equal(t, threshold, u.FailedLogins)
	}
}

// testLoginRegistry: AddLogin replaces an instance's entry and needs the
// user to exist, RemoveLogin forgets it, a logged-in user cannot be
// deleted, and dead entries are not listed.
func testLoginRegistry(t *testing.T, b Backend) {
	s := initialized(t, b)
	a := store.ThisProcess()
	a.User, a.Instance = "Alice", 1
	if a.Started == 0 {
		msg := fmt.Sprintf("no /proc/%d/stat: the registry cannot tell live processes here", os.Getpid())
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	require.NoError(t, s.AddLogin(a))
	live, err := b.Reopen(t, s).Logins("alice")
	require.NoError(t, err)
	require.Len(t, live, 1, "another opening sees the login")
	assert.Equal(t, "alice", live[0].User)
	assert.Equal(t, os.Getpid(), live[0].PID)
	assert.ErrorIs(t, s.DeleteUser("alice"), store.ErrLoggedIn)

	bl := a
	bl.User = "bob"
	require.NoError(t, s.AddLogin(bl), "the same instance logs in as bob")
	live, err = s.Logins("")
	require.NoError(t, err)
	require.Len(t, live, 1)
	assert.Equal(t, "bob", live[0].User)

	assert.ErrorIs(t, s.AddLogin(store.Login{User: "carol", Instance: 2}), store.ErrNotFound)

	dead := a
	dead.Instance = 3
	addDeadLogin(t, b, s, dead)
	c := a
	c.Instance = 4
	require.NoError(t, s.AddLogin(c))
	live, err = s.Logins("alice")
	require.NoError(t, err)
	require.Len(t, live, 1, "a dead process is logged in nowhere")
	assert.Equal(t, int64(4), live[0].Instance)

	require.NoError(t, s.RemoveLogin(1))
	require.NoError(t, s.RemoveLogin(1), "removing twice is no error")
	live, err = s.Logins("")
	require.NoError(t, err)
	require.Len(t, live, 1)
	assert.Equal(t, int64(4), live[0].Instance)
	assert.ErrorIs(t, s.DeleteUser("alice"), store.ErrLoggedIn)
	require.NoError(t, s.RemoveLogin(4))
	require.NoError(t, s.DeleteUser("alice"), "only dead entries are left")
}
