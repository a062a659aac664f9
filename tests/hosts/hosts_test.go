// Package hosts proves, through the built libgohsm.so, what issue 17 says
// of several hosts on one token stored in PostgreSQL (docs/store-postgres.md).
// A "host" is a process with its own HOME, XDG directories, token_dir,
// log file and configuration file, whose only shared state with the other
// hosts is the database its slot names (`store = postgres://...`). The
// server is a real PostgreSQL (internal/testenv/pgtest), one per package
// run (Shared) or, for the tests that stop it, one per test (Start).
//
// Each host runs as a helper process: the test binary re-executed with
// $GOHSM_HOSTS_HELPER set (TestMain), which loads the library itself
// (github.com/miekg/pkcs11), calls C_Initialize on the host's
// configuration and then runs the commands the test writes on its stdin,
// one reply line each (helper_test.go). What each test proves:
//
//   - TestTwoHostsConcurrentCreates: two hosts x 500 concurrent token
//     object creates over 4 sessions each; a third host started afterwards
//     finds exactly the 1,000, unique handles, each label once; each host
//     reads the other's objects by the other's handles.
//   - TestVisibilityAcrossHosts: after one host's C_CreateObject returned,
//     the other's next C_FindObjects finds it under the same handle and
//     C_GetAttributeValue by that handle works; after a C_DestroyObject
//     returned on one host, the other sees CKR_OBJECT_HANDLE_INVALID within
//     deleteBound (the distribution is logged).
//   - TestLockoutAcrossHosts: cloudhsm profile, threshold 5: 3 wrong
//     passwords on A and 2 on B lock the user on A, B and a new host C;
//     2 + 2 wrong do not.
//   - TestDatabaseOutage: while hosts sign with a cached key and create
//     objects, PostgreSQL is stopped, then frozen (SIGSTOP: a silent
//     server): every call answers CKR_OK or CKR_DEVICE_ERROR, never later
//     than store_timeout + outageMargin; after the server is back the same
//     processes work again by themselves, and every object whose create
//     returned CKR_OK is there.
//   - TestKillNineMidWrite: a writer host creating objects in a loop (a C
//     program: testdata/writer.c) is killed with SIGKILL at a random
//     moment, 20 times: every object it
//     reported (after CKR_OK) is there with its handle and value, the
//     database holds no advisory lock of the dead process, the login
//     registry no login of it, and the next writer writes at once.
//   - TestPartitionedHost: host B reaches the database through a relay
//     the test cuts silently (every packet lost, nothing reset); a key
//     host A deletes meanwhile is no longer used by B within
//     partitionBound (B's listener lease runs out and B asks the
//     database, failing with CKR_DEVICE_ERROR within the timeout); A is
//     not held up; mended, B answers CKR_KEY_HANDLE_INVALID by itself.
//   - TestPartitionMidTransaction: the same cut, made while host B (the C
//     writer) is inside a write transaction, which holds the generation
//     row every writer takes: host A writes again within stallBound (the
//     server ends the abandoned transaction), not hours later when TCP
//     keepalives would notice.
//   - TestNoPlaintextInDump: pg_dump of the database holds neither the
//     AES and EC private key values created with known bytes (raw, hex,
//     base64) nor the passwords; the users' salts and the sealed values
//     are in it.
//   - TestSchemaRace: four hosts C_Initialize at once on an empty database:
//     one schema (each migration applied once), and all of them work on it.
//
// Loading a Go c-shared library into a Go process puts a second Go runtime
// in it: it works but is unsupported upstream (tests/e2e says the same);
// the library's own C ABI tests (tests/abi) do not depend on it.
//
// The full library (libgohsm-pg.so: the default libgohsm.so has no
// PostgreSQL store) and the CLI must be built (`make all`; $GOHSM_PG_LIB
// and $GOHSM_CLI name other files) and PostgreSQL installed (tests/deps.sh):
// without them the tests skip, or fail under CI=true.
package hosts

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/require"

	"gohsm/internal/testenv"
	"gohsm/internal/testenv/pgtest"
)

// helperEnv marks a helper process (TestMain runs the helper, no test).
const helperEnv = "GOHSM_HOSTS_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(helperMain())
	}
	os.Exit(pgtest.Run(m))
}

// The token's users. Passwords are long and distinct so that the dump scan
// (TestNoPlaintextInDump) cannot find them by accident.
const (
	tokenLabel = "hosts"
	soPIN      = "admin:officer-Secret-5tandard"
	userName   = "alice"
	userPass   = "alice-Secret-pa55word"
	userPIN    = userName + ":" + userPass
)

// host is one host's files: nothing but the database is shared.
type host struct {
	t    *testing.T
	name string
	dir  string
	conf string
	log  string
	env  []string
}

// hostConfig is a host's configuration: one slot of profile on the
// database dsn; slotLines are more keys of the slot.
func hostConfig(tokenDir, logFile, profile, dsn string, slotLines ...string) string {
	return fmt.Sprintf(`# written by tests/hosts
token_dir = %s
log_level = warn
log_file = %s
kdf_time = 1
kdf_memory = 64
login_cache = off
kdf_threads = 1

[slot 0]
label = %s
profile = %s
store = %s
%s
`, tokenDir, logFile, tokenLabel, profile, dsn, strings.Join(slotLines, "\n"))
}

// newHost makes a host named name (its directories under a temporary
// directory of its own) with a standard slot on dsn.
func newHost(t *testing.T, name, dsn string, slotLines ...string) *host {
	return newProfileHost(t, name, "standard", dsn, slotLines...)
}

func newProfileHost(t *testing.T, name, profile, dsn string, slotLines ...string) *host {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	h := &host{t: t, name: name, dir: dir, conf: filepath.Join(dir, "etc", "gohsm.conf"), log: filepath.Join(dir, "gohsm.log")}
	xdg := map[string]string{
		"HOME":            filepath.Join(dir, "home"),
		"XDG_CONFIG_HOME": filepath.Join(dir, "home", ".config"),
		"XDG_DATA_HOME":   filepath.Join(dir, "home", ".local", "share"),
		"XDG_STATE_HOME":  filepath.Join(dir, "home", ".local", "state"),
		"XDG_CACHE_HOME":  filepath.Join(dir, "home", ".cache"),
		"XDG_RUNTIME_DIR": filepath.Join(dir, "run"),
		"TMPDIR":          filepath.Join(dir, "tmp"),
	}
	for _, d := range append([]string{filepath.Dir(h.conf)}, mapValues(xdg)...) {
		require.NoError(t, os.MkdirAll(d, 0o700))
	}
	require.NoError(t, os.WriteFile(h.conf, []byte(hostConfig(filepath.Join(dir, "tokens"), h.log, profile, dsn, slotLines...)), 0o600))
	// The environment of the test process, but nothing of this host's
	// neighbours: no PG* variables, no configuration or data directories.
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if _, own := xdg[k]; own || strings.HasPrefix(k, "PG") || strings.HasPrefix(k, "GOHSM_") || k == helperEnv {
			continue
		}
		h.env = append(h.env, kv)
	}
	for k, v := range xdg {
		h.env = append(h.env, k+"="+v)
	}
	h.env = append(h.env, "GOHSM_CONF="+h.conf)
	return h
}

func mapValues(m map[string]string) []string {
	var vs []string
	for _, v := range m {
		vs = append(vs, v)
	}
	return vs
}

// logTail is the end of the host's module log, for failure messages.
func (h *host) logTail() string {
	b, _ := os.ReadFile(h.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// gohsm runs the CLI as this host and returns its output and error.
func (h *host) gohsm(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testenv.CLI(h.t), append([]string{"--config", h.conf}, args...)...)
	cmd.Env = h.env
	cmd.WaitDelay = 5 * time.Second
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String() + errOut.String(), fmt.Errorf("gohsm %s on host %s: %w: %s%s", strings.Join(args, " "), h.name, err, errOut.String(), out.String())
	}
	return out.String(), nil
}

func (h *host) mustGohsm(args ...string) string {
	h.t.Helper()
	out, err := h.gohsm(args...)
	require.NoError(h.t, err)
	return out
}

// proc is a running helper process of a host.
type proc struct {
	h      *host
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	mu     sync.Mutex
	stderr strings.Builder
	exited chan struct{}
}

// spawn starts a helper process on the host without waiting for it.
func (h *host) spawn() *proc {
	h.t.Helper()
	return h.spawnCmd(os.Args[0])
}

// spawnCmd starts the program bin with args as a process of the host (its
// environment, $GOHSM_LIB (the full library) and $GOHSM_HOSTS_HELPER set) without waiting for
// it; its stdout lines arrive on the proc's lines.
func (h *host) spawnCmd(bin string, args ...string) *proc {
	h.t.Helper()
	lib := testenv.PGLibrary(h.t)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(append([]string{}, h.env...), helperEnv+"=1", "GOHSM_LIB="+lib)
	cmd.Dir = filepath.Join(h.dir, "home")
	p := &proc{h: h, cmd: cmd, lines: make(chan string, 1<<16), exited: make(chan struct{})}
	var err error
	p.stdin, err = cmd.StdinPipe()
	require.NoError(h.t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(h.t, err)
	cmd.Stderr = writerFunc(func(b []byte) (int, error) {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.stderr.Write(b)
	})
	require.NoError(h.t, cmd.Start(), "start a helper on host %s", h.name)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		_ = cmd.Wait()
		close(p.exited)
	}()
	h.t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// start starts a helper process on the host and waits for its
// C_Initialize, which must succeed.
func (h *host) start() *proc {
	h.t.Helper()
	p := h.spawn()
	r := p.read(60 * time.Second)
	require.True(h.t, r.ok(), "host %s: C_Initialize: %s%s", h.name, r, p.diag())
	return p
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// diag is the helper's stderr and the host's log, for failure messages.
func (p *proc) diag() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return fmt.Sprintf("\n--- helper stderr (host %s):\n%s\n--- module log:\n%s", p.h.name, p.stderr.String(), p.h.logTail())
}

// reply is one reply line of a helper: "OK <us> fields...",
// "RV <us> <rv> <message>" (a Cryptoki error) or "FAIL <us> <message>".
type reply struct {
	line   string
	kind   string
	us     int64 // how long the call took, in microseconds
	rv     uint
	fields []string
}

func (r reply) ok() bool { return r.kind == "OK" }

func (r reply) String() string { return r.line }

// elapsed is how long the command took in the helper.
func (r reply) elapsed() time.Duration { return time.Duration(r.us) * time.Microsecond }

func parseReply(line string) reply {
	r := reply{line: line}
	f := strings.Fields(line)
	if len(f) < 2 {
		r.kind = "FAIL"
		return r
	}
	r.kind = f[0]
	r.us, _ = strconv.ParseInt(f[1], 10, 64)
	r.fields = f[2:]
	if r.kind == "RV" && len(r.fields) > 0 {
		v, _ := strconv.ParseUint(r.fields[0], 0, 64)
		r.rv = uint(v)
	}
	return r
}

// send writes one command line to the helper.
func (p *proc) send(format string, args ...any) {
	p.h.t.Helper()
	_, err := fmt.Fprintf(p.stdin, format+"\n", args...)
	require.NoError(p.h.t, err, "write to the helper of host %s%s", p.h.name, p.diag())
}

// read waits for the next reply line.
func (p *proc) read(timeout time.Duration) reply {
	p.h.t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			<-p.exited
			p.h.t.Fatalf("helper of host %s ended: %v%s", p.h.name, p.cmd.ProcessState, p.diag())
		}
		return parseReply(l)
	case <-time.After(timeout):
		p.h.t.Fatalf("helper of host %s: no reply within %v (a hang)%s", p.h.name, timeout, p.diag())
	}
	return reply{}
}

// do sends a command and returns its reply.
func (p *proc) do(format string, args ...any) reply {
	p.h.t.Helper()
	p.send(format, args...)
	return p.read(2 * time.Minute)
}

// must sends a command whose reply must be OK and returns its fields.
func (p *proc) must(format string, args ...any) []string {
	p.h.t.Helper()
	r := p.do(format, args...)
	require.True(p.h.t, r.ok(), "host %s: %s: %s%s", p.h.name, fmt.Sprintf(format, args...), r, p.diag())
	return r.fields
}

// quit ends the helper (C_Finalize) and waits for it.
func (p *proc) quit() {
	p.h.t.Helper()
	p.must("quit")
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		p.h.t.Fatalf("helper of host %s did not exit after quit%s", p.h.name, p.diag())
	}
}

// requireRV fails unless r is the Cryptoki error rv.
func requireRV(t testing.TB, r reply, rv uint, what string) {
	t.Helper()
	if r.kind != "RV" || r.rv != rv {
		t.Fatalf("%s: got %s, want %s", what, r, pkcs11.Error(rv))
	}
}

// initToken initialises the token through host h's library (C_InitToken
// with soPIN) and creates the crypto user alice (C_InitPIN as the
// officer): the standard profile's way.
func initToken(t *testing.T, h *host) {
	t.Helper()
	p := h.start()
	p.must("inittoken %s %s", soPIN, tokenLabel)
	p.must("open 1")
	p.must("login so %s", soPIN)
	p.must("initpin %s", userPIN)
	p.quit()
}

// sqlConn connects the test itself to the database (for what only the
// database can tell: locks, the schema, the registry's rows).
func sqlConn(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// queryInt runs a query of one integer.
func queryInt(t *testing.T, c *pgx.Conn, q string, args ...any) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var n int64
	require.NoError(t, c.QueryRow(ctx, q, args...).Scan(&n), "%s", q)
	return n
}

// percentile is the p-th percentile (0..1) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p * float64(len(sorted)-1))
	return sorted[i]
}

// pairs parses "HANDLE:LABEL" fields.
func pairs(t testing.TB, fields []string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, f := range fields {
		h, l, ok := strings.Cut(f, ":")
		require.True(t, ok, "field %q", f)
		_, dup := m[h]
		require.False(t, dup, "handle %s twice", h)
		m[h] = l
	}
	return m
}
