// Package e2e drives the built libgohsm.so end to end through
// github.com/miekg/pkcs11, in this process and in helper processes that
// re-execute the test binary (TestHelperProcess), each loading the library
// itself.
//
// Loading a Go c-shared library into a Go test binary puts a second Go
// runtime in the process. That works in practice but is unsupported
// upstream, so these tests live in their own package and are never the only
// proof of a behaviour (tests/abi drives the library from C).
//
// The library must be built first (`make lib`); $GOHSM_LIB names another
// file. Without it the tests skip, or fail when CI=true.
//
// Every test gets its own token directory and configuration file, with a
// cheap KDF so logins are fast. The library is loaded once per process and
// re-initialised per test: C_Initialize reads the configuration each time.
//
// With GOHSM_TEST_STORE=postgres (pgtest.StoreEnv) each test's slot keeps
// its token in a fresh database of one PostgreSQL server for the package
// (pgtest.Shared; `store = <DSN>` in the slot section), and the token
// directory keeps only what is per host. The tests that reach behind the
// library into the store (a damaged token, the plaintext scan) do it on
// either backend.
package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/require"

	"gohsm/internal/testenv/pgtest"
)

// TestMain runs the tests under pgtest.Run, which stops the Shared
// PostgreSQL server when they are done (started only if a test asked for
// it: on PostgreSQL, or never). Helper processes start no server.
func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

// PINs every test token uses. The CO is the default officer "admin" (a PIN
// without "name:"), crypto users are named.
const (
	soPIN     = "admin:sopassword"
	userPIN   = "alice:alicepassword"
	tokenName = "e2e"
)

// inCI reports whether a missing prerequisite must fail rather than skip.
func inCI() bool { return os.Getenv("CI") == "true" }

// libraryPath is the module the tests load: the default one
// ($GOHSM_LIB, build/libgohsm.so), or with GOHSM_TEST_STORE=postgres the
// full one ($GOHSM_PG_LIB, build/libgohsm-pg.so), the default one having
// no PostgreSQL store.
func libraryPath() (string, error) {
	env, name, target := "GOHSM_LIB", "libgohsm.so", "lib"
	backend, err := pgtest.Backend()
	if err != nil {
		return "", err
	}
	if backend == "postgres" {
		env, name, target = "GOHSM_PG_LIB", "libgohsm-pg.so", "pglib"
	}
	lib := os.Getenv(env)
	if lib == "" {
		wd, err := os.Getwd()
		if err != nil {
			return "", err
		}
		lib = filepath.Join(wd, "..", "..", "build", name)
	}
	lib, err = filepath.Abs(lib)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(lib); err != nil {
		return "", fmt.Errorf("library %s not found (run `make %s` or set %s): %w", lib, target, env, err)
	}
	return lib, nil
}

var (
	loadOnce sync.Once
	loaded   *pkcs11.Ctx
	loadErr  error
	libPath  string
)

// module loads the library once for the process. The library stays loaded
// (Go marks c-shared libraries NODELETE), so the context is never destroyed.
func module(t testing.TB) *pkcs11.Ctx {
	t.Helper()
	loadOnce.Do(func() {
		libPath, loadErr = libraryPath()
		if loadErr != nil {
			return
		}
		loaded = pkcs11.New(libPath)
		if loaded == nil {
			loadErr = fmt.Errorf("dlopen %s failed", libPath)
		}
	})
	if loadErr != nil {
		if inCI() {
			t.Fatalf("e2e: %v (CI=true: not skipping)", loadErr)
		}
		t.Skipf("e2e: %v", loadErr)
	}
	return loaded
}

// configText is the one place that knows the configuration format
// (token/config.go): extra goes to the global section, slot0 (a store line
// from pgtest.SlotStore, or "") to slot 0's.
func configText(tokenDir, slot0 string, extra ...string) string {
	return fmt.Sprintf(`# written by tests/e2e
token_dir = %s
log_level = error
kdf_time = 1
kdf_memory = 64
login_cache = off
kdf_threads = 1
%s

[slot 0]
label = %s
%s
`, tokenDir, strings.Join(extra, "\n"), tokenName, slot0)
}

// tok is one test's token: its directory, configuration file and the
// library initialised on it in this process.
type tok struct {
	t    *testing.T
	p    *pkcs11.Ctx
	dir  string // token_dir
	conf string // configuration file
	slot uint
	// store is slot 0's store line: "" (SQLite in dir) or "store = DSN".
	store string
}

// newToken writes a configuration for a fresh token directory and
// initialises the library on it (through the C_Initialize pReserved string;
// helper processes use $GOHSM_CONF). It is finalised when the test ends.
func newToken(t *testing.T, extra ...string) *tok {
	t.Helper()
	p := module(t)
	dir := t.TempDir()
	tk := &tok{t: t, p: p, dir: filepath.Join(dir, "tokens"), conf: filepath.Join(dir, "gohsm.conf")}
	tk.store = pgtest.SlotStore(t, "e2e")
	require.NoError(t, os.WriteFile(tk.conf, []byte(configText(tk.dir, tk.store, extra...)), 0o600))
	tk.initialize()
	t.Cleanup(func() {
		if err := p.Finalize(); err != nil && !isRV(err, pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED) {
			t.Errorf("C_Finalize: %v", err)
		}
	})
	slots, err := p.GetSlotList(true)
	require.NoError(t, err)
	require.Equal(t, []uint{0}, slots)
	tk.slot = slots[0]
	return tk
}

// initialize calls C_Initialize with the configuration file's path as
// pReserved.
func (tk *tok) initialize() {
	tk.t.Helper()
	path := append([]byte(tk.conf), 0)
	err := tk.p.Initialize(pkcs11.InitializeWithReserved(unsafe.Pointer(&path[0])))
	runtime.KeepAlive(path)
	require.NoError(tk.t, err, "C_Initialize")
}

// finalize ends this process's use of the token (C_Finalize), for tests
// that need the token files closed; initialize resumes.
func (tk *tok) finalize() {
	tk.t.Helper()
	require.NoError(tk.t, tk.p.Finalize(), "C_Finalize")
}

// initToken runs C_InitToken with the test CO and creates the crypto user
// alice (C_InitPIN as the CO), leaving no session open.
func (tk *tok) initToken() {
	tk.t.Helper()
	require.NoError(tk.t, tk.p.InitToken(tk.slot, soPIN, tokenName), "C_InitToken")
	tk.initPIN(userPIN)
}

// initPIN sets a crypto user's PIN as the CO in a session of its own.
func (tk *tok) initPIN(pin string) {
	tk.t.Helper()
	s := tk.session()
	require.NoError(tk.t, tk.p.Login(s, pkcs11.CKU_SO, soPIN), "C_Login CO")
	require.NoError(tk.t, tk.p.InitPIN(s, pin), "C_InitPIN")
	require.NoError(tk.t, tk.p.Logout(s))
	require.NoError(tk.t, tk.p.CloseSession(s))
}

// session opens a R/W session, closed when the test ends if still open.
func (tk *tok) session() pkcs11.SessionHandle {
	tk.t.Helper()
	s, err := tk.p.OpenSession(tk.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	require.NoError(tk.t, err, "C_OpenSession")
	return s
}

// userSession opens a R/W session logged in as pin's crypto user.
func (tk *tok) userSession(pin string) pkcs11.SessionHandle {
	tk.t.Helper()
	s := tk.session()
	require.NoError(tk.t, tk.p.Login(s, pkcs11.CKU_USER, pin), "C_Login %s", pin)
	return s
}

// find returns every object matching tmpl.
func (tk *tok) find(s pkcs11.SessionHandle, tmpl ...*pkcs11.Attribute) []pkcs11.ObjectHandle {
	tk.t.Helper()
	hs, err := findAll(tk.p, s, tmpl)
	require.NoError(tk.t, err)
	return hs
}

func findAll(p *pkcs11.Ctx, s pkcs11.SessionHandle, tmpl []*pkcs11.Attribute) ([]pkcs11.ObjectHandle, error) {
	if err := p.FindObjectsInit(s, tmpl); err != nil {
		return nil, fmt.Errorf("C_FindObjectsInit: %w", err)
	}
	var all []pkcs11.ObjectHandle
	for {
		hs, _, err := p.FindObjects(s, 256)
		if err != nil {
			p.FindObjectsFinal(s)
			return nil, fmt.Errorf("C_FindObjects: %w", err)
		}
		if len(hs) == 0 {
			break
		}
		all = append(all, hs...)
	}
	if err := p.FindObjectsFinal(s); err != nil {
		return nil, fmt.Errorf("C_FindObjectsFinal: %w", err)
	}
	return all, nil
}

// attr reads one attribute's value.
func (tk *tok) attr(s pkcs11.SessionHandle, o pkcs11.ObjectHandle, typ uint) []byte {
	tk.t.Helper()
	a, err := tk.p.GetAttributeValue(s, o, []*pkcs11.Attribute{pkcs11.NewAttribute(typ, nil)})
	require.NoError(tk.t, err, "C_GetAttributeValue 0x%x", typ)
	require.Len(tk.t, a, 1)
	return a[0].Value
}

func (tk *tok) boolAttr(s pkcs11.SessionHandle, o pkcs11.ObjectHandle, typ uint) bool {
	tk.t.Helper()
	v := tk.attr(s, o, typ)
	require.Len(tk.t, v, 1, "CK_BBOOL attribute 0x%x", typ)
	return v[0] != 0
}

// isRV reports whether err is the Cryptoki error code rv.
func isRV(err error, rv uint) bool { return errors.Is(err, pkcs11.Error(rv)) }

// requireRV fails unless err is one of the Cryptoki error codes rvs.
func requireRV(t testing.TB, err error, rvs ...uint) {
	t.Helper()
	for _, rv := range rvs {
		if isRV(err, rv) {
			return
		}
	}
	want := make([]string, len(rvs))
	for i, rv := range rvs {
		want[i] = pkcs11.Error(rv).Error()
	}
	t.Fatalf("got error %v, want %s", err, strings.Join(want, " or "))
}

// ---- helper processes ----------------------------------------------------

// roleEnv selects a helper process's role (its arguments follow "--" on
// the command line); pinEnv is the PIN it logs in with.
const (
	roleEnv = "GOHSM_E2E_ROLE"
	pinEnv  = "GOHSM_E2E_PIN"
)

// helper is a running helper process: its stdout lines arrive on lines,
// which is closed at EOF.
type helper struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr *strings.Builder
	mu     *sync.Mutex
}

// helperCmd builds a helper process of a role on the token, logged in with
// pin (when the role logs in).
func (tk *tok) helperCmd(role, pin string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^TestHelperProcess$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), roleEnv+"="+role, "GOHSM_CONF="+tk.conf, "GOHSM_LIB="+libPath, pinEnv+"="+pin)
	return cmd
}

// start starts a helper process and streams its stdout lines.
func (tk *tok) start(role, pin string, args ...string) *helper {
	tk.t.Helper()
	cmd := tk.helperCmd(role, pin, args...)
	h := &helper{cmd: cmd, lines: make(chan string, 4096), stderr: &strings.Builder{}, mu: &sync.Mutex{}}
	stdin, err := cmd.StdinPipe()
	require.NoError(tk.t, err)
	h.stdin = stdin
	out, err := cmd.StdoutPipe()
	require.NoError(tk.t, err)
	cmd.Stderr = lockedWriter{h.mu, h.stderr}
	require.NoError(tk.t, cmd.Start(), "start helper %s", role)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			h.lines <- sc.Text()
		}
		close(h.lines)
	}()
	tk.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return h
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (h *helper) errText() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stderr.String()
}

// expect waits for the next stdout line, which must be want.
func (h *helper) expect(t testing.TB, want string, timeout time.Duration) {
	t.Helper()
	select {
	case l, ok := <-h.lines:
		if !ok {
			h.cmd.Wait()
			t.Fatalf("helper %v ended before %q: stderr:\n%s", h.cmd.Args, want, h.errText())
		}
		if l != want {
			t.Fatalf("helper said %q, want %q; stderr:\n%s", l, want, h.errText())
		}
	case <-time.After(timeout):
		t.Fatalf("helper did not say %q within %v; stderr:\n%s", want, timeout, h.errText())
	}
}

// wait collects the remaining stdout lines and waits for the process, which
// must succeed.
func (h *helper) wait(t testing.TB) []string {
	t.Helper()
	var out []string
	for l := range h.lines {
		out = append(out, l)
	}
	if err := h.cmd.Wait(); err != nil {
		t.Fatalf("helper %v: %v; stderr:\n%s", h.cmd.Args[1:], err, h.errText())
	}
	return out
}

// run runs a helper to completion and returns its stdout lines.
func (tk *tok) run(role, pin string, args ...string) []string {
	tk.t.Helper()
	return tk.start(role, pin, args...).wait(tk.t)
}
