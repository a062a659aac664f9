package console_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/admin"
	"gohsm/internal/ck"
	"gohsm/token"
)

// TestAPIShapesAreTheCLIs: D2's read bodies are the data of `gohsm
// --json`: the console's JSON equals, byte for byte after decoding, what
// the CLI's code path (the token's and admin's functions it calls) gives
// for the same user: key list, user list, cluster status, audit lines.
func TestAPIShapesAreTheCLIs(t *testing.T) {
	e := newEnv(t)
	a := e.alice(clusterID)
	a.gen(t, map[string]any{"type": "ec", "label": "shape", "curve": "P-384"})
	a.gen(t, map[string]any{"type": "aes", "label": "shape2", "bits": 192})

	m, err := token.OpenTool(e.conf)
	require.NoError(t, err)
	defer m.Close()
	h, err := m.OpenSession(clusterID, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	require.NoError(t, err)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte("alice:"+alicePW)))
	sl, err := m.Slot(clusterID)
	require.NoError(t, err)

	same := func(what string, console []byte, cli any) {
		t.Helper()
		want, err := json.Marshal(cli)
		require.NoError(t, err)
		var got, exp any
		require.NoError(t, json.Unmarshal(console, &got))
		require.NoError(t, json.Unmarshal(want, &exp))
		assert.Equal(t, exp, got, "%s: the console's body is not the CLI's data", what)
	}

	keys, err := admin.ListKeys(m, h, admin.Filter{})
	require.NoError(t, err)
	r := a.do("GET", "/api/v1/keys", nil)
	require.Equal(t, http.StatusOK, r.Status)
	same("key list", r.Body, map[string]any{"keys": keys})

	users, err := m.Users(h)
	require.NoError(t, err)
	r = a.do("GET", "/api/v1/users", nil)
	require.Equal(t, http.StatusOK, r.Status)
	same("user list", r.Body, map[string]any{"users": users})

	r = a.do("GET", "/api/v1/cluster", nil)
	require.Equal(t, http.StatusOK, r.Status)
	same("cluster status", r.Body, sl.Cluster().Status())

	recs, _, err := admin.QueryAudit(sl, admin.AuditQuery{Opcode: "CN_GENERATE_KEY"})
	require.NoError(t, err)
	r = a.do("GET", "/api/v1/audit?opcode=CN_GENERATE_KEY", nil)
	require.Equal(t, http.StatusOK, r.Status)
	same("audit show", r.Body, map[string]any{"records": admin.Lines(recs)})
}
