// Package pgtest runs a throwaway PostgreSQL server for tests: its own
// cluster (initdb) in a temporary directory, listening on a Unix socket in
// that directory and on a free TCP port of 127.0.0.1, with trust
// authentication and fsync off (a commit is written to the kernel, not
// flushed: it survives a crash of the server, not of the machine). Nothing system-wide is created or started;
// Debian's postgresql package only provides the binaries (tests/deps.sh
// installs it).
//
// PostgreSQL refuses to run as root, so under root (as in CI) initdb and
// postgres run as an existing unprivileged account: postgres (which the
// package creates) or else nobody, or $GOHSM_PG_USER. The temporary
// directory is given to that account.
//
// postgres runs as a child of the test process (not daemonised by pg_ctl),
// with a parent-death signal: a test binary that is killed takes its server
// with it. Stop is what `pg_ctl stop -m fast` does (SIGINT, then wait).
//
// Start gives a test its own server (stopped and removed at its cleanup);
// tests that stop or restart the server need one. Shared gives every test of
// the binary one server, started on first use; the package's TestMain must
// then be
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// which stops it and removes its directory when the tests are done.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"gohsm/internal/testenv"
)

// startTimeout bounds the wait for a started server to accept connections;
// stopTimeout the wait for a fast shutdown before SIGQUIT (immediate
// shutdown) and then SIGKILL.
const (
	startTimeout = 60 * time.Second
	stopTimeout  = 30 * time.Second
)

// Server is one running (or stopped) PostgreSQL cluster.
type Server struct {
	// Dir is the temporary directory: data/ is the cluster, the socket
	// (.s.PGSQL.<Port>) sits in Dir itself, postgres.log is the server's
	// output.
	Dir string
	// Port is the TCP port on 127.0.0.1 (and the socket's number); it
	// stays the same across Restart.
	Port int
	// User is the superuser's name (trust authentication, no password).
	User string
	// Version is the server's major version (the binaries' directory).
	Version string

	bin  string
	cred *syscall.Credential // nil: run as the test process's user
	log  *os.File

	mu    sync.Mutex
	cmd   *exec.Cmd
	exit  chan struct{} // closed when cmd has exited
	dbSeq int
}

// errMissing marks "no PostgreSQL on this machine", which skips outside CI.
var errMissing = errors.New("pgtest: PostgreSQL not found")

// Start initialises and starts a server for this test, stopped and removed
// at the test's cleanup. The superuser is named after the test.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := start(userName(t.Name()))
	if errors.Is(err, errMissing) {
		testenv.Missing(t, "%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.remove)
	return s
}

var shared struct {
	mu   sync.Mutex
	main bool // Main is running the tests
	s    *Server
	err  error
}

// Shared is the test binary's one server, started on first use and
// stopped by Main. Tests using it must not stop or restart it (use Start)
// and should each take their own database (NewDatabase).
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.main {
		t.Fatal("pgtest.Shared needs the package's TestMain to call pgtest.Main(m) or pgtest.Run(m), which stop the server")
	}
	if shared.s == nil && shared.err == nil {
		shared.s, shared.err = start("gohsm")
	}
	if errors.Is(shared.err, errMissing) {
		testenv.Missing(t, "%v", shared.err)
	}
	if shared.err != nil {
		t.Fatalf("pgtest: shared server: %v", shared.err)
	}
	return shared.s
}

// Main runs the tests, stops and removes the Shared server if a test
// started it, and exits: a package's whole TestMain can be
// `func TestMain(m *testing.M) { pgtest.Main(m) }`.
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run is Main without the exit, for a TestMain that does more:
//
//	code := pgtest.Run(m)
//	os.RemoveAll(processTempDir)
//	os.Exit(code)
func Run(m *testing.M) int {
	shared.mu.Lock()
	shared.main = true
	shared.mu.Unlock()
	code := m.Run()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.s != nil {
		shared.s.remove()
		shared.s = nil
	}
	shared.main = false
	return code
}

// NewDatabase creates a fresh database (named after name, made unique) and
// returns its connection string over TCP, e.g.
// postgres://User@127.0.0.1:Port/name_1?sslmode=disable. It is dropped at
// the test's cleanup if the server is still up.
func (s *Server) NewDatabase(t testing.TB, name string) string {
	t.Helper()
	s.mu.Lock()
	s.dbSeq++
	db := fmt.Sprintf("%s_%d", identifier(name, 40), s.dbSeq)
	s.mu.Unlock()
	if err := s.exec("CREATE DATABASE " + pgx.Identifier{db}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create database %s: %v", db, err)
	}
	t.Cleanup(func() {
		_ = s.exec("DROP DATABASE IF EXISTS " + pgx.Identifier{db}.Sanitize() + " WITH (FORCE)")
	})
	return s.DSN(db)
}

// DSN is the connection string for database db over TCP on 127.0.0.1.
func (s *Server) DSN(db string) string {
	u := url.URL{Scheme: "postgres", User: url.User(s.User), Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)),
		Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

// SocketDSN is the connection string for database db over the Unix socket.
func (s *Server) SocketDSN(db string) string {
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable", s.Dir, s.Port, s.User, db)
}

// Running reports whether the postgres process is up (it may not yet, or
// no longer, accept connections).
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runningLocked()
}

func (s *Server) runningLocked() bool {
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.exit:
		return false
	default:
		return true
	}
}

// Stop shuts the server down the way `pg_ctl stop -m fast` does: open
// transactions are rolled back, clients disconnected, the data directory
// kept. Stopping a stopped server does nothing.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopLocked(syscall.SIGINT)
}

// Crash kills the server without a shutdown checkpoint (SIGQUIT: the
// immediate mode of pg_ctl stop), as a host that loses power would; the
// next start recovers from the WAL.
func (s *Server) Crash() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopLocked(syscall.SIGQUIT)
}

// Restart stops the server if it runs and starts it again on the same data
// directory and port, returning once it accepts connections.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.stopLocked(syscall.SIGINT); err != nil {
		return err
	}
	return s.startLocked()
}

func (s *Server) stopLocked(sig syscall.Signal) error {
	if !s.runningLocked() {
		return nil
	}
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.exit:
		return nil
	case <-time.After(stopTimeout):
	}
	_ = s.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-s.exit:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exit
	}
	return fmt.Errorf("pgtest: server did not stop within %v of %v%s", stopTimeout, sig, s.logTail())
}

// remove stops the server and deletes its directory.
func (s *Server) remove() {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.stopLocked(syscall.SIGINT)
	_ = s.log.Close()
	_ = os.RemoveAll(s.Dir)
}

// start makes a cluster in a new temporary directory and starts it.
func start(superuser string) (*Server, error) {
	bin, version, err := findBin()
	if err != nil {
		return nil, err
	}
	s := &Server{User: superuser, Version: version, bin: bin}
	if os.Geteuid() == 0 {
		if s.cred, err = unprivileged(); err != nil {
			return nil, err
		}
	}
	// Not t.TempDir: its parent is private to root, and the socket's path
	// must stay short (sun_path is 108 bytes).
	if s.Dir, err = os.MkdirTemp("", "gohsm-pg-"); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			if s.log != nil {
				_ = s.log.Close()
			}
			_ = os.RemoveAll(s.Dir)
		}
	}()
	if s.cred != nil {
		if err := os.Chown(s.Dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			return nil, fmt.Errorf("pgtest: %w", err)
		}
	}
	if s.log, err = os.Create(filepath.Join(s.Dir, "postgres.log")); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	initdb := s.command("initdb", "-D", s.dataDir(), "-U", s.User, "--auth=trust", "-E", "UTF8",
		"--locale=C", "--no-sync", "--no-instructions")
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("pgtest: initdb: %v\n%s", err, out)
	}
	// The port is free when chosen but another process may take it before
	// postgres binds it: choose again a few times.
	for attempt := 0; ; attempt++ {
		if s.Port, err = freePort(); err != nil {
			return nil, err
		}
		err = s.startLocked()
		if err == nil || attempt == 4 || !strings.Contains(err.Error(), "could not bind") {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// startLocked starts postgres on the existing cluster and waits until it
// accepts connections.
func (s *Server) startLocked() error {
	cmd := s.command("postgres", "-D", s.dataDir(),
		"-k", s.Dir, "-h", "127.0.0.1", "-p", strconv.Itoa(s.Port),
		// A throwaway server: surviving an OS crash buys nothing, speed
		// does. synchronous_commit stays on: with it off a Crash loses the
		// last commits (the WAL writer lags up to 3 x 200ms), and tests of
		// what survives a server crash need committed to mean written.
		"-c", "fsync=off", "-c", "full_page_writes=off",
		"-c", "max_connections=200")
	cmd.Stdout, cmd.Stderr = s.log, s.log
	cmd.SysProcAttr.Pdeathsig = syscall.SIGQUIT // set after the uid change: kept
	cmd.SysProcAttr.Setpgid = true              // a ^C to go test is the harness's to pass on
	if err := spawn(cmd); err != nil {
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	exit := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exit) }()
	s.cmd, s.exit = cmd, exit

	deadline := time.Now().Add(startTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, s.SocketDSN("postgres"))
		if err == nil {
			_ = conn.Close(ctx)
			cancel()
			return nil
		}
		cancel()
		select {
		case <-exit:
			return fmt.Errorf("pgtest: postgres exited at start (%v)%s", cmd.ProcessState, s.logTail())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = s.stopLocked(syscall.SIGQUIT)
			return fmt.Errorf("pgtest: postgres not accepting connections after %v: %v%s", startTimeout, err, s.logTail())
		}
	}
}

// The parent-death signal is sent when the thread that forked the child
// ends, not the process: a Go thread ends when a goroutine that locked it
// returns without unlocking (pkcs11's tests do lock threads). So postgres is
// forked from one thread, locked by a goroutine that never returns.
var spawner struct {
	once sync.Once
	reqs chan spawnReq
}

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

func spawn(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.reqs = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // for the life of the process
			for r := range spawner.reqs {
				r.done <- r.cmd.Start()
			}
		}()
	})
	done := make(chan error)
	spawner.reqs <- spawnReq{cmd, done}
	return <-done
}

// exec runs one statement as the superuser in the postgres database.
func (s *Server) exec(sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.SocketDSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

func (s *Server) dataDir() string { return filepath.Join(s.Dir, "data") }

// command runs one of the PostgreSQL binaries as the unprivileged account
// when the test runs as root.
func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = s.Dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	return cmd
}

// logTail is the end of the server's log, for error messages.
func (s *Server) logTail() string {
	b, err := os.ReadFile(filepath.Join(s.Dir, "postgres.log"))
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "\npostgres.log:\n" + string(b)
}

// findBin is $GOHSM_PG_BIN, else the newest /usr/lib/postgresql/*/bin
// (Debian's layout), else the directory of initdb on $PATH.
func findBin() (dir, version string, err error) {
	has := func(d string) bool {
		for _, n := range []string{"initdb", "postgres"} {
			if fi, err := os.Stat(filepath.Join(d, n)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	if d := os.Getenv("GOHSM_PG_BIN"); d != "" {
		if !has(d) {
			return "", "", fmt.Errorf("%w: GOHSM_PG_BIN=%s has no initdb and postgres", errMissing, d)
		}
		return d, filepath.Base(filepath.Dir(d)), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return majorOf(dirs[i]) > majorOf(dirs[j]) })
	for _, d := range dirs {
		if has(d) {
			return d, filepath.Base(filepath.Dir(d)), nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil && has(filepath.Dir(p)) {
		return filepath.Dir(p), "", nil
	}
	return "", "", fmt.Errorf("%w in /usr/lib/postgresql/*/bin or on $PATH (run tests/deps.sh as root, or set GOHSM_PG_BIN)", errMissing)
}

func majorOf(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

// unprivileged is the account postgres runs as under root.
func unprivileged() (*syscall.Credential, error) {
	names := []string{"postgres", "nobody"}
	if n := os.Getenv("GOHSM_PG_USER"); n != "" {
		names = []string{n}
	}
	for _, n := range names {
		u, err := user.Lookup(n)
		if err != nil {
			continue
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		if uid == 0 {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: false}, nil
	}
	return nil, fmt.Errorf("pgtest: running as root and none of the accounts %v exists to run PostgreSQL as (set GOHSM_PG_USER)", names)
}

// freePort is a TCP port of 127.0.0.1 that nothing listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

var notIdent = regexp.MustCompile(`[^a-z0-9_]+`)

// identifier makes s a plain lower-case SQL identifier of at most n bytes.
func identifier(s string, n int) string {
	s = strings.Trim(notIdent.ReplaceAllString(strings.ToLower(s), "_"), "_")
	if len(s) > n {
		s = s[:n]
	}
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		s = "t" + s
	}
	return s
}

// userName is the superuser's name for a test: its name as an identifier.
func userName(test string) string { return identifier(test, 60) }
