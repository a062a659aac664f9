package token

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token/logincache"
)

// The login cache (token/logincache, docs/store.md "The login cache"):
// these tests use the kernel's user keyring of the uid running them, with
// entries that name their own temporary tokens, and drop what they make.

// cacheConfig is testConfig with the login cache on and entries living ttl.
func cacheConfig(t testing.TB, dir, ttl string) *Config {
	return testConfigLines(t, dir, "login_cache = keyring\nlogin_cache_ttl = "+ttl+"\n", "")
}

// cacheToken opens a module with the login cache on, on a fresh token
// with the officer and the default crypto user.
func cacheToken(t *testing.T, ttl string) (*Module, *Config) {
	t.Helper()
	cfg := cacheConfig(t, t.TempDir(), ttl)
	m, err := Open(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	require.NoError(t, m.CloseSession(initTestToken(t, m)))
	t.Cleanup(func() { dropEntries(m) })
	return m, cfg
}

// dropEntries drops the entries of the module's token, so that tests
// leave nothing in the keyring (whose quota is small for other uids).
func dropEntries(m *Module) {
	s, err := m.Slot(3)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.cacheEntriesLocked() {
		logincache.Kernel.Invalidate(mustSearch(e))
	}
}

func mustSearch(desc string) int {
	id, _ := logincache.Kernel.Search(desc)
	return id
}

// entryOf names the current entry of a user of slot 3 (whether or not it
// is in the keyring).
func entryOf(t *testing.T, m *Module, name string) string {
	t.Helper()
	s, err := m.Slot(3)
	require.NoError(t, err)
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.st.User(name)
	require.NoError(t, err)
	e := s.cacheEntryLocked(u)
	require.NotEmpty(t, e)
	return e
}

// inKeyring reports whether the kernel keyring holds the entry desc.
func inKeyring(t *testing.T, desc string) bool {
	t.Helper()
	_, err := logincache.Kernel.Search(desc)
	if errors.Is(err, logincache.ErrMiss) {
		return false
	}
	require.NoError(t, err, "the kernel keyring is needed by this test")
	return true
}

// requireKeyring fails or skips a test that needs the kernel keyring where
// there is none (a seccomp profile that forbids keyctl).
func requireKeyring(t *testing.T) {
	t.Helper()
	if _, err := logincache.Kernel.Search(logincache.Prefix + "probe"); err != nil && !errors.Is(err, logincache.ErrMiss) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("kernel keyring not usable: %v (CI=true: not skipping)", err)
		}
		t.Skipf("kernel keyring not usable: %v", err)
	}
}

// loginOnce logs in on a new session and closes it.
func loginOnce(m *Module, role ck.UserType, pin string) error {
	h, err := m.OpenSession(3, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	if err != nil {
		return err
	}
	defer m.CloseSession(h)
	if err := m.Login(h, role, []byte(pin)); err != nil {
		return err
	}
	return m.Logout(h)
}

// TestLoginCacheSkipsTheKDF: the first login derives and fills the cache;
// another module instance on the token and another process log in with
// the same password without deriving; the session works (the KEK from the
// cache opened the user's keys).
func TestLoginCacheSkipsTheKDF(t *testing.T) {
	requireKeyring(t)
	m, cfg := cacheToken(t, "5m")
	n := countDerivations(t)
	require.NoError(t, loginOnce(m, ck.CKU_USER, userPIN))
	require.EqualValues(t, 1, n.Load(), "the first login derives")
	require.True(t, inKeyring(t, entryOf(t, m, "user")))

	m2, err := Open(cfg)
	require.NoError(t, err)
	defer m2.Close()
	h := openRW(t, m2)
	require.NoError(t, m2.Login(h, ck.CKU_USER, []byte(userPIN)))
	require.EqualValues(t, 1, n.Load(), "a second instance logs in from the cache")
	k, err := m2.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("cached", true))
	require.NoError(t, err, "keys made after a cached login")
	_, err = m2.GetAttributeValue(h, k, []ck.AttributeType{ck.CKA_LABEL})
	require.NoError(t, err)

	// Another process: the test binary, logging in on the same token.
	cmd := exec.Command(os.Args[0], "-test.run=^TestLoginCacheHelperProcess$")
	cmd.Env = append(os.Environ(), cacheHelperEnv+"="+cfg.TokenDir)
	cmd.Env = append(cmd.Env, testStoreEnv(cfg.TokenDir)...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "derivations 0\n", "another process logs in from the cache")
}

const cacheHelperEnv = "GOHSM_TEST_LOGINCACHE_DIR"

// TestLoginCacheHelperProcess is TestLoginCacheSkipsTheKDF's other
// process: it logs in on the token of $GOHSM_TEST_LOGINCACHE_DIR and
// prints how many derivations that took.
func TestLoginCacheHelperProcess(t *testing.T) {
	dir := os.Getenv(cacheHelperEnv)
	if dir == "" {
		t.Skip("helper process of TestLoginCacheSkipsTheKDF")
	}
	n := countDerivations(t)
	m, err := Open(cacheConfig(t, dir, "5m"))
	require.NoError(t, err)
	defer m.Close()
	require.NoError(t, loginOnce(m, ck.CKU_USER, userPIN))
	fmt.Printf("derivations %d\n", n.Load())
}

// TestLoginCacheWrongPassword: with a live entry, a wrong password is
// CKR_PIN_INCORRECT, derives, counts as a failure, and locks the user at
// the threshold; the lockout drops the entry, and the right password is
// then refused.
func TestLoginCacheWrongPassword(t *testing.T) {
	requireKeyring(t)
	m, _ := cacheToken(t, "5m")
	require.NoError(t, loginOnce(m, ck.CKU_USER, userPIN))
	entry := entryOf(t, m, "user")
	require.True(t, inKeyring(t, entry))
	n := countDerivations(t)
	s, err := m.Slot(3)
	require.NoError(t, err)
	threshold := s.lockoutThreshold()
	for i := 1; i <= threshold; i++ {
		err := loginOnce(m, ck.CKU_USER, "user:wrong-password")
		require.ErrorIs(t, err, ck.CKR_PIN_INCORRECT, "attempt %d", i)
		require.EqualValues(t, i, n.Load(), "every wrong password derives")
		u, err := s.st.User("user")
		require.NoError(t, err)
		require.Equal(t, i, u.FailedLogins, "every wrong password counts")
		if i < threshold {
			require.True(t, inKeyring(t, entry), "a wrong password leaves the entry")
		}
	}
	require.False(t, inKeyring(t, entry), "the lockout drops the entry")
	require.ErrorIs(t, loginOnce(m, ck.CKU_USER, userPIN), ck.CKR_PIN_LOCKED)
}

// TestLoginCacheExpires: an entry of login_cache_ttl 1s is gone from the
// keyring once it expired, and the next login derives again.
func TestLoginCacheExpires(t *testing.T) {
	requireKeyring(t)
	m, _ := cacheToken(t, "1s")
	require.NoError(t, loginOnce(m, ck.CKU_USER, userPIN))
	entry := entryOf(t, m, "user")
	require.True(t, inKeyring(t, entry))
	// The kernel checks the expiry at every lookup; the bound is only
	// there so that a kernel that never expires it fails, not hangs.
	deadline := time.Now().Add(30 * time.Second)
	for inKeyring(t, entry) {
		require.True(t, time.Now().Before(deadline), "the entry outlived its TTL of 1s by 30s")
		time.Sleep(100 * time.Millisecond)
	}
	n := countDerivations(t)
	require.NoError(t, loginOnce(m, ck.CKU_USER, userPIN))
	require.EqualValues(t, 1, n.Load(), "the login after the expiry derives")
}

// TestLoginCacheInvalidated: a password change, an officer's reset and a
// re-initialised token each make the next login derive, and drop the
// entry they made unreachable.
func TestLoginCacheInvalidated(t *testing.T) {
	requireKeyring(t)
	m, _ := cacheToken(t, "5m")
	n := countDerivations(t)
	warm := func(pin string) string {
		t.Helper()
		require.NoError(t, loginOnce(m, ck.CKU_USER, pin))
		before := n.Load()
		require.NoError(t, loginOnce(m, ck.CKU_USER, pin))
		require.Equal(t, before, n.Load(), "cached")
		e := entryOf(t, m, "user")
		require.True(t, inKeyring(t, e))
		return e
	}
	derivesNext := func(what, pin string) {
		t.Helper()
		before := n.Load()
		require.NoError(t, loginOnce(m, ck.CKU_USER, pin), what)
		require.Greater(t, n.Load(), before, "%s: the next login derives", what)
	}

	// The user's own change (C_SetPIN).
	e := warm(userPIN)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	require.NoError(t, m.SetPIN(h, []byte(userPIN), []byte("user:user-pw-2")))
	require.NoError(t, m.Logout(h))
	require.NoError(t, m.CloseSession(h))
	require.False(t, inKeyring(t, e), "the change drops the old entry")
	require.ErrorIs(t, loginOnce(m, ck.CKU_USER, userPIN), ck.CKR_PIN_INCORRECT)
	derivesNext("after a password change", "user:user-pw-2")

	// The officer's reset (C_InitPIN), to the same password as before.
	e = warm("user:user-pw-2")
	h = openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_SO, []byte(soPIN)))
	require.NoError(t, m.InitPIN(h, []byte("user:user-pw-2")))
	require.NoError(t, m.Logout(h))
	require.NoError(t, m.CloseSession(h))
	require.False(t, inKeyring(t, e), "the reset drops the old entry")
	derivesNext("after an officer's reset", "user:user-pw-2")

	// A re-initialised token, with the same officer password.
	e = warm("user:user-pw-2")
	require.NoError(t, loginOnce(m, ck.CKU_SO, soPIN))
	co := entryOf(t, m, "admin")
	require.True(t, inKeyring(t, co))
	s, err := m.Slot(3)
	require.NoError(t, err)
	require.NoError(t, s.InitToken([]byte(soPIN), "t"))
	require.False(t, inKeyring(t, e), "re-initialising drops the users' entries")
	require.False(t, inKeyring(t, co), "and the officer's")
	before := n.Load()
	require.NoError(t, loginOnce(m, ck.CKU_SO, soPIN))
	require.Greater(t, n.Load(), before, "the officer's first login on the new token derives")
}

// TestLoginCacheDeletedUser: deleting a user drops its entry.
func TestLoginCacheDeletedUser(t *testing.T) {
	requireKeyring(t)
	m, _ := cacheToken(t, "5m")
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_SO, []byte(soPIN)))
	require.NoError(t, m.InitPIN(h, []byte("bob:bob-password")))
	require.NoError(t, m.Logout(h))
	require.NoError(t, loginOnce(m, ck.CKU_USER, "bob:bob-password"))
	e := entryOf(t, m, "bob")
	require.True(t, inKeyring(t, e))
	require.NoError(t, m.Login(h, ck.CKU_SO, []byte(soPIN)))
	require.NoError(t, m.DeleteUser(h, "bob"))
	require.False(t, inKeyring(t, e))
}

// TestLoginCacheOff: with login_cache = off no entry is ever written and
// every login derives.
func TestLoginCacheOff(t *testing.T) {
	requireKeyring(t)
	dir := t.TempDir()
	m, err := Open(testConfigLines(t, dir, "", "login_cache = keyring\n")) // the slot's own
	require.NoError(t, err)
	s, err := m.Slot(3)
	require.NoError(t, err)
	require.NotNil(t, s.lc, "a slot's own login_cache")
	m.Close()

	m, err = Open(testConfigLines(t, dir, "login_cache = keyring\n", "login_cache = off\n"))
	require.NoError(t, err)
	defer m.Close()
	require.NoError(t, m.CloseSession(initTestToken(t, m)))
	s, err = m.Slot(3)
	require.NoError(t, err)
	require.Nil(t, s.lc, "the slot's off wins over the top level's keyring")
	n := countDerivations(t)
	for range 2 {
		require.NoError(t, loginOnce(m, ck.CKU_USER, userPIN))
	}
	require.EqualValues(t, 2, n.Load(), "every login derives")
	s.mu.Lock()
	u, err := s.st.User("user")
	require.NoError(t, err)
	s.lc = logincache.New(logincache.Kernel, time.Minute, nil) // only to name the entry
	e := s.cacheEntryLocked(u)
	s.lc = nil
	s.mu.Unlock()
	require.False(t, inKeyring(t, e), "no entry written")
}

// TestLoginCacheConfig: the keys' values and bounds, and the default.
func TestLoginCacheConfig(t *testing.T) {
	cfg, err := ParseConfig("token_dir = /tmp/x\n", "test")
	require.NoError(t, err)
	require.Equal(t, LoginCacheKeyring, cfg.Slots[0].LoginCache, "on by default")
	require.Equal(t, 5*time.Minute, cfg.Slots[0].LoginCacheTTL)
	require.Equal(t, LoginCacheKeyring, DefaultConfig().Slots[0].LoginCache)

	cfg, err = ParseConfig("token_dir = /tmp/x\nlogin_cache_ttl = 1s\n[slot 1]\n[slot 2]\nlogin_cache_ttl = 24h\nlogin_cache = off\n", "test")
	require.NoError(t, err)
	require.Equal(t, time.Second, cfg.Slots[0].LoginCacheTTL)
	require.Equal(t, 24*time.Hour, cfg.Slots[1].LoginCacheTTL)
	require.Equal(t, LoginCacheOff, cfg.Slots[1].LoginCache)

	for _, bad := range []string{
		"login_cache = on", "login_cache = ", "login_cache = Keyring",
		"login_cache_ttl = 999ms", "login_cache_ttl = 24h0m1s", "login_cache_ttl = 0",
		"login_cache_ttl = -5m", "login_cache_ttl = 5", "login_cache_ttl = forever",
		"[slot 0]\nlogin_cache_ttl = 25h", "[slot 0]\nlogin_cache = yes",
	} {
		_, err := ParseConfig("token_dir = /tmp/x\n"+bad+"\n", "test")
		require.ErrorIs(t, err, errConfig, "%q", bad)
		require.Contains(t, err.Error(), "login_cache", "%q", bad)
	}
}

// brokenKeyring is a keyring every call of which fails as keyctl does
// under a seccomp profile that forbids it.
type brokenKeyring struct{ calls *atomic.Int64 }

func (b brokenKeyring) Search(string) (int, error) { b.calls.Add(1); return 0, syscall.ENOSYS }
func (b brokenKeyring) Read(int) ([]byte, error)   { b.calls.Add(1); return nil, syscall.ENOSYS }
func (b brokenKeyring) Add(string, []byte, time.Duration) error {
	b.calls.Add(1)
	return syscall.EPERM
}
func (b brokenKeyring) Invalidate(int) error { b.calls.Add(1); return syscall.ENOSYS }

// TestLoginCacheKeyringUnavailable: a keyring that refuses every call
// makes every login derive, and every login work.
func TestLoginCacheKeyringUnavailable(t *testing.T) {
	var calls atomic.Int64
	testOnlyKeyring = brokenKeyring{&calls}
	t.Cleanup(func() { testOnlyKeyring = nil })
	m, _ := cacheToken(t, "5m")
	n := countDerivations(t)
	for range 3 {
		require.NoError(t, loginOnce(m, ck.CKU_USER, userPIN))
	}
	require.EqualValues(t, 3, n.Load())
	require.NotZero(t, calls.Load(), "the cache asked the keyring")
	require.ErrorIs(t, loginOnce(m, ck.CKU_USER, "user:wrong-password"), ck.CKR_PIN_INCORRECT)
}

// TestLoginCacheEntryOfAnotherPassword: an entry that does not open with
// the password (a wrong one) sends the login the whole way; one whose KEK
// does not open the record (a damaged entry) is dropped and the login
// derives and succeeds.
func TestLoginCacheEntryOfAnotherPassword(t *testing.T) {
	requireKeyring(t)
	m, _ := cacheToken(t, "5m")
	e := entryOf(t, m, "user")
	// An entry sealed under the right password around a wrong KEK.
	c := logincache.New(logincache.Kernel, time.Minute, nil)
	_, pw := splitPIN([]byte(userPIN), 0)
	c.Store(e, pw, make([]byte, logincache.KEKSize))
	require.True(t, inKeyring(t, e))
	n := countDerivations(t)
	require.NoError(t, loginOnce(m, ck.CKU_USER, userPIN))
	require.EqualValues(t, 1, n.Load(), "a KEK that does not open the record: derive")
	require.NoError(t, loginOnce(m, ck.CKU_USER, userPIN))
	require.EqualValues(t, 1, n.Load(), "the derived KEK replaced it")
	require.False(t, strings.Contains(e, userPIN))
}

// TestLoginCacheLeavesFullThresholdToTheStore: failures counted up to the
// threshold and past it without the lock (attempts in flight, or left by
// processes that died) are the store's to settle (BeginLogin): the right
// password with a live entry is not answered from the cache, and the store
// locks the user (a count past the threshold). Before the check the cache
// logged the user in and reset the count.
func TestLoginCacheLeavesFullThresholdToTheStore(t *testing.T) {
	requireKeyring(t)
	m, _ := cacheToken(t, "5m")
	require.NoError(t, loginOnce(m, ck.CKU_USER, userPIN))
	require.True(t, inKeyring(t, entryOf(t, m, "user")))
	s, err := m.Slot(3)
	require.NoError(t, err)
	for range s.lockoutThreshold() + 1 {
		require.NoError(t, s.st.BeginLogin("user", 1000)) // reserved, never ended
	}
	require.ErrorIs(t, loginOnce(m, ck.CKU_USER, userPIN), ck.CKR_PIN_LOCKED)
	u, err := s.st.User("user")
	require.NoError(t, err)
	require.True(t, u.Locked)
}

// TestTokenPlace: a token reached through a symbolic link has the place of
// its directory; PostgreSQL tokens are told apart by database, host and
// port, never by the password or the user.
func TestTokenPlace(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	require.NoError(t, os.Mkdir(real, 0o700))
	link := filepath.Join(dir, "link")
	require.NoError(t, os.Symlink(real, link))
	require.Equal(t, tokenPlace(SlotConfig{Dir: real}), tokenPlace(SlotConfig{Dir: link}))
	require.NotEqual(t, tokenPlace(SlotConfig{Dir: real}), tokenPlace(SlotConfig{Dir: dir}))

	pg := func(url string) string { return tokenPlace(SlotConfig{Store: url}) }
	a := pg("postgres://u:secret@db.example:5432/gohsm")
	require.Equal(t, a, pg("postgres://other:pw2@db.example:5432/gohsm?sslmode=require"))
	require.NotEqual(t, a, pg("postgres://u:secret@db.example:5432/gohsm2"))
	require.NotEqual(t, a, pg("postgres://u:secret@db2.example:5432/gohsm"))
	require.NotEqual(t, a, pg("postgres://u:secret@db.example:5433/gohsm"))
	require.NotContains(t, a, "secret")
}
