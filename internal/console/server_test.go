package console

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"gohsm/internal/admin"
	"gohsm/internal/ck"
	"gohsm/token"
	"gohsm/token/cluster"
	"gohsm/token/metrics"
	"gohsm/token/store"
)

// clock is a test clock that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// fixture is a console on a fresh token: officer admin:officer-pw,
// crypto user alice:alice-pw.
type fixture struct {
	t    *testing.T
	srv  *Server
	ts   *httptest.Server
	clk  *clock
	conf string
}

func newFixture(t *testing.T, extra string, opts Options) *fixture {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "gohsm.conf")
	text := fmt.Sprintf("token_dir = %s\nkdf_time = 1\nkdf_memory = 64\nkdf_threads = 1\nlogin_cache = off\nlockout_threshold = 3\n%s", filepath.Join(dir, "tokens"), extra)
	require.NoError(t, os.WriteFile(conf, []byte(text), 0o600))
	m, err := token.OpenTool(conf)
	require.NoError(t, err)
	sl, err := m.Slot(m.SlotIDs()[0])
	require.NoError(t, err)
	require.NoError(t, sl.InitToken([]byte("admin:officer-pw"), "console"))
	h, err := m.OpenSession(sl.ID(), ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	require.NoError(t, err)
	require.NoError(t, m.Login(h, ck.CKU_SO, []byte("admin:officer-pw")))
	require.NoError(t, m.CreateUser(h, "alice", store.RoleCU, []byte("alice-pw")))
	require.NoError(t, m.Close())

	clk := &clock{t: time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)}
	opts.Config, opts.Now, opts.Stdout = conf, clk.now, io.Discard
	srv, err := New(opts)
	require.NoError(t, err)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { ts.Close(); srv.Close() })
	return &fixture{t: t, srv: srv, ts: ts, clk: clk, conf: conf}
}

// client is a browser: a cookie jar and the CSRF token of its login.
type client struct {
	f    *fixture
	hc   *http.Client
	csrf string
}

func (f *fixture) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{f: f, hc: &http.Client{Jar: jar}}
}

// do sends a request; body is JSON-encoded unless it is a string.
func (c *client) do(method, path string, body any, hdr ...string) (int, map[string]any) {
	c.f.t.Helper()
	var rd io.Reader
	if body != nil {
		s, ok := body.(string)
		if !ok {
			b, _ := json.Marshal(body)
			s = string(b)
		}
		rd = strings.NewReader(s)
	}
	req, err := http.NewRequest(method, c.f.ts.URL+path, rd)
	require.NoError(c.f.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.hc.Do(req)
	require.NoError(c.f.t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(b) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		require.NoError(c.f.t, json.Unmarshal(b, &out), "%s", b)
	}
	return resp.StatusCode, out
}

func (c *client) login(user, pw string) (int, map[string]any) {
	c.f.t.Helper()
	st, out := c.do("POST", "/api/v1/session", map[string]any{"username": user, "password": pw})
	if st == http.StatusCreated {
		c.csrf = out["csrf_token"].(string)
	}
	return st, out
}

func errCode(out map[string]any) (ckr, code string) {
	e, _ := out["error"].(map[string]any)
	ckr, _ = e["ckr"].(string)
	code, _ = e["code"].(string)
	return ckr, code
}

func TestListenPolicy(t *testing.T) {
	for _, tc := range []struct {
		addr, cert, key string
		ok              bool
	}{
		{"127.0.0.1:8611", "", "", true},
		{"127.1.2.3:0", "", "", true},
		{"[::1]:0", "", "", true},
		{"localhost:0", "", "", true},
		{"0.0.0.0:8611", "", "", false},
		{":8611", "", "", false},
		{"192.0.2.1:8611", "", "", false},
		{"example.com:8611", "", "", false},
		{"127.0.0.1", "", "", false},
		{"127.0.0.1:0", "cert.pem", "", false},
		{"0.0.0.0:0", "missing.pem", "missing.key", false},
	} {
		_, err := listenPolicy(tc.addr, tc.cert, tc.key)
		if tc.ok {
			require.NoError(t, err, tc.addr)
		} else {
			require.Error(t, err, tc.addr)
			require.IsType(t, &ListenError{}, err, tc.addr)
		}
	}
}

func TestLoginCSRFLogout(t *testing.T) {
	f := newFixture(t, "", Options{})
	c := f.client()

	st, out := c.do("GET", "/api/v1/users", nil)
	require.Equal(t, 401, st)
	_, code := errCode(out)
	require.Equal(t, codeNotLoggedIn, code)

	st, out = c.login("alice", "wrong")
	require.Equal(t, 401, st, "%v", out)
	ckr, _ := errCode(out)
	require.Equal(t, "CKR_PIN_INCORRECT", ckr)

	st, out = c.login("alice", "alice-pw")
	require.Equal(t, 201, st, "%v", out)
	require.Equal(t, "crypto-user", out["role"])
	// The wrong password counted toward lockout: the token says so.
	st, out = c.do("GET", "/api/v1/users", nil)
	require.Equal(t, 200, st)
	users := out["users"].([]any)
	var failures float64 = -1
	for _, u := range users {
		if u.(map[string]any)["username"] == "alice" {
			failures = u.(map[string]any)["failed_logins"].(float64)
		}
	}
	require.Equal(t, float64(0), failures, "a successful login resets the count") // reset by the good one

	st, out = c.do("GET", "/api/v1/session", nil)
	require.Equal(t, 200, st)
	require.Equal(t, c.csrf, out["csrf_token"])

	// Changes need the CSRF token and the server's own origin.
	csrf := c.csrf
	c.csrf = ""
	st, out = c.do("DELETE", "/api/v1/session", nil)
	require.Equal(t, 403, st)
	_, code = errCode(out)
	require.Equal(t, codeCSRF, code)
	c.csrf = "x" + csrf[1:]
	st, _ = c.do("DELETE", "/api/v1/session", nil)
	require.Equal(t, 403, st)
	c.csrf = csrf
	st, _ = c.do("DELETE", "/api/v1/session", nil, "Origin", "http://evil.example")
	require.Equal(t, 403, st)
	st, _ = c.do("POST", "/api/v1/session", map[string]any{"username": "alice", "password": "alice-pw"}, "Origin", "http://evil.example")
	require.Equal(t, 403, st)

	st, _ = c.do("DELETE", "/api/v1/session", nil, "Origin", f.ts.URL)
	require.Equal(t, 204, st)
	st, _ = c.do("GET", "/api/v1/session", nil)
	require.Equal(t, 401, st)
	require.Equal(t, 0, f.srv.sessions.count())
}

func TestOfficerUsers(t *testing.T) {
	f := newFixture(t, "", Options{})
	co, cu := f.client(), f.client()
	st, out := co.login("admin", "officer-pw")
	require.Equal(t, 201, st, "%v", out)
	require.Equal(t, "crypto-officer", out["role"])
	st, _ = cu.login("alice", "alice-pw")
	require.Equal(t, 201, st)

	st, out = co.do("POST", "/api/v1/users", map[string]any{"username": "Bob", "role": "crypto-user", "password": "bob-pw"})
	require.Equal(t, 201, st, "%v", out)
	require.Equal(t, "bob", out["user"].(map[string]any)["username"])
	st, out = co.do("POST", "/api/v1/users", map[string]any{"username": "bob", "role": "crypto-user", "password": "bob-pw"})
	require.Equal(t, 409, st, "%v", out)
	_, code := errCode(out)
	require.Equal(t, token.CodeUserExists, code)
	// A crypto user may not: the token refuses.
	st, out = cu.do("POST", "/api/v1/users", map[string]any{"username": "carol", "role": "crypto-user", "password": "c-pw"})
	require.Equal(t, 403, st, "%v", out)

	st, out = co.do("POST", "/api/v1/users", map[string]any{"username": "x", "role": "boss", "password": "pw"})
	require.Equal(t, 400, st, "%v", out)
	st, out = co.do("POST", "/api/v1/users", `{"username":"x","role":"crypto-user","password":"pw","extra":1}`)
	require.Equal(t, 400, st, "%v", out)
	st, out = co.do("POST", "/api/v1/users", `{"username":"x"} {}`)
	require.Equal(t, 400, st, "%v", out)
	st, out = co.do("POST", "/api/v1/users", `{`)
	require.Equal(t, 400, st, "%v", out)
	st, out = co.do("POST", "/api/v1/users", strings.Repeat(" ", 2<<20))
	require.Equal(t, 413, st, "%v", out)

	st, _ = co.do("PUT", "/api/v1/users/bob/password", map[string]any{"password": "bob-pw2"})
	require.Equal(t, 204, st)
	st, _ = co.do("DELETE", "/api/v1/users/bob", nil)
	require.Equal(t, 204, st)
	st, out = co.do("DELETE", "/api/v1/users/bob", nil)
	require.Equal(t, 404, st, "%v", out)
}

func TestExpiry(t *testing.T) {
	f := newFixture(t, "", Options{SessionIdle: time.Minute, SessionMax: 3 * time.Minute})
	c := f.client()
	st, _ := c.login("alice", "alice-pw")
	require.Equal(t, 201, st)
	for range 3 { // requests keep it alive past the idle time...
		f.clk.add(50 * time.Second)
		st, _ = c.do("GET", "/api/v1/session", nil)
		require.Equal(t, 200, st)
	}
	f.clk.add(40 * time.Second) // ... but not past its lifetime
	st, out := c.do("GET", "/api/v1/session", nil)
	require.Equal(t, 401, st)
	_, code := errCode(out)
	require.Equal(t, codeSessionExpired, code)
	require.Equal(t, 0, f.srv.sessions.count())

	// Idle expiry, found by the sweeper without a request.
	st, _ = c.login("alice", "alice-pw")
	require.Equal(t, 201, st)
	require.Equal(t, 1, f.srv.sessions.count())
	f.clk.add(61 * time.Second)
	require.Eventually(t, func() bool { return f.srv.sessions.count() == 0 }, time.Second, 10*time.Millisecond)
	st, out = c.do("GET", "/api/v1/session", nil)
	require.Equal(t, 401, st)
	_, code = errCode(out)
	require.Equal(t, codeSessionExpired, code)
}

func TestRoutingAndHeaders(t *testing.T) {
	f := newFixture(t, "", Options{})
	c := f.client()
	st, out := c.do("GET", "/api/v1/nothing", nil)
	require.Equal(t, 404, st)
	_, code := errCode(out)
	require.Equal(t, codeNotFound, code)
	st, out = c.do("PATCH", "/api/v1/users", nil)
	require.Equal(t, 405, st)
	_, code = errCode(out)
	require.Equal(t, codeMethodNotAllowed, code)
	st, _ = c.do("POST", "/api/v1/session", "username=alice", "Content-Type", "application/x-www-form-urlencoded")
	require.Equal(t, 415, st)

	resp, err := http.Get(f.ts.URL + "/api/v1/slots")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'")
	require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
	require.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"))
	require.Equal(t, "no-referrer", resp.Header.Get("Referrer-Policy"))
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
}

func TestMaxSessions(t *testing.T) {
	f := newFixture(t, "", Options{})
	for i := range MaxSessions {
		st, out := f.client().login("alice", "alice-pw")
		require.Equal(t, 201, st, "login %d: %v", i, out)
	}
	st, out := f.client().login("alice", "alice-pw")
	require.Equal(t, 429, st)
	_, code := errCode(out)
	require.Equal(t, codeTooManySessions, code)
}

func TestCluster(t *testing.T) {
	f := newFixture(t, "[slot 0]\nhsms = 3\n", Options{})
	c := f.client()
	st, _ := c.login("alice", "alice-pw")
	require.Equal(t, 201, st)
	st, out := c.do("GET", "/api/v1/cluster", nil)
	require.Equal(t, 200, st, "%v", out)
	require.Len(t, out["hsms"], 3)
	st, out = c.do("PUT", "/api/v1/cluster/hsms/1", map[string]any{"state": "down"})
	require.Equal(t, 200, st, "%v", out)
	require.Equal(t, "down", out["hsms"].([]any)[1].(map[string]any)["state"])
	st, _ = c.do("PUT", "/api/v1/cluster/hsms/7", map[string]any{"state": "down"})
	require.Equal(t, 404, st)
	st, _ = c.do("PUT", "/api/v1/cluster/hsms/1", map[string]any{"state": "sideways"})
	require.Equal(t, 400, st)
	st, _ = c.do("GET", "/api/v1/cluster/plan", nil)
	require.Equal(t, 404, st)
	st, out = c.do("PUT", "/api/v1/cluster/plan", `{"steps": [`)
	require.Equal(t, 400, st, "%v", out)
	_, code := errCode(out)
	require.Equal(t, codeBadPlan, code)
	st, _ = c.do("POST", "/api/v1/cluster/reset", nil)
	require.Equal(t, 200, st)
}

// A wrong password at the console is the token's C_Login: it counts
// toward lockout like any other.
func TestLoginLockout(t *testing.T) {
	f := newFixture(t, "", Options{})
	c := f.client()
	for range 3 {
		st, out := c.login("alice", "wrong")
		require.Equal(t, 401, st, "%v", out)
	}
	st, out := c.login("alice", "alice-pw")
	require.Equal(t, 403, st, "%v", out)
	ckr, _ := errCode(out)
	require.Equal(t, "CKR_PIN_LOCKED", ckr)
	require.Equal(t, 0, f.srv.sessions.count())
	st, out = c.login("nobody", "pw")
	require.Equal(t, 401, st, "%v", out)
}

// A session starts the slot's sampler, whose lease turns on the
// publishing of a process in mode auto; its calls show as rates.
func TestMetricsSampler(t *testing.T) {
	f := newFixture(t, "", Options{})
	c := f.client()
	st, _ := c.login("alice", "alice-pw")
	require.Equal(t, 201, st)
	sl, err := f.srv.tool.Slot(0)
	require.NoError(t, err)
	p, err := metrics.Open(sl.Config().Dir, 0o600, metrics.Auto, nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool { _, ok := p.Begin(); return ok }, 3*time.Second, 20*time.Millisecond, "no lease")
	var last float64
	require.Eventually(t, func() bool {
		for range 50 {
			t0, ok := p.Begin()
			require.True(t, ok)
			p.Record(cluster.ClassECSign, t0, nil, false)
		}
		st, out := c.do("GET", "/api/v1/metrics", nil)
		require.Equal(t, 200, st)
		require.Equal(t, true, out["enabled"])
		for _, smp := range out["samples"].([]any) {
			if cl, ok := smp.(map[string]any)["classes"].(map[string]any)["ec-sign"]; ok {
				last = cl.(map[string]any)["ops"].(float64)
			}
		}
		return last > 0
	}, 5*time.Second, 100*time.Millisecond)
	st, _ = c.do("GET", "/api/v1/metrics?since=1e99", nil)
	require.Equal(t, 400, st)
}

// A slot with metrics = off is not sampled: enabled is false.
func TestMetricsOff(t *testing.T) {
	f := newFixture(t, "metrics = off\n", Options{})
	c := f.client()
	st, _ := c.login("alice", "alice-pw")
	require.Equal(t, 201, st)
	f.srv.watch() // a sampler tick, now
	f.srv.watch()
	st, out := c.do("GET", "/api/v1/metrics", nil)
	require.Equal(t, 200, st)
	require.Equal(t, false, out["enabled"])
	require.Empty(t, out["samples"])
}

// A process signing through the token (as the library does) shows in the
// console's metrics as ec-sign calls, without metrics = on: the console's
// lease turns the default auto on.
func TestMetricsFromTokenCalls(t *testing.T) {
	f := newFixture(t, "", Options{})
	c := f.client()
	st, _ := c.login("alice", "alice-pw")
	require.Equal(t, 201, st)

	m, err := token.OpenTool(f.conf)
	require.NoError(t, err)
	defer m.Close()
	h, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	require.NoError(t, err)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte("alice:alice-pw")))
	keys, err := admin.Generate(m, h, admin.GenSpec{Type: "ec", Label: "signer", Session: true})
	require.NoError(t, err)
	priv := keys[1].Handle
	digest := make([]byte, 32)
	sig := make([]byte, 64)
	require.Eventually(t, func() bool {
		for range 20 {
			require.NoError(t, m.SignInit(h, token.Mechanism{Type: ck.CKM_ECDSA}, priv))
			_, err := m.Sign(h, digest, token.Out{Buf: sig})
			require.NoError(t, err)
		}
		_, out := c.do("GET", "/api/v1/metrics", nil)
		for _, smp := range out["samples"].([]any) {
			if cl, ok := smp.(map[string]any)["classes"].(map[string]any)["ec-sign"]; ok {
				r := cl.(map[string]any)
				return r["ops"].(float64) > 0 && r["p50_us"].(float64) > 0
			}
		}
		return false
	}, 8*time.Second, 100*time.Millisecond, "no ec-sign rate in the console's metrics")
}
