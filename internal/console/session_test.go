package console_test

import (
	"encoding/base64"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token"
)

type sessionJSON struct {
	Username  string `json:"username"`
	Role      string `json:"role"`
	Slot      int    `json:"slot"`
	CSRF      string `json:"csrf_token"`
	ExpiresAt string `json:"expires_at"`
	IdleS     int    `json:"idle_timeout_s"`
}

// sessionCookie is the client's gohsm_session cookie as the server set it.
func setCookie(t *testing.T, r *resp) *http.Cookie {
	t.Helper()
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == "gohsm_session" {
			return c
		}
	}
	t.Fatalf("%s: no gohsm_session cookie in %v", r.req, r.Header.Values("Set-Cookie"))
	return nil
}

// TestAPISessionLifecycle: login answers 201 with the D2 shape and a cookie
// with D3's flags; GET /session answers the same CSRF token; logout ends
// the session for every later request.
func TestAPISessionLifecycle(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	r := c.do("POST", "/api/v1/session", map[string]any{"username": "Alice", "password": alicePW})
	var s sessionJSON
	r.ok(t, http.StatusCreated, &s)
	assert.Equal(t, "alice", s.Username, "names fold as the token folds them")
	assert.Equal(t, "crypto-user", s.Role)
	assert.Equal(t, 0, s.Slot)
	assert.Equal(t, int((15 * time.Minute).Seconds()), s.IdleS)
	exp, err := time.Parse(time.RFC3339, s.ExpiresAt)
	require.NoError(t, err, "expires_at %q", s.ExpiresAt)
	assert.True(t, exp.After(e.clock.Now()), "expires_at %v after now %v", exp, e.clock.Now())
	csrf, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s.CSRF, "="))
	if err != nil {
		csrf, err = base64.StdEncoding.DecodeString(s.CSRF)
	}
	if err != nil {
		csrf = []byte(s.CSRF) // hex: 64 characters for 32 bytes
		require.Len(t, s.CSRF, 64, "csrf_token %q", s.CSRF)
	} else {
		require.Len(t, csrf, 32, "csrf_token of 32 random bytes: %q", s.CSRF)
	}

	ck := setCookie(t, r)
	assert.True(t, ck.HttpOnly, "HttpOnly")
	assert.Equal(t, http.SameSiteStrictMode, ck.SameSite, "SameSite=Strict")
	assert.Equal(t, "/", ck.Path)
	assert.False(t, ck.Secure, "no Secure over plain http")
	id, err := base64.RawURLEncoding.DecodeString(ck.Value)
	require.NoError(t, err, "session id %q is base64url", ck.Value)
	assert.Len(t, id, 32, "session id of 32 random bytes")

	c.csrf = s.CSRF
	var again sessionJSON
	c.do("GET", "/api/v1/session", nil).ok(t, http.StatusOK, &again)
	assert.Equal(t, s.CSRF, again.CSRF)
	assert.Equal(t, s.Username, again.Username)

	// A second login of the same user is another session, another id.
	c2 := e.alice()
	assert.NotEqual(t, s.CSRF, c2.csrf)

	c.do("DELETE", "/api/v1/session", nil).ok(t, http.StatusNoContent, nil)
	c.do("GET", "/api/v1/session", nil).want(t, http.StatusUnauthorized, "")
	c.do("GET", "/api/v1/users", nil).want(t, http.StatusUnauthorized, "")
	// The other session lives on.
	c2.do("GET", "/api/v1/users", nil).ok(t, http.StatusOK, nil)
}

// TestAPILoginRefusals: a wrong password is 401 CKR_PIN_INCORRECT, an unknown
// user is refused the same way, bad bodies are 400.
func TestAPILoginRefusals(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	c.do("POST", "/api/v1/session", map[string]any{"username": "alice", "password": "wrong-pw"}).
		want(t, http.StatusUnauthorized, "", "CKR_PIN_INCORRECT")
	// An unknown user is answered as a wrong password, word for word: the
	// console is on the network, so no enumeration of users by message.
	wrong := c.do("POST", "/api/v1/session", map[string]any{"username": "alice", "password": "wrong-pw"}).
		want(t, http.StatusUnauthorized, "", "CKR_PIN_INCORRECT")
	for _, name := range []string{"nobody", "admin", " alice"} {
		e := c.do("POST", "/api/v1/session", map[string]any{"username": name, "password": "whatever"}).
			want(t, http.StatusUnauthorized, "", "CKR_PIN_INCORRECT")
		assert.Equal(t, wrong.Error.Message, e.Error.Message, "%q", name)
	}
	for _, body := range []string{`{`, `[]`, `{"username": 1, "password": "x"}`, `{"username": "alice", "password": "alice-pw", "extra": 1}`, `{"username":"alice","password":"alice-pw"} {}`} {
		c.raw("POST", "/api/v1/session", body, nil).want(t, http.StatusBadRequest, "")
	}
	c.raw("POST", "/api/v1/session", map[string]any{"username": "alice", "password": alicePW, "slot": 99}, nil).
		want(t, http.StatusNotFound, "")
	// No session came of any of it.
	c.do("GET", "/api/v1/session", nil).want(t, http.StatusUnauthorized, "")
}

// TestAPILoginLockout: wrong passwords through the console count toward the
// token's lockout; at the threshold (3 in the harness) the user is locked
// for the library too, and the right password is then refused.
func TestAPILoginLockout(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	for i := 0; i < 3; i++ {
		c.do("POST", "/api/v1/session", map[string]any{"username": "bob", "password": "bad-pw"}).
			want(t, http.StatusUnauthorized, "", "CKR_PIN_INCORRECT")
	}
	c.do("POST", "/api/v1/session", map[string]any{"username": "bob", "password": bobPW}).
		want(t, http.StatusForbidden, "", "CKR_PIN_LOCKED")

	m, err := token.OpenTool(e.conf)
	require.NoError(t, err)
	defer m.Close()
	h, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	require.NoError(t, err)
	require.ErrorIs(t, m.Login(h, ck.CKU_USER, []byte("bob:"+bobPW)), ck.CKR_PIN_LOCKED, "locked for the library too")

	// The officer's user list says so.
	var users struct {
		Users []struct {
			Name     string `json:"username"`
			Locked   bool   `json:"locked"`
			Failures int    `json:"failed_logins"`
		} `json:"users"`
	}
	e.officer().do("GET", "/api/v1/users", nil).ok(t, http.StatusOK, &users)
	found := false
	for _, u := range users.Users {
		if u.Name == "bob" {
			found = true
			assert.True(t, u.Locked, "bob locked")
		}
	}
	assert.True(t, found, "bob listed")
}

// TestAPISessionIdleExpiry: a session unused for --session-idle answers 401
// session_expired; its module is closed (the user's login is gone from the
// token's registry, so the officer may delete the user).
func TestAPISessionIdleExpiry(t *testing.T) {
	e := newEnvOpts(t, envOpts{idle: time.Minute, max: time.Hour})
	bob := e.bob()
	co := e.officer()
	co.do("DELETE", "/api/v1/users/bob", nil).want(t, http.StatusConflict, "", "CKR_USER_ALREADY_LOGGED_IN")

	e.clock.Advance(30 * time.Second)
	bob.do("GET", "/api/v1/users", nil).ok(t, http.StatusOK, nil) // use renews idle
	co.do("GET", "/api/v1/users", nil).ok(t, http.StatusOK, nil)
	e.clock.Advance(45 * time.Second)
	bob.do("GET", "/api/v1/users", nil).ok(t, http.StatusOK, nil)
	co.do("GET", "/api/v1/users", nil).ok(t, http.StatusOK, nil)
	e.clock.Advance(61 * time.Second)
	co.do("GET", "/api/v1/users", nil).want(t, http.StatusUnauthorized, "session_expired")
	// bob's expired session is closed by the sweeper (within a second)
	// or at its next request: either way bob's login leaves the registry.
	bob.do("GET", "/api/v1/users", nil).want(t, http.StatusUnauthorized, "session_expired")
	co = e.officer()
	co.do("DELETE", "/api/v1/users/bob", nil).ok(t, http.StatusNoContent, nil)
}

// TestAPISessionSweeper: an expired session's module is closed by the
// sweeper without any request of its own.
func TestAPISessionSweeper(t *testing.T) {
	e := newEnvOpts(t, envOpts{idle: time.Minute, max: time.Hour})
	_ = e.bob()
	e.clock.Advance(2 * time.Minute)
	co := e.officer()
	start := time.Now()
	deadline := start.Add(3 * time.Second) // D3 says within 1 s: slack for a loaded CI
	for {
		r := co.raw("DELETE", "/api/v1/users/bob", nil, nil)
		if r.Status == http.StatusNoContent {
			t.Logf("bob's expired session closed %v after the clock passed its expiry", time.Since(start).Round(time.Millisecond))
			break
		}
		r.want(t, http.StatusConflict, "", "CKR_USER_ALREADY_LOGGED_IN")
		require.True(t, time.Now().Before(deadline), "bob's expired session still logged in after 3 s")
		time.Sleep(100 * time.Millisecond)
	}
}

// TestAPISessionAbsoluteExpiry: however busy, a session ends at --session-max.
func TestAPISessionAbsoluteExpiry(t *testing.T) {
	e := newEnvOpts(t, envOpts{idle: time.Minute, max: 3 * time.Minute})
	a := e.alice()
	for i := 0; i < 5; i++ {
		e.clock.Advance(50 * time.Second)
		if i < 3 {
			a.do("GET", "/api/v1/users", nil).ok(t, http.StatusOK, nil)
		}
	}
	a.do("GET", "/api/v1/users", nil).want(t, http.StatusUnauthorized, "session_expired")
	a.do("GET", "/api/v1/session", nil).want(t, http.StatusUnauthorized, "")
	// Its module is closed: alice is logged in nowhere, so she may go.
	e.officer().do("DELETE", "/api/v1/users/alice", nil).ok(t, http.StatusNoContent, nil)
}

// TestAPITooManySessions: 32 live web sessions at most; the 33rd login is
// 429 too_many_sessions; a logout frees a place.
func TestAPITooManySessions(t *testing.T) {
	e := newEnv(t)
	var cs []*client
	for i := 0; i < 32; i++ {
		cs = append(cs, e.alice())
	}
	c := e.client()
	c.do("POST", "/api/v1/session", map[string]any{"username": "bob", "password": bobPW}).
		want(t, http.StatusTooManyRequests, "too_many_sessions")
	cs[0].do("DELETE", "/api/v1/session", nil).ok(t, http.StatusNoContent, nil)
	_ = e.bob()
}

// TestAPICSRF: a change without the header, with a wrong token, with another
// session's token, or from a foreign Origin is refused 403 csrf and
// changes nothing; the same request with the right token passes.
func TestAPICSRF(t *testing.T) {
	e := newEnv(t)
	co := e.officer()
	other := e.alice()
	body := map[string]any{"username": "carol", "role": "crypto-user", "password": "carol-pw"}
	for name, hdr := range map[string]map[string]string{
		"no header":       {"X-CSRF-Token": ""},
		"wrong token":     {"X-CSRF-Token": strings.Repeat("A", len(co.csrf))},
		"empty token":     {"X-CSRF-Token": " "},
		"another session": {"X-CSRF-Token": other.csrf},
		"foreign origin":  {"Origin": "http://evil.example"},
		"other port":      {"Origin": "http://127.0.0.1:1"},
		"null origin":     {"Origin": "null"},
	} {
		co.raw("POST", "/api/v1/users", body, hdr).want(t, http.StatusForbidden, "csrf")
		co.raw("DELETE", "/api/v1/users/alice", nil, hdr).want(t, http.StatusForbidden, "csrf")
		co.raw("DELETE", "/api/v1/session", nil, hdr).want(t, http.StatusForbidden, "csrf")
		_ = name
	}
	var users struct {
		Users []struct {
			Name string `json:"username"`
		} `json:"users"`
	}
	co.do("GET", "/api/v1/users", nil).ok(t, http.StatusOK, &users)
	names := []string{}
	for _, u := range users.Users {
		names = append(names, u.Name)
	}
	assert.NotContains(t, names, "carol")
	assert.Contains(t, names, "alice")

	// A login from a foreign origin is refused too, before any password.
	e.client().raw("POST", "/api/v1/session", map[string]any{"username": "alice", "password": alicePW},
		map[string]string{"Origin": "http://evil.example"}).want(t, http.StatusForbidden, "csrf")
	// The server's own origin passes.
	co.origin = e.base
	co.do("POST", "/api/v1/users", body).ok(t, http.StatusCreated, nil)
	// A form post is no JSON.
	r := co.raw("POST", "/api/v1/users", "username=x", map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	assert.Contains(t, []int{http.StatusBadRequest, http.StatusUnsupportedMediaType}, r.Status, "%s", r.Body)
	assert.Equal(t, "bad_request", r.apiErr(t).Error.Code)
}

// TestAPISecurityHeaders: every response, API or UI, carries D3's headers;
// API responses are not cached.
func TestAPISecurityHeaders(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	for _, r := range []*resp{
		c.raw("GET", "/", nil, nil),
		c.raw("GET", "/api/v1/slots", nil, nil),
		c.raw("GET", "/api/v1/users", nil, nil),
		c.raw("GET", "/api/v1/nope", nil, nil),
		c.raw("POST", "/api/v1/session", `{`, nil),
	} {
		assert.Equal(t, "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
			r.Header.Get("Content-Security-Policy"), r.req)
		assert.Equal(t, "nosniff", r.Header.Get("X-Content-Type-Options"), r.req)
		assert.Equal(t, "no-referrer", r.Header.Get("Referrer-Policy"), r.req)
		assert.Equal(t, "DENY", r.Header.Get("X-Frame-Options"), r.req)
		if strings.Contains(r.req, "/api/") {
			assert.Contains(t, r.Header.Get("Cache-Control"), "no-store", r.req)
		}
	}
}

// TestAPIDNSRebinding: a page of another site whose name has been rebound to
// 127.0.0.1 is same-origin with itself (Origin and Host agree), so
// comparing Origin with Host does not stop it: the console must refuse
// requests whose Host is not its own (a loopback name or address, or the
// --listen host). Else any web page can drive logins (and lock users out
// by wrong passwords) and read /slots.
func TestAPIDNSRebinding(t *testing.T) {
	e := newEnv(t)
	port := e.base[strings.LastIndex(e.base, ":"):]
	evil := map[string]string{"Host": "evil.example" + port, "Origin": "http://evil.example" + port}
	c := e.client()
	for i := 0; i < 3; i++ {
		c.raw("POST", "/api/v1/session", map[string]any{"username": "bob", "password": "guess"}, evil).
			want(t, http.StatusForbidden, "")
	}
	c.raw("GET", "/api/v1/slots", nil, map[string]string{"Host": "evil.example" + port}).want(t, http.StatusForbidden, "")
	_ = e.bob() // bob is not locked out
	// The server's own names pass.
	for _, h := range []string{"127.0.0.1" + port, "localhost" + port} {
		c.raw("GET", "/api/v1/slots", nil, map[string]string{"Host": h}).ok(t, http.StatusOK, nil)
	}
}

// TestAPISessionReplaced: a login from a browser that holds a session ends
// that session (its module is closed: the officer may then delete the
// user); logging out twice, a stale cookie or a forged one are 401.
func TestAPISessionReplaced(t *testing.T) {
	e := newEnv(t)
	c := e.alice()
	old := c.csrf
	c.do("POST", "/api/v1/session", map[string]any{"username": "bob", "password": bobPW}).ok(t, http.StatusCreated, nil)
	var s sessionJSON
	c.do("GET", "/api/v1/session", nil).ok(t, http.StatusOK, &s)
	assert.Equal(t, "bob", s.Username)
	assert.NotEqual(t, old, s.CSRF)
	co := e.officer()
	co.do("DELETE", "/api/v1/users/alice", nil).ok(t, http.StatusNoContent, nil)

	c.csrf = s.CSRF
	c.do("DELETE", "/api/v1/session", nil).ok(t, http.StatusNoContent, nil)
	c.raw("DELETE", "/api/v1/session", nil, nil).want(t, http.StatusUnauthorized, "")
	for _, v := range []string{"x", strings.Repeat("A", 43), strings.Repeat("A", 4000), "%00"} {
		e.client().raw("GET", "/api/v1/users", nil, map[string]string{"Cookie": "gohsm_session=" + v}).
			want(t, http.StatusUnauthorized, "not_logged_in")
	}
}

// TestAPILoginUninitialised: a login on a slot without a token is a clear
// 409 token_not_initialized, and /slots says it is not initialised.
func TestAPILoginUninitialised(t *testing.T) {
	e := newEnvOpts(t, envOpts{extra: "[slot 2]\n"})
	var slots []struct {
		Slot        int  `json:"slot"`
		Initialized bool `json:"initialized"`
	}
	e.client().do("GET", "/api/v1/slots", nil).ok(t, http.StatusOK, &slots)
	require.Len(t, slots, 3)
	assert.False(t, slots[2].Initialized)
	e.client().do("POST", "/api/v1/session", map[string]any{"slot": 2, "username": "admin", "password": officerPW}).
		want(t, http.StatusConflict, "token_not_initialized")
	for _, slot := range []string{"-1", "1.5", `"0"`, "18446744073709551616", "4294967296"} {
		r := e.client().raw("POST", "/api/v1/session", `{"slot": `+slot+`, "username": "alice", "password": "alice-pw"}`, nil)
		assert.Contains(t, []int{http.StatusBadRequest, http.StatusNotFound}, r.Status, "slot %s: %s", slot, r.Body)
	}
}

// TestAPIConcurrentSessions: requests in parallel, on one session and on
// several, all answer (the session serialises its own), none is a 5xx.
func TestAPIConcurrentSessions(t *testing.T) {
	e := newEnv(t)
	cs := []*client{e.alice(), e.bob(), e.officer(), e.alice(clusterID)}
	done := make(chan struct{})
	for i := 0; i < 16; i++ {
		c := cs[i%len(cs)]
		go func() {
			defer func() { done <- struct{}{} }()
			for j := 0; j < 10; j++ {
				for _, p := range []string{"/api/v1/users", "/api/v1/session", "/api/v1/slots"} {
					r := c.raw("GET", p, nil, nil)
					if r.Status != http.StatusOK {
						t.Errorf("%s: %d %s", p, r.Status, r.Body)
					}
				}
			}
		}()
	}
	for i := 0; i < 16; i++ {
		<-done
	}
	cs[0].do("DELETE", "/api/v1/session", nil).ok(t, http.StatusNoContent, nil)
}

// TestAPIBrokenConfig: the configuration file damaged under a running
// console: a login is refused with a clear error, not a 500.
func TestAPIBrokenConfig(t *testing.T) {
	e := newEnv(t)
	a := e.alice()
	require.NoError(t, os.WriteFile(e.conf, []byte("token_dir = relative/path\n[slot x\n"), 0o600))
	r := e.client().raw("POST", "/api/v1/session", map[string]any{"username": "bob", "password": bobPW}, nil)
	assert.NotEqual(t, http.StatusCreated, r.Status)
	a.do("GET", "/api/v1/users", nil).ok(t, http.StatusOK, nil) // a live session goes on
}

// TestAPIConcurrentLogins: 40 logins at once: exactly 32 get a session,
// the rest 429 too_many_sessions; none is a 5xx.
func TestAPIConcurrentLogins(t *testing.T) {
	e := newEnv(t)
	statuses := make(chan int, 40)
	for i := 0; i < 40; i++ {
		go func() {
			c := e.client()
			r := c.raw("POST", "/api/v1/session", map[string]any{"username": "alice", "password": alicePW}, nil)
			statuses <- r.Status
		}()
	}
	n := map[int]int{}
	for i := 0; i < 40; i++ {
		n[<-statuses]++
	}
	assert.Equal(t, map[int]int{http.StatusCreated: 32, http.StatusTooManyRequests: 8}, n)
}

// TestAPICloseEndsSessions: closing the console logs out and closes every
// web session's module: the users it had logged in are logged in nowhere
// (an officer may delete them), and the port answers no more.
func TestAPICloseEndsSessions(t *testing.T) {
	e := newEnv(t)
	e.alice()
	e.bob()
	require.NoError(t, e.srv.Close())
	_, err := http.Get(e.base + "/api/v1/slots")
	assert.Error(t, err, "nothing listens after Close")

	m, err := token.OpenTool(e.conf)
	require.NoError(t, err)
	defer m.Close()
	h, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	require.NoError(t, err)
	require.NoError(t, m.Login(h, ck.CKU_SO, []byte(officer+":"+officerPW)))
	require.NoError(t, m.DeleteUser(h, "alice"), "alice's web session logged out")
	require.NoError(t, m.DeleteUser(h, "bob"))
}

// TestAPISessionPollDoesNotRenew: a GET marked X-Gohsm-Poll: 1 (a page's
// timer) is served but does not renew the idle timer, so a page left open
// on the metrics or cluster view does not keep its session alive; the
// same GET without the header does renew it.
func TestAPISessionPollDoesNotRenew(t *testing.T) {
	e := newEnvOpts(t, envOpts{idle: time.Minute, max: time.Hour})
	poll := map[string]string{"X-Gohsm-Poll": "1"}
	bob, co := e.bob(), e.officer()
	for i := 0; i < 5; i++ { // 50 s of polls, 10 s apart
		e.clock.Advance(10 * time.Second)
		bob.send("GET", "/api/v1/metrics", nil, poll, true).ok(t, http.StatusOK, nil)
		co.send("GET", "/api/v1/metrics", nil, nil, true).ok(t, http.StatusOK, nil)
	}
	var s sessionJSON
	bob.send("GET", "/api/v1/session", nil, poll, true).ok(t, http.StatusOK, &s)
	exp, err := time.Parse(time.RFC3339, s.ExpiresAt)
	require.NoError(t, err)
	assert.Equal(t, e.clock.Now().Add(10*time.Second).Unix(), exp.Unix(),
		"polls left bob's idle deadline at the login's (+1 min)")
	e.clock.Advance(11 * time.Second) // 61 s after bob's last real request
	bob.send("GET", "/api/v1/metrics", nil, poll, true).want(t, http.StatusUnauthorized, "session_expired")
	// The officer's plain GETs renewed its deadline.
	co.send("GET", "/api/v1/metrics", nil, poll, true).ok(t, http.StatusOK, nil)
	// A poll header on a change is not a poll: it renews.
	e.clock.Advance(30 * time.Second)
	co.send("POST", "/api/v1/cluster/reset", nil, poll, false)
	e.clock.Advance(40 * time.Second)
	co.send("GET", "/api/v1/metrics", nil, poll, true).ok(t, http.StatusOK, nil)
}
