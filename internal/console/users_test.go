package console_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type userJSON struct {
	Name     string `json:"username"`
	Role     string `json:"role"`
	Locked   bool   `json:"locked"`
	Failures int    `json:"failed_logins"`
}

func (c *client) users(t *testing.T) map[string]userJSON {
	t.Helper()
	var out struct {
		Users []userJSON `json:"users"`
	}
	c.do("GET", "/api/v1/users", nil).ok(t, http.StatusOK, &out)
	m := map[string]userJSON{}
	for _, u := range out.Users {
		m[u.Name] = u
	}
	return m
}

// TestAPIUsers: the officer lists, creates, deletes users and sets their
// passwords; the new password logs in and the old one does not.
func TestAPIUsers(t *testing.T) {
	e := newEnv(t)
	co := e.officer()
	us := co.users(t)
	require.Contains(t, us, "alice")
	assert.Equal(t, "crypto-user", us["alice"].Role)
	assert.Equal(t, "crypto-officer", us[officer].Role)

	var made struct {
		User userJSON `json:"user"`
	}
	co.do("POST", "/api/v1/users", map[string]any{"username": "carol", "role": "crypto-user", "password": "carol-pw"}).
		ok(t, http.StatusCreated, &made)
	assert.Equal(t, "carol", made.User.Name)
	assert.Equal(t, "crypto-user", made.User.Role)
	co.do("POST", "/api/v1/users", map[string]any{"username": "carol", "role": "crypto-user", "password": "carol-pw"}).
		want(t, http.StatusConflict, "")
	co.do("POST", "/api/v1/users", map[string]any{"username": "dave", "role": "crypto-officer", "password": "dave-pw1"}).
		ok(t, http.StatusCreated, nil)
	e.login("dave", "dave-pw1").do("GET", "/api/v1/users", nil).ok(t, http.StatusOK, nil)

	carol := e.login("carol", "carol-pw")
	carol.do("DELETE", "/api/v1/session", nil).ok(t, http.StatusNoContent, nil)
	co.do("PUT", "/api/v1/users/carol/password", map[string]any{"password": "carol-new"}).ok(t, http.StatusNoContent, nil)
	e.client().do("POST", "/api/v1/session", map[string]any{"username": "carol", "password": "carol-pw"}).
		want(t, http.StatusUnauthorized, "", "CKR_PIN_INCORRECT")
	e.login("carol", "carol-new").do("DELETE", "/api/v1/session", nil).ok(t, http.StatusNoContent, nil)

	co.do("DELETE", "/api/v1/users/carol", nil).ok(t, http.StatusNoContent, nil)
	assert.NotContains(t, co.users(t), "carol")
	co.do("DELETE", "/api/v1/users/carol", nil).want(t, http.StatusNotFound, "")
	co.do("PUT", "/api/v1/users/carol/password", map[string]any{"password": "whatever1"}).want(t, http.StatusNotFound, "")
}

// TestAPIUsersRoles: a crypto user may read the user list but not create or
// delete users nor set another's password: 403 from the token.
func TestAPIUsersRoles(t *testing.T) {
	e := newEnv(t)
	a := e.alice()
	us := a.users(t)
	assert.Contains(t, us, "bob")
	r := a.do("POST", "/api/v1/users", map[string]any{"username": "mallory", "role": "crypto-user", "password": "mallory-pw"})
	assert.Equal(t, http.StatusForbidden, r.Status, "%s", r.Body)
	assert.NotEmpty(t, r.apiErr(t).Error.CKR)
	r = a.do("DELETE", "/api/v1/users/bob", nil)
	assert.Equal(t, http.StatusForbidden, r.Status, "%s", r.Body)
	r = a.do("PUT", "/api/v1/users/bob/password", map[string]any{"password": "hijacked"})
	assert.Equal(t, http.StatusForbidden, r.Status, "%s", r.Body)
	co := e.officer()
	assert.NotContains(t, co.users(t), "mallory")
	e.bob() // bob's password is unchanged
	// A crypto user changes its own password (the CLI lets it).
	a.do("PUT", "/api/v1/users/alice/password", map[string]any{"password": "alice-new"}).ok(t, http.StatusNoContent, nil)
	e.login("alice", "alice-new")
}

// TestAPIUsersBadInput: bad names, roles, passwords and bodies are 400.
func TestAPIUsersBadInput(t *testing.T) {
	e := newEnv(t)
	co := e.officer()
	for _, body := range []map[string]any{
		{"username": "x", "role": "emperor", "password": "xxxxxxxx"},
		{"username": "", "role": "crypto-user", "password": "xxxxxxxx"},
		{"username": "a b", "role": "crypto-user", "password": "xxxxxxxx"},
		{"username": "x", "role": "crypto-user", "password": ""},
		{"username": "x", "role": "crypto-user", "password": "y"},
		{"username": "x", "role": "crypto-user", "password": strings.Repeat("p", 1000)},
		{"username": strings.Repeat("n", 1000), "role": "crypto-user", "password": "xxxxxxxx"},
		{"username": "x", "role": "crypto-user"},
		{"username": "x", "role": "crypto-user", "password": "xxxxxxxx", "admin": true},
	} {
		r := co.raw("POST", "/api/v1/users", body, nil)
		assert.Equal(t, http.StatusBadRequest, r.Status, "%v: %s", body, r.Body)
	}
	for _, body := range []string{`{`, `{"password": 12345678}`, `{"password": "newpassword", "x": 1}`, ``} {
		co.raw("PUT", "/api/v1/users/alice/password", body, nil).want(t, http.StatusBadRequest, "")
	}
	for _, name := range []string{"", "%00", "a%2Fb", "%20", "ALICE%00", strings.Repeat("n", 300)} {
		r := co.raw("DELETE", "/api/v1/users/"+name, nil, nil)
		assert.Contains(t, []int{http.StatusBadRequest, http.StatusNotFound, http.StatusMethodNotAllowed}, r.Status, "%s: %s", name, r.Body)
		r = co.raw("PUT", "/api/v1/users/"+name+"/password", map[string]any{"password": "whatever-pw"}, nil)
		// "" is users//password: ServeMux redirects to the cleaned path.
		assert.Contains(t, []int{http.StatusBadRequest, http.StatusNotFound, http.StatusTemporaryRedirect}, r.Status, "%s: %s", name, r.Body)
	}
	e.alice() // alice's password is unchanged
	assert.Len(t, co.users(t), 3)
}

// TestAPIUsersConflicts: the token's own refusals keep their codes and
// statuses: an officer deleting itself, a user who owns keys, a user
// logged in elsewhere.
func TestAPIUsersConflicts(t *testing.T) {
	e := newEnv(t)
	co := e.officer()
	r := co.do("DELETE", "/api/v1/users/admin", nil)
	assert.Contains(t, []int{http.StatusForbidden, http.StatusConflict}, r.Status, "%s", r.Body)
	a := e.alice()
	a.gen(t, map[string]any{"type": "aes", "label": "owned", "bits": 128})
	co.do("DELETE", "/api/v1/users/alice", nil).want(t, http.StatusConflict, "")
	a.do("DELETE", "/api/v1/session", nil).ok(t, http.StatusNoContent, nil)
	r = co.do("DELETE", "/api/v1/users/alice", nil)
	assert.Equal(t, http.StatusConflict, r.Status, "alice still owns a key: %s", r.Body)
	assert.Contains(t, co.users(t), "alice")
	// Session keys die with their web session.
	b := e.bob()
	ks := b.gen(t, map[string]any{"type": "aes", "label": "ephemeral", "bits": 128, "session": true})
	require.Len(t, ks, 1)
	assert.False(t, ks[0].Token, "a session key")
	assert.Len(t, b.list(t, "label=ephemeral"), 1)
	b.do("DELETE", "/api/v1/session", nil).ok(t, http.StatusNoContent, nil)
	assert.Empty(t, e.bob().list(t, "label=ephemeral"))
}
