package fork_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/testenv/pgtest"
)

// TestMain stops the PostgreSQL server TestForkPostgresLogin starts.
func TestMain(m *testing.M) { pgtest.Main(m) }

// loginGone bounds the time from the parent's SIGKILL until its login's
// advisory lock and its backends are gone (the brief's "within a second").
const loginGone = time.Second

// TestForkPostgresLogin (harness case pgkill): a process logged in on a
// PostgreSQL slot forks a child that re-initialises, logs in and keeps
// running; the child holds none of its parent's sockets to the server
// (pkcs11/fds.c closes them in the child), so when the parent is killed
// with SIGKILL its login lock and backends go at once while the child
// lives on and keeps signing. Before the fix the child kept the parent's
// connections, and with them its login, as long as it lived.
func TestForkPostgresLogin(t *testing.T) {
	lib := library(t)
	srv := pgtest.Shared(t)
	dsn := srv.NewDatabase(t, "forklogin")
	dir := t.TempDir()
	bin := harness(t, dir)
	tokenDir := filepath.Join(dir, "token")
	require.NoError(t, os.MkdirAll(tokenDir, 0o700))
	conf := filepath.Join(dir, "gohsm.conf")
	require.NoError(t, os.WriteFile(conf, []byte(tokenConfig(tokenDir)+"store = "+dsn+"\n"), 0o600))

	// Plain files for stdout and stderr: the child outlives the parent
	// and holds them, and Wait must not wait for it.
	outR, outW, err := os.Pipe()
	require.NoError(t, err)
	defer outR.Close()
	errFile, err := os.Create(filepath.Join(dir, "stderr"))
	require.NoError(t, err)
	defer errFile.Close()
	cmd := exec.Command(bin, lib, "pgkill")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOHSM_CONF="+conf, "XDG_CONFIG_HOME="+dir, "XDG_DATA_HOME="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout, cmd.Stderr = outW, errFile
	require.NoError(t, cmd.Start())
	outW.Close()
	parent := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = syscall.Kill(-parent, syscall.SIGKILL) }) // the child too

	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var out []string
	report := func() string {
		e, _ := os.ReadFile(errFile.Name())
		return fmt.Sprintf("--- stdout\n%s\n--- stderr\n%s", strings.Join(out, "\n"), e)
	}
	// next reads lines until one starts with prefix (or the output ends).
	next := func(prefix string, wait time.Duration) string {
		t.Helper()
		deadline := time.After(wait)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("the harness ended before %q\n%s", prefix, report())
				}
				out = append(out, l)
				if strings.HasPrefix(l, "FAIL ") {
					t.Fatalf("harness: %s\n%s", l, report())
				}
				if strings.HasPrefix(l, prefix) {
					return l
				}
			case <-deadline:
				t.Fatalf("no %q within %v\n%s", prefix, wait, report())
			}
		}
	}
	next("READY parent", time.Minute)
	child, err := strconv.Atoi(strings.TrimPrefix(next("READY child ", time.Minute), "READY child "))
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer db.Close(context.Background())

	live, err := liveLogins(ctx, db)
	require.NoError(t, err)
	require.Contains(t, live, parent, "the parent's login is not alive before the kill (live: %v)", live)
	require.Contains(t, live, child, "the child's login is not alive (live: %v)", live)

	conns, err := tcpConnsTo(srv.Port)
	require.NoError(t, err)
	parentSocks, err := socketsOf(parent, conns)
	require.NoError(t, err)
	childSocks, err := socketsOf(child, conns)
	require.NoError(t, err)
	var inherited []uint64
	for _, ino := range childSocks {
		if slices.Contains(parentSocks, ino) {
			inherited = append(inherited, ino)
		}
	}
	t.Logf("sockets to PostgreSQL: parent %d, child %d (%d of them its parent's)",
		len(parentSocks), len(childSocks), len(inherited))
	require.NotEmpty(t, parentSocks, "the parent has no connection to PostgreSQL")
	// Not fatal: the kill below shows what inheriting them costs.
	assert.Empty(t, inherited, "the child holds %d of its parent's %d sockets to PostgreSQL", len(inherited), len(parentSocks))
	require.NotEmpty(t, childSocks, "the child has no connection of its own to PostgreSQL")
	var parentPorts []int32
	for _, ino := range parentSocks {
		parentPorts = append(parentPorts, int32(conns[ino]))
	}

	start := time.Now()
	require.NoError(t, syscall.Kill(parent, syscall.SIGKILL))
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the parent did not die of SIGKILL")
	}
	var took time.Duration
	var why string
	for {
		why = ""
		live, err := liveLogins(ctx, db)
		require.NoError(t, err)
		var backends int
		require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE client_port = ANY($1)`,
			parentPorts).Scan(&backends))
		if slices.Contains(live, parent) {
			why = "the parent's login lock is still held"
		} else if backends > 0 {
			why = fmt.Sprintf("%d of the parent's backends still run", backends)
		}
		if why == "" {
			took = time.Since(start)
			break
		}
		if time.Since(start) > 5*time.Second {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	require.Empty(t, why, "5 s after the parent's SIGKILL")
	t.Logf("parent killed: its login and backends gone after %v", took.Round(time.Millisecond))
	require.LessOrEqual(t, took, loginGone, "the parent's login took %v to go", took)

	require.NoError(t, syscall.Kill(child, 0), "the child died with its parent")
	live, err = liveLogins(ctx, db)
	require.NoError(t, err)
	require.Contains(t, live, child, "the child's login went with its parent's")

	require.NoError(t, syscall.Kill(child, syscall.SIGUSR1))
	next("PASS pgkill child: signs after its parent was killed", 30*time.Second)
	next("PASS pgkill child: C_Finalize", 30*time.Second)
}

// liveLogins is the pids of the logins rows whose advisory lock a backend
// holds (token/store/postgres/logins.go: such a login is alive).
func liveLogins(ctx context.Context, db *pgx.Conn) ([]int, error) {
	rows, err := db.Query(ctx, `SELECT l.pid FROM logins l WHERE l.instance IN (
		SELECT (k.classid::int8 << 32) | k.objid::int8 FROM pg_locks k
		WHERE k.locktype = 'advisory' AND k.granted AND k.objsubid = 1
		AND k.database = (SELECT oid FROM pg_database WHERE datname = current_database()))`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int])
}

// tcpConnsTo is the established TCP connections to 127.0.0.1:port (client
// side) from /proc/net/tcp: socket inode -> local port.
func tcpConnsTo(port int) (map[uint64]int, error) {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return nil, err
	}
	want := fmt.Sprintf("0100007F:%04X", port)
	out := map[uint64]int{}
	for _, l := range strings.Split(string(b), "\n")[1:] {
		// sl local rem st tx:rx tr:when retrnsmt uid timeout inode
		f := strings.Fields(l)
		if len(f) < 10 || f[2] != want || f[3] != "01" {
			continue
		}
		_, lp, ok := strings.Cut(f[1], ":")
		local, err1 := strconv.ParseUint(lp, 16, 16)
		ino, err2 := strconv.ParseUint(f[9], 10, 64)
		if ok && err1 == nil && err2 == nil && ino != 0 {
			out[ino] = int(local)
		}
	}
	return out, nil
}

// socketsOf is the inodes among conns that pid has open.
func socketsOf(pid int, conns map[uint64]int) ([]uint64, error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []uint64
	for _, fd := range fds {
		l, err := os.Readlink(filepath.Join(dir, fd.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		n, ok := strings.CutPrefix(l, "socket:[")
		if !ok {
			continue
		}
		ino, err := strconv.ParseUint(strings.TrimSuffix(n, "]"), 10, 64)
		if _, mine := conns[ino]; err == nil && mine {
			out = append(out, ino)
		}
	}
	return out, nil
}
