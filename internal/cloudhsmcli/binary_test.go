package cloudhsmcli

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/testenv"
)

// binary runs a built CloudHSM CLI (cloudhsm-cli, or gohsm with the
// cloudhsm-cli command first) with the token of e.conf.
func (e *cliEnv) binary(argv0 []string, role, pin, stdin string, args ...string) cliResult {
	e.t.Helper()
	cmd := exec.Command(argv0[0], append(argv0[1:], args...)...)
	cmd.Env = append(os.Environ(), "GOHSM_CONF="+e.conf, "CLOUDHSM_ROLE="+role, "CLOUDHSM_PIN="+pin)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else {
		require.NoError(e.t, err)
	}
	return cliResult{code, out.String(), errb.String()}
}

// TestBinaries: both built programs (build/cloudhsm-cli, and `build/gohsm
// cloudhsm-cli`) print the golden JSON, exit 1 on an error, and run
// interactive mode on a piped stdin.
func TestBinaries(t *testing.T) {
	for name, argv0 := range map[string][]string{
		"cloudhsm-cli":       {testenv.Built(t, "GOHSM_CLOUDHSM_CLI", "cloudhsm-cli", "all")},
		"gohsm cloudhsm-cli": {testenv.CLI(t), "cloudhsm-cli"},
	} {
		t.Run(strings.ReplaceAll(name, " ", "_"), func(t *testing.T) {
			e := newCLIEnv(t, "cloudhsm")
			run := func(golden_ string, wantCode int, role, pin, stdin string, args ...string) cliResult {
				t.Helper()
				r := e.binary(argv0, role, pin, stdin, args...)
				require.Equal(t, wantCode, r.code, "%s: %s %s", strings.Join(args, " "), r.stdout, r.stderr)
				if golden_ != "" {
					golden(t, golden_, r.stdout)
				}
				return r
			}
			run("user-list-unactivated", 0, "", "", "", "user", "list")
			run("cluster-activate", 0, "", "", "admin-pass1\nadmin-pass1\n", "cluster", "activate")
			run("cluster-activate-again", 1, "", "", "", "cluster", "activate", "--password", "admin-pass1")
			run("user-create", 0, "admin", adminPIN, "", "user", "create", "--username", "alice", "--role", "crypto-user", "--password", "alice-pass1")
			r := run("", 1, "", "", "", "no-such-command")
			require.Contains(t, r.stdout, `"data": "unrecognized subcommand 'no-such-command'"`)
			r = run("", 0, "", "", "login --username alice --role crypto-user\nalice-pass1\nlogout\nquit\n", "interactive")
			require.Equal(t, 3, strings.Count(r.stdout, prompt), r.stdout)
			require.Contains(t, r.stdout, `"data": "Logout successful"`)
			require.Equal(t, "Enter password:\n", r.stderr)
			run("user-list-end", 0, "", "", "", "user", "list")
		})
	}
}
