// Package clients drives the built libgohsm.so with real PKCS#11 clients
// from Debian's packages (GnuTLS, OpenSSL's libp11 engine, p11-kit, Java,
// NSS, Go libraries) and checks what they produce with openssl.
//
// Every check is a subtest that logs "PASS name" or fails with the
// command's output. The library and CLI must be built first (`make lib cli`,
// or $GOHSM_LIB / $GOHSM_CLI); the clients come from tests/deps.sh. When
// CI=true a missing library, CLI or client fails the test; elsewhere it
// skips, saying why.
//
// This file holds the helpers every client test shares; keep it small.
package clients

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"gohsm/internal/testenv"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The PINs of every test token: the first crypto officer, "admin", and the
// default crypto user, "user" (a bare password names it).
const (
	soPassword   = "sopassword1"
	soPIN        = "admin:" + soPassword
	userPassword = "userpassword1"
	userPIN      = "user:" + userPassword
)

func inCI() bool { return testenv.InCI() }

func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	testenv.Missing(t, format, args...)
}

func built(t *testing.T, envVar, name, target string) string {
	t.Helper()
	return testenv.Built(t, envVar, name, target)
}

// libPath is the module under test: $GOHSM_LIB or ../../build/libgohsm.so.
func libPath(t *testing.T) string {
	t.Helper()
	return built(t, "GOHSM_LIB", "libgohsm.so", "lib")
}

// cliPath is the management CLI: $GOHSM_CLI or ../../build/gohsm.
func cliPath(t *testing.T) string {
	t.Helper()
	return built(t, "GOHSM_CLI", "gohsm", "cli")
}

// needTool returns the path of binary, installed by tests/deps.sh from the
// Debian package pkg.
func needTool(t *testing.T, binary, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(binary)
	if err != nil {
		missing(t, "%s not found: install Debian package %s (tests/deps.sh does as root)", binary, pkg)
	}
	return p
}

// needFile returns path (a plugin or module, not on $PATH) when it exists,
// installed by tests/deps.sh from the Debian package pkg.
func needFile(t *testing.T, path, pkg string) string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		missing(t, "%s not found: install Debian package %s (tests/deps.sh does as root)", path, pkg)
	}
	return path
}

// hsm is one test's token: a temporary token directory, a config file with
// a cheap KDF, and an initialised token with a crypto officer (soPIN) and
// the default crypto user (userPIN).
type hsm struct {
	Lib   string // absolute path of libgohsm.so
	CLI   string // absolute path of the gohsm CLI
	Label string // token label
	Dir   string // work directory for the test's files (not the token's)
	Conf  string // config file
	// Env is what subprocesses need to find the token: GOHSM_CONF, and
	// XDG_* pointing into Dir so nothing touches the user's own files.
	Env []string
}

// newHSM sets up a fresh token labelled label for t (removed with t).
func newHSM(t *testing.T, label string) *hsm {
	t.Helper()
	return newHSMWith(t, label, "")
}

// newHSMWith is newHSM with slotLines added to the slot's section.
func newHSMWith(t *testing.T, label, slotLines string) *hsm {
	t.Helper()
	h := &hsm{Lib: libPath(t), CLI: cliPath(t), Label: label, Dir: t.TempDir()}
	tokenDir := filepath.Join(h.Dir, "token")
	require.NoError(t, os.Mkdir(tokenDir, 0o700))
	h.Conf = filepath.Join(h.Dir, "gohsm.conf")
	conf := fmt.Sprintf(`# written by tests/clients for %s
token_dir = %s
log_level = error
kdf_time = 1
kdf_memory = 64
login_cache = off
kdf_threads = 1

[slot 0]
label = %s
%s`, t.Name(), tokenDir, label, slotLines)
	require.NoError(t, os.WriteFile(h.Conf, []byte(conf), 0o600))
	h.Env = []string{"GOHSM_CONF=" + h.Conf,
		"XDG_CONFIG_HOME=" + filepath.Join(h.Dir, "xdg-config"),
		"XDG_DATA_HOME=" + filepath.Join(h.Dir, "xdg-data")}
	h.gohsm(t, "token", "init", "--label", label, "--pin", soPIN)
	h.gohsm(t, "user", "create", "--username", "user", "--role", "crypto-user",
		"--password", userPassword, "--pin", soPIN)
	return h
}

// gohsm runs the CLI on the test's token and requires success.
func (h *hsm) gohsm(t *testing.T, args ...string) string {
	t.Helper()
	out, err := run(t, time.Minute, h.Env, h.CLI, append([]string{"--config", h.Conf}, args...)...)
	require.NoError(t, err, out)
	return out
}

// Path names a file in the test's work directory.
func (h *hsm) Path(name string) string { return filepath.Join(h.Dir, name) }

// run runs name with args and the extra environment env (on top of this
// process's), in no particular directory, bounded by timeout so that a hang
// fails instead of stalling the suite. It returns stdout and stderr
// together and a non-nil error when the command did not exit 0; it logs
// the command and its exit status (with the output when not 0). It logs
// no PASS/FAIL: checks decide what an exit status means (verifying a
// tampered signature must fail), and check logs the verdict.
func run(t *testing.T, timeout time.Duration, env []string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = nil
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("timed out after %v (a hang?): %w", timeout, err)
	}
	line := "$ " + filepath.Base(name) + " " + strings.Join(args, " ")
	if err != nil {
		t.Logf("%s\n-> %v:\n%s", line, err, out.String())
		return out.String(), fmt.Errorf("%s: %w\n%s", line, err, out.String())
	}
	t.Logf("%s\n-> exit status 0", line)
	return out.String(), nil
}

// mustRun is run that fails the test unless the command exits 0.
func mustRun(t *testing.T, timeout time.Duration, env []string, name string, args ...string) string {
	t.Helper()
	out, err := run(t, timeout, env, name, args...)
	require.NoError(t, err)
	return out
}

// check runs f as the subtest name and logs "PASS name" when it passed
// ("FAIL name" otherwise); it reports whether it passed so that later
// checks that depend on it can stop.
func check(t *testing.T, name string, f func(t *testing.T)) bool {
	t.Helper()
	passed := t.Run(name, func(t *testing.T) {
		f(t)
		if !t.Failed() && !t.Skipped() {
			t.Logf("PASS %s", name)
		}
	})
	if !passed {
		t.Logf("FAIL %s", name)
	}
	return passed
}
