//go:build !nopostgres

package postgres

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"gohsm/token/store"
)

// TestLoginCallsBoundedWhileKeeperWaits: while the login keeper waits on a
// silent server (its connection check holds the registry), RemoveLogin
// and AddLogin still give up within the store's timeout, not after the
// keeper's wait plus their own.
func TestLoginCallsBoundedWhileKeeperWaits(t *testing.T) {
	was := loginCheck
	t.Cleanup(func() { loginCheck = was }) // after the Store's Close
	loginCheck = 50 * time.Millisecond     // before any keeper starts
	dsn := freshURL(t)
	initDirect(t, dsn, "alice")
	p := newWireProxy(t, dsn)
	const timeout = 600 * time.Millisecond
	s := openStore(t, p.url, timeout)
	lg := store.ThisProcess()
	lg.User, lg.Instance = "alice", 7373
	eventually(t, 5*time.Second, "login added", func() error {
		err := s.AddLogin(lg)
		if err != nil && !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("AddLogin: %v", err)
		}
		return err
	})

	p.freeze(true)
	t.Cleanup(func() { p.freeze(false) })
	time.Sleep(2*loginCheck + 20*time.Millisecond) // the keeper is checking the silent connection
	start := time.Now()
	err := s.RemoveLogin(lg.Instance)
	d := time.Since(start)
	require.ErrorIs(t, err, store.ErrUnavailable)
	within(t, "RemoveLogin", d, timeout+200*time.Millisecond)

	time.Sleep(2 * loginCheck)
	lg.Instance = 7474
	start = time.Now()
	err = s.AddLogin(lg)
	d = time.Since(start)
	require.ErrorIs(t, err, store.ErrUnavailable)
	within(t, "AddLogin", d, timeout+200*time.Millisecond)
}

// TestLogoutDuringOutage: a RemoveLogin that fails because the database
// does not answer still ends the login: the token logs out anyway (its
// logout always succeeds), so the lock must go and the keeper must not
// take the login again, or the user would stay logged in for every host
// (not deletable, its token not importable) until the process exits.
func TestLogoutDuringOutage(t *testing.T) {
	was := loginCheck
	t.Cleanup(func() { loginCheck = was })
	loginCheck = 100 * time.Millisecond
	dsn := freshURL(t)
	other := initDirect(t, dsn, "alice")
	p := newWireProxy(t, dsn)
	const timeout = 400 * time.Millisecond
	s := openStore(t, p.url, timeout)
	for i, inst := range []int64{8181, 8282, 8383} {
		lg := store.ThisProcess()
		lg.User, lg.Instance = "alice", inst
		// After an outage the store connects again within its 400 ms;
		// on a machine busy with other tests that can take longer, and
		// what is tested here is the logout, so a login that found the
		// database slow is tried again (an error other than
		// ErrUnavailable, a duplicate login included, fails).
		eventually(t, 5*time.Second, "login added", func() error {
			err := s.AddLogin(lg)
			if err != nil && !errors.Is(err, store.ErrUnavailable) {
				t.Fatalf("AddLogin %d: %v", inst, err)
			}
			return err
		})
		live, err := other.Logins("alice")
		require.NoError(t, err)
		require.Len(t, live, 1, "login %d", i)

		switch i {
		case 0: // the registry write fails
			p.freeze(true)
		case 1: // the keeper waits on the silent server
			p.freeze(true)
			time.Sleep(loginCheck + 20*time.Millisecond)
		case 2: // the registry is busy past the call's time
			s.(*pgStore).core.logins.mu <- struct{}{}
		}
		require.ErrorIs(t, s.RemoveLogin(inst), store.ErrUnavailable)
		p.freeze(false)
		if i == 2 {
			s.(*pgStore).core.logins.release()
		}
		eventually(t, 5*time.Second, "login ended", func() error {
			live, err := other.Logins("alice")
			if err != nil || len(live) > 0 {
				return fmt.Errorf("live %v, %v", live, err)
			}
			return nil
		})
		time.Sleep(5 * loginCheck) // the keeper's turns: nothing taken again
		live, err = other.Logins("alice")
		require.NoError(t, err)
		require.Empty(t, live, "login %d taken again after its logout", i)
	}
}

// TestImportRefusesLiveLogin: an import with replace deletes every row of
// the token, the login registry's too, so a live login of another
// opening (another process or host) refuses it inside its transaction,
// where no login can begin unseen; the importer's own logins do not.
// (The token checks before too, but a login could start in between.)
func TestImportRefusesLiveLogin(t *testing.T) {
	dsn := freshURL(t)
	a := openStore(t, dsn, 5*time.Second)
	b := openStore(t, dsn, 5*time.Second)
	require.NoError(t, a.InitToken(store.TokenRecord{Label: "t"}, testUser("admin", store.RoleCO)))
	require.NoError(t, a.CreateUser(testUser("alice", store.RoleCU)))
	lg := store.ThisProcess()
	lg.User, lg.Instance = "alice", 8181
	require.NoError(t, a.AddLogin(lg))
	own := lg
	own.User, own.Instance = "admin", 8282
	require.NoError(t, b.AddLogin(own))

	err := b.(store.Mover).Import(&store.Snapshot{}, true)
	require.ErrorIs(t, err, store.ErrLoggedIn)
	require.ErrorContains(t, err, `"alice"`)
	tr, err := b.Token()
	require.NoError(t, err, "nothing was replaced")
	require.Equal(t, "t", tr.Label)

	require.NoError(t, a.RemoveLogin(lg.Instance))
	require.NoError(t, b.(store.Mover).Import(&store.Snapshot{}, true), "only the importer's own login is left")
	_, err = b.Token()
	require.ErrorIs(t, err, store.ErrNotInitialized)
}
