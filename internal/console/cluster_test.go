package console_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type clusterJSON struct {
	HSMs []struct {
		Index int    `json:"index"`
		ID    string `json:"id"`
		State string `json:"state"`
		Epoch int    `json:"epoch"`
	} `json:"hsms"`
}

func (c *client) cluster(t *testing.T) clusterJSON {
	t.Helper()
	var s clusterJSON
	c.do("GET", "/api/v1/cluster", nil).ok(t, http.StatusOK, &s)
	return s
}

// TestAPICluster: either role takes HSMs down, degrades and brings them up,
// loads, shows and clears a plan, and resets; the status follows.
func TestAPICluster(t *testing.T) {
	e := newEnv(t)
	co, a := e.officer(clusterID), e.alice(clusterID)
	s := co.cluster(t)
	require.Len(t, s.HSMs, 2)
	assert.Equal(t, "up", s.HSMs[1].State)

	var st clusterJSON
	co.do("PUT", "/api/v1/cluster/hsms/1", map[string]any{"state": "down"}).ok(t, http.StatusOK, &st)
	require.Len(t, st.HSMs, 2, "answers the status")
	assert.Equal(t, "down", st.HSMs[1].State)
	assert.Equal(t, "down", a.cluster(t).HSMs[1].State, "one cluster.state for every session")
	a.do("PUT", "/api/v1/cluster/hsms/1", map[string]any{"state": "degraded"}).ok(t, http.StatusOK, &st)
	assert.Equal(t, "degraded", st.HSMs[1].State)
	a.do("PUT", "/api/v1/cluster/hsms/1", map[string]any{"state": "up"}).ok(t, http.StatusOK, &st)
	assert.Equal(t, "up", st.HSMs[1].State)
	assert.Positive(t, st.HSMs[1].Epoch, "went down once")

	// Work goes on with an HSM down: alice generates a key.
	co.do("PUT", "/api/v1/cluster/hsms/0", map[string]any{"state": "down"}).ok(t, http.StatusOK, nil)
	a.gen(t, map[string]any{"type": "aes", "label": "during", "bits": 128})

	co.do("GET", "/api/v1/cluster/plan", nil).want(t, http.StatusNotFound, "")
	plan := map[string]any{"seed": 7, "steps": []any{
		map[string]any{"at": "1h", "hsm": 1, "state": "down"},
		map[string]any{"at": "0s", "fail": "C_Sign", "count": 3, "rv": "CKR_DEVICE_ERROR"},
	}}
	co.do("PUT", "/api/v1/cluster/plan", plan).ok(t, http.StatusOK, nil)
	r := a.do("GET", "/api/v1/cluster/plan", nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	assert.Contains(t, string(r.Body), "C_Sign")
	assert.Contains(t, string(r.Body), "CKR_DEVICE_ERROR")

	for _, bad := range []string{
		`{"steps": [{"at": "0s", "hsm": 9, "state": "down"}]}`,
		`{"steps": [{"at": "soon", "hsm": 1, "state": "down"}]}`,
		`{"steps": [{"at": "0s", "fail": "C_Sign", "rv": "CKR_NOPE"}]}`,
		`{"steps": [{"at": "0s", "hsm": 1, "state": "down", "fail": "C_Sign", "rv": "CKR_DEVICE_ERROR"}]}`,
		`{"steps": [], "colour": 1}`,
		`{"steps": `,
		`[]`,
		`{"steps": [` + strings.Repeat(`{"at": "0s", "hsm": 1, "state": "down"},`, 64) + `{"at": "0s", "hsm": 1, "state": "up"}]}`,
		`{"seed": 1, "steps": [], "pad": "` + strings.Repeat("x", 300<<10) + `"}`,
	} {
		r := co.raw("PUT", "/api/v1/cluster/plan", bad, nil)
		assert.Contains(t, []int{http.StatusBadRequest, http.StatusRequestEntityTooLarge}, r.Status, "%.80s: %s", bad, truncate(r.Body))
	}
	r = a.do("GET", "/api/v1/cluster/plan", nil)
	assert.Contains(t, string(r.Body), "C_Sign", "a refused plan leaves the loaded one")

	co.do("DELETE", "/api/v1/cluster/plan", nil).ok(t, http.StatusOK, nil)
	co.do("GET", "/api/v1/cluster/plan", nil).want(t, http.StatusNotFound, "")

	co.do("POST", "/api/v1/cluster/reset", nil).ok(t, http.StatusOK, &st)
	for _, h := range st.HSMs {
		assert.Equal(t, "up", h.State, "reset brings every HSM up")
	}
	for _, k := range []string{"2", "-1", "abc", "99999999999999999999"} {
		r := co.raw("PUT", "/api/v1/cluster/hsms/"+k, map[string]any{"state": "down"}, nil)
		assert.Contains(t, []int{http.StatusBadRequest, http.StatusNotFound}, r.Status, "%s: %s", k, r.Body)
	}
	for _, body := range []string{`{"state": "exploded"}`, `{"state": 1}`, `{}`, `{"state": "down", "x": 1}`} {
		co.raw("PUT", "/api/v1/cluster/hsms/0", body, nil).want(t, http.StatusBadRequest, "")
	}
}

// TestAPIClusterNone: on a slot without a cluster every cluster route is
// 404 no_cluster.
func TestAPIClusterNone(t *testing.T) {
	e := newEnv(t)
	a := e.alice()
	a.do("GET", "/api/v1/cluster", nil).want(t, http.StatusNotFound, "no_cluster")
	a.do("PUT", "/api/v1/cluster/hsms/0", map[string]any{"state": "down"}).want(t, http.StatusNotFound, "no_cluster")
	a.do("GET", "/api/v1/cluster/plan", nil).want(t, http.StatusNotFound, "no_cluster")
	a.do("PUT", "/api/v1/cluster/plan", map[string]any{"steps": []any{}}).want(t, http.StatusNotFound, "no_cluster")
	a.do("DELETE", "/api/v1/cluster/plan", nil).want(t, http.StatusNotFound, "no_cluster")
	a.do("POST", "/api/v1/cluster/reset", nil).want(t, http.StatusNotFound, "no_cluster")
	e.client().do("GET", "/api/v1/cluster", nil).want(t, http.StatusUnauthorized, "")
}

// TestAPIClusterStoreDown: a plan that takes the store down makes the
// token answer CKR_DEVICE_ERROR: the console says 503 with that CKR
// (never 500), for logins and for sessions' work; clearing the plan
// brings the service back.
func TestAPIClusterStoreDown(t *testing.T) {
	e := newEnv(t)
	co, a := e.officer(clusterID), e.alice(clusterID)
	co.do("PUT", "/api/v1/cluster/plan", map[string]any{"steps": []any{
		map[string]any{"at": "0s", "for": "1h", "store": "down"}}}).ok(t, http.StatusOK, nil)
	r := e.client().do("POST", "/api/v1/session", map[string]any{"slot": clusterID, "username": "bob", "password": bobPW})
	r.want(t, http.StatusServiceUnavailable, "", "CKR_DEVICE_ERROR")
	r = a.do("POST", "/api/v1/keys", map[string]any{"type": "aes", "label": "down", "bits": 128})
	r.want(t, http.StatusServiceUnavailable, "", "CKR_DEVICE_ERROR")
	for _, p := range []string{"/api/v1/users", "/api/v1/keys", "/api/v1/cluster"} {
		r := a.do("GET", p, nil)
		assert.Contains(t, []int{http.StatusOK, http.StatusServiceUnavailable}, r.Status, "%s: %s", p, r.Body)
	}
	a.do("DELETE", "/api/v1/cluster/plan", nil).ok(t, http.StatusOK, nil)
	a.gen(t, map[string]any{"type": "aes", "label": "up-again", "bits": 128})
	e.bob(clusterID)
}

// TestAPIClusterFailover: taking each HSM down in turn, and both, never
// ends a web session: its PKCS#11 session fails over as the SDK's does;
// with every HSM down the token's refusal is a 503, not a 401 or 500.
func TestAPIClusterFailover(t *testing.T) {
	e := newEnv(t)
	a := e.alice(clusterID)
	a.gen(t, map[string]any{"type": "aes", "label": "sess", "bits": 128, "session": true})
	a.gen(t, map[string]any{"type": "aes", "label": "tok", "bits": 128})
	for _, k := range []string{"0", "1"} {
		a.do("PUT", "/api/v1/cluster/hsms/"+k, map[string]any{"state": "down"}).ok(t, http.StatusOK, nil)
		a.do("GET", "/api/v1/keys", nil).ok(t, http.StatusOK, nil)
		a.do("PUT", "/api/v1/cluster/hsms/"+k, map[string]any{"state": "up"}).ok(t, http.StatusOK, nil)
	}
	a.do("PUT", "/api/v1/cluster/hsms/0", map[string]any{"state": "down"}).ok(t, http.StatusOK, nil)
	a.do("PUT", "/api/v1/cluster/hsms/1", map[string]any{"state": "down"}).ok(t, http.StatusOK, nil)
	for _, p := range []string{"/api/v1/keys", "/api/v1/users", "/api/v1/token"} {
		r := a.do("GET", p, nil)
		assert.Contains(t, []int{http.StatusOK, http.StatusServiceUnavailable}, r.Status, "%s with every HSM down: %s", p, r.Body)
	}
	r := a.do("POST", "/api/v1/keys", map[string]any{"type": "aes", "label": "nohsm", "bits": 128})
	assert.Equal(t, http.StatusServiceUnavailable, r.Status, "%s", r.Body)
	a.do("POST", "/api/v1/cluster/reset", nil).ok(t, http.StatusOK, nil)
	assert.Len(t, a.list(t, "label=tok"), 1)
	a.do("GET", "/api/v1/session", nil).ok(t, http.StatusOK, nil)
}

// TestAPIClusterPlanRoundTrip: the plan GET /cluster/plan answers, taken
// from its "plan" member, is a plan PUT /cluster/plan loads again (the
// UI's editor saves what it loaded); the whole body is not a plan.
func TestAPIClusterPlanRoundTrip(t *testing.T) {
	e := newEnv(t)
	a := e.alice(clusterID)
	a.do("PUT", "/api/v1/cluster/plan", map[string]any{"seed": 7, "steps": []any{
		map[string]any{"at": "1h", "hsm": 1, "state": "down", "for": "10m"},
		map[string]any{"at": "2h", "store": "down", "for": "1s"}}}).ok(t, http.StatusOK, nil)
	var got struct {
		Plan json.RawMessage `json:"plan"`
	}
	a.do("GET", "/api/v1/cluster/plan", nil).ok(t, http.StatusOK, &got)
	require.NotEmpty(t, got.Plan)
	a.do("PUT", "/api/v1/cluster/plan", []byte(got.Plan)).ok(t, http.StatusOK, nil)
	var again struct {
		Plan json.RawMessage `json:"plan"`
	}
	a.do("GET", "/api/v1/cluster/plan", nil).ok(t, http.StatusOK, &again)
	assert.JSONEq(t, string(got.Plan), string(again.Plan), "the plan survives the round trip")
	whole := a.do("GET", "/api/v1/cluster/plan", nil).Body
	er := a.raw("PUT", "/api/v1/cluster/plan", whole, nil).want(t, http.StatusBadRequest, "")
	assert.Contains(t, er.Error.Message, `unknown field "plan"`)
	a.do("DELETE", "/api/v1/cluster/plan", nil).ok(t, http.StatusOK, nil)
}
