package console_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAPIHostileBodies: every endpoint that takes a body gets bodies of
// every JSON kind, each of its fields set to every JSON kind, deep
// nesting and a body that is no JSON: each answer is a 2xx or a 4xx with
// D2's error shape (the harness fails any 5xx but 503).
func TestAPIHostileBodies(t *testing.T) {
	e := newEnv(t)
	a, co := e.alice(), e.officer()
	ca := e.alice(clusterID)
	a.gen(t, map[string]any{"type": "aes", "label": "target", "bits": 128})
	kinds := []any{nil, 0, -1, 1e300, 18446744073709551616.0, "", "x", strings.Repeat("y", 5000), true, []any{}, []any{1, "a"}, map[string]any{}, map[string]any{"a": 1}}
	deep := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	for _, c := range []struct {
		c            *client
		method, path string
		fields       []string
	}{
		{e.client(), "POST", "/api/v1/session", []string{"slot", "username", "password"}},
		{co, "POST", "/api/v1/users", []string{"username", "role", "password"}},
		{co, "PUT", "/api/v1/users/bob/password", []string{"password"}},
		{a, "POST", "/api/v1/keys", []string{"type", "label", "id", "bits", "curve", "session"}},
		{a, "POST", "/api/v1/keys/import", []string{"label", "id", "pem", "aes_key_hex"}},
		{ca, "PUT", "/api/v1/cluster/hsms/0", []string{"state"}},
		{ca, "PUT", "/api/v1/cluster/plan", []string{"seed", "steps"}},
	} {
		for _, body := range []string{"", "null", "[]", `"s"`, "1", "true", "{", "}", deep, `{"a":` + deep + `}`, "\xff\xfe", `{"username":"\u0000"}`} {
			r := c.c.raw(c.method, c.path, body, nil)
			assert.True(t, r.Status < 500 || r.Status == 503, "%s %s %.40q: %d", c.method, c.path, body, r.Status)
		}
		for _, f := range c.fields {
			for _, v := range kinds {
				b, _ := json.Marshal(map[string]any{f: v})
				r := c.c.raw(c.method, c.path, b, nil)
				assert.True(t, r.Status < 500 || r.Status == 503, "%s %s %s: %d", c.method, c.path, b, r.Status)
			}
		}
		// A plan's steps of every kind.
		if strings.HasSuffix(c.path, "/plan") {
			for _, v := range kinds {
				b, _ := json.Marshal(map[string]any{"steps": []any{v, map[string]any{"at": v, "hsm": v, "state": v, "fail": v, "rv": v, "count": v, "for": v}}})
				r := c.c.raw(c.method, c.path, b, nil)
				assert.True(t, r.Status < 500 || r.Status == 503, "%s: %d", b, r.Status)
			}
		}
	}
	// The token is intact: alice still logs in, her key is there.
	assert.Len(t, e.alice().list(t, "label=target"), 1)
}

// TestAPIHostilePaths: every route with a path parameter, every method,
// with hostile values in it, and every query parameter with hostile
// values: 2xx, 3xx (ServeMux cleaning a path) or 4xx, never a 5xx.
func TestAPIHostilePaths(t *testing.T) {
	e := newEnv(t)
	a, co, ca := e.alice(), e.officer(), e.alice(clusterID)
	vals := []string{"", "-1", "0", "abc", "18446744073709551616", "99999999999999999999999", "%00", "%ff", "..", "%2e%2e", "a%2Fb", "%20", strings.Repeat("z", 3000), "1e3", "+1", "0x1"}
	for _, v := range vals {
		for _, c := range []struct {
			c            *client
			method, path string
		}{
			{a, "GET", "/api/v1/keys/" + v},
			{a, "DELETE", "/api/v1/keys/" + v},
			{a, "PUT", "/api/v1/keys/" + v + "/shares/bob"},
			{a, "DELETE", "/api/v1/keys/1/shares/" + v},
			{co, "DELETE", "/api/v1/users/" + v},
			{co, "PUT", "/api/v1/users/" + v + "/password"},
			{ca, "PUT", "/api/v1/cluster/hsms/" + v},
		} {
			var body any
			if c.method == "PUT" {
				body = map[string]any{"password": "long-enough-pw", "state": "up"}
			}
			r := c.c.raw(c.method, c.path, body, nil)
			assert.True(t, r.Status < 500, "%s %.80s: %d", c.method, c.path, r.Status)
		}
		for _, q := range []string{"/api/v1/keys?label=", "/api/v1/keys?class=", "/api/v1/keys?key_type=", "/api/v1/keys?owner=",
			"/api/v1/audit?stream=", "/api/v1/audit?since=", "/api/v1/audit?opcode=", "/api/v1/audit?user=", "/api/v1/audit?limit=",
			"/api/v1/audit/verify?stream=", "/api/v1/metrics?since="} {
			r := a.raw("GET", q+v, nil, nil)
			assert.True(t, r.Status < 500, "GET %.80s: %d", q+v, r.Status)
		}
	}
	assert.Len(t, co.users(t), 3, "no user went")
}

// TestAPIFieldNamesExact: encoding/json matches field names without
// regard to case; the console does not. A body whose field differs from
// the declared name only in case is 400 bad_request naming the field, on
// every route with a JSON body, and changes nothing; the exact names
// still work, and unknown fields and trailing values are still refused.
func TestAPIFieldNamesExact(t *testing.T) {
	e := newEnv(t)
	// {"USERNAME": ...} would log in without the check.
	r := e.client().raw("POST", "/api/v1/session", map[string]any{"USERNAME": "alice", "Password": alicePW}, nil)
	er := r.want(t, 400, "bad_request")
	assert.Regexp(t, `"(USERNAME|Password)"`, er.Error.Message)
	r = e.client().raw("POST", "/api/v1/session", map[string]any{"username": "alice", "password": alicePW, "username ": "x"}, nil)
	r.want(t, 400, "bad_request")
	r = e.client().raw("POST", "/api/v1/session", `{"username": "alice", "password": "`+alicePW+`"} {}`, nil)
	assert.Contains(t, r.want(t, 400, "bad_request").Error.Message, "more than one JSON value")

	a, co := e.alice(), e.officer()
	ca := e.alice(clusterID)
	for _, c := range []struct {
		c            *client
		method, path string
		body         map[string]any
	}{
		{co, "POST", "/api/v1/users", map[string]any{"username": "carol", "Role": "crypto-user", "password": "carol-pw1"}},
		{co, "PUT", "/api/v1/users/bob/password", map[string]any{"PASSWORD": "new-bob-pw"}},
		{a, "POST", "/api/v1/keys", map[string]any{"type": "aes", "Label": "cased", "bits": 128}},
		{a, "POST", "/api/v1/keys/import", map[string]any{"label": "cased", "AES_KEY_HEX": "00112233445566778899aabbccddeeff"}},
		{ca, "PUT", "/api/v1/cluster/hsms/0", map[string]any{"State": "down"}},
		{ca, "PUT", "/api/v1/cluster/plan", map[string]any{"Steps": []any{map[string]any{"at": "0s", "hsm": 0, "state": "down"}}}},
		{ca, "PUT", "/api/v1/cluster/plan", map[string]any{"steps": []any{map[string]any{"at": "0s", "HSM": 0, "state": "down"}}}},
	} {
		r := c.c.raw(c.method, c.path, c.body, nil)
		code := "bad_request"
		if c.path == "/api/v1/cluster/plan" {
			code = "bad_plan" // the plan's own parser refuses it, for the CLI too
		}
		er := r.want(t, 400, code)
		assert.Contains(t, er.Error.Message, "names are matched exactly", "%s %s: %s", c.method, c.path, r.Body)
	}
	// Nothing changed: no carol, bob's password, no key "cased", HSM 0 up.
	assert.NotContains(t, co.users(t), "carol")
	e.bob()
	assert.Empty(t, a.list(t, "label=cased"))
	var st struct {
		HSMs []struct {
			State string `json:"state"`
		} `json:"hsms"`
	}
	ca.do("GET", "/api/v1/cluster", nil).ok(t, 200, &st)
	require.NotEmpty(t, st.HSMs)
	assert.Equal(t, "up", st.HSMs[0].State)
	// The exact names work.
	co.do("POST", "/api/v1/users", map[string]any{"username": "carol", "role": "crypto-user", "password": "carol-pw1"}).ok(t, 201, nil)
	ca.do("PUT", "/api/v1/cluster/hsms/0", map[string]any{"state": "down"}).ok(t, 200, nil)
}
