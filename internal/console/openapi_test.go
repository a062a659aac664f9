package console_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAPIOpenAPIDocument: openapi.yaml is OpenAPI 3.0.3, loads and validates,
// and declares D2's error shape.
func TestAPIOpenAPIDocument(t *testing.T) {
	doc := openapiDoc(t)
	assert.Equal(t, "3.0.3", doc.OpenAPI)
	require.NotNil(t, doc.Components)
	var errSchema bool
	for _, s := range doc.Components.Schemas {
		if s.Value != nil && s.Value.Properties["error"] != nil {
			e := s.Value.Properties["error"].Value
			errSchema = e != nil && e.Properties["ckr"] != nil && e.Properties["code"] != nil && e.Properties["message"] != nil
			if errSchema {
				break
			}
		}
	}
	assert.True(t, errSchema, "a schema {error: {ckr, code, message}}")
	// Every operation documents its errors.
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			has4xx := false
			for code := range op.Responses.Map() {
				if strings.HasPrefix(code, "4") || code == "default" {
					has4xx = true
				}
			}
			assert.True(t, has4xx, "%s %s: no error response", method, path)
		}
	}
}

var paramRE = regexp.MustCompile(`\{[^}]+\}`)

// docRoutes is the document's "METHOD /api/v1/path" set, parameters
// written {}.
func docRoutes(t *testing.T) map[string]bool {
	doc := openapiDoc(t)
	prefix := ""
	if len(doc.Servers) > 0 {
		if u, err := url.Parse(doc.Servers[0].URL); err == nil {
			prefix = strings.TrimSuffix(u.Path, "/")
		}
	}
	set := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			set[method+" "+paramRE.ReplaceAllString(prefix+path, "{}")] = true
		}
	}
	return set
}

// TestAPIRoutesMatchDocument: the server's route table under /api/ and the
// document's paths and methods are the same set; an extra on either side
// fails.
func TestAPIRoutesMatchDocument(t *testing.T) {
	e := newEnv(t)
	server := map[string]bool{}
	for _, r := range e.srv.Routes() {
		p := paramRE.ReplaceAllString(strings.TrimSuffix(r.Pattern, "{$}"), "{}")
		if !strings.HasPrefix(p, "/api/") {
			continue
		}
		server[strings.ToUpper(r.Method)+" "+p] = true
	}
	doc := docRoutes(t)
	var onlyServer, onlyDoc []string
	for k := range server {
		if !doc[k] {
			onlyServer = append(onlyServer, k)
		}
	}
	for k := range doc {
		if !server[k] {
			onlyDoc = append(onlyDoc, k)
		}
	}
	sort.Strings(onlyServer)
	sort.Strings(onlyDoc)
	assert.Empty(t, onlyServer, "routes the server has and openapi.yaml does not")
	assert.Empty(t, onlyDoc, "paths openapi.yaml has and the server does not")
	// D2's list, so that neither side can drop a route with the other.
	for _, want := range []string{
		"GET /api/v1/openapi.yaml", "GET /api/v1/slots", "POST /api/v1/session", "GET /api/v1/session",
		"DELETE /api/v1/session", "GET /api/v1/token", "GET /api/v1/token/backup", "GET /api/v1/users",
		"POST /api/v1/users", "DELETE /api/v1/users/{}", "PUT /api/v1/users/{}/password", "GET /api/v1/keys",
		"GET /api/v1/keys/{}", "POST /api/v1/keys", "POST /api/v1/keys/import", "DELETE /api/v1/keys/{}",
		"PUT /api/v1/keys/{}/shares/{}", "DELETE /api/v1/keys/{}/shares/{}", "PUT /api/v1/keys/{}/trusted",
		"GET /api/v1/audit",
		"GET /api/v1/audit/verify", "GET /api/v1/cluster", "PUT /api/v1/cluster/hsms/{}",
		"GET /api/v1/cluster/plan", "PUT /api/v1/cluster/plan", "DELETE /api/v1/cluster/plan",
		"POST /api/v1/cluster/reset", "GET /api/v1/metrics",
	} {
		assert.True(t, server[want], "server lacks %s", want)
		assert.True(t, doc[want], "openapi.yaml lacks %s", want)
	}
	assert.Len(t, server, 28, "D2 has 27 routes, and set-trusted (D4)")
}

// TestAPIOpenAPIServed: the document is served without a session, the same
// bytes as the checked-in file.
func TestAPIOpenAPIServed(t *testing.T) {
	e := newEnv(t)
	openapiDoc(t)
	r := e.client().do("GET", "/api/v1/openapi.yaml", nil)
	require.Equal(t, http.StatusOK, r.Status)
	assert.Equal(t, string(docRaw), string(r.Body))
	assert.Contains(t, r.Header.Get("Content-Type"), "yaml")
}

// TestAPIUnknownRoutes: anything else under /api/ is a 404 JSON error, a
// known path with another method a 405 JSON error; neither ever a 500;
// other paths serve the UI.
func TestAPIUnknownRoutes(t *testing.T) {
	e := newEnv(t)
	for _, c := range []*client{e.client(), e.alice()} {
		for _, p := range []string{"/api/v1/nope", "/api/v1/", "/api/v2/keys", "/api/", "/api/v1/keys/1/2/3",
			"/api/v1/users/alice/secret", "/api/v1/keys/1/shares", "/api/v1/token/backup/x", "/api/v1/../../etc/passwd"} {
			r := c.raw("GET", p, nil, nil)
			if r.Status == http.StatusMovedPermanently || r.Status == http.StatusTemporaryRedirect || r.Status == http.StatusPermanentRedirect {
				continue // ServeMux cleaning a path; the target is tested on its own
			}
			assert.Contains(t, []int{http.StatusNotFound, http.StatusUnauthorized}, r.Status, "GET %s: %s", p, r.Body)
		}
		for _, mp := range [][2]string{{"PATCH", "/api/v1/keys"}, {"DELETE", "/api/v1/slots"}, {"PUT", "/api/v1/keys"},
			{"POST", "/api/v1/audit"}, {"PUT", "/api/v1/session"}, {"POST", "/api/v1/openapi.yaml"}, {"GET", "/api/v1/cluster/reset"}} {
			r := c.raw(mp[0], mp[1], nil, nil)
			assert.Contains(t, []int{http.StatusMethodNotAllowed, http.StatusUnauthorized, http.StatusForbidden}, r.Status, "%s %s: %s", mp[0], mp[1], r.Body)
			if r.Status == http.StatusMethodNotAllowed {
				assert.Equal(t, "method_not_allowed", r.apiErr(t).Error.Code)
			}
		}
	}
	r := e.alice().raw("GET", "/api/v1/nope", nil, nil)
	r.want(t, http.StatusNotFound, "not_found")
	for _, p := range []string{"/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2fetc/passwd", "/assets.go", "/openapi.yaml/../../etc/passwd"} {
		r := e.client().raw("GET", p, nil, nil)
		assert.NotContains(t, string(r.Body), "root:", "GET %s", p)
		assert.NotContains(t, string(r.Body), "package console", "GET %s serves source", p)
	}
	ui := e.client().raw("GET", "/", nil, nil)
	assert.Equal(t, http.StatusOK, ui.Status)
	assert.Contains(t, ui.Header.Get("Content-Type"), "text/html")
}

// TestAPIValidatorBites: the harness's validation is not a formality:
// kin-openapi refuses a response that breaks the document (a login answer
// without its csrf_token, a slot list that is an object, an error without
// its code) and an undocumented status.
func TestAPIValidatorBites(t *testing.T) {
	e := &env{t: t, base: "http://127.0.0.1:1"}
	r := e.router()
	check := func(method, path string, status int, body string) error {
		req, err := http.NewRequest(method, e.base+path, strings.NewReader(`{"username": "a", "password": "b"}`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		route, params, err := r.FindRoute(req)
		require.NoError(t, err, "%s %s", method, path)
		in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
		h := http.Header{"Content-Type": {"application/json"}}
		return openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
			RequestValidationInput: in, Status: status, Header: h, Body: io.NopCloser(strings.NewReader(body)),
			Options: &openapi3filter.Options{IncludeResponseStatus: true}})
	}
	assert.Error(t, check("POST", "/api/v1/session", 201, `{"username": "a", "role": "crypto-user", "slot": 0}`))
	assert.Error(t, check("GET", "/api/v1/slots", 200, `{"slot": 0}`))
	assert.Error(t, check("GET", "/api/v1/users", 404, `{"error": {"message": "x"}}`))
	assert.Error(t, check("GET", "/api/v1/slots", 418, `{}`))
	assert.NoError(t, check("GET", "/api/v1/slots", 200, `[]`))

	// Requests too: a login whose username is a number breaks the document.
	req, err := http.NewRequest("POST", e.base+"/api/v1/session", strings.NewReader(`{"username": 1, "password": "b"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	route, params, err := r.FindRoute(req)
	require.NoError(t, err)
	assert.Error(t, openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}))
}

// TestAPIDocumentParameters: the document declares D2's query parameters
// and request bodies (kin-openapi lets undeclared query parameters pass,
// so this is checked by name).
func TestAPIDocumentParameters(t *testing.T) {
	for _, c := range []struct {
		path, method string
		query        []string
	}{
		{"/keys", "GET", []string{"label", "class", "key_type", "owner"}},
		{"/audit", "GET", []string{"stream", "since", "opcode", "user", "limit"}},
		{"/audit/verify", "GET", []string{"stream"}},
		{"/metrics", "GET", []string{"since"}},
	} {
		op := findOp(t, c.path, c.method)
		if op == nil {
			continue
		}
		have := map[string]bool{}
		for _, p := range op.Parameters {
			if p.Value != nil && p.Value.In == "query" {
				have[p.Value.Name] = true
			}
		}
		for _, q := range c.query {
			assert.True(t, have[q], "%s %s: query parameter %s", c.method, c.path, q)
		}
	}
	for _, c := range [][2]string{{"/session", "POST"}, {"/users", "POST"}, {"/users/{username}/password", "PUT"},
		{"/keys", "POST"}, {"/keys/import", "POST"}, {"/cluster/hsms/{k}", "PUT"}, {"/cluster/plan", "PUT"}} {
		if op := findOp(t, c[0], c[1]); op != nil {
			assert.NotNil(t, op.RequestBody, "%s %s: a request body", c[1], c[0])
		}
	}
}

// findOp is the document's operation for a D2 path (with or without the
// /api/v1 prefix in the document's paths).
func findOp(t *testing.T, path, method string) *openapi3.Operation {
	t.Helper()
	doc := openapiDoc(t)
	for _, p := range []string{path, "/api/v1" + path} {
		if item := doc.Paths.Find(p); item != nil {
			if op := item.GetOperation(method); op != nil {
				return op
			}
		}
	}
	t.Errorf("openapi.yaml: no %s %s", method, path)
	return nil
}
