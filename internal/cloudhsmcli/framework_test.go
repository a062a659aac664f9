package cloudhsmcli

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSplitLine: interactive lines split as a shell would for the quoting
// CloudHSM CLI's examples use (attr.label="my key").
func TestSplitLine(t *testing.T) {
	for line, want := range map[string][]string{
		`key list --filter attr.label="my key" attr.class=secret-key`: {"key", "list", "--filter", "attr.label=my key", "attr.class=secret-key"},
		`  user   list  `:          {"user", "list"},
		`login --password 'a b"c'`: {"login", "--password", `a b"c`},
		`x "a\"b\\c"`:              {"x", `a"b\c`},
		`x a\ b`:                   {"x", "a b"},
		`x ""`:                     {"x", ""},
		``:                         nil,
	} {
		got, err := splitLine(line)
		require.NoError(t, err, line)
		require.Equal(t, want, got, line)
	}
	for _, bad := range []string{`x "abc`, `x 'abc`} {
		_, err := splitLine(bad)
		require.Error(t, err, bad)
	}
}

// TestUsageErrors: command-line mistakes get clap's texts (CloudHSM CLI is
// a clap program), an error envelope and exit status 1.
func TestUsageErrors(t *testing.T) {
	e := newCLIEnv(t, "standard")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, "unrecognized subcommand 'frobnicate'"},
		{[]string{"user", "frobnicate"}, "unrecognized subcommand 'frobnicate'"},
		{[]string{"user"}, "'user' requires a subcommand (see: help user)"},
		{[]string{"user", "list", "--bogus"}, "unexpected argument '--bogus' found"},
		{[]string{"user", "list", "extra"}, "unexpected argument 'extra' found"},
		{[]string{"user", "create", "--role", "admin"}, ErrNotLoggedIn.Error()},
		{[]string{"login", "--role", "admin"}, "the following required arguments were not provided:\n  --username <USERNAME>"},
		{[]string{"login", "--username", "x", "--role", "boss"}, "invalid value 'boss' for '--role <ROLE>'\n  [possible values: crypto-user, admin]"},
		{[]string{"login", "--username"}, "a value is required for '--username <USERNAME>' but none was supplied"},
		{[]string{"interactive", "now"}, "unexpected argument 'now' found"},
	} {
		r := e.run("", "", "", tc.args...)
		require.Equal(t, tc.want, errText(t, r), strings.Join(tc.args, " "))
	}
	r := e.run("boss", "x:y", "", "user", "list")
	require.Equal(t, "invalid value 'boss' for CLOUDHSM_ROLE: expected admin or crypto-user", errText(t, r))
	r = e.run("admin", "nocolon", "", "user", "list")
	require.Equal(t, "CLOUDHSM_PIN must be username:password", errText(t, r))
}

// TestHelp: help lists every command of the table; help <command> and
// <command> --help show its flags, exit 0, no envelope.
func TestHelp(t *testing.T) {
	e := newCLIEnv(t, "standard")
	r := e.run("", "", "", "help")
	require.Equal(t, 0, r.code)
	for _, cmd := range table {
		require.Contains(t, r.stdout, cmd.Name()+" ")
	}
	for _, args := range [][]string{{"help", "user", "create"}, {"user", "create", "--help"}, {"user", "create", "-h"}} {
		r = e.run("", "", "", args...)
		require.Equal(t, 0, r.code, args)
		require.Contains(t, r.stdout, "Usage: user create [OPTIONS]")
		require.Contains(t, r.stdout, "--username <USERNAME>")
		require.NotContains(t, r.stdout, "error_code")
	}
	r = e.run("", "", "", "help", "key", "list")
	require.Contains(t, r.stdout, "\n      -v  ")
	require.Contains(t, r.stdout, "--filter [<FILTER>...]")
	require.Contains(t, r.stdout, "[default: 10]")
	r = e.run("", "", "", "help", "user")
	require.Equal(t, 0, r.code)
	require.Contains(t, r.stdout, "user change-password")
	require.Equal(t, "unrecognized subcommand 'nope'", errText(t, e.run("", "", "", "help", "nope")))
}

// testOnlyPanic is a command that panics: a bug in a command must not
// crash the CLI (interactive mode least of all).
var testOnlyPanic = Command{Path: []string{"test-panic"}, Help: "panics (tests only)", Role: Anyone,
	Setup: func(fs *flag.FlagSet) func(*Context) (any, error) {
		return func(c *Context) (any, error) {
			var m map[string]int
			m["boom"]++ // nil map write
			return nil, nil
		}
	}}

func TestPanicBecomesEnvelope(t *testing.T) {
	register(testOnlyPanic)
	t.Cleanup(func() {
		for i, c := range table {
			if c.Name() == "test-panic" {
				table = append(table[:i], table[i+1:]...)
				break
			}
		}
	})
	e := newCLIEnv(t, "standard")
	r := e.run("", "", "", "test-panic")
	require.Contains(t, errText(t, r), "internal error: assignment to entry in nil map")
	// Interactive mode goes on after the panic.
	var out bytes.Buffer
	code := Run([]string{"interactive"}, strings.NewReader("test-panic\nuser list\nquit\n"), &out, &bytes.Buffer{}, Options{Config: e.conf})
	require.Equal(t, 0, code)
	require.Contains(t, out.String(), "internal error")
	require.Contains(t, out.String(), `"role": "unactivated-admin"`)
}

// TestSlotOption: Options.Slot (gohsm --slot N cloudhsm-cli ...) picks the
// token; without it the first slot's.
func TestSlotOption(t *testing.T) {
	e := newCLIEnv(t, "standard")
	b, err := os.ReadFile(e.conf)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(e.conf, append(b, []byte("[slot 3]\nlabel = other\nprofile = cloudhsm\n")...), 0o600))
	three := uint(3)
	var out bytes.Buffer
	require.Equal(t, 0, Run([]string{"cluster", "activate", "--password", "admin-pass1"}, strings.NewReader(""), &out, &bytes.Buffer{}, Options{Config: e.conf, Slot: &three}))
	out.Reset()
	require.Equal(t, 0, Run([]string{"user", "list"}, strings.NewReader(""), &out, &bytes.Buffer{}, Options{Config: e.conf, Slot: &three}))
	require.Contains(t, out.String(), `"role": "admin"`)
	require.Contains(t, e.run("", "", "", "user", "list").stdout, `"role": "unactivated-admin"`, "slot 0 is untouched")
	seven := uint(7)
	out.Reset()
	require.Equal(t, 1, Run([]string{"user", "list"}, strings.NewReader(""), &out, &bytes.Buffer{}, Options{Config: e.conf, Slot: &seven}))
	require.Contains(t, out.String(), "CKR_SLOT_ID_INVALID")
}
