//go:build !nopostgres

package postgres

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/internal/testenv/pgtest"
	"gohsm/token/store"
)

var testKDF = store.KDFParams{Time: 1, Memory: 64, Threads: 1}

func testUser(name string, role store.Role) store.UserRecord {
	return store.UserRecord{Name: name, Role: role, KDF: testKDF, Salt: []byte("s-" + name), WrappedKey: []byte("w-" + name), KeyVersion: store.KeyV2}
}

func testObject(uid, owner string) store.ObjectRecord {
	return store.ObjectRecord{UniqueID: uid, Owner: owner, Private: owner != "",
		Attrs: map[ck.AttributeType][]byte{
			ck.CKA_CLASS: {byte(ck.CKO_SECRET_KEY), 0, 0, 0, 0, 0, 0, 0},
			ck.CKA_LABEL: []byte("label-" + uid),
			ck.CKA_ID:    []byte(uid),
		},
		Sealed: map[ck.AttributeType][]byte{ck.CKA_VALUE: []byte("sealed-" + uid)},
	}
}

// openStore opens a Store on url, closed at the test's end.
func openStore(t *testing.T, url string, timeout time.Duration) store.Store {
	t.Helper()
	s, err := Open(url, Options{Timeout: timeout})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// initDirect makes the token of the database at url, officer "admin" and
// the crypto users named, on a Store of its own without a proxy and under
// the default timeout, and returns that Store. Tests that measure a
// proxied Store under a short timeout make their token so: on a machine
// busy with other tests, a new database's first statements (the schema
// check, the token's rows) can take longer than that timeout, which is
// not what they test.
func initDirect(t *testing.T, url string, users ...string) store.Store {
	t.Helper()
	s := openStore(t, url, 0)
	require.NoError(t, s.InitToken(store.TokenRecord{Label: "t"}, testUser("admin", store.RoleCO)))
	for _, u := range users {
		require.NoError(t, s.CreateUser(testUser(u, store.RoleCU)))
	}
	return s
}

// initStore is a new database with a token, officer "admin" and crypto
// users "alice" and "bob", and a Store on it.
func initStore(t *testing.T, url string) store.Store {
	t.Helper()
	s := openStore(t, url, 0)
	require.NoError(t, s.InitToken(store.TokenRecord{Label: "t", SerialNumber: "0123456789abcdef"}, testUser("admin", store.RoleCO)))
	require.NoError(t, s.CreateUser(testUser("alice", store.RoleCU)))
	require.NoError(t, s.CreateUser(testUser("bob", store.RoleCU)))
	return s
}

// within fails unless d is at most max.
func within(t *testing.T, what string, d, max time.Duration) {
	t.Helper()
	assert.LessOrEqual(t, d, max, "%s took %v", what, d)
}

// eventually polls f every 10 ms until it returns nil or wait passes, and
// returns how long that took.
func eventually(t *testing.T, wait time.Duration, what string, f func() error) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		err := f()
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > wait {
			t.Fatalf("%s: not within %v: %v", what, wait, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestServerStopped: with the server stopped under it, every call fails
// with ErrUnavailable within the timeout (Generation too, once the
// listener is gone); restarted, the same Store works again, reads and
// writes, and its listener is back (another Store's commit reaches its
// Generation by notification).
func TestServerStopped(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := srv.NewDatabase(t, "stopped")
	const timeout = time.Second
	s := openStore(t, dsn, timeout)
	require.NoError(t, s.InitToken(store.TokenRecord{Label: "t"}, testUser("admin", store.RoleCO)))
	o, err := s.CreateObject(testObject("before", ""))
	require.NoError(t, err)
	eventually(t, 5*time.Second, "listening", func() error { return listening(s) })

	require.NoError(t, srv.Stop())
	calls := map[string]func() error{
		"Token":        func() error { _, err := s.Token(); return err },
		"Object":       func() error { _, err := s.Object(o.ID); return err },
		"Find":         func() error { _, err := s.Find(store.Query{}); return err },
		"CreateObject": func() error { _, err := s.CreateObject(testObject("during", "")); return err },
		"SetLabel":     func() error { return s.SetTokenLabel("x") },
		"BeginLogin":   func() error { return s.BeginLogin("admin", 5) },
		"AddLogin":     func() error { return s.AddLogin(store.Login{User: "admin", Instance: 9}) },
	}
	names := make([]string, 0, len(calls))
	for n := range calls {
		names = append(names, n)
	}
	sort.Strings(names)
	var worst time.Duration
	for _, n := range names {
		start := time.Now()
		err := calls[n]()
		d := time.Since(start)
		worst = max(worst, d)
		require.ErrorIs(t, err, store.ErrUnavailable, n)
		within(t, n, d, timeout+500*time.Millisecond)
	}
	// The listener has seen its connection go; Generation then asks the
	// database, which fails too.
	eventually(t, 5*time.Second, "listener lost", func() error {
		if listening(s) == nil {
			return errors.New("still listening")
		}
		return nil
	})
	start := time.Now()
	_, err = s.Generation()
	require.ErrorIs(t, err, store.ErrUnavailable)
	within(t, "Generation", time.Since(start), timeout+500*time.Millisecond)
	t.Logf("server stopped: slowest call failed after %v (timeout %v)", worst, timeout)

	require.NoError(t, srv.Restart())
	back := eventually(t, 10*time.Second, "reads after restart", func() error { _, err := s.Token(); return err })
	t.Logf("server restarted: the Store read again after %v", back)
	_, err = s.CreateObject(testObject("after", ""))
	require.NoError(t, err)
	got, err := s.Object(o.ID)
	require.NoError(t, err)
	assert.Equal(t, "before", got.UniqueID)
	g, err := s.Generation()
	require.NoError(t, err, "Generation recovers (by query at first)")
	eventually(t, 5*time.Second, "listening again", func() error { return listening(s) })
	other := openStore(t, dsn, timeout)
	_, c, err := other.CreateObjects([]store.ObjectRecord{testObject("other", "")})
	require.NoError(t, err)
	assert.Greater(t, c.After, g)
	eventually(t, 2*time.Second, "notified", func() error {
		if g, _ := s.Generation(); g < c.After {
			return fmt.Errorf("generation %d, want %d", g, c.After)
		}
		return nil
	})
}

// listening is nil when s's Generation is an atomic load.
func listening(s store.Store) error {
	if !s.(*pgStore).core.listening.Load() {
		return errors.New("not listening")
	}
	return nil
}

// TestServerSilent: a server that stops answering without closing
// anything (a network gone silent, a frozen host) fails calls with
// ErrUnavailable within the timeout, never hangs them; once it answers
// again the Store works without reopening.
func TestServerSilent(t *testing.T) {
	dsn := freshURL(t)
	initDirect(t, dsn)
	p := newWireProxy(t, dsn)
	const timeout = 300 * time.Millisecond
	s := openStore(t, p.url, timeout)
	eventually(t, 5*time.Second, "listening", func() error { return listening(s) })

	p.freeze(true)
	for _, call := range []struct {
		name string
		f    func() error
	}{
		{"Token", func() error { _, err := s.Token(); return err }},
		{"CreateObject", func() error { _, err := s.CreateObject(testObject("x", "")); return err }},
		{"Users", func() error { _, err := s.Users(); return err }},
	} {
		start := time.Now()
		err := call.f()
		d := time.Since(start)
		require.ErrorIs(t, err, store.ErrUnavailable, call.name)
		within(t, call.name, d, timeout+500*time.Millisecond)
		t.Logf("silent server: %s failed after %v (timeout %v)", call.name, d, timeout)
	}
	p.freeze(false)
	eventually(t, 10*time.Second, "reads after the silence", func() error { _, err := s.Token(); return err })
	_, err := s.CreateObject(testObject("y", ""))
	require.NoError(t, err)
}

// TestNotificationLatency measures the time from a commit returning on
// one Store to another Store's Generation showing it (D4's bound).
func TestNotificationLatency(t *testing.T) {
	dsn := freshURL(t)
	a := initStore(t, dsn)
	b := openStore(t, dsn, 0)
	eventually(t, 5*time.Second, "listening", func() error { return listening(b) })
	const n = 200
	lat := make([]time.Duration, 0, n)
	for i := range n {
		require.NoError(t, a.SetTokenLabel(fmt.Sprint("l", i)))
		g, err := a.Generation()
		require.NoError(t, err)
		start := time.Now()
		for {
			bg, err := b.Generation()
			require.NoError(t, err)
			if bg >= g {
				break
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("commit %d (generation %d) not seen by the other Store after 5 s (it has %d)", i, g, bg)
			}
			time.Sleep(20 * time.Microsecond)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	t.Logf("notification latency over %d commits: median %v, p99 %v, max %v", n, lat[n/2], lat[n*99/100], lat[n-1])
	assert.Less(t, lat[n-1], (&pgBackend{}).GenerationLag(), "the bound the conformance suite allows")

	// The cost of Generation on the hot path: an atomic load.
	start := time.Now()
	for range 100000 {
		if _, err := b.Generation(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("Generation: %v a call", time.Since(start)/100000)
}

// TestConcurrentCreatesTwoStores: 8 goroutines on each of two Stores
// create objects at once; every handle is unique and every object is seen
// by both Stores.
func TestConcurrentCreatesTwoStores(t *testing.T) {
	dsn := freshURL(t)
	a := initStore(t, dsn)
	stores := []store.Store{a, openStore(t, dsn, 0)}
	const workers, each = 8, 25
	var mu sync.Mutex
	ids := map[int64]string{}
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers)
	start := time.Now()
	for si, s := range stores {
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					uid := fmt.Sprintf("s%d-w%d-%d", si, w, i)
					o, err := s.CreateObject(testObject(uid, "alice"))
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					prev, dup := ids[o.ID]
					ids[o.ID] = uid
					mu.Unlock()
					if dup {
						errs <- fmt.Errorf("handle %d given to %s and %s", o.ID, prev, uid)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	const total = 2 * workers * each
	require.Len(t, ids, total)
	t.Logf("%d creates by 2 Stores x %d goroutines in %v: %.0f/s", total, workers, elapsed, total/elapsed.Seconds())
	for _, s := range stores {
		found, err := s.Find(store.Query{Viewer: "alice"})
		require.NoError(t, err)
		require.Len(t, found, total)
		for _, id := range found {
			require.Contains(t, ids, id)
		}
		n, err := s.CountOwned("alice")
		require.NoError(t, err)
		require.Equal(t, total, n)
	}
	// Each is found by its own ID through the index, by either Store.
	for id, uid := range ids {
		found, err := stores[int(id)%2].Find(store.Query{Viewer: "alice", Match: map[ck.AttributeType][]byte{ck.CKA_ID: []byte(uid)}})
		require.NoError(t, err)
		require.Equal(t, []int64{id}, found)
	}
}

// TestLockoutAcrossStores: failed logins are counted in the database: 3
// wrong passwords through one Store and 2 through another lock the user
// at a threshold of 5, for both.
func TestLockoutAcrossStores(t *testing.T) {
	dsn := freshURL(t)
	a := initStore(t, dsn)
	b := openStore(t, dsn, 0)
	const threshold = 5
	fail := func(s store.Store) (int, bool) {
		require.NoError(t, s.BeginLogin("alice", threshold))
		n, locked, err := s.LoginFailed("alice", threshold)
		require.NoError(t, err)
		return n, locked
	}
	for i := 1; i <= 3; i++ {
		n, locked := fail(a)
		require.Equal(t, i, n)
		require.False(t, locked)
	}
	n, locked := fail(b)
	require.Equal(t, 4, n)
	require.False(t, locked)
	n, locked = fail(b)
	require.Equal(t, 5, n)
	require.True(t, locked)
	require.ErrorIs(t, a.BeginLogin("alice", threshold), store.ErrLocked)
	require.ErrorIs(t, b.BeginLogin("alice", threshold), store.ErrLocked)
	u, err := a.User("alice")
	require.NoError(t, err)
	require.True(t, u.Locked)

	// Concurrent wrong guesses through both Stores never get more than
	// threshold evaluated.
	require.NoError(t, b.BeginLogin("bob", threshold))
	require.NoError(t, b.LoginSucceeded("bob"))
	var evaluated atomic.Int32
	var wg sync.WaitGroup
	for _, s := range []store.Store{a, b, a, b, a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				if err := s.BeginLogin("bob", threshold); err != nil {
					if !errors.Is(err, store.ErrLocked) {
						t.Error(err)
					}
					return
				}
				evaluated.Add(1)
				if _, _, err := s.LoginFailed("bob", threshold); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	require.Equal(t, int32(threshold), evaluated.Load())
}

// registryPID is the backend holding the login lock of instance.
func registryPID(t *testing.T, dsn string, instance int64) int {
	t.Helper()
	var pid int
	require.NoError(t, connect(t, dsn).QueryRow(context.Background(), `SELECT pid FROM pg_locks WHERE locktype = 'advisory'
		AND objsubid = 1 AND ((classid::int8 << 32) | objid::int8) = $1 AND granted`, instance).Scan(&pid))
	return pid
}

// TestLoginTerminated: a login whose Store's registry connection is
// terminated by the server is dead for everyone (pruned, the user can be
// deleted) until the Store takes it again, which it does by itself.
func TestLoginTerminated(t *testing.T) {
	was := loginCheck
	t.Cleanup(func() { loginCheck = was }) // after the Stores' Close
	loginCheck = 200 * time.Millisecond    // before any keeper starts
	dsn := freshURL(t)
	a := initStore(t, dsn)
	b := openStore(t, dsn, 0)
	lg := store.ThisProcess()
	lg.User, lg.Instance = "alice", 4242
	require.NoError(t, a.AddLogin(lg))
	live, err := b.Logins("alice")
	require.NoError(t, err)
	require.Len(t, live, 1)
	require.ErrorIs(t, b.DeleteUser("alice"), store.ErrLoggedIn)

	testOnlyNoRetake.Store(true)
	t.Cleanup(func() { testOnlyNoRetake.Store(false) })
	_, err = connect(t, dsn).Exec(context.Background(), `SELECT pg_terminate_backend($1)`, registryPID(t, dsn, lg.Instance))
	require.NoError(t, err)
	took := eventually(t, 5*time.Second, "login pruned", func() error {
		live, err := b.Logins("alice")
		if err != nil || len(live) > 0 {
			return fmt.Errorf("live %v, %v", live, err)
		}
		return nil
	})
	t.Logf("terminated registry connection: login dead after %v", took)
	// The next registry write (another Store's login) deletes the row.
	require.NoError(t, b.AddLogin(store.Login{User: "bob", Instance: 5151}))
	var rows int
	require.NoError(t, connect(t, dsn).QueryRow(context.Background(), `SELECT count(*) FROM logins WHERE instance = $1`, lg.Instance).Scan(&rows))
	require.Zero(t, rows, "the dead row is pruned")

	testOnlyNoRetake.Store(false)
	took = eventually(t, 10*time.Second, "login taken again", func() error {
		live, err := b.Logins("alice")
		if err != nil || len(live) != 1 {
			return fmt.Errorf("live %v, %v", live, err)
		}
		return nil
	})
	t.Logf("login taken again after %v", took)
	require.ErrorIs(t, b.DeleteUser("alice"), store.ErrLoggedIn)
	require.NoError(t, a.RemoveLogin(lg.Instance))
	require.NoError(t, b.DeleteUser("alice"))
}

// TestLoginKilled: a process killed with SIGKILL while logged in leaves a
// registry row that is dead as soon as the server sees its connection
// close: no lease to wait out.
func TestLoginKilled(t *testing.T) {
	dsn := freshURL(t)
	a := initStore(t, dsn)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "GOHSM_PG_LOGIN_HELPER="+dsn)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "logged in\n", line)

	live, err := a.Logins("alice")
	require.NoError(t, err)
	require.Len(t, live, 1)
	require.Equal(t, cmd.Process.Pid, live[0].PID)
	require.ErrorIs(t, a.DeleteUser("alice"), store.ErrLoggedIn)

	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	took := eventually(t, 10*time.Second, "killed login pruned", func() error {
		live, err := a.Logins("alice")
		if err != nil || len(live) > 0 {
			return fmt.Errorf("live %v, %v", live, err)
		}
		return nil
	})
	t.Logf("SIGKILLed process: login dead %v after the process was reaped", took)
	require.NoError(t, a.DeleteUser("alice"))
}

// loginHelper is TestLoginKilled's process: it logs alice in and waits to
// be killed.
func loginHelper(dsn string) {
	s, err := Open(dsn, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	lg := store.ThisProcess()
	lg.User, lg.Instance = "alice", int64(os.Getpid())<<20
	if err := s.AddLogin(lg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println("logged in")
	time.Sleep(time.Minute)
	os.Exit(3)
}

// TestURLPasswordNotInErrors: no error of Open or of a call names the
// URL's password.
func TestURLPasswordNotInErrors(t *testing.T) {
	const pw = "pw-9f3a7c"
	for _, u := range []string{
		"postgres://u:" + pw + "@127.0.0.1:1/db?sslmode=bogus",
		"postgres://u:" + pw + "@127.0.0.1:1/db?connect_timeout=x",
		"postgres://u:" + pw + "@[::1/db",
		"postgresql://u:" + pw + "@127.0.0.1:1/db",
	} {
		s, err := Open(u, Options{Timeout: 300 * time.Millisecond})
		if err == nil {
			_, err = s.Token()
			s.Close()
		}
		require.Error(t, err, u)
		require.NotContains(t, err.Error(), pw, u)
	}
	_, err := Open("mysql://u:"+pw+"@h/db", Options{})
	require.Error(t, err)
	require.NotContains(t, err.Error(), pw)
	_, err = Open("postgres://h/db", Options{Timeout: -1})
	require.Error(t, err)
	require.Contains(t, err.Error(), "negative timeout")
}

// TestSchemasApart: two tokens in two schemas of one database (two slots
// on one database) are two stores: each one's commits move its own
// Generation only, though notifications are per database.
func TestSchemasApart(t *testing.T) {
	slot1, slot2 := freshURL(t), freshURL(t) // two schemas of one database
	one := initStore(t, slot1)
	two := initStore(t, slot2)
	oneAgain := openStore(t, slot1, 0)
	eventually(t, 5*time.Second, "listening", func() error { return listening(two) })
	eventually(t, 5*time.Second, "listening", func() error { return listening(oneAgain) })
	g2, err := two.Generation()
	require.NoError(t, err)
	var last store.Commit
	for i := range 20 {
		_, last, err = one.CreateObjects([]store.ObjectRecord{testObject(fmt.Sprint("x", i), "")})
		require.NoError(t, err)
	}
	eventually(t, 2*time.Second, "slot1's other Store notified", func() error {
		if g, _ := oneAgain.Generation(); g != last.After {
			return fmt.Errorf("generation %d, want %d", g, last.After)
		}
		return nil
	})
	g, err := two.Generation()
	require.NoError(t, err)
	require.Equal(t, g2, g, "slot2 saw slot1's commits")
	ids, err := two.Find(store.Query{})
	require.NoError(t, err)
	require.Empty(t, ids)
}

// TestBareNotification: a tool that bumps the generation by hand and
// notifies the bare number (tests/e2e's damage does) moves every
// listener of the database to its own schema's generation.
func TestBareNotification(t *testing.T) {
	dsn := freshURL(t)
	s := initStore(t, dsn)
	eventually(t, 5*time.Second, "listening", func() error { return listening(s) })
	g, err := s.Generation()
	require.NoError(t, err)
	c := connect(t, dsn)
	ctx := context.Background()
	tx, err := c.Begin(ctx)
	require.NoError(t, err)
	var n int64
	require.NoError(t, tx.QueryRow(ctx, `UPDATE generation SET n = n + 5 RETURNING n`).Scan(&n))
	_, err = tx.Exec(ctx, `SELECT pg_notify('gohsm_generation', $1)`, fmt.Sprint(n))
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	eventually(t, 2*time.Second, "bare notification", func() error {
		if got, _ := s.Generation(); got != uint64(n) {
			return fmt.Errorf("generation %d, want %d (was %d)", got, n, g)
		}
		return nil
	})
}

// TestRoundTrips counts what each call of the hot paths sends to the
// server once its statements are prepared: a client sends once per round
// trip (pipelined messages go together), so this is the number of round
// trips, which on a real network is what a call costs.
func TestRoundTrips(t *testing.T) {
	dsn := freshURL(t)
	initStore(t, dsn).Close()
	p := newWireProxy(t, dsn+"&pool_max_conns=1") // dsn has a query (search_path)
	s := openStore(t, p.url, 0)
	eventually(t, 5*time.Second, "listening", func() error { return listening(s) })
	o, err := s.CreateObject(testObject("first", "alice"))
	require.NoError(t, err)
	id := func(i int) []byte { return []byte(fmt.Sprint("rt", i)) }
	quota := store.Quota{Classes: []ck.ObjectClass{ck.CKO_SECRET_KEY}, Max: 1000, Err: errors.New("full")}
	i := 0
	for _, c := range []struct {
		name string
		want int64
		f    func() error
	}{
		{"Generation", 0, func() error { _, err := s.Generation(); return err }},
		{"Token", 1, func() error { _, err := s.Token(); return err }},
		{"Object", 1, func() error { _, err := s.Object(o.ID); return err }},
		{"ObjectVersion", 1, func() error { _, err := s.ObjectVersion(o.ID); return err }},
		{"Find", 1, func() error {
			_, err := s.Find(store.Query{Viewer: "alice", Match: map[ck.AttributeType][]byte{ck.CKA_ID: []byte("first"), ck.CKA_CLASS: o.Attrs[ck.CKA_CLASS]}})
			return err
		}},
		{"CreateObject", 3, func() error {
			i++
			ob := testObject(string(id(i)), "alice")
			ob.Keys = map[string][]byte{"alice": []byte("k")}
			_, err := s.CreateObject(ob)
			return err
		}},
		{"CreateObjects with a quota", 3, func() error {
			i++
			_, _, err := s.CreateObjects([]store.ObjectRecord{testObject(string(id(i)), "alice")}, quota)
			return err
		}},
		{"UpdateObject", 3, func() error {
			cur, err := s.ObjectVersion(o.ID)
			if err != nil {
				return err
			}
			u := o
			u.Version = cur
			u.Attrs = map[ck.AttributeType][]byte{ck.CKA_LABEL: []byte(fmt.Sprint(cur))}
			_, _, err = s.UpdateObject(u)
			return err
		}},
		{"SetTokenLabel", 3, func() error { return s.SetTokenLabel("x") }},
		{"BeginLogin", 3, func() error { return s.BeginLogin("alice", 10) }},
		{"LoginSucceeded", 3, func() error { return s.LoginSucceeded("alice") }},
		// An audited write's records and heads, one statement sent with
		// COMMIT after the meta read; with no statements of its own the
		// meta read goes with BEGIN (4, 4 and 5 before).
		{"Audit", 2, func() error { return s.Audit(store.AuditEvent{Record: []byte("alone")}) }},
		{"FlushAudit of 50", 2, func() error {
			for range 50 {
				s.AuditLater(store.AuditEvent{Record: []byte("queued")})
			}
			return s.FlushAudit()
		}},
		{"audited CreateObject", 4, func() error {
			i++
			_, err := s.Audited(store.AuditEvent{Record: []byte("create")}).CreateObject(testObject(string(id(i)), "alice"))
			return err
		}},
	} {
		for range 2 { // prepares the statements on the connection
			require.NoError(t, c.f(), c.name)
		}
		// The least of three: the pool pings a connection idle for a
		// second before handing it out, which a loaded machine may cause.
		got := int64(1 << 62)
		for range 3 {
			before := p.roundTrips.Load()
			require.NoError(t, c.f(), c.name)
			n := p.roundTrips.Load() - before
			if c.name == "UpdateObject" {
				n-- // its ObjectVersion
			}
			got = min(got, n)
		}
		t.Logf("%s: %d round trips", c.name, got)
		assert.Equal(t, c.want, got, c.name)
	}
}

// TestFindUsesIndex: a Find by a selective attribute is answered from the
// attrs (type, sha256(value)) index, not by reading every object, and
// more match attributes add primary-key lookups, not scans.
func TestFindUsesIndex(t *testing.T) {
	dsn := freshURL(t)
	s := initStore(t, dsn)
	objs := make([]store.ObjectRecord, 2000)
	for i := range objs {
		objs[i] = testObject(fmt.Sprint("k", i), "alice")
	}
	start := time.Now()
	_, _, err := s.CreateObjects(objs)
	require.NoError(t, err)
	t.Logf("2000 objects created in one call in %v", time.Since(start))
	c := connect(t, dsn)
	ctx := context.Background()
	_, err = c.Exec(ctx, `ANALYZE attrs, objects, shares`)
	require.NoError(t, err)
	class := objs[0].Attrs[ck.CKA_CLASS]
	for _, m := range []map[ck.AttributeType][]byte{
		{ck.CKA_ID: []byte("k1234")},
		{ck.CKA_CLASS: class, ck.CKA_LABEL: []byte("label-k1234"), ck.CKA_ID: []byte("k1234")},
	} {
		q := store.Query{Viewer: "alice", Match: m}
		sql, args := findSQL(q)
		rows, err := c.Query(ctx, `EXPLAIN `+sql, args...)
		require.NoError(t, err)
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		plan := strings.Join(lines, "\n")
		assert.Contains(t, plan, "attrs_type_value", plan)
		assert.NotContains(t, plan, "Seq Scan on attrs", plan)
		assert.NotContains(t, plan, "Seq Scan on objects", plan)
		ids, err := s.Find(q)
		require.NoError(t, err)
		require.Len(t, ids, 1)
	}
}

// TestConnectionsTerminated: when the server ends every connection of a
// Store (a restart or failover under traffic, an idle-connection reaper),
// the next calls succeed: the pool's idle connections, which it checks
// only after a second of idleness, are dropped at the first failure and
// the call runs once more on a new one.
func TestConnectionsTerminated(t *testing.T) {
	dsn := freshURL(t)
	s := initStore(t, dsn)
	o, err := s.CreateObject(testObject("x", "alice"))
	require.NoError(t, err)
	ctx := context.Background()
	c := connect(t, dsn)
	for _, call := range []struct {
		name string
		f    func() error
	}{
		{"Token", func() error { _, err := s.Token(); return err }},
		{"Object", func() error { _, err := s.Object(o.ID); return err }},
		{"CreateObject", func() error {
			_, err := s.CreateObject(testObject(fmt.Sprint("y", time.Now().UnixNano()), ""))
			return err
		}},
		{"Users", func() error { _, err := s.Users(); return err }},
	} {
		// Several idle connections in the pool.
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() { defer wg.Done(); s.Find(store.Query{Viewer: "alice"}) }()
		}
		wg.Wait()
		rows, err := c.Query(ctx, `SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = 'gohsm'`)
		require.NoError(t, err)
		var pids []int32
		var pid int32
		var ok bool
		_, err = pgx.ForEachRow(rows, []any{&pid, &ok}, func() error { pids = append(pids, pid); return nil })
		require.NoError(t, err)
		require.NotEmpty(t, pids)
		// Gone once the server has ended them (the listener's new
		// connection may be there already).
		eventually(t, 5*time.Second, "backends gone", func() error {
			var n int
			if err := c.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)`, pids).Scan(&n); err != nil || n > 0 {
				return fmt.Errorf("%d left, %v", n, err)
			}
			return nil
		})
		require.NoError(t, call.f(), call.name)
	}
}
