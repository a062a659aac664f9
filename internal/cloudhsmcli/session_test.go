package cloudhsmcli

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token"
)

// interact runs interactive mode on stdin and returns the envelopes it
// printed, one per command (the prompts stripped).
func (e *cliEnv) interact(stdin string) (code int, envs []string, stderr string) {
	e.t.Helper()
	var out, errb bytes.Buffer
	code = Run([]string{"interactive"}, strings.NewReader(stdin), &out, &errb, Options{Config: e.conf})
	for _, part := range strings.Split(out.String(), prompt) {
		if part = strings.TrimSpace(part); part != "" {
			envs = append(envs, part)
		}
	}
	return code, envs, errb.String()
}

// TestInteractiveSession: a prompt, login with the password read from
// stdin (no terminal: a line), the login kept across commands, logout,
// quit; every command's envelope in order.
func TestInteractiveSession(t *testing.T) {
	for _, profile := range []string{"standard", "cloudhsm"} {
		t.Run(profile, func(t *testing.T) {
			e := newCLIEnv(t, profile)
			e.must("", "", "", "cluster", "activate", "--password", "admin-pass1")
			stdin := strings.Join([]string{
				"user list",
				"login --username ADMIN --role admin",
				"admin-pass1",
				"user create --username carol --role crypto-user --password carol-pass1",
				"",
				"user create --username dave --role crypto-user",
				"dave-pass12",
				"dave-pass12",
				"login --username admin --role admin --password admin-pass1",
				"logout",
				"user create --username erin --role crypto-user --password erin-pass12",
				"login --username carol --role crypto-user --password carol-pass1",
				"user create --username erin --role crypto-user --password erin-pass12",
				"quit",
				"user list", // after quit: never run
			}, "\n") + "\n"
			code, envs, stderr := e.interact(stdin)
			require.Equal(t, 0, code)
			require.Len(t, envs, 9, strings.Join(envs, "\n---\n"))
			data := func(i int) string {
				c, d := envelope(t, envs[i])
				require.Equal(t, 0, c, envs[i])
				return string(d)
			}
			fails := func(i int) string {
				c, d := envelope(t, envs[i])
				require.Equal(t, 1, c, envs[i])
				var s string
				require.NoError(t, json.Unmarshal(d, &s))
				return s
			}
			require.Contains(t, data(0), `"username": "admin"`)
			require.JSONEq(t, `{"username":"admin","role":"admin"}`, data(1))
			require.JSONEq(t, `{"username":"carol","role":"crypto-user"}`, data(2))
			require.JSONEq(t, `{"username":"dave","role":"crypto-user"}`, data(3))
			require.Equal(t, "user admin is already logged in: log out first", fails(4))
			require.JSONEq(t, `"Logout successful"`, data(5))
			require.Equal(t, ErrNotLoggedIn.Error(), fails(6))
			require.JSONEq(t, `{"username":"carol","role":"crypto-user"}`, data(7))
			require.Contains(t, fails(8), "only a logged-in admin may run this command")
			require.Equal(t, "Enter password:\nEnter password:\nConfirm password:\n", stderr)
			// What the session did is in the token.
			r := e.run("", "", "", "user", "list")
			require.Contains(t, r.stdout, `"username": "dave"`)
			require.NotContains(t, r.stdout, `"username": "erin"`)
		})
	}
}

// TestInteractiveEndOfInput: end of input ends the session like quit; a
// password prompt at end of input is an error, not a hang.
func TestInteractiveEndOfInput(t *testing.T) {
	e := newCLIEnv(t, "standard")
	e.must("", "", "", "cluster", "activate", "--password", "admin-pass1")
	code, envs, _ := e.interact("user list")
	require.Equal(t, 0, code)
	require.Len(t, envs, 1)
	code, envs, _ = e.interact("login --username admin --role admin\n")
	require.Equal(t, 0, code)
	require.Len(t, envs, 1)
	require.Contains(t, envs[0], "no password given (end of input)")
	code, envs, _ = e.interact(`user list --filter "abc` + "\nquit\n")
	require.Equal(t, 0, code)
	require.Contains(t, envs[0], `unterminated quote (\")`)
}

// TestLockoutAndUnlock is behaviour 5: five wrong logins lock a user
// (user list says "locked": "true"; the right password no longer logs
// in); an admin's user change-password unlocks it.
func TestLockoutAndUnlock(t *testing.T) {
	for _, profile := range []string{"standard", "cloudhsm"} {
		t.Run(profile, func(t *testing.T) {
			e := activatedEnv(t, profile)
			locked := func() string {
				var d struct {
					Users []listedUser `json:"users"`
				}
				require.NoError(t, json.Unmarshal(e.must("", "", "", "user", "list"), &d))
				for _, u := range d.Users {
					if u.Username == "bob" {
						return u.Locked
					}
				}
				t.Fatal("no bob in user list")
				return ""
			}
			for i := 0; i < 5; i++ {
				require.Equal(t, "false", locked(), "after %d failures", i)
				txt := errText(t, e.run("crypto-user", "bob:wrong-pass", "", "user", "list"))
				require.True(t, strings.HasPrefix(txt, rvTexts[ck.CKR_PIN_INCORRECT]), txt)
			}
			require.Equal(t, "true", locked())
			txt := errText(t, e.run("crypto-user", bobPIN, "", "user", "list"))
			require.True(t, strings.HasPrefix(txt, rvTexts[ck.CKR_PIN_LOCKED]), txt)
			// Interactive login reports the lock too.
			_, envs, _ := e.interact("login --username bob --role crypto-user --password bob-pass12\n")
			require.Contains(t, envs[0], rvTexts[ck.CKR_PIN_LOCKED])

			e.must("admin", adminPIN, "", "user", "change-password", "--username", "bob", "--role", "crypto-user", "--password", "bob-pass34")
			require.Equal(t, "false", locked())
			e.must("crypto-user", "bob:bob-pass34", "", "user", "list")
		})
	}
}

// TestUserRoleRefusals: who may do what with users, with the texts the
// CLI prints: a crypto user creates and deletes no one and changes only
// its own password; the --role must be the user's; nobody deletes a
// logged-in user or a key owner; in the cloudhsm profile nobody changes
// the password of a user logged in elsewhere (UG-2023:
// cloudhsm_cli-user-change-password.md), the standard profile allows it.
func TestUserRoleRefusals(t *testing.T) {
	for _, profile := range []string{"standard", "cloudhsm"} {
		t.Run(profile, func(t *testing.T) {
			e := activatedEnv(t, profile)
			for _, args := range [][]string{
				{"user", "create", "--username", "zed", "--role", "crypto-user", "--password", "zed-pass12"},
				{"user", "delete", "--username", "bob", "--role", "crypto-user"},
			} {
				require.Equal(t, ErrWrongRole.Error()+": only a logged-in admin may run this command",
					errText(t, e.run("crypto-user", alicePIN, "", args...)))
			}
			require.Equal(t, rvTexts[ck.CKR_USER_NOT_LOGGED_IN]+": a crypto user may change only its own password",
				errText(t, e.run("crypto-user", alicePIN, "", "user", "change-password", "--username", "bob", "--role", "crypto-user", "--password", "bob-pass99")))
			require.Equal(t, "user bob is a crypto-user, not an admin",
				errText(t, e.run("admin", adminPIN, "", "user", "delete", "--username", "bob", "--role", "admin")))
			require.Equal(t, "user nobody (crypto-user) does not exist",
				errText(t, e.run("admin", adminPIN, "", "user", "change-password", "--username", "nobody", "--role", "crypto-user", "--password", "bob-pass99")))
			require.Contains(t, errText(t, e.run("admin", adminPIN, "", "user", "delete", "--username", "admin", "--role", "admin")),
				rvTexts[ck.CKR_ACTION_PROHIBITED]+": user \"admin\" is logged in")

			// bob logged in elsewhere (another module: another process's view).
			m := openModule(t, e.conf)
			h, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
			require.NoError(t, err)
			require.NoError(t, m.Login(h, ck.CKU_USER, []byte(bobPIN)))
			require.Contains(t, errText(t, e.run("admin", adminPIN, "", "user", "delete", "--username", "bob", "--role", "crypto-user")),
				rvTexts[ck.CKR_USER_ALREADY_LOGGED_IN])
			genAES(t, m, h, "bobs-key", nil)
			r := e.run("admin", adminPIN, "", "user", "change-password", "--username", "bob", "--role", "crypto-user", "--password", "bob-pass99")
			if profile == "cloudhsm" {
				require.Contains(t, errText(t, r), rvTexts[ck.CKR_USER_ALREADY_LOGGED_IN]+": set password: user \"bob\" is logged in")
			} else {
				require.Equal(t, 0, r.code, r.stdout)
			}
			require.NoError(t, m.Close())
			// Logged out, bob still owns a key: not deleted either.
			require.Equal(t, rvTexts[ck.CKR_ACTION_PROHIBITED]+": user \"bob\" owns objects",
				errText(t, e.run("admin", adminPIN, "", "user", "delete", "--username", "bob", "--role", "crypto-user")))
			e.must("admin", adminPIN, "", "user", "delete", "--username", "alice", "--role", "crypto-user")
		})
	}
}

func openModule(t *testing.T, conf string) *token.Module {
	t.Helper()
	b, err := os.ReadFile(conf)
	require.NoError(t, err)
	cfg, err := token.ParseConfig(string(b), conf)
	require.NoError(t, err)
	cfg.LogFile = os.DevNull
	m, err := token.Open(cfg)
	require.NoError(t, err)
	return m
}
