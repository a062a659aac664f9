// Package nginx serves TLS from nginx with its private keys in gohsm: the
// OpenSSL 3 pkcs11 engine (libp11) with MODULE_PATH set to libgohsm.so
// itself (no p11-kit in between), a master process that loads the keys and
// forks two workers running as an unprivileged user, and a Go client doing
// tens of thousands of full handshakes (each one a signature in a worker)
// across three `nginx -s reload`s.
//
// libp11 calls C_Initialize again in every forked worker; a Go runtime does
// not survive fork(), so this is the module's forked-child path
// (pkcs11/fork.c) under real load. Each check logs "PASS name" or fails
// with what went wrong and nginx's error.log.
//
// Needs nginx and libengine-pkcs11-openssl (tests/deps.sh installs them),
// openssl, and the built library and CLI (`make lib cli`, or $GOHSM_LIB and
// $GOHSM_CLI). When CI=true anything missing fails the test; elsewhere it
// skips, saying why.
package nginx

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"gohsm/internal/testenv"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The counts come from issue 4.
const (
	fullHandshakes   = 20000 // per key, before any reload
	reloads          = 3
	reloadHandshakes = 2000 // per key, after each reload
	concurrency      = 8    // client goroutines per key

	// handshakeTimeout bounds one connection (dial, handshake, request,
	// response): a worker hung in the module fails the test, it does not
	// stall it.
	handshakeTimeout = 20 * time.Second
	// maxFailures stops a load phase early: once this many connections
	// failed the verdict is known and waiting out the rest (each up to
	// handshakeTimeout) would only stall.
	maxFailures = 5
	// testBudget bounds the whole load (every handshake and reload); the
	// run takes well under it on 2 cores (see the rates logged).
	testBudget = 5 * time.Minute
	cmdTimeout = time.Minute
)

const (
	soPIN        = "admin:sopassword1"
	userPassword = "userpassword1"
	userPIN      = "user:" + userPassword
	tokenLabel   = "nginx"
)

// libp11's OpenSSL 3.0 engine (Debian libengine-pkcs11-openssl).
const pkcs11Engine = "/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so"

func inCI() bool { return testenv.InCI() }

func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	testenv.Missing(t, format, args...)
}

func built(t *testing.T, envVar, name, target string) string {
	t.Helper()
	return testenv.Built(t, envVar, name, target)
}

// lookTool finds binary on $PATH or in the sbin directories (nginx lives in
// /usr/sbin, which a non-root $PATH may lack).
func lookTool(t *testing.T, binary, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(binary); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, binary)
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	missing(t, "%s not found: install Debian package %s (tests/deps.sh does as root)", binary, pkg)
	return ""
}

// check runs one named check: PASS is logged, a failure stops the test
// (later checks depend on earlier ones).
func check(t *testing.T, name string, f func() error) {
	t.Helper()
	if err := f(); err != nil {
		t.Fatalf("FAIL %s: %v", name, err)
	}
	t.Logf("PASS %s", name)
}

// run runs a command with exactly the environment env, bounded by
// cmdTimeout, and returns its combined output.
func run(env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("timed out after %v (a hang?): %w", cmdTimeout, err)
	}
	if err != nil {
		return out.String(), fmt.Errorf("$ %s %s: %w\n%s", filepath.Base(name), strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}

// tlsKey is one token key nginx serves with, on its own port.
type tlsKey struct {
	name  string // "EC P-256", "RSA-2048"
	label string // CKA_LABEL on the token
	id    string // CKA_ID, hex
	gen   []string
	port  int
	cert  string // certificate file (the test CA signed the token's public key)
}

func (k *tlsKey) uri() string {
	return "pkcs11:token=" + tokenLabel + ";object=" + k.label + ";type=private;pin-value=" + userPIN
}

func (k *tlsKey) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(k.port)) }

// server is the nginx under test and its files.
type server struct {
	t      *testing.T
	nginx  string
	dir    string // prefix: configs, certificates, logs, pid, token
	conf   string // nginx.conf
	errLog string
	env    []string // nginx's whole environment
	keys   []*tlsKey
	worker *user.User // the workers' user; nil when not root (nginx ignores `user` then)

	cmd    *exec.Cmd
	exited chan struct{} // closed when the master exits
	gen    int           // configuration generation, in every response body
}

// confText is nginx.conf for generation gen. The response bodies name the
// key and the generation, so that the client knows which configuration
// (which set of workers) answered.
func (s *server) confText(gen int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# written by tests/nginx/nginx_test.go (generation %d)
daemon off;
master_process on;
worker_processes 2;
`, gen)
	if s.worker != nil {
		fmt.Fprintf(&b, "user %s %s;\n", s.worker.Username, groupName(s.t, s.worker))
	}
	fmt.Fprintf(&b, `error_log %[1]s/logs/error.log notice;
pid %[1]s/nginx.pid;
# The workers need the engine configuration's location only if they
# reloaded OpenSSL's configuration; the module's configuration reaches
# them through the engine's INIT_ARGS (C_Initialize pReserved), not the
# environment.
env OPENSSL_CONF;
events {
    worker_connections 512;
}
http {
    access_log off;
    client_body_temp_path %[1]s/tmp/body;
    proxy_temp_path %[1]s/tmp/proxy;
    fastcgi_temp_path %[1]s/tmp/fastcgi;
    uwsgi_temp_path %[1]s/tmp/uwsgi;
    scgi_temp_path %[1]s/tmp/scgi;
    # A full handshake, and so a signature by the token key, every time.
    ssl_session_cache off;
    ssl_session_tickets off;
    keepalive_timeout 0;
`, s.dir)
	for _, k := range s.keys {
		fmt.Fprintf(&b, `    server {
        listen %s ssl;
        ssl_certificate %s;
        ssl_certificate_key "engine:pkcs11:%s";
        location / {
            return 200 "%s gen=%d pid=$pid\n";
        }
    }
`, k.addr(), k.cert, k.uri(), k.label, gen)
	}
	b.WriteString("}\n")
	return b.String()
}

func groupName(t *testing.T, u *user.User) string {
	t.Helper()
	g, err := user.LookupGroupId(u.Gid)
	require.NoError(t, err)
	return g.Name
}

// writeConf writes the configuration for generation gen.
func (s *server) writeConf(gen int) {
	s.t.Helper()
	require.NoError(s.t, os.WriteFile(s.conf, []byte(s.confText(gen)), 0o600))
	s.gen = gen
}

// nginxCmd runs the nginx binary with the test's prefix and configuration
// (`-t`, `-s reload`, `-s quit`: each parses the configuration and so loads
// the keys through the engine too).
func (s *server) nginxCmd(args ...string) (string, error) {
	return run(s.env, s.nginx, append([]string{"-p", s.dir, "-c", s.conf, "-e", s.errLog}, args...)...)
}

// errorLog is the tail of nginx's error log, for failure messages.
func (s *server) errorLog() string {
	b, err := os.ReadFile(s.errLog)
	if err != nil {
		return fmt.Sprintf("(error.log unreadable: %v)", err)
	}
	const max = 16 << 10
	if len(b) > max {
		b = append([]byte("...\n"), b[len(b)-max:]...)
	}
	return "--- nginx error.log\n" + string(b) + "--- end of error.log"
}

// start runs the master in the foreground (daemon off) as this process's
// child, so that the test always knows its PID.
func (s *server) start() error {
	cmd := exec.Command(s.nginx, "-p", s.dir, "-c", s.conf, "-e", s.errLog)
	cmd.Env = s.env
	out, err := os.Create(filepath.Join(s.dir, "logs", "nginx.out"))
	if err != nil {
		return err
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd = cmd
	s.exited = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(s.exited)
	}()
	return nil
}

func (s *server) running() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// stop asks the master to quit (`nginx -s quit`: graceful) and kills it
// and its workers, by PID, if they are still there after 30s; it says what
// it had to do.
func (s *server) stop() error {
	if s.cmd == nil || !s.running() {
		return nil
	}
	workers := s.workers()
	var problems []string
	if out, err := s.nginxCmd("-s", "quit"); err != nil {
		problems = append(problems, fmt.Sprintf("nginx -s quit: %v\n%s", err, out))
		_ = s.cmd.Process.Signal(syscall.SIGQUIT)
	}
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		problems = append(problems, fmt.Sprintf("the master (pid %d) did not quit within 30s: killed it", s.cmd.Process.Pid))
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	// Workers that outlived their master (a hang in the module would do
	// it) are killed by PID: they are this test's processes.
	for _, pid := range workers {
		if alive(pid) {
			problems = append(problems, fmt.Sprintf("worker %d still running after the master exited: killed it", pid))
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s\n%s", strings.Join(problems, "\n"), s.errorLog())
	}
	return nil
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, rest, found := strings.Cut(string(b), ") ")
	return found && !strings.HasPrefix(rest, "Z")
}

// workers lists the master's live children (nginx runs no cache processes
// here, so they are its workers), from /proc.
func (s *server) workers() []int {
	if s.cmd == nil {
		return nil
	}
	master := s.cmd.Process.Pid
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may contain spaces.
		_, rest, found := strings.Cut(string(b), ") ")
		if !found {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 2 || f[0] == "Z" {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid == master {
			pids = append(pids, pid)
		}
	}
	return pids
}

// uid is pid's real user ID, from /proc.
func uid(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, found := strings.CutPrefix(line, "Uid:"); found {
			if f := strings.Fields(v); len(f) > 0 {
				return f[0], nil
			}
		}
	}
	return "", fmt.Errorf("no Uid line in /proc/%d/status", pid)
}

// client makes one full handshake per connection: no ClientSessionCache,
// so no resumption; the server's certificate must chain to the test CA and
// name 127.0.0.1.
type client struct {
	cfg *tls.Config
}

// get connects to k, does the handshake and a GET, and requires the
// response of generation gen.
func (c *client) get(ctx context.Context, k *tlsKey, gen int) error {
	_, err := c.getPID(ctx, k, gen)
	return err
}

// responseRE is a response body: the key's label, the generation, the PID
// of the worker that answered.
var responseRE = regexp.MustCompile(`\r\n\r\n(\w+) gen=(\d+) pid=(\d+)\n$`)

// getPID is get that returns the PID of the worker that answered.
func (c *client) getPID(ctx context.Context, k *tlsKey, gen int) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	d := &tls.Dialer{NetDialer: &net.Dialer{}, Config: c.cfg}
	nc, err := d.DialContext(ctx, "tcp", k.addr())
	if err != nil {
		return 0, fmt.Errorf("handshake: %w", err)
	}
	defer nc.Close()
	conn := nc.(*tls.Conn)
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if conn.ConnectionState().DidResume {
		return 0, errors.New("the session was resumed: not a full handshake")
	}
	if _, err := io.WriteString(conn, "GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
		return 0, fmt.Errorf("request: %w", err)
	}
	resp, err := io.ReadAll(io.LimitReader(conn, 4096))
	if err != nil {
		return 0, fmt.Errorf("response: %w", err)
	}
	m := responseRE.FindSubmatch(resp)
	if !bytes.HasPrefix(resp, []byte("HTTP/1.1 200 ")) || m == nil || string(m[1]) != k.label || string(m[2]) != strconv.Itoa(gen) {
		return 0, fmt.Errorf("unexpected response (want body \"%s gen=%d pid=...\"): %q", k.label, gen, resp)
	}
	pid, err := strconv.Atoi(string(m[3]))
	return pid, err
}

// load makes n connections to k from concurrency goroutines and returns
// the handshakes per second; it stops early after maxFailures failures and
// reports the first few.
func (c *client) load(ctx context.Context, k *tlsKey, gen, n int) (float64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next, done, failed atomic.Int64
		mu                 sync.Mutex
		errs               []string
		wg                 sync.WaitGroup
	)
	start := time.Now()
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && next.Add(1) <= int64(n) {
				t0 := time.Now()
				if err := c.get(ctx, k, gen); err != nil {
					if ctx.Err() != nil && failed.Load() >= maxFailures {
						return // cancelled by another goroutine's failures
					}
					mu.Lock()
					errs = append(errs, fmt.Sprintf("connection after %v: %v", time.Since(t0).Round(time.Millisecond), err))
					mu.Unlock()
					if failed.Add(1) >= maxFailures {
						cancel()
					}
					continue
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	rate := float64(done.Load()) / elapsed.Seconds()
	if f := failed.Load(); f > 0 || done.Load() != int64(n) {
		if len(errs) > maxFailures {
			errs = errs[:maxFailures]
		}
		return rate, fmt.Errorf("%d/%d handshakes succeeded, %d failed in %v (stopped after %d failures, or the test's %v budget ran out: %v):\n  %s",
			done.Load(), n, f, elapsed.Round(time.Millisecond), maxFailures, testBudget, ctx.Err(), strings.Join(errs, "\n  "))
	}
	return rate, nil
}

// freePorts picks n distinct free TCP ports on 127.0.0.1.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// testCA is a throwaway CA that certifies the token's public keys.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "gohsm nginx test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue certifies pubPEM (a token key's public key) for 127.0.0.1.
func (ca *testCA) issue(serial int64, cn string, pubPEM []byte) ([]byte, error) {
	blk, _ := pem.Decode(pubPEM)
	if blk == nil {
		return nil, fmt.Errorf("no PEM block in the exported public key: %q", pubPEM)
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// TestNginxTLSOffload: nginx with master_process on, two workers as an
// unprivileged user, an EC P-256 and an RSA-2048 key in gohsm, 20,000 full
// handshakes per key, then three reloads each followed by 2,000 more.
func TestNginxTLSOffload(t *testing.T) {
	testStart := time.Now()
	s, ca, _ := startNginx(t, "")
	keys := s.keys
	c := &client{cfg: &tls.Config{RootCAs: ca.pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}}

	ctx, cancel := context.WithTimeout(context.Background(), testBudget)
	defer cancel()
	type total struct {
		n       int
		elapsed time.Duration
	}
	totals := map[*tlsKey]*total{}
	loadAll := func(phase string, n int) {
		t.Helper()
		for _, k := range keys {
			name := fmt.Sprintf("%s: %d full handshakes, %s key, %d concurrent clients", phase, n, k.name, concurrency)
			check(t, name, func() error {
				t0 := time.Now()
				rate, err := c.load(ctx, k, s.gen, n)
				if totals[k] == nil {
					totals[k] = &total{}
				}
				totals[k].n += n
				totals[k].elapsed += time.Since(t0)
				if err != nil {
					return fmt.Errorf("%w\n%s", err, s.errorLog())
				}
				t.Logf("%s: %.0f handshakes/s", name, rate)
				return nil
			})
		}
	}
	loadAll("before reloads", fullHandshakes)

	for r := 1; r <= reloads; r++ {
		check(t, fmt.Sprintf("nginx -s reload %d: new workers serve", r), func() error {
			old := s.workers()
			s.writeConf(r)
			if out, err := s.nginxCmd("-s", "reload"); err != nil {
				return fmt.Errorf("%w\n%s", err, s.errorLog())
			} else if strings.TrimSpace(out) != "" {
				t.Logf("nginx -s reload: %s", strings.TrimSpace(out))
			}
			if err := s.waitServing(ctx, ca, old); err != nil {
				return err
			}
			return s.checkWorkers()
		})
		loadAll(fmt.Sprintf("after reload %d", r), reloadHandshakes)
	}

	check(t, "the master is still running", func() error {
		if !s.running() {
			return fmt.Errorf("the master exited\n%s", s.errorLog())
		}
		return nil
	})
	check(t, "the module's threads in the master and the workers block nginx's signals", func() error {
		return s.checkModuleThreadsMasked()
	})
	check(t, "nginx -s quit: the master and its workers exit", s.stop)
	// Every worker exit so far (three reloads, the quit) ran the module's
	// C_Finalize and exit path in a forked child.
	check(t, "error.log has no alert, emerg, crit or module error", s.checkErrorLog)
	check(t, "workers exited with code 0", func() error {
		b, err := os.ReadFile(s.errLog)
		if err != nil {
			return err
		}
		if n := strings.Count(string(b), "exited with code 0"); n < 2*(reloads+1) {
			return fmt.Errorf("%d worker exits with code 0 logged, want %d (2 per reload and 2 at quit)\n%s",
				n, 2*(reloads+1), s.errorLog())
		}
		return nil
	})
	for _, k := range keys {
		if tot := totals[k]; tot != nil {
			t.Logf("%s key: %d full handshakes in %v, %.0f handshakes/s", k.name, tot.n,
				tot.elapsed.Round(time.Millisecond), float64(tot.n)/tot.elapsed.Seconds())
		}
	}
	t.Logf("nginx test took %v", time.Since(testStart).Round(time.Millisecond))
}

// startNginx sets up a token with an EC P-256 and an RSA-2048 key (slotLines
// added to its slot section), certifies them, and starts nginx with two
// workers serving them. It returns the server, the CA its certificates
// chain to, and a runner of the gohsm CLI on the token (its output).
// nginx loads the default library, or the full one (libgohsm-pg.so) when
// slotLines name a PostgreSQL store, which the default one lacks.
func startNginx(t *testing.T, slotLines string) (*server, *testCA, func(args ...string) (string, error)) {
	t.Helper()
	lib := built(t, "GOHSM_LIB", "libgohsm.so", "lib")
	if strings.Contains(slotLines, "store = postgres") {
		lib = built(t, "GOHSM_PG_LIB", "libgohsm-pg.so", "pglib")
	}
	cli := built(t, "GOHSM_CLI", "gohsm", "cli")
	nginxBin := lookTool(t, "nginx", "nginx")
	opensslBin := lookTool(t, "openssl", "openssl")
	if _, err := os.Stat(pkcs11Engine); err != nil {
		missing(t, "%s not found: install Debian package libengine-pkcs11-openssl (tests/deps.sh does as root)", pkcs11Engine)
	}

	// Not t.TempDir: its parent directory is 0700, which the workers'
	// user could not traverse.
	dir, err := os.MkdirTemp("", "gohsm-nginx-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	for _, d := range []string{"logs", "tmp", "token"} {
		require.NoError(t, os.Mkdir(filepath.Join(dir, d), 0o755))
	}

	s := &server{t: t, nginx: nginxBin, dir: dir,
		conf: filepath.Join(dir, "nginx.conf"), errLog: filepath.Join(dir, "logs", "error.log")}
	if os.Geteuid() == 0 {
		s.worker, err = user.Lookup("nobody")
		require.NoError(t, err, "the workers' user")
	} else {
		t.Logf("not root: nginx ignores `user`, the workers run as this user")
	}

	// The module's configuration: a test token and a cheap KDF. The
	// workers read it (C_Initialize in each), so it is world-readable; it
	// holds no secret.
	gohsmConf := filepath.Join(dir, "gohsm.conf")
	require.NoError(t, os.WriteFile(gohsmConf, []byte(fmt.Sprintf(`# written by tests/nginx/nginx_test.go
token_dir = %s
log_level = error
kdf_time = 1
kdf_memory = 64
login_cache = off
kdf_threads = 1

[slot 0]
label = %s
%s`, filepath.Join(dir, "token"), tokenLabel, slotLines)), 0o644))
	// OpenSSL's configuration: libp11's engine with MODULE_PATH set to
	// libgohsm.so itself (without it libp11 goes through p11-kit-proxy.so),
	// INIT_ARGS handed to C_Initialize as pReserved (gohsm reads a path
	// there as its configuration file: no $GOHSM_CONF, no /etc), and
	// init = 1 because nginx never calls ENGINE_init.
	opensslConf := filepath.Join(dir, "openssl.cnf")
	require.NoError(t, os.WriteFile(opensslConf, []byte(fmt.Sprintf(`# written by tests/nginx/nginx_test.go
openssl_conf = openssl_init

[openssl_init]
engines = engine_section

[engine_section]
pkcs11 = pkcs11_section

[pkcs11_section]
engine_id = pkcs11
MODULE_PATH = %s
INIT_ARGS = %s
init = 1
`, lib, gohsmConf)), 0o644))
	// Exactly this environment: nothing else (no GOHSM_CONF, no HOME/XDG)
	// can point the module at another token.
	s.env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "OPENSSL_CONF=" + opensslConf}

	keys := []*tlsKey{
		{name: "EC P-256", label: "eck", id: "01", gen: []string{"ec", "--curve", "P-256"}},
		{name: "RSA-2048", label: "rsak", id: "02", gen: []string{"rsa", "--bits", "2048"}},
	}
	s.keys = keys
	cliEnv := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	gohsm := func(args ...string) (string, error) {
		return run(cliEnv, cli, append([]string{"--config", gohsmConf}, args...)...)
	}
	check(t, "token, crypto user and keys (gohsm CLI)", func() error {
		if _, err := gohsm("token", "init", "--label", tokenLabel, "--pin", soPIN); err != nil {
			return err
		}
		if _, err := gohsm("user", "create", "--username", "user", "--role", "crypto-user",
			"--password", userPassword, "--pin", soPIN); err != nil {
			return err
		}
		for _, k := range keys {
			args := append(append([]string{"key", "generate"}, k.gen...), "--label", k.label, "--id", k.id, "--pin", userPIN)
			if _, err := gohsm(args...); err != nil {
				return err
			}
		}
		return nil
	})

	// Certificates: the public keys exported through the same engine
	// configuration nginx uses, certified by a throwaway CA.
	ca := newTestCA(t)
	check(t, "certificates for the token keys (engine public key export + test CA)", func() error {
		for i, k := range keys {
			pub, err := run(s.env, opensslBin, "pkey", "-engine", "pkcs11", "-inform", "engine", "-pubin",
				"-in", "pkcs11:token="+tokenLabel+";object="+k.label+";type=public", "-pubout")
			if err != nil {
				return err
			}
			// openssl prints `Engine "pkcs11" set.` too: keep the PEM.
			start := strings.Index(pub, "-----BEGIN PUBLIC KEY-----")
			if start < 0 {
				return fmt.Errorf("no public key for %s in:\n%s", k.label, pub)
			}
			certPEM, err := ca.issue(int64(i+2), k.name, []byte(pub[start:]))
			if err != nil {
				return fmt.Errorf("%s: %w", k.name, err)
			}
			k.cert = filepath.Join(dir, k.label+".crt")
			if err := os.WriteFile(k.cert, certPEM, 0o644); err != nil {
				return err
			}
		}
		return nil
	})

	// The workers use the token as s.worker: the token directory and its
	// files become theirs (the master and `nginx -s` run as root and can
	// use them anyway; SQLite gives files it creates as root to the
	// database's owner).
	if s.worker != nil {
		check(t, "token directory owned by "+s.worker.Username, func() error {
			u, _ := strconv.Atoi(s.worker.Uid)
			g, _ := strconv.Atoi(s.worker.Gid)
			return filepath.Walk(filepath.Join(dir, "token"), func(p string, _ os.FileInfo, err error) error {
				if err != nil {
					return err
				}
				return os.Lchown(p, u, g)
			})
		})
	}

	// Ports are free when picked; should another process take one before
	// nginx binds it, start again with new ones.
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("FAIL nginx stop: %v", err)
		}
	})
	check(t, "nginx starts (master_process on, worker_processes 2)", func() error {
		var err error
		for attempt := 1; attempt <= 3; attempt++ {
			for i, p := range freePorts(t, len(keys)) {
				keys[i].port = p
			}
			s.writeConf(0)
			if out, err := s.nginxCmd("-t"); err != nil {
				return fmt.Errorf("nginx -t: %w\n%s", err, s.errorLog())
			} else {
				t.Logf("nginx -t: %s", strings.TrimSpace(out))
			}
			if err = s.start(); err != nil {
				return err
			}
			if err = s.waitServing(context.Background(), ca, nil); err == nil {
				return nil
			}
			if !strings.Contains(s.errorLog(), "Address already in use") {
				return err
			}
			t.Logf("a port was taken before nginx bound it: retrying (%v)", err)
			if err := s.stop(); err != nil {
				return err
			}
		}
		return err
	})

	check(t, "2 workers running as "+workerName(s.worker), func() error {
		return s.checkWorkers()
	})
	return s, ca, gohsm
}

// checkErrorLog requires an error log without alert, emerg or crit lines,
// workers killed by a signal, or lines of the module's log.
func (s *server) checkErrorLog() error {
	b, err := os.ReadFile(s.errLog)
	if err != nil {
		return err
	}
	var bad []string
	for _, line := range strings.Split(string(b), "\n") {
		for _, w := range []string{"[emerg]", "[alert]", "[crit]", "exited on signal", "gohsm:"} {
			if strings.Contains(line, w) {
				bad = append(bad, line)
				break
			}
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%d bad lines:\n%s", len(bad), strings.Join(bad, "\n"))
	}
	return nil
}

func workerName(u *user.User) string {
	if u == nil {
		return "this user"
	}
	return u.Username
}

// checkWorkers requires exactly two workers, running as s.worker.
// nginxSignals are the signals nginx's master and workers take (in
// sigsuspend() and epoll_wait()); on any other thread of theirs they must
// be blocked, or the kernel may hand them to a thread of the module
// (pkcs11/signals.c: once a module thread took the last worker's SIGCHLD,
// the master slept on and `nginx -s quit` hung).
var nginxSignals = []syscall.Signal{syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGALRM, syscall.SIGCHLD, syscall.SIGIO, syscall.SIGWINCH}

// checkModuleThreadsMasked: in the master and each worker, every thread but
// the main one (the module's: nginx has no others in this configuration)
// blocks nginxSignals. The master must have such threads (its module copy
// runs a Go runtime), so the check cannot pass by finding none.
func (s *server) checkModuleThreadsMasked() error {
	master := s.cmd.Process.Pid
	others := 0
	for _, pid := range append([]int{master}, s.workers()...) {
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			return err
		}
		for _, task := range tasks {
			tid, err := strconv.Atoi(task.Name())
			if err != nil || tid == pid {
				continue
			}
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/status", pid, tid))
			if err != nil {
				continue // exited meanwhile
			}
			var blk uint64
			for _, line := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, "SigBlk:"); ok {
					blk, err = strconv.ParseUint(strings.TrimSpace(v), 16, 64)
					if err != nil {
						return fmt.Errorf("pid %d thread %d: SigBlk %q: %v", pid, tid, v, err)
					}
				}
			}
			if pid == master {
				others++
			}
			for _, sig := range nginxSignals {
				if blk&(1<<(uint(sig)-1)) == 0 {
					return fmt.Errorf("pid %d (master %d) thread %d accepts %v (SigBlk %016x)", pid, master, tid, sig, blk)
				}
			}
		}
	}
	if others == 0 {
		return fmt.Errorf("the master (pid %d) has no thread but its main one: nothing was checked", master)
	}
	return nil
}

func (s *server) checkWorkers() error {
	pids := s.workers()
	if len(pids) != 2 {
		return fmt.Errorf("master %d has %d children %v, want 2 workers\n%s", s.cmd.Process.Pid, len(pids), pids, s.errorLog())
	}
	want := strconv.Itoa(os.Getuid())
	if s.worker != nil {
		want = s.worker.Uid
	}
	for _, pid := range pids {
		got, err := uid(pid)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("worker %d runs as uid %s, want %s", pid, got, want)
		}
	}
	return nil
}

// waitServing waits until both keys answer with the current generation
// and, after a reload, until none of the old workers is left (they finish
// their connections and exit; new connections go to the new workers only).
func (s *server) waitServing(ctx context.Context, ca *testCA, old []int) error {
	c := &client{cfg: &tls.Config{RootCAs: ca.pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var last error
	for {
		if !s.running() {
			return fmt.Errorf("nginx exited\n%s", s.errorLog())
		}
		last = nil
		for _, k := range s.keys {
			if err := c.get(ctx, k, s.gen); err != nil {
				last = fmt.Errorf("%s: %w", k.name, err)
				break
			}
		}
		if last == nil {
			var left []int
			for _, pid := range old {
				if alive(pid) {
					left = append(left, pid)
				}
			}
			if len(left) == 0 {
				return nil
			}
			last = fmt.Errorf("old workers %v still running", left)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("generation %d not served within a minute: %v\n%s", s.gen, last, s.errorLog())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
