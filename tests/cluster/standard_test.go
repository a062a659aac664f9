package cluster

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/require"
)

// TestStandardSlot: a slot with profile = standard has no cluster by
// default (decision 1): `gohsm cluster status` says so and fails
// (code no_cluster). A cluster key turns it on: `hsms = 2` gives two
// HSMs with the key availability check off (standard's default), so a
// new token key is usable at once even with a replication delay, and a
// budget throttles as on a cloudhsm slot.
func TestStandardSlot(t *testing.T) {
	tk := newProfileCluster(t, "standard")
	out, err := tk.runGohsm("cluster", "status", "--json")
	require.Error(t, err, "cluster status on a slot without a cluster: %s", out)
	var je struct {
		Code string `json:"code"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &je), out)
	require.Equal(t, "no_cluster", je.Code)
	s := tk.login()
	k := tk.genEC(s, true, "plain")
	require.NoError(t, tk.sign(s, k))

	tk.reconfigure("hsms = 2", "replication_delay = 10s", "throttle.ec-sign = 100", "retry_mode = off")
	st := tk.status()
	require.Len(t, st.HSMs, 2, "hsms = 2 on a standard slot")
	require.False(t, st.Check, "standard's key availability check is off")
	s = tk.login()
	fresh := tk.genEC(s, true, "fresh")
	require.NoError(t, tk.sign(s, fresh), "a new token key at once: no check on standard")
	r := signLoad(tk.p, []pkcs11.SessionHandle{s}, k, 700*time.Millisecond, 200*time.Millisecond)
	t.Logf("standard slot, 2 x 100/s: %+v", r)
	require.Zero(t, r.Other, r.FirstOther)
	require.Positive(t, r.Failed, "a standard slot with a budget throttles")
	if rate := r.Rate(); rate > 1.25*200 {
		t.Fatalf("%.1f signs/s passed a budget of 2 x 100/s", rate)
	}
	require.True(t, strings.Contains(tk.logText(), throttleLogLine))
}
