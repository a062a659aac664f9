package postgres

import (
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
	p := newProxy(t, dsn)
	const timeout = 600 * time.Millisecond
	s := openStore(t, p.url, timeout)
	require.NoError(t, s.InitToken(store.TokenRecord{Label: "t"}, testUser("admin", store.RoleCO)))
	require.NoError(t, s.CreateUser(testUser("alice", store.RoleCU)))
	lg := store.ThisProcess()
	lg.User, lg.Instance = "alice", 7373
	require.NoError(t, s.AddLogin(lg))

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
