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

	"gohsm/internal/testenv"
	"gohsm/internal/testenv/pgtest"
)

// TestMain stops the PostgreSQL server TestForkPostgresLogin starts
// (pgtest.Run), with binDir (the harness's build) made
// before and removed after.
func TestMain(m *testing.M) {
	var err error
	if binDir, err = os.MkdirTemp("", "gohsm-fork-"); err != nil {
		fmt.Fprintln(os.Stderr, "tests/fork:", err)
		os.Exit(1)
	}
	code := pgtest.Run(m)
	os.RemoveAll(binDir)
	os.Exit(code)
}

// loginGone bounds the time from a SIGKILL until the victim's login lock
// and backends are gone. The server reads EOF at once and this takes
// 10-150 ms (over 700 ms seen at load 47 on 2 cores); the bound is
// tests/hosts' lockGone, far from flaky yet far below "as long as the
// child lives", which is what a child holding the sockets gives.
const loginGone = 5 * time.Second

// TestForkPostgresLogin (harness case pgkill): a process logged in on a
// PostgreSQL slot forks a child that re-initialises, logs in and forks a
// grandchild that does the same. No socket to the server is held by two
// of them (pkcs11/fds.c closes the parent copy's in each child). The
// parent is killed with SIGKILL: its login lock and backends go at once
// while the others live and sign; then the child likewise (its copy's
// sockets, closed in the grandchild by that copy's own handler). Before
// the fix the descendants kept their ancestors' connections, and with
// them the logins, as long as they lived.
func TestForkPostgresLogin(t *testing.T) {
	lib := testenv.PGLibrary(t) // the default library has no PostgreSQL store
	srv := pgtest.Shared(t)
	dsn := srv.NewDatabase(t, "forklogin")
	dir := t.TempDir()
	bin := harness(t)
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
	pids := map[string]int{}
	for len(pids) < 3 {
		l := next("READY ", time.Minute)
		f := strings.Fields(l)
		require.Len(t, f, 3, "harness line %q", l)
		pid, err := strconv.Atoi(f[2])
		require.NoError(t, err, "harness line %q", l)
		pids[f[1]] = pid
	}
	require.Equal(t, parent, pids["parent"])
	child, grandchild := pids["child"], pids["grandchild"]

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer db.Close(context.Background())

	live, err := liveLogins(ctx, db)
	require.NoError(t, err)
	for who, pid := range pids {
		require.Contains(t, live, pid, "the %s's login is not alive (live: %v)", who, live)
	}

	// Every process's sockets to the server are its own.
	conns, err := pgtest.TCPConnsTo(srv.Port)
	require.NoError(t, err)
	socks := map[string][]uint64{}
	for who, pid := range pids {
		socks[who], err = pgtest.SocketsOf(pid, conns)
		require.NoError(t, err)
		require.NotEmpty(t, socks[who], "the %s has no connection of its own to PostgreSQL", who)
	}
	owners := map[uint64][]string{}
	for who, ss := range socks {
		for _, ino := range ss {
			owners[ino] = append(owners[ino], who)
		}
	}
	shared := 0
	for ino, who := range owners {
		if len(who) > 1 {
			shared++
			// Not fatal: the kills below show what inheriting them costs.
			assert.Fail(t, "a socket to PostgreSQL in more than one process", "socket %d held by %v", ino, who)
		}
	}
	t.Logf("sockets to PostgreSQL: parent %d, child %d, grandchild %d; %d held by more than one",
		len(socks["parent"]), len(socks["child"]), len(socks["grandchild"]), shared)

	// killed kills who with SIGKILL and waits until its login and backends
	// are gone.
	killed := func(who string, wait func()) {
		t.Helper()
		pid := pids[who]
		var ports []int32
		for _, ino := range socks[who] {
			ports = append(ports, int32(conns[ino]))
		}
		start := time.Now()
		require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
		wait()
		var why string
		for {
			why = ""
			live, err := liveLogins(ctx, db)
			require.NoError(t, err)
			var backends int
			require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE client_port = ANY($1)`,
				ports).Scan(&backends))
			if slices.Contains(live, pid) {
				why = "its login lock is still held"
			} else if backends > 0 {
				why = fmt.Sprintf("%d of its backends still run", backends)
			}
			if why == "" || time.Since(start) > loginGone {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		require.Empty(t, why, "%v after the %s's SIGKILL\n%s", loginGone, who, report())
		took := time.Since(start)
		t.Logf("%s killed: its login and backends gone after %v", who, took.Round(time.Millisecond))
	}
	alive := func(who string) {
		t.Helper()
		require.NoError(t, syscall.Kill(pids[who], 0), "the %s died\n%s", who, report())
		live, err := liveLogins(ctx, db)
		require.NoError(t, err)
		require.Contains(t, live, pids[who], "the %s's login went too\n%s", who, report())
	}

	killed("parent", func() {
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Fatal("the parent did not die of SIGKILL")
		}
	})
	alive("child")
	alive("grandchild")
	require.NoError(t, syscall.Kill(child, syscall.SIGUSR1))
	next("PASS pgkill child: signs after its parent was killed", 30*time.Second)
	next("WAITING child", 30*time.Second)

	// A generation further: the child's copy registered its own sockets.
	killed("child", func() {
		deadline := time.Now().Add(10 * time.Second)
		for syscall.Kill(child, 0) == nil && !zombie(child) {
			if time.Now().After(deadline) {
				t.Fatal("the child did not die of SIGKILL")
			}
			time.Sleep(time.Millisecond)
		}
	})
	alive("grandchild")
	require.NoError(t, syscall.Kill(grandchild, syscall.SIGUSR1))
	next("PASS pgkill grandchild: signs after its parent was killed", 30*time.Second)
	next("PASS pgkill grandchild: C_Finalize", 30*time.Second)
}

// zombie reports whether pid has exited and waits for its reaper.
func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return strings.HasPrefix(rest, "Z")
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
