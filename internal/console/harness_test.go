package console_test

// The API tests' harness: a temporary token (officer "admin", crypto users
// alice and bob; slot 0 standard, slot 1 with an emulated cluster of two
// HSMs), the console in-process on a real loopback listener with an
// injected clock, and clients whose every request and response is checked
// against openapi.yaml by kin-openapi, an independent reading of the
// document. A 500 anywhere fails the test that caused it.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/internal/console"
	"gohsm/token"
)

const (
	officer   = "admin"
	officerPW = "officer-pw"
	alicePW   = "alice-pw"
	bobPW     = "bob-pw"
	clusterID = 1 // the slot with an emulated cluster
)

// clock is the console's injected time: tests move it by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is one console over one temporary token.
type env struct {
	t     *testing.T
	conf  string
	dir   string // the configuration's token_dir
	clock *clock
	srv   *console.Server
	base  string // http://127.0.0.1:PORT
	out   *syncBuffer
}

// syncBuffer is the console's stdout, read by the test while it serves.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// envOpts changes what newEnv builds.
type envOpts struct {
	idle, max time.Duration
	extra     string // configuration lines after the harness's
}

func testConfig(t *testing.T, extra string) (conf, dir string) {
	t.Helper()
	d := t.TempDir()
	dir = filepath.Join(d, "tokens")
	conf = filepath.Join(d, "gohsm.conf")
	text := fmt.Sprintf("token_dir = %s\nkdf_time = 1\nkdf_memory = 64\nkdf_threads = 1\nlogin_cache = off\nlockout_threshold = 3\n[slot 0]\n[slot 1]\nhsms = 2\n%s", dir, extra)
	require.NoError(t, os.WriteFile(conf, []byte(text), 0o600))
	return conf, dir
}

// initToken initialises slot id with the officer and the crypto users
// alice and bob, in-process, as `gohsm token init` and `user create` do.
func initToken(t *testing.T, conf string, id ck.ULong) {
	t.Helper()
	m, err := token.OpenTool(conf)
	require.NoError(t, err)
	defer m.Close()
	s, err := m.Slot(id)
	require.NoError(t, err)
	require.NoError(t, s.InitToken([]byte(officer+":"+officerPW), fmt.Sprintf("slot-%d", id)))
	h, err := m.OpenSession(id, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	require.NoError(t, err)
	require.NoError(t, m.Login(h, ck.CKU_SO, []byte(officer+":"+officerPW)))
	cu, err := token.ParseRole("crypto-user")
	require.NoError(t, err)
	require.NoError(t, m.CreateUser(h, "alice", cu, []byte(alicePW)))
	require.NoError(t, m.CreateUser(h, "bob", cu, []byte(bobPW)))
	require.NoError(t, m.Logout(h))
}

func newEnv(t *testing.T) *env { return newEnvOpts(t, envOpts{}) }

func newEnvOpts(t *testing.T, o envOpts) *env {
	t.Helper()
	conf, dir := testConfig(t, o.extra)
	initToken(t, conf, 0)
	initToken(t, conf, clusterID)
	e := &env{t: t, conf: conf, dir: dir, out: &syncBuffer{},
		clock: &clock{t: time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)}}
	if o.idle == 0 {
		o.idle = 15 * time.Minute
	}
	if o.max == 0 {
		o.max = 8 * time.Hour
	}
	srv, err := console.New(console.Options{
		Config:      conf,
		Listen:      "127.0.0.1:0",
		SessionIdle: o.idle,
		SessionMax:  o.max,
		Now:         e.clock.Now,
		Stdout:      e.out,
	})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	e.srv, e.base = srv, "http://"+ln.Addr().String()
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after Close")
		}
	})
	return e
}

// --- the OpenAPI document, loaded once ---

var (
	docOnce sync.Once
	docErr  error
	docT    *openapi3.T
	docRaw  []byte
)

func openapiDoc(t *testing.T) *openapi3.T {
	t.Helper()
	docOnce.Do(func() {
		docRaw, docErr = os.ReadFile("openapi.yaml")
		if docErr != nil {
			return
		}
		l := openapi3.NewLoader()
		docT, docErr = l.LoadFromData(docRaw)
		if docErr == nil {
			docErr = docT.Validate(l.Context)
		}
	})
	require.NoError(t, docErr, "internal/console/openapi.yaml")
	return docT
}

// routerFor is a router over the document with its servers rebased on the
// test server, so that kin-openapi finds routes on 127.0.0.1:PORT.
func (e *env) router() routers.Router {
	e.t.Helper()
	src := openapiDoc(e.t)
	doc := *src // shallow: only Servers changes
	prefix := ""
	if len(src.Servers) > 0 {
		if u, err := url.Parse(src.Servers[0].URL); err == nil {
			prefix = strings.TrimSuffix(u.Path, "/")
		}
	}
	doc.Servers = openapi3.Servers{{URL: e.base + prefix}}
	r, err := gorillamux.NewRouter(&doc)
	require.NoError(e.t, err)
	return r
}

// --- clients ---

// client is a browser: a cookie jar, the session's CSRF token, and a
// transport that validates against the document.
type client struct {
	e      *env
	hc     *http.Client
	router routers.Router
	csrf   string
	user   string
	origin string // sent as Origin on changes when set
}

// resp is a finished exchange.
type resp struct {
	Status int
	Header http.Header
	Body   []byte
	req    string
}

func (e *env) client() *client {
	jar, err := cookiejar.New(nil)
	require.NoError(e.t, err)
	c := &client{e: e, router: e.router()}
	c.hc = &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return c
}

// login is a new client logged in as user (on slot 0, or slot[0]).
func (e *env) login(user, password string, slot ...int) *client {
	e.t.Helper()
	c := e.client()
	body := map[string]any{"username": user, "password": password}
	if len(slot) > 0 {
		body["slot"] = slot[0]
	}
	r := c.do("POST", "/api/v1/session", body)
	require.Equal(e.t, http.StatusCreated, r.Status, "login %s: %s", user, r.Body)
	var s struct {
		CSRF string `json:"csrf_token"`
		User string `json:"username"`
	}
	r.decode(e.t, &s)
	require.NotEmpty(e.t, s.CSRF)
	c.csrf, c.user = s.CSRF, s.User
	return c
}

func (e *env) officer(slot ...int) *client { return e.login(officer, officerPW, slot...) }
func (e *env) alice(slot ...int) *client   { return e.login("alice", alicePW, slot...) }
func (e *env) bob(slot ...int) *client     { return e.login("bob", bobPW, slot...) }

// do sends a request the document describes (validated both ways): body
// is JSON-encoded unless it is nil or []byte; changes carry the CSRF token.
func (c *client) do(method, path string, body any) *resp {
	c.e.t.Helper()
	return c.send(method, path, body, nil, true)
}

// raw sends a request that may break the document (bad input on purpose):
// only the response is validated, when the document has the route.
// hdr overrides headers (an empty value deletes one).
func (c *client) raw(method, path string, body any, hdr map[string]string) *resp {
	c.e.t.Helper()
	return c.send(method, path, body, hdr, false)
}

func (c *client) send(method, path string, body any, hdr map[string]string, strict bool) *resp {
	t := c.e.t
	t.Helper()
	var data []byte
	switch b := body.(type) {
	case nil:
	case []byte:
		data = b
	case string:
		data = []byte(b)
	default:
		var err error
		data, err = json.Marshal(b)
		require.NoError(t, err)
	}
	req, err := http.NewRequest(method, c.e.base+path, bytes.NewReader(data))
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if method != "GET" && method != "HEAD" && c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	if c.origin != "" {
		req.Header.Set("Origin", c.origin)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	what := method + " " + path
	route, params, rerr := c.router.FindRoute(req)
	var in *openapi3filter.RequestValidationInput
	if rerr == nil {
		in = &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true}}
		if strict {
			// The request is checked on a copy of its body; the original goes out.
			vreq := req.Clone(context.Background())
			vreq.Body = io.NopCloser(bytes.NewReader(data))
			vin := *in
			vin.Request = vreq
			require.NoError(t, openapi3filter.ValidateRequest(context.Background(), &vin), "%s: the request breaks openapi.yaml", what)
		}
	} else if strict && strings.HasPrefix(path, "/api/") {
		t.Fatalf("%s: not in openapi.yaml: %v", what, rerr)
	}
	res, err := c.hc.Do(req)
	require.NoError(t, err, what)
	got, err := io.ReadAll(res.Body)
	res.Body.Close()
	require.NoError(t, err, what)
	r := &resp{Status: res.StatusCode, Header: res.Header, Body: got, req: what}
	if r.Status >= 500 && r.Status != http.StatusServiceUnavailable {
		t.Errorf("%s: status %d (no request may cause a 5xx but 503): %s", what, r.Status, got)
	}
	if in != nil && strings.HasPrefix(path, "/api/") {
		rin := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: r.Status,
			Header: res.Header, Body: io.NopCloser(bytes.NewReader(got)),
			Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}}
		if err := openapi3filter.ValidateResponse(context.Background(), rin); err != nil {
			t.Errorf("%s: response %d breaks openapi.yaml: %v\nbody: %s", what, r.Status, err, truncate(got))
		}
	}
	if strings.HasPrefix(path, "/api/") && r.Status >= 400 {
		checkErrorShape(t, r)
	}
	return r
}

func truncate(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + "..."
	}
	return string(b)
}

// apiError is D2's error body.
type apiError struct {
	Error struct {
		CKR     string `json:"ckr"`
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// checkErrorShape: every API error is {"error": {ckr, code, message}} in
// JSON with a non-empty code and message.
func checkErrorShape(t *testing.T, r *resp) {
	t.Helper()
	require.True(t, strings.HasPrefix(r.Header.Get("Content-Type"), "application/json"),
		"%s: %d error with Content-Type %q: %s", r.req, r.Status, r.Header.Get("Content-Type"), truncate(r.Body))
	var e apiError
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&e), "%s: error body %s", r.req, truncate(r.Body))
	require.NotEmpty(t, e.Error.Code, "%s: error without a code: %s", r.req, r.Body)
	require.NotEmpty(t, e.Error.Message, "%s: error without a message: %s", r.req, r.Body)
	if e.Error.CKR != "" {
		require.True(t, strings.HasPrefix(e.Error.CKR, "CKR_"), "%s: ckr %q", r.req, e.Error.CKR)
	}
}

func (r *resp) decode(t *testing.T, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal(r.Body, v), "%s: %s", r.req, truncate(r.Body))
}

func (r *resp) apiErr(t *testing.T) apiError {
	t.Helper()
	var e apiError
	r.decode(t, &e)
	return e
}

// want asserts a status, and for an error its code and (when not "") CKR.
func (r *resp) want(t *testing.T, status int, code string, ckr ...string) apiError {
	t.Helper()
	require.Equal(t, status, r.Status, "%s: %s", r.req, truncate(r.Body))
	if status < 400 {
		return apiError{}
	}
	e := r.apiErr(t)
	if code != "" {
		require.Equal(t, code, e.Error.Code, "%s: %s", r.req, r.Body)
	}
	if len(ckr) > 0 {
		require.Equal(t, ckr[0], e.Error.CKR, "%s: %s", r.req, r.Body)
	}
	return e
}

// ok asserts a success status and decodes the body into v (when not nil).
func (r *resp) ok(t *testing.T, status int, v any) {
	t.Helper()
	require.Equal(t, status, r.Status, "%s: %s", r.req, truncate(r.Body))
	if v != nil {
		r.decode(t, v)
	}
}
