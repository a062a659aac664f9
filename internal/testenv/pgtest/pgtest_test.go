package pgtest

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { Main(m) }

// TestSharedNeedsMain: Shared outside Main (or Run) refuses rather than leak
// a server nothing stops.
func TestSharedNeedsMain(t *testing.T) {
	shared.mu.Lock()
	shared.main = false
	shared.mu.Unlock()
	defer func() { shared.mu.Lock(); shared.main = true; shared.mu.Unlock() }()
	ft := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() { defer close(done); Shared(ft) }()
	<-done
	require.Contains(t, ft.msg, "pgtest.Main(m)")
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err, dsn)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// TestServer walks a server through its life: up, a database of its own,
// a restart that keeps the data, a stop after which nothing answers, a
// start again, a crash and the recovery.
func TestServer(t *testing.T) {
	t0 := time.Now()
	s := Start(t)
	t.Logf("PostgreSQL %s: initdb and start in %v (dir %s, port %d)", s.Version, time.Since(t0), s.Dir, s.Port)
	ctx := context.Background()

	conn := connect(t, s.DSN("postgres"))
	var version string
	require.NoError(t, conn.QueryRow(ctx, "SELECT version()").Scan(&version))
	require.True(t, strings.HasPrefix(version, "PostgreSQL "+s.Version), version)
	var user, fsync string
	require.NoError(t, conn.QueryRow(ctx, "SELECT current_user, current_setting('fsync')").Scan(&user, &fsync))
	require.Equal(t, s.User, user)
	require.Equal(t, "off", fsync)
	if os.Geteuid() == 0 {
		var superuser bool
		require.NoError(t, conn.QueryRow(ctx, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&superuser))
		require.True(t, superuser)
	}

	dsn := s.NewDatabase(t, "Life Cycle")
	require.Contains(t, dsn, "/life_cycle_")
	db := connect(t, dsn)
	_, err := db.Exec(ctx, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before restart')")
	require.NoError(t, err)
	// The socket answers too.
	sock := connect(t, s.SocketDSN(strings.TrimPrefix(dsn[strings.LastIndex(dsn, "/"):strings.Index(dsn, "?")], "/")))
	require.NoError(t, sock.Ping(ctx))

	t1 := time.Now()
	require.NoError(t, s.Restart())
	t.Logf("restart in %v", time.Since(t1))
	require.Error(t, db.Ping(ctx), "a connection from before the restart is gone")
	db = connect(t, dsn)
	var v string
	require.NoError(t, db.QueryRow(ctx, "SELECT v FROM kept").Scan(&v))
	require.Equal(t, "before restart", v)

	require.NoError(t, s.Stop())
	require.False(t, s.Running())
	t2 := time.Now()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = pgx.Connect(cctx, dsn)
	require.Error(t, err, "connect to a stopped server")
	require.Less(t, time.Since(t2), 2*time.Second, "a connect to a stopped server fails fast (refused), not by timeout")
	require.NoError(t, s.Stop(), "stopping a stopped server")

	// Restart after Stop starts it again, on the same port, and the server
	// outlives the thread that started it: here a goroutine that ends with
	// its thread locked, which ends the thread (after the first time, which
	// may wedge the main thread instead), and the parent-death signal
	// follows the thread, not the process.
	for i := 0; i < 2; i++ {
		errc := make(chan error)
		go func() { runtime.LockOSThread(); errc <- s.Restart() }()
		require.NoError(t, <-errc)
		time.Sleep(300 * time.Millisecond)
		require.True(t, s.Running(), "postgres died with the thread that started it")
	}
	db = connect(t, dsn)
	require.NoError(t, db.QueryRow(ctx, "SELECT v FROM kept").Scan(&v))

	// A crash (immediate shutdown) loses no committed row: the WAL is
	// replayed at the next start (fsync=off only risks an OS crash).
	_, err = db.Exec(ctx, "INSERT INTO kept VALUES ('before crash')")
	require.NoError(t, err)
	require.NoError(t, s.Crash())
	require.False(t, s.Running())
	require.NoError(t, s.Restart())
	db = connect(t, dsn)
	var n int
	require.NoError(t, db.QueryRow(ctx, "SELECT count(*) FROM kept").Scan(&n))
	require.Equal(t, 2, n)
}

// TestShared: one server for the binary, a fresh database per call.
func TestShared(t *testing.T) {
	s := Shared(t)
	require.Same(t, s, Shared(t))
	a, b := s.NewDatabase(t, "x"), s.NewDatabase(t, "x")
	require.NotEqual(t, a, b)
	ctx := context.Background()
	_, err := connect(t, a).Exec(ctx, "CREATE TABLE only_in_a (v int)")
	require.NoError(t, err)
	var n int
	require.NoError(t, connect(t, b).QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'").Scan(&n))
	require.Zero(t, n, "databases are separate")
}

// TestMissing: without binaries the harness says so (and Start skips, or
// fails under CI=true, through testenv.Missing).
func TestMissing(t *testing.T) {
	t.Setenv("GOHSM_PG_BIN", t.TempDir())
	_, err := start("nobody_here")
	require.ErrorIs(t, err, errMissing)
	require.Contains(t, err.Error(), "GOHSM_PG_BIN")
}

func TestIdentifier(t *testing.T) {
	require.Equal(t, "testserver_sub_case", identifier("TestServer/sub case", 60))
	require.Equal(t, "t1abc", identifier("1abc", 60))
	require.Equal(t, "t", identifier("///", 60))
	require.Len(t, identifier(strings.Repeat("a", 100), 40), 40)
}

// fatalRecorder keeps what Fatal says and ends the goroutine, as Fatal
// does, without failing the real test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Fatal(args ...any) { f.msg = fmt.Sprint(args...); runtime.Goexit() }
func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
