package token

import (
	"bufio"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token/store"
)

// loginHelperEnv names the token directory a login helper process uses; see
// TestLoginHelperProcess.
const loginHelperEnv = "GOHSM_TOKEN_LOGIN_HELPER"

// loginTestRV is the CK_RV an error carries (0 for nil, CKR_GENERAL_ERROR
// for an error without one).
func loginTestRV(err error) ck.RV {
	if err == nil {
		return ck.CKR_OK
	}
	var rv ck.RV
	if errors.As(err, &rv) {
		return rv
	}
	return ck.CKR_GENERAL_ERROR
}

// TestLoginHelperProcess is not a test: it is the entry point of the
// processes the parallel login tests start (loginAtOnce). It opens the
// token in $GOHSM_TOKEN_LOGIN_HELPER, opens a session, says "ready", waits
// for a line on stdin, logs in as the crypto user with the PIN it was
// given, and prints the CK_RV as a number.
func TestLoginHelperProcess(t *testing.T) {
	dir := os.Getenv(loginHelperEnv)
	if dir == "" {
		return // started by go test itself: nothing to do
	}
	code := func() int {
		m, err := Open(testConfig(t, dir))
		if err != nil {
			fmt.Fprintln(os.Stderr, "open:", err)
			return 1
		}
		defer m.Close()
		h, err := m.OpenSession(3, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
		if err != nil {
			fmt.Fprintln(os.Stderr, "open session:", err)
			return 1
		}
		fmt.Println("ready")
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			fmt.Fprintln(os.Stderr, "stdin:", err)
			return 1
		}
		fmt.Println(uint64(loginTestRV(m.Login(h, ck.CKU_USER, []byte(os.Getenv(loginHelperEnv+"_PIN"))))))
		return 0
	}()
	os.Exit(code)
}

// slowLoginToken makes a token with the default crypto user, whose
// argon2id derivation is long enough (tens of ms) that processes started
// together all read the user before the first of them finishes, as the
// default cost does in earnest. It returns the configuration.
func slowLoginToken(t *testing.T, dir string) *Config {
	cfg := testConfig(t, dir)
	cfg.KDF = store.KDFParams{Time: 2, Memory: 16 << 10, Threads: 1}
	m, err := Open(cfg)
	require.NoError(t, err)
	defer m.Close()
	s, err := m.Slot(3)
	require.NoError(t, err)
	require.NoError(t, s.InitToken([]byte(soPIN), "t"))
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_SO, []byte(soPIN)))
	require.NoError(t, m.InitPIN(h, []byte(userPIN)))
	return cfg
}

// loginAtOnce starts n processes (TestLoginHelperProcess) on the token in
// dir, lets them all log in with pin at one moment, and counts their
// answers.
func loginAtOnce(t *testing.T, dir, pin string, n int) map[ck.RV]int {
	type child struct {
		cmd   *exec.Cmd
		stdin io.WriteCloser
		out   *bufio.Scanner
		err   *strings.Builder
	}
	var children []*child
	for range n {
		cmd := exec.Command(os.Args[0], "-test.run=^TestLoginHelperProcess$")
		cmd.Env = append(os.Environ(), loginHelperEnv+"="+dir, loginHelperEnv+"_PIN="+pin)
		cmd.Env = append(cmd.Env, testStoreEnv(dir)...)
		c := &child{cmd: cmd, err: &strings.Builder{}}
		var err error
		c.stdin, err = cmd.StdinPipe()
		require.NoError(t, err)
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		c.out = bufio.NewScanner(out)
		cmd.Stderr = c.err
		require.NoError(t, cmd.Start())
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		children = append(children, c)
	}
	for _, c := range children {
		require.True(t, c.out.Scan(), "helper did not get ready: %s", c.err)
		require.Equal(t, "ready", c.out.Text())
	}
	for _, c := range children {
		fmt.Fprintln(c.stdin, "go")
	}
	got := map[ck.RV]int{}
	for _, c := range children {
		require.True(t, c.out.Scan(), "helper gave no answer: %s", c.err)
		n, err := strconv.ParseUint(c.out.Text(), 10, 64)
		require.NoError(t, err)
		got[ck.RV(n)]++
		require.NoError(t, c.cmd.Wait(), c.err.String())
	}
	t.Logf("answers: %v", got)
	return got
}

// TestParallelWrongLoginsStopAtThreshold: twelve processes try a wrong
// password at the same moment against lockout_threshold 5. Exactly 5
// guesses are evaluated (CKR_PIN_INCORRECT), the others are refused
// (CKR_PIN_LOCKED), the store counts 5 failures, the user is locked, and
// the right password is then refused. Before the attempt was reserved in
// the store ahead of the derivation, every process read the user unlocked,
// derived, and only then counted its failure: 12 failures, 12 guesses.
func TestParallelWrongLoginsStopAtThreshold(t *testing.T) {
	const procs, threshold = 12, 5
	dir := t.TempDir()
	cfg := slowLoginToken(t, dir)
	got := loginAtOnce(t, dir, "user:wrong-password", procs)

	st, err := openStore(cfg.Slots[0], store.Options{}) // either backend
	require.NoError(t, err)
	u, err := st.User("user")
	require.NoError(t, err)
	require.NoError(t, st.Close())
	assert.Equal(t, threshold, u.FailedLogins, "failures counted")
	assert.True(t, u.Locked)
	assert.Equal(t, threshold, got[ck.CKR_PIN_INCORRECT], "guesses evaluated")
	assert.Equal(t, procs-threshold, got[ck.CKR_PIN_LOCKED], "guesses refused")

	m, err := Open(cfg)
	require.NoError(t, err)
	defer m.Close()
	h := openRW(t, m)
	require.ErrorIs(t, m.Login(h, ck.CKU_USER, []byte(userPIN)), ck.CKR_PIN_LOCKED)
}

// TestParallelRightLoginsAllGetIn: twelve processes logging in as one user
// with the right password at once (nginx workers starting) all get in,
// although no more than lockout_threshold attempts are in flight at a
// time: the others wait for a place rather than being refused. A guard
// for the reservation above, which refused them before it waited.
func TestParallelRightLoginsAllGetIn(t *testing.T) {
	dir := t.TempDir()
	cfg := slowLoginToken(t, dir)
	got := loginAtOnce(t, dir, userPIN, 12)
	assert.Equal(t, map[ck.RV]int{ck.CKR_OK: 12}, got)
	st, err := openStore(cfg.Slots[0], store.Options{}) // either backend
	require.NoError(t, err)
	defer st.Close()
	u, err := st.User("user")
	require.NoError(t, err)
	assert.False(t, u.Locked)
	assert.Zero(t, u.FailedLogins)
}

// countDerivations counts authenticate's derivations while the test runs.
func countDerivations(t *testing.T) *atomic.Int64 {
	var n atomic.Int64
	testOnlyDerive = func(store.KDFParams) { n.Add(1) }
	t.Cleanup(func() { testOnlyDerive = nil })
	return &n
}

// TestLoginCostsTheSameForUnknownUsers: a login naming no user, or a user
// of the other role, makes one derivation with the configured parameters,
// as a wrong password for an existing user does (before: none, 0.2 ms
// against ~590 ms with the same CKR, which told which users exist).
func TestLoginCostsTheSameForUnknownUsers(t *testing.T) {
	m, _ := newToken(t)
	n := countDerivations(t)
	h := openRW(t, m)
	for _, c := range []struct {
		ut  ck.UserType
		pin string
	}{
		{ck.CKU_USER, "user:wrong-password"}, // existing user, wrong password
		{ck.CKU_USER, "nobody:wrong-password"},
		{ck.CKU_USER, "admin:officer-pw"}, // an officer, as a crypto user
		{ck.CKU_SO, "user:user-pw-1"},     // a crypto user, as an officer
		{ck.CKU_SO, "nobody:wrong-password"},
	} {
		n.Store(0)
		require.ErrorIs(t, m.Login(h, c.ut, []byte(c.pin)), ck.CKR_PIN_INCORRECT, c.pin)
		assert.Equal(t, int64(1), n.Load(), "derivations for %s", c.pin)
	}

	// The derivation is the configured one, as a known user's is: the
	// parameters, not a timing (which load on a shared machine made
	// flaky), are what make the costs equal.
	var params []store.KDFParams
	testOnlyDerive = func(p store.KDFParams) { params = append(params, p) }
	defer func(p store.KDFParams) { m.cfg.KDF = p }(m.cfg.KDF)
	m.cfg.KDF = store.KDFParams{Time: 1, Memory: 8 << 10, Threads: 1}
	require.NoError(t, m.Login(h, ck.CKU_SO, []byte(soPIN)))
	require.NoError(t, m.InitPIN(h, []byte("carol:carol-pw-1")))
	require.NoError(t, m.Logout(h))
	params = nil
	require.ErrorIs(t, m.Login(h, ck.CKU_USER, []byte("carol:wrong-pw")), ck.CKR_PIN_INCORRECT)
	require.ErrorIs(t, m.Login(h, ck.CKU_USER, []byte("nobody:wrong-pw")), ck.CKR_PIN_INCORRECT)
	require.Len(t, params, 2)
	assert.Equal(t, m.cfg.KDF, params[0], "carol's record")
	assert.Equal(t, params[0], params[1], "an unknown user derives as a known one does")
}

// TestUserLoginBeforeInitPIN: before any C_InitPIN a crypto-user login
// answers CKR_USER_PIN_NOT_INITIALIZED (before: CKR_PIN_INCORRECT, as if
// the default user existed with another password); afterwards an unknown
// user is CKR_PIN_INCORRECT again.
func TestUserLoginBeforeInitPIN(t *testing.T) {
	m, err := Open(testConfig(t, t.TempDir()))
	require.NoError(t, err)
	defer m.Close()
	s, err := m.Slot(3)
	require.NoError(t, err)
	require.NoError(t, s.InitToken([]byte(soPIN), "t"))
	h := openRW(t, m)
	require.ErrorIs(t, m.Login(h, ck.CKU_USER, []byte("some-pin")), ck.CKR_USER_PIN_NOT_INITIALIZED)
	require.ErrorIs(t, m.Login(h, ck.CKU_USER, []byte("bob:some-pin")), ck.CKR_USER_PIN_NOT_INITIALIZED)
	require.NoError(t, m.Login(h, ck.CKU_SO, []byte(soPIN)))
	require.NoError(t, m.InitPIN(h, []byte(userPIN)))
	require.NoError(t, m.Logout(h))
	require.ErrorIs(t, m.Login(h, ck.CKU_USER, []byte("bob:some-pin")), ck.CKR_PIN_INCORRECT)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
}

// TestMaximalUserRecordFields writes the largest (and smallest) values each
// column of a user record can hold into the crypto user's record, behind
// the module's back, and logs in with the right password: every case ends
// quickly with its CKR, never a crash (kdf_memory 2^32-1 KiB: argon2 asked
// for 4 TiB) nor a hang (kdf_time 2^32-1 passes, with the slot's lock
// held). After each, the record is restored and the user logs in, so the
// slot was left usable.
func TestMaximalUserRecordFields(t *testing.T) {
	skipOnPostgres(t, "it writes a user record into the SQLite token file")
	m, dir := newToken(t)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "slot-3", store.DBName)+"?_pragma=busy_timeout(10000)")
	require.NoError(t, err)
	defer db.Close()
	const cols = `kdf_time, kdf_memory, kdf_threads, salt, wrapped_key, failed_logins, locked`
	type rec struct {
		kt, km, kth    int64
		salt, wk       []byte
		failed, locked int64
	}
	var orig rec
	require.NoError(t, db.QueryRow(`SELECT `+cols+` FROM users WHERE name = 'user'`).
		Scan(&orig.kt, &orig.km, &orig.kth, &orig.salt, &orig.wk, &orig.failed, &orig.locked))
	restore := func() {
		_, err := db.Exec(`UPDATE users SET kdf_time = ?, kdf_memory = ?, kdf_threads = ?, salt = ?,
			wrapped_key = ?, failed_logins = ?, locked = ? WHERE name = 'user'`,
			orig.kt, orig.km, orig.kth, orig.salt, orig.wk, orig.failed, orig.locked)
		require.NoError(t, err)
	}
	h := openRW(t, m)
	login := func(t *testing.T) error {
		done := make(chan error, 1)
		go func() { done <- m.Login(h, ck.CKU_USER, []byte(userPIN)) }()
		select {
		case err := <-done:
			return err
		case <-time.After(20 * time.Second):
			t.Fatal("C_Login did not return within 20 s")
			return nil
		}
	}
	const max32, max64, min64 = "4294967295", "9223372036854775807", "-9223372036854775808"
	for _, c := range []struct {
		set  string
		want ck.RV
	}{
		{"kdf_time = " + max32, ck.CKR_DEVICE_ERROR},
		{"kdf_time = " + max64, ck.CKR_DEVICE_ERROR},
		{"kdf_time = 0", ck.CKR_DEVICE_ERROR},
		{"kdf_memory = " + max32, ck.CKR_DEVICE_ERROR},
		{"kdf_memory = " + max64, ck.CKR_DEVICE_ERROR},
		{"kdf_memory = " + min64, ck.CKR_DEVICE_ERROR},
		{"kdf_threads = 255", ck.CKR_DEVICE_ERROR},
		{"kdf_threads = " + max32, ck.CKR_DEVICE_ERROR},
		{"kdf_threads = 0", ck.CKR_DEVICE_ERROR},
		{"salt = zeroblob(16777216)", ck.CKR_DEVICE_ERROR},
		{"wrapped_key = zeroblob(16777216)", ck.CKR_DEVICE_ERROR},
		{"failed_logins = " + max64, ck.CKR_PIN_LOCKED},
		{"failed_logins = " + min64, ck.CKR_DEVICE_ERROR},
		{"locked = " + max64, ck.CKR_DEVICE_ERROR},
	} {
		t.Run(c.set, func(t *testing.T) {
			_, err := db.Exec(`UPDATE users SET ` + c.set + ` WHERE name = 'user'`)
			require.NoError(t, err)
			defer restore()
			start := time.Now()
			err = login(t)
			assert.Equal(t, c.want, loginTestRV(err), "%v", err)
			assert.Less(t, time.Since(start), 5*time.Second)
			if err == nil {
				require.NoError(t, m.Logout(h))
			}
		})
		restore()
		require.NoError(t, login(t), "after %s", c.set)
		require.NoError(t, m.Logout(h))
	}
}

// TestTokenInfoShowsFullThresholdAsLocked: a failure count at the threshold
// without the locked flag (attempts in flight, or left by processes that
// died) is shown as CKF_USER_PIN_LOCKED, since BeginLogin lets no further
// attempt in; one below it is COUNT_LOW and FINAL_TRY.
func TestTokenInfoShowsFullThresholdAsLocked(t *testing.T) {
	skipOnPostgres(t, "it edits a user record in the SQLite token file")
	m, dir := newToken(t)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "slot-3", store.DBName)+"?_pragma=busy_timeout(10000)")
	require.NoError(t, err)
	defer db.Close()
	s, err := m.Slot(3)
	require.NoError(t, err)
	const pinFlags = ck.CKF_USER_PIN_COUNT_LOW | ck.CKF_USER_PIN_FINAL_TRY | ck.CKF_USER_PIN_LOCKED
	for n, want := range map[int]ck.ULong{
		0: 0,
		4: ck.CKF_USER_PIN_COUNT_LOW | ck.CKF_USER_PIN_FINAL_TRY,
		5: ck.CKF_USER_PIN_LOCKED,
	} {
		_, err := db.Exec(`UPDATE users SET failed_logins = ?, locked = 0 WHERE name = 'user'`, n)
		require.NoError(t, err)
		ti, err := s.TokenInfo()
		require.NoError(t, err)
		assert.Equal(t, want, ti.Flags&pinFlags, "%d failures", n)
	}
}

// TestOpenRefusesKDFOutOfBounds: a Config made in code with argon2id
// parameters out of bounds is refused by Open, as ParseConfig refuses
// them; before, Open accepted it and the first C_InitToken never
// returned (or crashed the host).
func TestOpenRefusesKDFOutOfBounds(t *testing.T) {
	for _, p := range []store.KDFParams{
		{Time: 1<<32 - 1, Memory: 64, Threads: 1},
		{Time: 1, Memory: 1<<32 - 1, Threads: 1},
		{Time: 0, Memory: 64, Threads: 1},
	} {
		cfg := testConfig(t, t.TempDir())
		cfg.KDF = p
		m, err := Open(cfg)
		if err == nil {
			m.Close()
		}
		assert.ErrorIs(t, err, errConfig, "%+v", p)
	}
}

// TestRightPasswordRefusedWhenLockedMeanwhile: a user locked by other
// processes while this login derived its key is refused with the right
// password (the lock is checked again before the login is accepted).
// Before, the lock was read once, before the derivation, and the login
// succeeded on the locked account.
func TestRightPasswordRefusedWhenLockedMeanwhile(t *testing.T) {
	skipOnPostgres(t, "it locks the user in the SQLite token file")
	m, dir := newToken(t)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "slot-3", store.DBName)+"?_pragma=busy_timeout(10000)")
	require.NoError(t, err)
	defer db.Close()
	testOnlyDerive = func(store.KDFParams) {
		_, err := db.Exec(`UPDATE users SET failed_logins = 5, locked = 1 WHERE name = 'user'`)
		require.NoError(t, err)
	}
	defer func() { testOnlyDerive = nil }()
	h := openRW(t, m)
	require.ErrorIs(t, m.Login(h, ck.CKU_USER, []byte(userPIN)), ck.CKR_PIN_LOCKED)
	_, err = m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("k", true))
	require.ErrorIs(t, err, ck.CKR_USER_NOT_LOGGED_IN)
}
