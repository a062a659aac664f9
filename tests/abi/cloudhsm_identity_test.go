package abi_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gohsm/internal/testenv"
)

// The identity, session and token rules of the cloudhsm profile
// (docs/cloudhsm.md "Identity", "Sessions and token"), driven through the
// built library by testdata/abi_cloudhsm_identity.c once per profile: the
// same scenario passes in one and gets the documented error in the other.
// Tokens are set up as a CloudHSM user would, with the CLI (build/gohsm):
// an officer, then crypto users.

const identityPassword = "user-pw-12" // USER_PASSWORD in the driver

// identityEnv is one throwaway token in slot 1 with the given profile.
type identityEnv struct {
	dir, conf, lib, cli string
}

func newIdentityEnv(t *testing.T, profile string) *identityEnv {
	t.Helper()
	e := &identityEnv{dir: t.TempDir(), lib: library(t), cli: testenv.CLI(t)}
	tokenDir := filepath.Join(e.dir, "token")
	e.conf = filepath.Join(e.dir, "gohsm.conf")
	conf := fmt.Sprintf(`token_dir = %s
log_level = error
kdf_time = 1
kdf_memory = 64
login_cache = off
kdf_threads = 1

[slot 1]
label = abi
profile = %s
`, tokenDir, profile)
	if err := os.WriteFile(e.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// gohsm runs the CLI; it returns its exit code and output.
func (e *identityEnv) gohsm(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(e.cli, append([]string{"--config", e.conf}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("gohsm %v: %v", args, err)
	}
	return code, out.String()
}

func (e *identityEnv) mustGohsm(t *testing.T, args ...string) {
	t.Helper()
	if code, out := e.gohsm(t, args...); code != 0 {
		t.Fatalf("gohsm %v: exit %d\n%s", args, code, out)
	}
}

// setUp makes officer "admin" and the given crypto users, all through the
// CLI.
func (e *identityEnv) setUp(t *testing.T, users ...string) {
	t.Helper()
	e.mustGohsm(t, "token", "init", "--label", "abi", "--pin", "admin:officer-pw")
	for _, u := range users {
		e.mustGohsm(t, "user", "create", "--username", u, "--role", "crypto-user", "--password", identityPassword, "--pin", "admin:officer-pw")
	}
}

func (e *identityEnv) driverCmd(t *testing.T, ctx context.Context, bin string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, append([]string{e.lib}, args...)...)
	cmd.Dir = e.dir
	cmd.Env = append(os.Environ(), "GOHSM_CONF="+e.conf)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// runIdentity runs the driver in a mode and fails on any FAIL line.
func (e *identityEnv) run(t *testing.T, bin, profile, mode string) {
	t.Helper()
	execDriver(t, filepath.Base(bin), bin, e.dir, append(os.Environ(), "GOHSM_CONF="+e.conf), time.Minute, e.lib, profile, mode)
}

// TestCloudHSMIdentity: PIN format, application-wide login, read-only
// sessions, public sessions, unsupported functions, slot and token info,
// 1,024 sessions, in each profile; and a store no officer set up yet.
func TestCloudHSMIdentity(t *testing.T) {
	bin := buildDriver(t, "abi_cloudhsm_identity", t.TempDir())
	for _, profile := range []string{"cloudhsm", "standard"} {
		t.Run(profile, func(t *testing.T) {
			t.Parallel()
			fresh := newIdentityEnv(t, profile)
			fresh.run(t, bin, profile, "fresh")
			e := newIdentityEnv(t, profile)
			e.setUp(t, "alice", "user")
			e.run(t, bin, profile, "rules")
		})
	}
}

// holder is a driver process holding a login until told otherwise.
type holder struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines *bufio.Scanner
}

func (e *identityEnv) hold(t *testing.T, bin, profile, pin string) *holder {
	t.Helper()
	cmd := e.driverCmd(t, context.Background(), bin, profile, "hold", pin)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &holder{cmd: cmd, in: in, lines: bufio.NewScanner(out)}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	h.expect(t, "READY")
	return h
}

// expect reads lines until one ending in want; a FAIL line fails the test.
func (h *holder) expect(t *testing.T, want string) {
	t.Helper()
	done := make(chan string, 1)
	go func() {
		var seen []string
		for h.lines.Scan() {
			l := h.lines.Text()
			seen = append(seen, l)
			if strings.HasPrefix(l, "FAIL ") || strings.HasSuffix(l, want) {
				done <- strings.Join(seen, "\n")
				return
			}
		}
		done <- strings.Join(seen, "\n") + "\n(end of output)"
	}()
	select {
	case s := <-done:
		if !strings.HasSuffix(s, want) {
			t.Fatalf("driver: want %q, got:\n%s", want, s)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("driver: no %q after 30 s", want)
	}
}

func (h *holder) do(t *testing.T, command string) {
	t.Helper()
	if _, err := fmt.Fprintln(h.in, command); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "DONE "+command)
}

// TestCloudHSMLoginRegistry: a crypto user logged in in one process (the C
// driver, through the library) cannot be deleted by another (the CLI), in
// either profile, nor, in cloudhsm, have its password changed; the refusal
// ends when the holder logs out, closes its last session, calls
// C_Finalize, exits without C_Finalize, or is killed with SIGKILL (in the
// last two its entry stays, dead with the process).
func TestCloudHSMLoginRegistry(t *testing.T) {
	bin := buildDriver(t, "abi_cloudhsm_identity", t.TempDir())
	for _, profile := range []string{"cloudhsm", "standard"} {
		t.Run(profile, func(t *testing.T) {
			t.Parallel()
			e := newIdentityEnv(t, profile)
			endings := []string{"logout", "close", "finalize", "exit", "SIGKILL"}
			users := []string{"alice", "bob", "carol", "dave", "erin"}
			e.setUp(t, users...)
			for i, ending := range endings {
				u := users[i]
				h := e.hold(t, bin, profile, u+":"+identityPassword)
				code, out := e.gohsm(t, "user", "delete", "--username", u, "--pin", "admin:officer-pw")
				if code == 0 || !strings.Contains(out, "CKR_USER_ALREADY_LOGGED_IN") ||
					!strings.Contains(out, fmt.Sprintf("process %d", h.cmd.Process.Pid)) {
					t.Fatalf("%s: delete of %s logged in by process %d: exit %d\n%s", ending, u, h.cmd.Process.Pid, code, out)
				}
				code, out = e.gohsm(t, "user", "change-password", "--username", u, "--password", "new-pw-123", "--pin", "admin:officer-pw")
				if profile == "cloudhsm" && (code == 0 || !strings.Contains(out, "CKR_USER_ALREADY_LOGGED_IN")) {
					t.Fatalf("%s: password change of logged-in %s: exit %d\n%s", ending, u, code, out)
				}
				if profile == "standard" && code != 0 {
					t.Fatalf("%s: standard refused the officer's reset of %s: %s", ending, u, out)
				}
				switch ending {
				case "SIGKILL":
					if err := h.cmd.Process.Signal(syscall.SIGKILL); err != nil {
						t.Fatal(err)
					}
					h.cmd.Wait()
				case "exit": // end of input: exit() without C_Finalize
					h.in.Close()
					h.expect(t, " passed, 0 failed")
					if err := h.cmd.Wait(); err != nil {
						t.Fatalf("exit: %v", err)
					}
				default:
					h.do(t, ending)
				}
				if code, out := e.gohsm(t, "user", "delete", "--username", u, "--pin", "admin:officer-pw"); code != 0 {
					t.Fatalf("after %s: delete of %s: exit %d\n%s", ending, u, code, out)
				}
			}
		})
	}
}

// TestCloudHSMIdentityProfilesDiffer: the rules scenario run against one
// profile with the other's answers fails exactly on the rows that differ
// (so each PASS above is a difference, not a coincidence).
func TestCloudHSMIdentityProfilesDiffer(t *testing.T) {
	bin := buildDriver(t, "abi_cloudhsm_identity", t.TempDir())
	differ := []string{
		"C_Login with a bare password", "C_LoginUser without a name, bare password",
		"C_OpenSession without CKF_RW_SESSION", "public session: C_GenerateKey",
		"C_InitToken", "C_InitPIN", "C_SetPIN", "C_CopyObject", "C_GetObjectSize",
		"C_SetAttributeValue on a key", "C_SetAttributeValue on a key, NULL template", "C_SeedRandom", "C_DigestKey", "C_SignRecoverInit",
		"C_VerifyRecoverInit", "C_MessageEncryptInit", "ulMaxSessionCount", "PIN lengths", "model",
		"slot description", "the 1025th session",
	}
	for _, c := range []struct{ profile, expect string }{{"cloudhsm", "standard"}, {"standard", "cloudhsm"}} {
		e := newIdentityEnv(t, c.profile)
		e.setUp(t, "alice", "user")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, err := e.driverCmd(t, ctx, bin, c.expect, "rules").CombinedOutput()
		cancel()
		if err == nil {
			t.Fatalf("%s token with %s answers: no failure\n%s", c.profile, c.expect, out)
		}
		for _, d := range differ {
			if !strings.Contains(string(out), "FAIL "+c.expect+": "+d+":") {
				t.Errorf("%s token with %s answers: %q did not fail", c.profile, c.expect, d)
			}
		}
		if n := strings.Count(string(out), "\nFAIL "); n != len(differ) {
			t.Errorf("%s token with %s answers: %d failures, want %d\n%s", c.profile, c.expect, n, len(differ), out)
		}
	}
}
