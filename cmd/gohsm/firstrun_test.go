package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/admin"
	"gohsm/internal/testenv"
)

// TestTokenByLabel: --token LABEL, before or after the command, selects
// the slot whose token has that label (an uninitialised token: its slot's
// configured label, as C_GetTokenInfo says); none or several is an error
// with its own code.
func TestTokenByLabel(t *testing.T) {
	t.Setenv("GOHSM_PIN", "")
	noStdin(t)
	c := &cli{t: t, conf: testConfig(t, "[slot 0]\nlabel = first\n[slot 4]\nlabel = second\n[slot 7]\nlabel = twin\n[slot 8]\nlabel = twin\n")}
	// slot 4 by its configured label, initialised under a new one.
	c.ok("--token", "second", "token", "init", "--label", "payments", "--pin", coPIN)
	c.ok("--token", "payments", "user", "create", "--username", "alice", "--role", "cu", "--password", "alice-pw", "--pin", coPIN)
	c.ok("user", "list", "--token", "payments")

	var tl struct{ Slots []admin.TokenStatus }
	c.data(&tl, "--token", "payments", "token", "list")
	require.Len(t, tl.Slots, 1)
	assert.Equal(t, 4, int(tl.Slots[0].Slot))
	assert.Equal(t, 2, tl.Slots[0].Users)
	// slot 0 (the default) knows nothing of alice.
	c.fails([]string{"CKR_TOKEN_NOT_RECOGNIZED"}, "user", "list")

	c.fails([]string{`no token labelled "second"`}, "--token", "second", "user", "list")
	c.fails([]string{`2 tokens are labelled "twin" (slots 7, 8): use --slot`}, "--token", "twin", "token", "list")
	r := c.run("--json", "--token", "twin", "user", "list")
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &m), r.stdout)
	assert.Equal(t, "ambiguous_token", m["code"])
	// cloudhsm-cli gets the slot --token names, or does not start.
	c.fails([]string{`no token labelled "nope"`}, "--token", "nope", "cloudhsm-cli", "user", "list")
}

// TestNewPasswordSources: user create and change-password take the new
// password from --password -, --password-file or $GOHSM_NEW_PASSWORD as
// well as --password, and the user then logs in with it.
func TestNewPasswordSources(t *testing.T) {
	c := newCLI(t)
	c.setup()
	dir := t.TempDir()
	stdin := func(s string) {
		f := filepath.Join(dir, "stdin")
		require.NoError(t, os.WriteFile(f, []byte(s), 0o600))
		in, err := os.Open(f)
		require.NoError(t, err)
		t.Cleanup(func() { in.Close() })
		testOnlyStdin = in
	}
	stdin("carol-pw-1\n")
	c.ok("user", "create", "--username", "carol", "--role", "cu", "--password", "-", "--pin", coPIN)
	c.ok("key", "list", "--pin", "carol:carol-pw-1")

	pwFile := filepath.Join(dir, "pw")
	require.NoError(t, os.WriteFile(pwFile, []byte("carol-pw-2\r\nignored\n"), 0o600))
	c.ok("user", "change-password", "--username", "carol", "--password-file", pwFile, "--pin", coPIN)
	c.ok("key", "list", "--pin", "carol:carol-pw-2")

	t.Setenv("GOHSM_NEW_PASSWORD", "carol-pw-3")
	c.ok("user", "change-password", "--username", "carol", "--pin", "carol:carol-pw-2")
	c.ok("key", "list", "--pin", "carol:carol-pw-3")

	stdin("")
	r := c.run("user", "create", "--username", "dave", "--role", "cu", "--password", "-", "--pin", coPIN)
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Contains(t, r.stderr, "--password -: no password line on standard input")
}

// promptLog is standard error for a prompting run: it records what was
// written and says when a prompt appears.
type promptLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (p *promptLog) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.Write(b)
}

func (p *promptLog) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.String()
}

// TestPromptsDoNotEcho: without --pin, $GOHSM_PIN or a new password, and
// with a terminal on standard input, gohsm asks for the PIN and for the
// new password twice (token init: the new officer's PIN twice), with echo
// off: the terminal shows none of them, nor does anything gohsm writes. A
// mismatched confirmation is refused.
func TestPromptsDoNotEcho(t *testing.T) {
	c := newCLI(t)
	c.setup()
	master, slave := testenv.OpenPTY(t)
	testOnlyStdin = slave

	run := func(prompts, answers []string, args ...string) (int, string, string) {
		var out bytes.Buffer
		errLog := &promptLog{}
		done := make(chan int, 1)
		go func() { done <- run(append([]string{"--config", c.conf}, args...), &out, errLog) }()
		for i, a := range answers {
			// Type only once the prompt is out and echo is off: the
			// line discipline echoes what is typed before.
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(errLog.String(), prompts[i]) {
				require.True(t, time.Now().Before(deadline), "no prompt %q: %q", prompts[i], errLog.String())
				time.Sleep(time.Millisecond)
			}
			testenv.WaitEcho(t, slave, false)
			_, err := master.Write([]byte(a + "\n"))
			require.NoError(t, err)
		}
		code := <-done
		return code, out.String(), errLog.String()
	}
	user := []string{"PIN (name:password): ", "New password: ", "Confirm password: "}
	code, out, errOut := run(user, []string{coPIN, "erin-pw-1", "erin-pw-1"},
		"--json", "user", "create", "--username", "erin", "--role", "cu")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, `"username": "erin"`)
	c.ok("key", "list", "--pin", "erin:erin-pw-1")

	code, _, errOut = run(user, []string{coPIN, "erin-pw-2", "erin-pw-X"}, "user", "change-password", "--username", "erin")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "the passwords do not match")
	// --password - on a terminal asks without echo too, rather than
	// reading an echoed line.
	code, _, errOut = run(user, []string{coPIN, "erin-pw-3", "erin-pw-3"}, "user", "change-password", "--username", "erin", "--password", "-")
	require.Equal(t, 0, code, errOut)
	c.ok("key", "list", "--pin", "erin:erin-pw-3")

	// token init asks for the new officer's PIN twice.
	c.ok("token", "reset", "--yes")
	initP := []string{"PIN of the new crypto officer (name:password): ", "Confirm PIN: "}
	code, _, errOut = run(initP, []string{"admin:officer-pw2", "admin:officer-pwX"}, "token", "init", "--label", "again")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "the PINs do not match")
	code, _, errOut = run(initP, []string{"admin:officer-pw2", "admin:officer-pw2"}, "token", "init", "--label", "again")
	require.Equal(t, 0, code, errOut)
	c.ok("user", "create", "--username", "fay", "--role", "cu", "--password", "fay-pw-1", "--pin", "admin:officer-pw2")

	testenv.WaitEcho(t, slave, true)
	_, err := master.Write([]byte("marker\n"))
	require.NoError(t, err)
	shown := testenv.ReadUntil(t, master, "marker")
	for _, secret := range []string{"officer-pw", "erin-pw", "officer-pw2"} {
		assert.NotContains(t, shown, secret, "echoed on the terminal")
		assert.NotContains(t, out+errOut, secret, "written by gohsm")
	}
}
