package cloudhsmcli

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// cliEnv is a throwaway, never-activated token (cheap KDF) in a profile,
// driven through Run.
type cliEnv struct {
	t       *testing.T
	conf    string
	profile string
}

func newCLIEnv(t *testing.T, profile string) *cliEnv {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "gohsm.conf")
	text := fmt.Sprintf("token_dir = %s\nkdf_time = 1\nkdf_memory = 64\nkdf_threads = 1\nlogin_cache = off\n[slot 0]\nlabel = golden\nprofile = %s\n",
		filepath.Join(dir, "tokens"), profile)
	require.NoError(t, os.WriteFile(conf, []byte(text), 0o600))
	t.Setenv("CLOUDHSM_ROLE", "")
	t.Setenv("CLOUDHSM_PIN", "")
	return &cliEnv{t: t, conf: conf, profile: profile}
}

type cliResult struct {
	code           int
	stdout, stderr string
}

// run runs one command line in single-command mode; pin "" runs it
// logged out, else role and pin are CLOUDHSM_ROLE and CLOUDHSM_PIN.
func (e *cliEnv) run(role, pin, stdin string, args ...string) cliResult {
	e.t.Helper()
	e.t.Setenv("CLOUDHSM_ROLE", role)
	e.t.Setenv("CLOUDHSM_PIN", pin)
	var out, errb bytes.Buffer
	code := Run(args, strings.NewReader(stdin), &out, &errb, Options{Config: e.conf})
	return cliResult{code, out.String(), errb.String()}
}

// envelope decodes one JSON envelope.
func envelope(t *testing.T, out string) (int, json.RawMessage) {
	t.Helper()
	var env struct {
		Code int             `json:"error_code"`
		Data json.RawMessage `json:"data"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &env), out)
	return env.Code, env.Data
}

// errText is a failed command's envelope text (and checks it failed).
func errText(t *testing.T, r cliResult) string {
	t.Helper()
	require.Equal(t, 1, r.code, r.stdout)
	code, data := envelope(t, r.stdout)
	require.Equal(t, 1, code)
	var s string
	require.NoError(t, json.Unmarshal(data, &s), string(data))
	return s
}

const (
	adminPIN = "admin:admin-pass1"
	alicePIN = "alice:alice-pass1"
	bobPIN   = "bob:bob-pass12"
)

// activated is a cliEnv whose cluster was activated, with alice and bob.
func activatedEnv(t *testing.T, profile string) *cliEnv {
	e := newCLIEnv(t, profile)
	e.must("", "", "", "cluster", "activate", "--password", "admin-pass1")
	e.must("admin", adminPIN, "", "user", "create", "--username", "alice", "--role", "crypto-user", "--password", "alice-pass1")
	e.must("admin", adminPIN, "", "user", "create", "--username", "bob", "--role", "crypto-user", "--password", "bob-pass12")
	return e
}

func (e *cliEnv) must(role, pin, stdin string, args ...string) json.RawMessage {
	e.t.Helper()
	r := e.run(role, pin, stdin, args...)
	require.Equal(e.t, 0, r.code, "%s: %s", strings.Join(args, " "), r.stdout)
	code, data := envelope(e.t, r.stdout)
	require.Equal(e.t, 0, code)
	return data
}

// volatile are the values a golden file cannot pin: the token's random
// serial number.
var volatile = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`"serial-number": "[0-9a-f]{16}`), `"serial-number": "<serial>`},
	// Random key material and what is computed from it.
	{regexp.MustCompile(`"check-value": "0x[0-9a-f]+"`), `"check-value": "<check-value>"`},
	{regexp.MustCompile(`"modulus": "0x[0-9a-f]+"`), `"modulus": "<modulus>"`},
	{regexp.MustCompile(`"ec-point": "0x[0-9a-f]+"`), `"ec-point": "<ec-point>"`},
}

func normalise(s string) string {
	for _, v := range volatile {
		s = v.re.ReplaceAllString(s, v.with)
	}
	return s
}

// golden compares out (normalised) with testdata/name.json, or rewrites it
// under -update.
func golden(t *testing.T, name, out string) {
	t.Helper()
	out = normalise(out)
	path := filepath.Join("testdata", name+".json")
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, []byte(out), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "golden file missing: go test ./internal/cloudhsmcli -run %s -update", t.Name())
	require.Equal(t, string(want), out, "output differs from %s (go test ./internal/cloudhsmcli -run %s -update)", path, t.Name())
}

// step is one command of a golden session.
type step struct {
	golden     string // testdata file (shared by both profiles unless perProfile)
	role, pin  string
	stdin      string
	args       []string
	fails      bool
	perProfile bool
}

// TestGoldenUserSession runs CloudHSM CLI's documented user and cluster
// commands from a never-activated token to a deleted user, in both
// profiles, and checks every command's JSON against testdata (the shapes
// of UG-2023:cloudhsm_cli-cluster-activate.md, -user-list.md,
// -user-create.md, -user-delete.md, -user-change-password.md, -login.md,
// -logout.md, UG:cloudhsm_cli-cluster-hsm-info).
func TestGoldenUserSession(t *testing.T) {
	steps := []step{
		{golden: "user-list-unactivated", args: []string{"user", "list"}},
		{golden: "cluster-hsm-info", perProfile: true, args: []string{"cluster", "hsm-info"}},
		{golden: "cluster-activate", stdin: "admin-pass1\nadmin-pass1\n", args: []string{"cluster", "activate"}},
		{golden: "cluster-activate-again", fails: true, args: []string{"cluster", "activate", "--password", "admin-pass1"}},
		{golden: "user-list-activated", args: []string{"user", "list"}},
		{golden: "user-create", role: "admin", pin: adminPIN, args: []string{"user", "create", "--username", "Alice", "--role", "crypto-user", "--password", "alice-pass1"}},
		{golden: "user-create-admin", role: "admin", pin: adminPIN, stdin: "admin2-pass\nadmin2-pass\n", args: []string{"user", "create", "--username", "admin2", "--role", "admin"}},
		{golden: "user-create-exists", fails: true, role: "admin", pin: adminPIN, args: []string{"user", "create", "--username", "alice", "--role", "crypto-user", "--password", "alice-pass1"}},
		{golden: "user-list", args: []string{"user", "list"}},
		{golden: "user-change-password-self", role: "crypto-user", pin: alicePIN, args: []string{"user", "change-password", "--username", "alice", "--role", "crypto-user", "--password", "alice-pass2"}},
		{golden: "user-change-password-admin", role: "admin", pin: adminPIN, args: []string{"user", "change-password", "--username", "alice", "--role", "crypto-user", "--password", "alice-pass3"}},
		{golden: "user-delete", role: "admin", pin: adminPIN, args: []string{"user", "delete", "--username", "admin2", "--role", "admin"}},
		{golden: "user-delete-missing", fails: true, role: "admin", pin: adminPIN, args: []string{"user", "delete", "--username", "admin2", "--role", "admin"}},
		{golden: "user-list-end", args: []string{"user", "list"}},
	}
	for _, profile := range []string{"standard", "cloudhsm"} {
		t.Run(profile, func(t *testing.T) {
			e := newCLIEnv(t, profile)
			for _, s := range steps {
				r := e.run(s.role, s.pin, s.stdin, s.args...)
				want := 0
				if s.fails {
					want = 1
				}
				require.Equal(t, want, r.code, "%s: %s", strings.Join(s.args, " "), r.stdout)
				name := s.golden
				if s.perProfile {
					name += "-" + profile
				}
				golden(t, name, r.stdout)
			}
		})
	}
}
