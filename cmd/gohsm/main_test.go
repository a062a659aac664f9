package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/token"
)

const (
	coPIN    = "admin:officer-pw"
	alicePIN = "alice:alice-pw"
	bobPIN   = "bob:bob-pw"
)

// cli runs gohsm in-process against a temporary token directory with a
// cheap KDF.
type cli struct {
	t    *testing.T
	conf string
}

func testConfig(t *testing.T, extra string) string {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "gohsm.conf")
	text := fmt.Sprintf("token_dir = %s\nkdf_time = 1\nkdf_memory = 64\nkdf_threads = 1\nlogin_cache = off\n%s", filepath.Join(dir, "tokens"), extra)
	require.NoError(t, os.WriteFile(conf, []byte(text), 0o600))
	return conf
}

func newCLI(t *testing.T) *cli {
	t.Setenv("GOHSM_PIN", "") // the caller's environment must not log anyone in
	t.Setenv("GOHSM_NEW_PASSWORD", "")
	noStdin(t)
	return &cli{t: t, conf: testConfig(t, "")}
}

// noStdin gives run an empty standard input that is no terminal, as in CI,
// also when go test runs on one.
func noStdin(t *testing.T) {
	t.Helper()
	f, err := os.Open(os.DevNull)
	require.NoError(t, err)
	testOnlyStdin = f
	t.Cleanup(func() { testOnlyStdin = nil; f.Close() })
}

type result struct {
	code           int
	stdout, stderr string
}

func (c *cli) run(args ...string) result {
	c.t.Helper()
	if testOnlyStdin == nil {
		noStdin(c.t) // never the terminal go test may run on
	}
	var out, errb bytes.Buffer
	code := run(append([]string{"--config", c.conf}, args...), &out, &errb)
	return result{code, out.String(), errb.String()}
}

// ok runs a command that must succeed silently on standard error.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	r := c.run(args...)
	require.Equal(c.t, 0, r.code, "gohsm %s: %s", strings.Join(args, " "), r.stderr)
	require.Empty(c.t, r.stderr)
	return r.stdout
}

// fails runs a command that must fail with status 1 and one line on
// standard error containing every want.
func (c *cli) fails(want []string, args ...string) string {
	c.t.Helper()
	r := c.run(args...)
	require.Equal(c.t, 1, r.code, "gohsm %s: stdout %q stderr %q", strings.Join(args, " "), r.stdout, r.stderr)
	require.Equal(c.t, 1, strings.Count(r.stderr, "\n"), "one line: %q", r.stderr)
	require.True(c.t, strings.HasPrefix(r.stderr, "gohsm: "), r.stderr)
	for _, w := range want {
		require.Contains(c.t, r.stderr, w)
	}
	return r.stderr
}

// data runs a command with --json and decodes its data into v.
func (c *cli) data(v any, args ...string) {
	c.t.Helper()
	out := c.ok(append([]string{"--json"}, args...)...)
	var env struct {
		Code *int            `json:"error_code"`
		Data json.RawMessage `json:"data"`
	}
	require.NoError(c.t, json.Unmarshal([]byte(out), &env), out)
	require.NotNil(c.t, env.Code, out)
	require.Equal(c.t, 0, *env.Code)
	require.NoError(c.t, json.Unmarshal(env.Data, v), out)
}

type userJSON struct {
	Name     string `json:"username"`
	Role     string `json:"role"`
	Locked   bool   `json:"locked"`
	Failures int    `json:"failed_logins"`
}

func (c *cli) users() map[string]userJSON {
	var d struct{ Users []userJSON }
	c.data(&d, "user", "list")
	m := map[string]userJSON{}
	for _, u := range d.Users {
		m[u.Name] = u
	}
	return m
}

type keyJSON struct {
	Handle     uint64   `json:"handle"`
	Class      string   `json:"class"`
	KeyType    string   `json:"key_type"`
	Label      string   `json:"label"`
	ID         string   `json:"id"`
	Owner      string   `json:"owner"`
	SharedWith []string `json:"shared_with"`
	Token      bool     `json:"token"`
	Private    bool     `json:"private"`
}

func (c *cli) keys(pin string) map[uint64]keyJSON {
	var d struct {
		Keys  []keyJSON `json:"matched_keys"`
		Total int       `json:"total_key_count"`
	}
	c.data(&d, "key", "list", "--pin", pin)
	require.Len(c.t, d.Keys, d.Total)
	m := map[uint64]keyJSON{}
	for _, k := range d.Keys {
		m[k.Handle] = k
	}
	return m
}

// setup initialises the token with crypto users alice and bob.
func (c *cli) setup() {
	c.ok("token", "init", "--label", "cli-test", "--pin", coPIN)
	c.ok("user", "create", "--username", "alice", "--role", "crypto-user", "--password", "alice-pw", "--pin", coPIN)
	c.ok("user", "create", "--username", "Bob", "--role", "cu", "--password", "bob-pw", "--pin", coPIN)
}

func TestUsersAndKeys(t *testing.T) {
	c := newCLI(t)
	c.setup()

	us := c.users()
	require.Len(t, us, 3)
	assert.Equal(t, "crypto-officer", us["admin"].Role)
	assert.Equal(t, "crypto-user", us["alice"].Role)
	assert.Equal(t, "crypto-user", us["bob"].Role, "names are kept lowercase")
	for _, u := range us {
		assert.False(t, u.Locked, u.Name)
	}

	var aes struct{ Key keyJSON }
	c.data(&aes, "key", "generate", "aes", "--bits", "128", "--label", "k-aes", "--id", "a1b2", "--pin", alicePIN)
	assert.Equal(t, keyJSON{Handle: aes.Key.Handle, Class: "secret-key", KeyType: "aes", Label: "k-aes", ID: "a1b2",
		Owner: "alice", SharedWith: []string{}, Token: true, Private: true}, aes.Key)
	var ec, rsa struct {
		Pub  keyJSON `json:"public_key"`
		Priv keyJSON `json:"private_key"`
	}
	c.data(&ec, "key", "generate", "ec", "--curve", "P-384", "--label", "k-ec", "--id", "ec01", "--pin", alicePIN)
	c.data(&rsa, "key", "generate", "rsa", "--bits", "2048", "--label", "k-rsa", "--pin", alicePIN)
	assert.Equal(t, "private-key", ec.Priv.Class)
	assert.Equal(t, "public-key", ec.Pub.Class)
	assert.Equal(t, "ec01", ec.Pub.ID, "both halves get the ID")
	assert.Equal(t, "rsa", rsa.Priv.KeyType)
	assert.False(t, rsa.Pub.Private)

	// Text output names the keys and their owner.
	text := c.ok("key", "list", "--pin", alicePIN)
	assert.Contains(t, text, "OWNER")
	assert.Regexp(t, `(?m)^\d+\s+secret-key\s+aes\s+k-aes\s+a1b2\s+alice\s+-$`, text)

	ak := c.keys(alicePIN)
	require.Len(t, ak, 5)
	for _, k := range ak {
		assert.Equal(t, "alice", k.Owner, "%+v", k)
		assert.True(t, k.Token)
	}

	// bob sees alice's public keys only.
	bk := c.keys(bobPIN)
	require.Len(t, bk, 2)
	for _, k := range bk {
		assert.Equal(t, "public-key", k.Class)
		assert.Equal(t, "alice", k.Owner)
	}

	// Sharing by label picks the private half of the pair.
	var sh struct{ Key keyJSON }
	c.data(&sh, "key", "share", "--label", "k-ec", "--username", "bob", "--pin", alicePIN)
	assert.Equal(t, ec.Priv.Handle, sh.Key.Handle)
	assert.Equal(t, []string{"bob"}, sh.Key.SharedWith)
	c.ok("key", "share", "--handle", fmt.Sprint(aes.Key.Handle), "--username", "bob", "--pin", alicePIN)
	bk = c.keys(bobPIN)
	require.Len(t, bk, 4)
	assert.Equal(t, []string{"bob"}, bk[ec.Priv.Handle].SharedWith)
	assert.Equal(t, "alice", bk[ec.Priv.Handle].Owner)
	assert.Contains(t, bk, aes.Key.Handle)

	// bob may use but not delete, share or unshare alice's keys.
	c.fails([]string{"gohsm: key delete: CKR_ACTION_PROHIBITED", `belongs to "alice"`},
		"key", "delete", "--handle", fmt.Sprint(ec.Priv.Handle), "--pin", bobPIN)
	c.fails([]string{"key delete: CKR_ACTION_PROHIBITED"}, "key", "delete", "--label", "k-aes", "--pin", bobPIN)
	c.fails([]string{"key unshare: CKR_ACTION_PROHIBITED"},
		"key", "unshare", "--handle", fmt.Sprint(aes.Key.Handle), "--username", "bob", "--pin", bobPIN)
	require.Len(t, c.keys(alicePIN), 5)

	// A label naming both halves of a pair is ambiguous for delete.
	c.fails([]string{`label "k-rsa" names 2 keys`, "--class"}, "key", "delete", "--label", "k-rsa", "--pin", alicePIN)
	c.fails([]string{"CKR_OBJECT_HANDLE_INVALID", `no key labelled "nope"`}, "key", "delete", "--label", "nope", "--pin", alicePIN)
	c.fails([]string{"key share: CKR_USER_TYPE_INVALID", `"admin" is not a crypto user`},
		"key", "share", "--label", "k-aes", "--username", "admin", "--pin", alicePIN)

	c.ok("key", "unshare", "--label", "k-ec", "--username", "bob", "--pin", alicePIN)
	bk = c.keys(bobPIN)
	assert.NotContains(t, bk, ec.Priv.Handle)
	assert.Contains(t, bk, aes.Key.Handle)

	// A user who owns keys cannot be deleted; delete as alice works.
	c.fails([]string{"user delete: CKR_ACTION_PROHIBITED", "owns objects"}, "user", "delete", "--username", "alice", "--pin", coPIN)
	c.ok("key", "delete", "--label", "k-ec", "--class", "private", "--pin", alicePIN)
	c.ok("key", "delete", "--handle", fmt.Sprint(ec.Pub.Handle), "--pin", alicePIN)
	c.ok("key", "delete", "--label", "k-aes", "--pin", alicePIN)
	ak = c.keys(alicePIN)
	assert.Len(t, ak, 2)
	assert.NotContains(t, ak, ec.Priv.Handle)
	assert.NotContains(t, ak, aes.Key.Handle)
	assert.Len(t, c.keys(bobPIN), 1, "only the RSA public key is left for bob")

	// A session key lives as long as the command.
	var sk struct{ Key keyJSON }
	c.data(&sk, "key", "generate", "aes", "--label", "tmp", "--session", "--pin", alicePIN)
	assert.False(t, sk.Key.Token)
	assert.NotContains(t, c.keys(alicePIN), sk.Key.Handle)

	// bob owns nothing and can go; the logged-in officer cannot delete itself.
	c.ok("user", "delete", "--username", "bob", "--pin", coPIN)
	assert.NotContains(t, c.users(), "bob")
	c.fails([]string{"CKR_ACTION_PROHIBITED", "logged in"}, "user", "delete", "--username", "admin", "--pin", coPIN)
	c.fails([]string{"CKR_PIN_INCORRECT: wrong name or password"}, "key", "list", "--pin", bobPIN)
}

func TestLockoutAndPasswords(t *testing.T) {
	c := newCLI(t)
	c.setup()
	for i := 1; i <= 5; i++ {
		c.fails([]string{"key list: CKR_PIN_INCORRECT: wrong name or password"}, "key", "list", "--pin", "alice:wrong")
		assert.Equal(t, i, c.users()["alice"].Failures)
	}
	assert.True(t, c.users()["alice"].Locked)
	assert.False(t, c.users()["bob"].Locked)
	var tl struct {
		Slots []struct {
			Locked []string `json:"locked_users"`
		}
	}
	c.data(&tl, "token", "list")
	assert.Equal(t, []string{"alice"}, tl.Slots[0].Locked)

	// Locked: even the right password is refused, and alice cannot help herself.
	c.fails([]string{"CKR_PIN_LOCKED: user is locked"}, "key", "list", "--pin", alicePIN)
	c.fails([]string{"user change-password: CKR_PIN_LOCKED"}, "user", "change-password", "--username", "alice", "--password", "x-new-pw", "--pin", alicePIN)
	// A crypto user changes only its own password.
	c.fails([]string{"user change-password: CKR_USER_NOT_LOGGED_IN: needs a crypto officer login, or the user's own"},
		"user", "change-password", "--username", "alice", "--password", "bob-sets", "--pin", bobPIN)

	c.ok("user", "change-password", "--username", "alice", "--password", "alice-new", "--pin", coPIN)
	u := c.users()["alice"]
	assert.False(t, u.Locked)
	assert.Zero(t, u.Failures)
	c.fails([]string{"CKR_PIN_INCORRECT"}, "key", "list", "--pin", alicePIN)
	c.ok("key", "list", "--pin", "alice:alice-new")

	// A crypto user changes its own password.
	c.ok("user", "change-password", "--username", "bob", "--password", "bob-new", "--pin", bobPIN)
	c.ok("key", "list", "--pin", "bob:bob-new")
	c.fails([]string{"CKR_PIN_LEN_RANGE"}, "user", "change-password", "--username", "bob", "--password", "x", "--pin", "bob:bob-new")
}

func TestRoles(t *testing.T) {
	c := newCLI(t)
	c.setup()
	c.fails([]string{"user create: CKR_USER_NOT_LOGGED_IN: needs a crypto officer login", `"alice" is a crypto user`},
		"user", "create", "--username", "carol", "--role", "cu", "--password", "carol-pw", "--pin", alicePIN)
	c.fails([]string{"key list: CKR_USER_NOT_LOGGED_IN: needs a crypto user login"}, "key", "list", "--pin", coPIN)
	c.fails([]string{"key generate aes: CKR_USER_NOT_LOGGED_IN: needs a crypto user login"},
		"key", "generate", "aes", "--label", "x", "--pin", coPIN)
	c.fails([]string{"user create: CKR_PIN_INCORRECT: wrong name or password"},
		"user", "create", "--username", "carol", "--role", "cu", "--password", "carol-pw", "--pin", "admin:wrong")
	c.fails([]string{"user create: CKR_ACTION_PROHIBITED", `user "alice" exists`},
		"user", "create", "--username", "alice", "--role", "cu", "--password", "carol-pw", "--pin", coPIN)
	c.fails([]string{"user create: CKR_ARGUMENTS_BAD", "only letters"},
		"user", "create", "--username", "car-ol", "--role", "cu", "--password", "carol-pw", "--pin", coPIN)

	// A second officer, and the PIN from the environment; a bare password
	// names "admin".
	c.ok("user", "create", "--username", "officer2", "--role", "crypto-officer", "--password", "o2-pw-123", "--pin", "officer-pw")
	t.Setenv("GOHSM_PIN", "officer2:o2-pw-123")
	c.ok("user", "create", "--username", "carol", "--role", "crypto-user", "--password", "carol-pw")
	us := c.users()
	assert.Equal(t, "crypto-officer", us["officer2"].Role)
	assert.Equal(t, "crypto-user", us["carol"].Role)
	// --pin wins over the environment.
	c.ok("key", "list", "--pin", "carol:carol-pw")
}

func TestTokenInitListDelete(t *testing.T) {
	t.Setenv("GOHSM_PIN", "")
	conf := testConfig(t, "[slot 0]\nlabel = first\n[slot 7]\nlabel = second\n")
	c := &cli{t: t, conf: conf}

	type slotJSON struct {
		Slot        int      `json:"slot"`
		Label       string   `json:"label"`
		Serial      string   `json:"serial"`
		Initialized bool     `json:"initialized"`
		Users       int      `json:"users"`
		Flags       []string `json:"flags"`
	}
	slots := func() []slotJSON {
		var d struct{ Slots []slotJSON }
		c.data(&d, "token", "list")
		return d.Slots
	}
	s := slots()
	require.Len(t, s, 2)
	assert.Equal(t, 7, s[1].Slot)
	assert.False(t, s[0].Initialized)
	assert.False(t, s[1].Initialized)

	// --slot before or after the command.
	c.ok("--slot", "7", "token", "init", "--label", "seven", "--pin", coPIN)
	s = slots()
	assert.False(t, s[0].Initialized, "the default slot is untouched")
	assert.True(t, s[1].Initialized)
	assert.Equal(t, "seven", s[1].Label)
	assert.Len(t, s[1].Serial, 16)
	assert.Equal(t, 1, s[1].Users)
	assert.Contains(t, s[1].Flags, "initialized")
	c.fails([]string{"user list: CKR_TOKEN_NOT_RECOGNIZED: slot 0 has no token yet", "gohsm token init"}, "user", "list")
	c.ok("user", "list", "--slot", "7")
	c.fails([]string{"CKR_SLOT_ID_INVALID: no such slot"}, "user", "list", "--slot", "3")

	// Re-initialising needs --yes and a crypto officer's password.
	c.ok("user", "create", "--slot", "7", "--username", "alice", "--role", "cu", "--password", "alice-pw", "--pin", coPIN)
	c.fails([]string{`slot 7 holds token "seven"`, "--yes"}, "token", "init", "--slot", "7", "--label", "again", "--pin", coPIN)
	c.fails([]string{"token init: CKR_PIN_INCORRECT"}, "token", "init", "--slot", "7", "--label", "again", "--yes", "--pin", "admin:wrong-pw")
	c.ok("token", "init", "--slot", "7", "--label", "again", "--yes", "--pin", coPIN)
	assert.Equal(t, "again", slots()[1].Label)
	var d struct{ Users []userJSON }
	c.data(&d, "user", "list", "--slot", "7")
	assert.Len(t, d.Users, 1, "re-initialising removed alice")

	// Delete: refused without --yes (a usage error), with a wrong password,
	// and on an uninitialised token.
	r := c.run("token", "delete", "--slot", "7", "--pin", coPIN)
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "pass --yes")
	assert.True(t, slots()[1].Initialized)
	c.fails([]string{"token delete: CKR_PIN_INCORRECT"}, "token", "delete", "--slot", "7", "--yes", "--pin", "admin:wrong-pw")
	c.fails([]string{"token delete: CKR_TOKEN_NOT_RECOGNIZED"}, "token", "delete", "--yes", "--pin", coPIN)
	c.ok("token", "delete", "--slot", "7", "--yes", "--pin", coPIN)
	s = slots()
	assert.False(t, s[1].Initialized)
	assert.Equal(t, "second", s[1].Label, "an uninitialised token shows the configured label")
	c.fails([]string{"CKR_TOKEN_NOT_RECOGNIZED"}, "user", "list", "--slot", "7")

	// The slot can be initialised again, with a new serial.
	c.ok("token", "init", "--slot", "7", "--label", "third", "--pin", "admin:other-pw")
	s = slots()
	assert.True(t, s[1].Initialized)
	assert.Equal(t, "third", s[1].Label)
	c.fails([]string{"CKR_PIN_INCORRECT"}, "user", "create", "--slot", "7", "--username", "x", "--role", "cu", "--password", "x-pw-123", "--pin", coPIN)
}

// TestKeyListFilters: key list's --class, --key-type and --owner
// (admin.Filter, which the console's GET /keys takes too).
func TestKeyListFilters(t *testing.T) {
	c := newCLI(t)
	c.setup()
	c.ok("key", "generate", "aes", "--label", "k-aes", "--pin", alicePIN)
	c.ok("key", "generate", "ec", "--label", "k-ec", "--pin", alicePIN)
	c.ok("key", "generate", "rsa", "--label", "k-rsa", "--pin", bobPIN)
	count := func(pin string, filter ...string) int {
		var d struct {
			Total int `json:"total_key_count"`
		}
		c.data(&d, append([]string{"key", "list", "--pin", pin}, filter...)...)
		return d.Total
	}
	assert.Equal(t, 4, count(alicePIN), "her three and bob's public key")
	assert.Equal(t, 2, count(alicePIN, "--class", "public"))
	assert.Equal(t, 1, count(alicePIN, "--class", "private-key"))
	assert.Equal(t, 1, count(alicePIN, "--key-type", "AES"))
	assert.Equal(t, 1, count(alicePIN, "--owner", "bob"))
	assert.Equal(t, 0, count(alicePIN, "--owner", "bob", "--class", "private"), "bob's private key is not hers to see")
	assert.Equal(t, 1, count(alicePIN, "--key-type", "ec", "--class", "public", "--label", "k-ec"))
}

func TestUsageErrors(t *testing.T) {
	c := newCLI(t)
	c.setup()
	for _, tc := range []struct {
		args  []string
		want  string // on the first line
		usage string // the second line's start
	}{
		{nil, "gohsm: missing command", "usage: gohsm "},
		{[]string{"frob"}, `gohsm: unknown command "frob"`, "usage: gohsm "},
		{[]string{"key"}, "gohsm: key: missing subcommand (one of: list, generate, import, delete, share, unshare, set-trusted)", "usage: gohsm "},
		{[]string{"key", "generate", "des"}, `unknown subcommand "des" (one of: aes, ec, ml-dsa, ml-kem, rsa)`, "usage: gohsm "},
		{[]string{"--bogus", "user", "list"}, "gohsm: flag provided but not defined: -bogus", "usage: gohsm "},
		{[]string{"user", "list", "--bogus"}, "gohsm: user list: flag provided but not defined: -bogus", "usage: gohsm user list"},
		{[]string{"user", "list", "extra"}, `gohsm: user list: unexpected argument "extra"`, "usage: gohsm user list"},
		{[]string{"user", "create", "--username", "x"}, "gohsm: user create: --username and --role are required", "usage: gohsm user create --username U"},
		{[]string{"user", "create", "--username", "x", "--role", "cu", "--pin", coPIN}, "needs --password, --password-file, --password - or $GOHSM_NEW_PASSWORD", "usage: gohsm user create"},
		{[]string{"user", "create", "--username", "x", "--role", "cu", "--password", "p", "--password-file", "f", "--pin", coPIN}, "give one", "usage: gohsm user create"},
		{[]string{"user", "change-password", "--username", "x", "--pin", coPIN}, "needs --password", "usage: gohsm user change-password"},
		{[]string{"--slot", "0", "--token", "t", "user", "list"}, "--slot and --token both select a slot", "usage: gohsm user list"},
		{[]string{"user", "create", "--username", "x", "--role", "boss", "--password", "p", "--pin", coPIN}, `--role "boss"`, "usage: gohsm user create"},
		{[]string{"user", "create", "--username", "x", "--role", "cu", "--password", "x-pw-123"}, "needs --pin NAME:PASSWORD or $GOHSM_PIN", "usage: gohsm user create"},
		{[]string{"key", "list"}, "gohsm: key list: needs --pin", "usage: gohsm key list"},
		{[]string{"token", "init", "--pin", coPIN}, "--label is required", "usage: gohsm token init"},
		{[]string{"token", "init", "--label", strings.Repeat("x", 33), "--pin", coPIN}, "at most 32 bytes", "usage: gohsm token init"},
		{[]string{"token", "delete", "--pin", coPIN}, "pass --yes", "usage: gohsm token delete --yes"},
		{[]string{"key", "generate", "aes", "--bits", "100", "--label", "x", "--pin", alicePIN}, "--bits 100", "usage: gohsm key generate aes"},
		{[]string{"key", "generate", "ec", "--curve", "P-521", "--label", "x", "--pin", alicePIN}, `--curve "P-521"`, "usage: gohsm key generate ec"},
		{[]string{"key", "generate", "rsa", "--bits", "1024", "--label", "x", "--pin", alicePIN}, "--bits 1024", "usage: gohsm key generate rsa"},
		{[]string{"key", "generate", "aes", "--id", "xyz", "--label", "x", "--pin", alicePIN}, `--id "xyz": not hex`, "usage:"},
		{[]string{"key", "generate", "aes", "--pin", alicePIN}, "--label is required", "usage:"},
		{[]string{"key", "delete", "--pin", alicePIN}, "exactly one of --handle and --label", "usage: gohsm key delete"},
		{[]string{"key", "delete", "--handle", "3", "--label", "x", "--pin", alicePIN}, "exactly one of --handle and --label", "usage:"},
		{[]string{"key", "delete", "--handle", "3", "--class", "secret", "--pin", alicePIN}, "--class goes with --label", "usage:"},
		{[]string{"key", "delete", "--label", "x", "--class", "weird", "--pin", alicePIN}, `--class "weird"`, "usage:"},
		{[]string{"key", "share", "--handle", "3", "--pin", alicePIN}, "--username is required", "usage: gohsm key share"},
		{[]string{"--slot", "x", "user", "list"}, "invalid value", "usage:"},
		{[]string{"key", "list", "--class", "cert", "--pin", alicePIN}, `--class "cert": want secret, private or public`, "usage: gohsm key list"},
		{[]string{"key", "list", "--key-type", "dsa", "--pin", alicePIN}, `--key-type "dsa": want one of aes, ec, rsa`, "usage: gohsm key list"},
	} {
		r := c.run(tc.args...)
		name := strings.Join(tc.args, " ")
		assert.Equal(t, 2, r.code, "%s: %s", name, r.stderr)
		lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
		if assert.Len(t, lines, 2, "%s: %q", name, r.stderr) {
			assert.Contains(t, lines[0], tc.want, name)
			assert.True(t, strings.HasPrefix(lines[0], "gohsm: "), name)
			assert.True(t, strings.HasPrefix(lines[1], tc.usage), "%s: %q", name, lines[1])
		}
		assert.Empty(t, r.stdout, name)
	}
	// Nothing above changed the token.
	assert.Len(t, c.users(), 3)
	assert.Empty(t, c.keys(alicePIN))
}

func TestHelp(t *testing.T) {
	c := newCLI(t)
	for _, args := range [][]string{{"help"}, {"-h"}} {
		r := c.run(args...)
		require.Equal(t, 0, r.code)
		assert.Empty(t, r.stderr)
		for _, cmd := range commands {
			assert.Contains(t, r.stdout, "  "+cmd.name()+" ")
		}
	}
	r := c.run("key", "generate", "ec", "--help")
	require.Equal(t, 0, r.code)
	assert.Contains(t, r.stdout, "usage: gohsm key generate ec --curve")
	assert.Contains(t, r.stdout, "-curve")
	assert.Contains(t, r.stdout, "-pin", "global flags are listed too")
}

// TestTokenReset: with every officer locked out, `token reset --yes`
// erases the token without a PIN (issue 15: the only way out was deleting
// a directory the README does not name) and a new one can be made; without
// --yes it is a usage error and the token stays.
func TestTokenReset(t *testing.T) {
	c := newCLI(t)
	c.setup()
	for range 5 {
		c.run("user", "list", "--pin", "admin:wrong-pw") // no login needed: does not count
		c.run("token", "delete", "--yes", "--pin", "admin:wrong-pw")
	}
	c.fails([]string{"CKR_PIN_LOCKED"}, "token", "delete", "--yes", "--pin", coPIN)
	r := c.run("token", "reset")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "pass --yes")
	assert.Len(t, c.users(), 3, "the token stays without --yes")
	var d struct{ Slot int }
	c.data(&d, "token", "reset", "--yes")
	c.fails([]string{"CKR_TOKEN_NOT_RECOGNIZED"}, "user", "list")
	c.ok("token", "init", "--label", "again", "--pin", "admin:new-officer-pw")
	assert.Len(t, c.users(), 1)
}

// TestVersion: gohsm --version prints the version the library reports in
// CK_INFO, as text and as JSON (issue 15, "first run").
func TestVersion(t *testing.T) {
	c := newCLI(t)
	r := c.run("--version")
	require.Equal(t, 0, r.code, r.stderr)
	assert.True(t, strings.HasPrefix(r.stdout, fmt.Sprintf("gohsm %d.%d (go", token.VersionMajor, token.VersionMinor)), r.stdout)
	r = c.run("--json", "--version")
	require.Equal(t, 0, r.code, r.stderr)
	var m struct {
		Code int               `json:"error_code"`
		Data map[string]string `json:"data"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &m), r.stdout)
	assert.Equal(t, fmt.Sprintf("%d.%d", token.VersionMajor, token.VersionMinor), m.Data["version"])
}

func TestJSONErrors(t *testing.T) {
	c := newCLI(t)
	c.setup()
	// error_code (1) and error as before, for existing callers; ckr and
	// code for scripts (docs/cli.md, "Errors for scripts"): ckr only when
	// a Cryptoki error is involved.
	check := func(wantCode int, wantErr, wantCKR, wantKind string, args ...string) {
		t.Helper()
		r := c.run(append([]string{"--json"}, args...)...)
		assert.Equal(t, wantCode, r.code)
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &m), r.stdout)
		want := map[string]any{"error_code": float64(1), "code": wantKind}
		if wantCKR != "" {
			want["ckr"] = wantCKR
		}
		assert.Contains(t, m["error"], wantErr)
		delete(m, "error")
		assert.Equal(t, want, m)
		assert.True(t, strings.HasPrefix(r.stderr, "gohsm: "), r.stderr)
	}
	check(1, "user create: CKR_PIN_INCORRECT: wrong name or password", "CKR_PIN_INCORRECT", "CKR_PIN_INCORRECT",
		"user", "create", "--username", "carol", "--role", "cu", "--password", "carol-pw", "--pin", "admin:wrong")
	check(1, "key delete: CKR_OBJECT_HANDLE_INVALID", "CKR_OBJECT_HANDLE_INVALID", "CKR_OBJECT_HANDLE_INVALID",
		"key", "delete", "--handle", "999", "--pin", alicePIN)
	check(2, "user create: --username and --role are required", "", "usage", "user", "create")
	// User mistakes: the token's code, and the CKR it answers with.
	c.ok("key", "generate", "aes", "--bits", "128", "--label", "k-aes", "--pin", alicePIN)
	c.ok("key", "generate", "ec", "--curve", "P-256", "--label", "k-ec", "--pin", alicePIN)
	c.ok("key", "share", "--label", "k-aes", "--username", "bob", "--pin", alicePIN)
	check(1, `user create: CKR_ACTION_PROHIBITED: user "alice" exists`, "CKR_ACTION_PROHIBITED", "user_exists",
		"user", "create", "--username", "alice", "--role", "cu", "--password", "alice-pw2", "--pin", coPIN)
	check(1, `user delete: CKR_ACTION_PROHIBITED: no user "nobody"`, "CKR_ACTION_PROHIBITED", "no_such_user",
		"user", "delete", "--username", "nobody", "--pin", coPIN)
	check(1, "already shared", "CKR_ACTION_PROHIBITED", "already_shared",
		"key", "share", "--label", "k-aes", "--username", "bob", "--pin", alicePIN)
	check(1, "not shared", "CKR_ACTION_PROHIBITED", "not_shared",
		"key", "unshare", "--label", "k-ec", "--class", "private-key", "--username", "bob", "--pin", alicePIN)
	check(2, `--role "boss"`, "", "usage",
		"user", "create", "--username", "x", "--role", "boss", "--password", "p", "--pin", coPIN)
	check(1, "pass --yes", "", "token_initialized", "token", "init", "--label", "again", "--pin", coPIN)
	check(1, `no token labelled "nope"`, "", "no_such_token", "--token", "nope", "user", "list")
	// No password in an error, whatever failed.
	r := c.run("--json", "user", "create", "--username", "carol", "--role", "cu", "--password", "s3cret-pw", "--pin", "admin:wr0ng-pw")
	assert.NotContains(t, r.stdout+r.stderr, "s3cret-pw")
	assert.NotContains(t, r.stdout+r.stderr, "wr0ng-pw")
	// --json after the command works the same.
	r = c.run("user", "list", "--json")
	require.Equal(t, 0, r.code)
	assert.True(t, strings.HasPrefix(r.stdout, "{\n  \"error_code\": 0,\n  \"data\": {"), r.stdout)
}

func TestDescribe(t *testing.T) {
	// Errors without a Cryptoki code pass through; a code without an
	// explanation is still named.
	assert.Equal(t, "config: boom", describe(fmt.Errorf("config: boom"), needNone))
	c := newCLI(t)
	c.conf = filepath.Join(t.TempDir(), "missing.conf")
	c.fails([]string{"gohsm: user list: config: ", "missing.conf"}, "user", "list")
}

func TestSetTrusted(t *testing.T) {
	c := newCLI(t)
	c.setup()
	var aes struct{ Key keyJSON }
	c.data(&aes, "key", "generate", "aes", "--bits", "256", "--label", "kek", "--pin", alicePIN)
	h := fmt.Sprint(aes.Key.Handle)
	// A crypto user may not; a crypto officer may, by handle.
	c.fails([]string{"crypto officer"}, "key", "set-trusted", "--handle", h, "--pin", alicePIN)
	out := c.ok("key", "set-trusted", "--handle", h, "--pin", coPIN)
	assert.Contains(t, out, "trusted = true")
	r := c.run("key", "set-trusted", "--pin", coPIN)
	assert.Equal(t, 2, r.code, "usage error: %s", r.stderr)
}
