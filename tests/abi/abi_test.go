// Package abi_test drives the built libgohsm.so with the C programs in
// testdata/ (there so that the go tool does not take them for cgo sources). Each program dlopen()s the library, reaches it only through
// its function lists, prints "PASS name" / "FAIL name: detail" lines and
// exits non-zero on any failure. The library must be built first (`make
// lib`, which `make test` does); set $GOHSM_LIB to test another file.
package abi_test

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
)

func tokenConfig(tokenDir string) string { return testenv.TokenConfig(tokenDir, "abi") }

func inCI() bool { return testenv.InCI() }

func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	testenv.Missing(t, format, args...)
}

func repoRoot(t *testing.T) string { return testenv.RepoRoot(t) }

func library(t *testing.T) string { return testenv.Library(t) }

// buildDriver compiles testdata/<name>.c against include/ into dir.
func buildDriver(t *testing.T, name, dir string) string {
	t.Helper()
	return testenv.CompileC(t, filepath.Join("testdata", name+".c"), filepath.Join(dir, name), "pkcs11", filepath.Join("internal", "ossl"))
}

// runDriver builds and runs one driver against a fresh token and fails the
// test on a non-zero exit, a timeout, a FAIL line or no PASS line at all.
// It returns the driver's standard output.
func runDriver(t *testing.T, name string, timeout time.Duration) string {
	t.Helper()
	lib := library(t)
	dir := t.TempDir()
	bin := buildDriver(t, name, dir)

	tokenDir := filepath.Join(dir, "token")
	if err := os.MkdirAll(tokenDir, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "gohsm.conf")
	if err := os.WriteFile(conf, []byte(tokenConfig(tokenDir)), 0o600); err != nil {
		t.Fatal(err)
	}

	env := append(os.Environ(), "GOHSM_CONF="+conf, "XDG_CONFIG_HOME="+dir, "XDG_DATA_HOME="+dir)
	return execDriver(t, name, bin, dir, env, timeout, lib)
}

// execDriver runs a built driver with args in dir and environment env and
// fails the test on a non-zero exit, a timeout, a FAIL line or no PASS line
// at all. It returns the driver's standard output.
func execDriver(t *testing.T, name, bin, dir string, env []string, timeout time.Duration, args ...string) string {
	t.Helper()
	out, _ := execDriverStderr(t, name, bin, dir, env, timeout, args...)
	return out
}

// execDriverStderr is execDriver that also returns the driver's standard
// error: the module's log lines.
func execDriverStderr(t *testing.T, name, bin, dir string, env []string, timeout time.Duration, args ...string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir, cmd.Env = dir, env
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()

	out := stdout.String()
	var fails []string
	passes := 0
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "PASS "):
			passes++
		case strings.HasPrefix(line, "FAIL "):
			fails = append(fails, line)
		}
	}
	report := func() string {
		return fmt.Sprintf("--- stdout\n%s--- stderr\n%s", out, stderr.String())
	}
	name = strings.TrimSpace(name + " " + strings.Join(args[1:], " "))
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		t.Fatalf("%s timed out after %v (a hang)\n%s", name, timeout, report())
	case err != nil:
		t.Fatalf("%s: %v; %d passed, %d failed:\n%s\n%s", name, err, passes, len(fails),
			strings.Join(fails, "\n"), report())
	case len(fails) > 0:
		t.Fatalf("%s exited 0 but printed failures:\n%s\n%s", name, strings.Join(fails, "\n"), report())
	case passes == 0:
		t.Fatalf("%s printed no PASS line\n%s", name, report())
	}
	t.Logf("%s: %d checks passed", name, passes)
	if testing.Verbose() {
		t.Log("\n" + out + stderr.String())
	}
	return out, stderr.String()
}

// TestBasic: lists, interfaces, C_Initialize arguments, functions answered
// in C, argument/handle checks, the fresh token's sessions and logins.
func TestBasic(t *testing.T) {
	t.Parallel()
	runDriver(t, "abi_basic", 2*time.Minute)
}

// TestSessionStates: each of the five session states and each kind of call
// the state rules govern (crypto use, key generation, session and token
// object creation, modify and destroy of token objects, C_InitPIN,
// C_SetPIN), with answers written in the driver from the spec.
func TestSessionStates(t *testing.T) {
	t.Parallel()
	runDriver(t, "abi_states", 2*time.Minute)
}

// TestBuffers: length query / short buffer / retry for C_Sign, C_Encrypt
// and C_Decrypt; end-of-operation rules; C_GetAttributeValue answers.
func TestBuffers(t *testing.T) {
	t.Parallel()
	runDriver(t, "abi_buffers", 2*time.Minute)
}

// TestFork: a forked child never enters the parent's Go runtime: calls
// before C_Initialize are refused, C_Initialize gives a working fresh copy
// of the module (tests/fork has the heavy harness). A regression shows up
// as children killed after 10 s each.
func TestFork(t *testing.T) {
	t.Parallel()
	runDriver(t, "abi_fork", 2*time.Minute)
}

// TestYieldRule: when a calling thread yields to the Go scheduler
// (pkcs11/yield.h), checked on the rule's own functions.
func TestYieldRule(t *testing.T) {
	t.Parallel()
	runDriver(t, "abi_yield", 30*time.Second)
}

// TestForkGuard: internal/ossl's fork guard with real threads and fork():
// fork() waits for threads inside libcrypto calls and for exiting threads
// that used it; threads entering or exiting during a fork wait for its end.
func TestForkGuard(t *testing.T) {
	t.Parallel()
	runDriver(t, "abi_forkguard", 60*time.Second)
}

// TestEnvironmentAtInitialize: GOHSM_CONF set with setenv() after the
// module was loaded is honoured.
func TestEnvironmentAtInitialize(t *testing.T) {
	runDriver(t, "abi_env", 30*time.Second)
}

// TestSignalsStayWithTheHost: the module's own threads block the host's
// asynchronous signals, so a process-directed signal (a child's exit,
// `nginx -s quit`) reaches the host's thread waiting in sigsuspend(), in
// the process and in a forked child's fresh copy (pkcs11/signals.c).
func TestSignalsStayWithTheHost(t *testing.T) {
	t.Parallel()
	runDriver(t, "abi_signals", 60*time.Second)
}

// TestBounds: maximal lengths and counts in every parameter structure,
// template, size attribute, data buffer and PIN get a clean CK_RV and the
// process lives (issue 13, item 9).
func TestBounds(t *testing.T) {
	t.Parallel()
	runDriver(t, "abi_bounds", 2*time.Minute)
}

// TestErrorPrecedence: an invalid session handle wins over every other
// error of the call, in every function that takes one (issue 13, item 14).
func TestErrorPrecedence(t *testing.T) {
	t.Parallel()
	runDriver(t, "abi_precedence", time.Minute)
}

// TestCSign: C_Sign of a CKM_ECDSA operation on a P-256 key is answered
// in C, without entering Go (pkcs11/csign.h), and gives every answer the
// Go path gives: length query, short buffer, bad arguments, the ends of
// the operation (C_SignUpdate/Final, C_SessionCancel, C_CloseSession,
// C_CloseAllSessions, C_Logout, C_Finalize), two threads, a forked child.
func TestCSign(t *testing.T) {
	t.Parallel()
	runDriver(t, "abi_csign", 2*time.Minute)
}
