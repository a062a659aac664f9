package token

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/internal/testenv/pgtest"
	"gohsm/token/attrs"
)

// Slots whose store is PostgreSQL (store = postgres://...), through the
// token layer: a slot works end to end and two modules ("hosts": token
// directories of their own, only the database shared) see one token; a
// database of another schema version makes the slot's token not
// recognised with a message that says what to do; store_timeout bounds
// every call while the server is down, and the module recovers by itself.

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

// testStoreLine is the slot line that puts the token of a test's token
// directory where GOHSM_TEST_STORE says (D8): "postgres" gives each token
// directory that testConfigLines is called with a database of pgtest's
// shared server, fresh at its first use and the same for every module
// opened on that directory later (two modules on one directory share a
// token, as with SQLite); absent (or "sqlite"), the directory as always.
func testStoreLine(t testing.TB, dir string) string {
	t.Helper()
	if !pgtest.OnPostgres(t) {
		return ""
	}
	if dsn := os.Getenv(testStoreDSNEnv); dsn != "" {
		return "store = " + dsn + "\n" // a helper process: its parent's database
	}
	testDBs.Lock()
	defer testDBs.Unlock()
	dsn, ok := testDBs.m[dir]
	if !ok {
		dsn = pgtest.Shared(t).NewDatabase(t, "t")
		testDBs.m[dir] = dsn
		t.Cleanup(func() {
			testDBs.Lock()
			delete(testDBs.m, dir)
			testDBs.Unlock()
		})
	}
	return "store = " + dsn + "\n"
}

// testStoreDSNEnv gives a helper process (loginAtOnce's) the database of
// its parent's token directory.
const testStoreDSNEnv = "GOHSM_TEST_STORE_DSN"

// testStoreEnv is the environment a helper process opening the token of
// dir needs to find it: nothing on SQLite, its database on PostgreSQL.
func testStoreEnv(dir string) []string {
	testDBs.Lock()
	defer testDBs.Unlock()
	if dsn, ok := testDBs.m[dir]; ok {
		return []string{testStoreDSNEnv + "=" + dsn}
	}
	return nil
}

var testDBs = struct {
	sync.Mutex
	m map[string]string
}{m: map[string]string{}}

// pgModule opens a module whose slot 3 keeps its token in the database of
// dsn, in a token directory of its own; slot holds more lines of the slot's
// section.
func pgModule(t *testing.T, dsn, slot string) (*Module, *Slot, string) {
	t.Helper()
	dir := t.TempDir()
	logf := filepath.Join(dir, "gohsm.log")
	cfg, err := ParseConfig(fmt.Sprintf("token_dir = %s\nkdf_time = 1\nkdf_memory = 64\nkdf_threads = 1\nlogin_cache = off\nlog_file = %s\n[slot 3]\nlabel = t\nstore = %s\n%s\n",
		dir, logf, dsn, slot), "test")
	require.NoError(t, err)
	m, err := Open(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	s, err := m.Slot(3)
	require.NoError(t, err)
	return m, s, logf
}

func signWith(t *testing.T, m *Module, h, key ck.ULong) error {
	t.Helper()
	if err := m.SignInit(h, Mechanism{Type: ck.CKM_ECDSA}, key); err != nil {
		return err
	}
	digest := sha256.Sum256([]byte("hello"))
	sig := make([]byte, 64)
	_, err := m.Sign(h, digest[:], Out{Buf: sig})
	return err
}

func TestPostgresSlot(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t, "slot")
	a, sa, _ := pgModule(t, dsn, "")
	require.True(t, sa.Config().Postgres())
	require.NoError(t, a.CloseSession(initTestToken(t, a)))
	ha := openRW(t, a)
	loginAs(t, a, ha, ck.CKU_USER, userPIN)
	pub, priv := signingPair(t, a, ha, "pg-key")
	require.NoError(t, signWith(t, a, ha, priv))
	// The slot's directory holds nothing of the token: no token.db.
	_, err := os.Stat(filepath.Join(sa.Config().Dir, "token.db"))
	require.ErrorIs(t, err, os.ErrNotExist)

	// Another host: its own token directory, the same database. The key
	// has the same handle there, and signs.
	b, _, _ := pgModule(t, dsn, "")
	hb := openRW(t, b)
	loginAs(t, b, hb, ck.CKU_USER, userPIN)
	require.NoError(t, b.FindObjectsInit(hb, attrs.Template{ck.CKA_LABEL: []byte("pg-key")}))
	found, err := b.FindObjects(hb, 10)
	require.NoError(t, err)
	require.NoError(t, b.FindObjectsFinal(hb))
	require.ElementsMatch(t, []ck.ULong{pub, priv}, found)
	require.NoError(t, signWith(t, b, hb, priv))

	// A key made on b is known to a by its handle at once (a handle
	// unknown locally is looked up in the database).
	_, priv2 := signingPair(t, b, hb, "from-b")
	require.NoError(t, signWith(t, a, ha, priv2))
}

// TestPostgresSlotTimeout: with the server frozen (it accepts and answers
// nothing) calls fail with CKR_DEVICE_ERROR after store_timeout, never
// later (plus a margin); with it stopped they fail at once, signing with a
// cached key included (the process cannot know the key still exists);
// after the server is back the same module works again, without
// reopening. A module opened while the server is down starts as well and
// recovers the same way.
func TestPostgresSlotTimeout(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := srv.NewDatabase(t, "timeout")
	const timeout = 500 * time.Millisecond
	m, _, _ := pgModule(t, dsn, "store_timeout = 500ms")
	require.NoError(t, m.CloseSession(initTestToken(t, m)))
	h := openRW(t, m)
	loginAs(t, m, h, ck.CKU_USER, userPIN)
	_, priv := signingPair(t, m, h, "k")
	require.NoError(t, signWith(t, m, h, priv))

	genAES := func() error {
		_, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN},
			attrs.Template{ck.CKA_VALUE_LEN: attrs.ULong(32), ck.CKA_TOKEN: attrs.Bool(true), ck.CKA_LABEL: []byte("aes")})
		return err
	}
	failing := func(what string) {
		t.Helper()
		var least, worst time.Duration
		for i := 0; i < 3; i++ {
			start := time.Now()
			err := genAES()
			took := time.Since(start)
			require.ErrorIs(t, err, ck.CKR_DEVICE_ERROR, "%s: call %d", what, i)
			worst = max(worst, took)
			if i == 0 || took < least {
				least = took
			}
		}
		t.Logf("%s: failing calls took %v to %v (store_timeout %v)", what, least, worst, timeout)
		require.Less(t, worst, timeout+time.Second, "%s: a call outlived store_timeout", what)
	}

	// A server that does not answer (every process of it stopped): the
	// calls wait for store_timeout, no longer.
	thaw := freeze(t, srv)
	failing("server frozen")
	thaw()
	// For a moment after a call timed out, calls fail at once rather
	// than queue for a timeout each (token/store/postgres/breaker.go);
	// then they work.
	thawed := time.Now()
	for err := genAES(); err != nil; err = genAES() {
		require.ErrorIs(t, err, ck.CKR_DEVICE_ERROR, "after the server answers again")
		require.Less(t, time.Since(thawed), time.Second, "after the server answers again: %v", err)
		time.Sleep(10 * time.Millisecond)
	}

	// A server that is gone: connections are refused at once.
	require.NoError(t, srv.Stop())
	failing("server stopped")
	// Even a key whose material is cached: without the database the
	// process cannot know the key was not deleted meanwhile (D4).
	require.ErrorIs(t, signWith(t, m, h, priv), ck.CKR_DEVICE_ERROR)

	m2, s2, _ := pgModule(t, dsn, "store_timeout = 500ms") // opened while the server is down
	start := time.Now()
	_, err := s2.TokenInfo()
	require.ErrorIs(t, err, ck.CKR_DEVICE_ERROR)
	require.Less(t, time.Since(start), timeout+time.Second)

	require.NoError(t, srv.Restart())
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err = m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN},
			attrs.Template{ck.CKA_VALUE_LEN: attrs.ULong(32), ck.CKA_TOKEN: attrs.Bool(true), ck.CKA_LABEL: []byte("aes")})
		if err == nil || !errors.Is(err, ck.CKR_DEVICE_ERROR) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	require.NoError(t, err, "no recovery after the restart")
	require.NoError(t, signWith(t, m, h, priv))
	ti, err := s2.TokenInfo()
	require.NoError(t, err)
	require.True(t, ti.Initialized)
	h2 := openRW(t, m2)
	loginAs(t, m2, h2, ck.CKU_USER, userPIN)
	require.NoError(t, signWith(t, m2, h2, priv))
}

// TestPostgresDeleteToken: deleting (or resetting) a PostgreSQL token
// empties the database in one transaction; refused while another host is
// logged in.
func TestPostgresDeleteToken(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t, "delete")
	a, sa, _ := pgModule(t, dsn, "")
	require.NoError(t, a.CloseSession(initTestToken(t, a)))
	b, _, _ := pgModule(t, dsn, "")
	hb := openRW(t, b)
	loginAs(t, b, hb, ck.CKU_USER, userPIN)

	err := sa.DeleteToken([]byte(soPIN))
	require.ErrorIs(t, err, ck.CKR_SESSION_EXISTS)
	require.ErrorContains(t, err, "logged in")
	require.ErrorIs(t, sa.ResetToken(), ck.CKR_SESSION_EXISTS)
	ti, err := sa.TokenInfo()
	require.NoError(t, err)
	require.True(t, ti.Initialized)

	require.NoError(t, b.Logout(hb))
	require.NoError(t, sa.DeleteToken([]byte(soPIN)))
	ti, err = sa.TokenInfo()
	require.NoError(t, err)
	require.False(t, ti.Initialized)
	// The other host sees the token gone.
	_, err = b.OpenSession(3, ck.CKF_SERIAL_SESSION)
	require.Error(t, err)
	require.True(t, strings.Contains(err.Error(), "CKR_TOKEN_NOT_RECOGNIZED") || errors.Is(err, ck.CKR_TOKEN_NOT_RECOGNIZED), err.Error())
	// And a new token can be made in its place.
	require.NoError(t, a.CloseSession(initTestToken(t, a)))
	require.NoError(t, sa.ResetToken())
}

// freeze stops (SIGSTOP) the server's postmaster and every backend of it,
// so that it accepts nothing and answers nothing, as a hung host; the
// function returned lets them run again (also at the test's cleanup).
func freeze(t *testing.T, srv *pgtest.Server) func() {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(srv.Dir, "data", "postmaster.pid"))
	require.NoError(t, err)
	var master int
	_, err = fmt.Sscan(string(b), &master)
	require.NoError(t, err)
	pids := []int{master}
	ents, err := os.ReadDir("/proc")
	require.NoError(t, err)
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil {
			continue
		}
		st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so after ')'.
		f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+1:]))
		var ppid int
		if len(f) > 1 {
			fmt.Sscan(f[1], &ppid)
		}
		if ppid == master {
			pids = append(pids, pid)
		}
	}
	for _, p := range pids {
		require.NoError(t, syscall.Kill(p, syscall.SIGSTOP))
	}
	done := false
	thaw := func() {
		if done {
			return
		}
		done = true
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGCONT)
		}
	}
	t.Cleanup(thaw)
	return thaw
}

// TestPostgresBackupRestore: token backup and restore on a PostgreSQL slot
// (an export in one snapshot; an import that replaces the token), the
// audit chain continuing through CN_RESTORE_BEGIN/END; a restore is
// refused while another host is logged in.
func TestPostgresBackupRestore(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t, "backup")
	m, s, _ := pgModule(t, dsn, "")
	require.NoError(t, m.CloseSession(initTestToken(t, m)))
	h := openRW(t, m)
	loginAs(t, m, h, ck.CKU_USER, userPIN)
	_, priv := signingPair(t, m, h, "kept")
	require.NoError(t, m.Logout(h))
	require.NoError(t, m.CloseSession(h))

	file := filepath.Join(t.TempDir(), "pg.gohsm-backup")
	info, err := s.Backup([]byte(soPIN), file)
	require.NoError(t, err)
	require.Equal(t, "t", info.Label)

	h = openRW(t, m)
	loginAs(t, m, h, ck.CKU_USER, userPIN)
	_, lost := signingPair(t, m, h, "lost")
	require.NoError(t, m.Logout(h))
	require.NoError(t, m.CloseSession(h))

	other, _, _ := pgModule(t, dsn, "")
	ho := openRW(t, other)
	loginAs(t, other, ho, ck.CKU_USER, userPIN)
	_, err = s.Restore(file, true)
	require.ErrorIs(t, err, ck.CKR_SESSION_EXISTS)
	require.NoError(t, other.Logout(ho))

	_, err = s.Restore(file, false)
	require.ErrorIs(t, err, ck.CKR_ACTION_PROHIBITED, "an initialised token needs replace")
	_, err = s.Restore(file, true)
	require.NoError(t, err)
	evs := auditLog(t, m) // the chain verifies
	require.Equal(t, "CN_RESTORE_END", evs[len(evs)-1].Event.Opcode.String())

	h = openRW(t, m)
	loginAs(t, m, h, ck.CKU_USER, userPIN)
	require.NoError(t, signWith(t, m, h, priv))
	require.ErrorIs(t, signWith(t, m, h, lost), ck.CKR_KEY_HANDLE_INVALID)
	// The other host sees the restored token too.
	loginAs(t, other, ho, ck.CKU_USER, userPIN)
	require.NoError(t, signWith(t, other, ho, priv))
	require.Error(t, signWith(t, other, ho, lost))
}

// skipOnPostgres skips a test about SQLite's token files (damaged files, a
// full disk, format upgrades, records edited in token.db) when
// GOHSM_TEST_STORE chooses PostgreSQL, which has no such files; the
// reason is the test's log line.
func skipOnPostgres(t testing.TB, reason string) {
	t.Helper()
	if pgtest.OnPostgres(t) {
		t.Skipf("%s=postgres: %s", pgtest.StoreEnv, reason)
	}
}
