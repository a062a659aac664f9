package console_test

import (
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token"
	"gohsm/token/store"
)

// TestAPISlots: GET /slots needs no session and lists both slots.
func TestAPISlots(t *testing.T) {
	e := newEnv(t)
	var slots []struct {
		Slot        int    `json:"slot"`
		Label       string `json:"label"`
		Initialized bool   `json:"initialized"`
		Profile     string `json:"profile"`
	}
	e.client().do("GET", "/api/v1/slots", nil).ok(t, http.StatusOK, &slots)
	require.Len(t, slots, 2)
	assert.Equal(t, 0, slots[0].Slot)
	assert.Equal(t, "slot-0", slots[0].Label)
	assert.True(t, slots[0].Initialized)
	assert.Equal(t, "standard", slots[0].Profile)
	assert.Equal(t, clusterID, slots[1].Slot)
}

// TestAPITokenStatus: both roles read the token's row; no session is 401.
func TestAPITokenStatus(t *testing.T) {
	e := newEnv(t)
	e.client().do("GET", "/api/v1/token", nil).want(t, http.StatusUnauthorized, "")
	for _, c := range []*client{e.officer(), e.alice()} {
		var row struct {
			Slot        int    `json:"slot"`
			Label       string `json:"label"`
			Initialized bool   `json:"initialized"`
			Users       int    `json:"users"`
			Profile     string `json:"profile"`
		}
		c.do("GET", "/api/v1/token", nil).ok(t, http.StatusOK, &row)
		assert.Equal(t, "slot-0", row.Label)
		assert.True(t, row.Initialized)
		assert.Equal(t, 3, row.Users)
		assert.Equal(t, "standard", row.Profile)
	}
	// Each session is bound to its slot.
	var row struct {
		Slot  int    `json:"slot"`
		Label string `json:"label"`
	}
	a1 := e.alice(clusterID)
	a1.do("GET", "/api/v1/token", nil).ok(t, http.StatusOK, &row)
	assert.Equal(t, clusterID, row.Slot)
	assert.Equal(t, "slot-1", row.Label)
	a1.gen(t, map[string]any{"type": "aes", "label": "on-slot-1", "bits": 128})
	assert.Len(t, a1.list(t, "label=on-slot-1"), 1)
	assert.Empty(t, e.alice().list(t, "label=on-slot-1"), "a slot-0 session sees slot 0 only")
}

// TestAPITokenBackup: the officer downloads a backup that token.Restore
// accepts into an empty slot, with alice's key in it; a crypto user is
// refused by the token.
func TestAPITokenBackup(t *testing.T) {
	e := newEnv(t)
	a := e.alice()
	a.gen(t, map[string]any{"type": "aes", "label": "kept", "bits": 128})
	r := a.do("GET", "/api/v1/token/backup", nil)
	assert.Equal(t, http.StatusForbidden, r.Status, "%s", r.Body)

	r = e.officer().do("GET", "/api/v1/token/backup", nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", truncate(r.Body))
	assert.Equal(t, "application/octet-stream", r.Header.Get("Content-Type"))
	assert.Regexp(t, regexp.MustCompile(`^attachment(;|$)`), r.Header.Get("Content-Disposition"))
	require.NotEmpty(t, r.Body)

	file := filepath.Join(t.TempDir(), "backup")
	require.NoError(t, os.WriteFile(file, r.Body, 0o600))
	conf, _ := testConfig(t, "")
	m, err := token.OpenTool(conf)
	require.NoError(t, err)
	defer m.Close()
	s, err := m.Slot(0)
	require.NoError(t, err)
	info, err := s.Restore(file, false)
	require.NoError(t, err, "token.Restore accepts the console's backup")
	assert.Equal(t, "slot-0", info.Label)
	h, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	require.NoError(t, err)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte("alice:"+alicePW)))
	require.NoError(t, m.FindObjectsInit(h, nil))
	objs, err := m.FindObjects(h, 10)
	require.NoError(t, err)
	require.NoError(t, m.FindObjectsFinal(h))
	assert.Len(t, objs, 1, "alice's key is in the backup")
}

// TestAPIAudit: records of the console's own work are there, filters narrow
// them, verify is ok; after a record is tampered with in the database,
// verify is not ok and names it.
func TestAPIAudit(t *testing.T) {
	e := newEnv(t)
	a := e.alice()
	k := a.gen(t, map[string]any{"type": "aes", "label": "audited", "bits": 128})[0]
	e.client().do("POST", "/api/v1/session", map[string]any{"username": "bob", "password": "nope"}).
		want(t, http.StatusUnauthorized, "", "CKR_PIN_INCORRECT")
	co := e.officer()

	type rec struct {
		Stream string         `json:"stream"`
		Seq    uint64         `json:"seq"`
		Opcode string         `json:"opcode"`
		Event  map[string]any `json:"event"`
		MAC    string         `json:"mac"`
	}
	var all struct {
		Records []rec `json:"records"`
	}
	co.do("GET", "/api/v1/audit", nil).ok(t, http.StatusOK, &all)
	require.NotEmpty(t, all.Records)
	ops := map[string]int{}
	for _, r := range all.Records {
		ops[r.Opcode]++
	}
	assert.Positive(t, ops["CN_GENERATE_KEY"], "%v", ops)
	assert.Positive(t, ops["CN_LOGIN"], "%v", ops)

	var some struct {
		Records []rec `json:"records"`
	}
	a.do("GET", "/api/v1/audit?opcode=CN_GENERATE_KEY", nil).ok(t, http.StatusOK, &some)
	require.Len(t, some.Records, 1)
	assert.EqualValues(t, k.Handle, some.Records[0].Event["key_handle"])
	co.do("GET", "/api/v1/audit?user=bob&opcode=CN_LOGIN", nil).ok(t, http.StatusOK, &some)
	require.NotEmpty(t, some.Records)
	for _, r := range some.Records {
		assert.Equal(t, "CN_LOGIN", r.Opcode)
	}
	co.do("GET", "/api/v1/audit?limit=2", nil).ok(t, http.StatusOK, &some)
	assert.Len(t, some.Records, 2)
	last := all.Records[len(all.Records)-1]
	co.do("GET", "/api/v1/audit?stream="+last.Stream+"&since="+itoa(last.Seq), nil).ok(t, http.StatusOK, &some)
	require.NotEmpty(t, some.Records)
	for _, r := range some.Records {
		assert.GreaterOrEqual(t, r.Seq, last.Seq)
	}
	for _, q := range []string{"opcode=CN_NOPE", "since=-1", "since=x", "limit=-5", "limit=abc", "stream=hsm-9"} {
		r := co.raw("GET", "/api/v1/audit?"+q, nil, nil)
		want := http.StatusBadRequest
		if q == "stream=hsm-9" {
			want = http.StatusNotFound // a typo is not an empty log
		}
		assert.Equal(t, want, r.Status, "%s: %s", q, r.Body)
	}

	var v struct {
		OK      bool             `json:"ok"`
		Streams []map[string]any `json:"streams"`
	}
	co.do("GET", "/api/v1/audit/verify", nil).ok(t, http.StatusOK, &v)
	assert.True(t, v.OK, "%+v", v)
	require.NotEmpty(t, v.Streams)
	// A stream the token never wrote is not a green verify of nothing.
	e404 := co.do("GET", "/api/v1/audit/verify?stream=hsm-9", nil).want(t, http.StatusNotFound, "not_found")
	assert.Contains(t, e404.Error.Message, `"hsm-9"`)
	assert.Contains(t, e404.Error.Message, v.Streams[0]["stream"], "names the streams that exist")
	co.do("GET", "/api/v1/audit/verify?stream="+fmt.Sprint(v.Streams[0]["stream"]), nil).ok(t, http.StatusOK, nil)

	// Tamper: change one record's bytes under its MAC.
	target := all.Records[len(all.Records)/2]
	db, err := sql.Open("sqlite", filepath.Join(e.dir, "slot-0", store.DBName))
	require.NoError(t, err)
	defer db.Close()
	res, err := db.Exec(`UPDATE audit SET record = CAST(replace(CAST(record AS TEXT), '"time_us":', '"time_us":1') AS BLOB) WHERE stream = ? AND seq = ?`, target.Stream, target.Seq)
	require.NoError(t, err)
	n, err := res.RowsAffected()
	require.NoError(t, err)
	require.EqualValues(t, 1, n)

	r := co.do("GET", "/api/v1/audit/verify", nil)
	require.Equal(t, http.StatusOK, r.Status, "verify answers a result, not an error: %s", r.Body)
	r.decode(t, &v)
	assert.False(t, v.OK, "%s", r.Body)
	var bad struct {
		Streams []struct {
			Stream string `json:"stream"`
			OK     bool   `json:"ok"`
			BadSeq uint64 `json:"bad_seq"`
			Reason string `json:"reason"`
		} `json:"streams"`
	}
	r.decode(t, &bad)
	named := false
	for _, s := range bad.Streams {
		if s.Stream == target.Stream {
			assert.False(t, s.OK)
			assert.Equal(t, target.Seq, s.BadSeq, "names the record: %s", r.Body)
			assert.NotEmpty(t, s.Reason)
			named = true
		} else {
			assert.True(t, s.OK, "stream %s untouched", s.Stream)
		}
	}
	assert.True(t, named, "stream %s in %s", target.Stream, r.Body)
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }
