package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/token/cluster"
)

// TestClusterPlanCommands: a plan loaded by one process is shown by
// another as it was written, appears in status with its steps, and is
// gone after clear; a bad plan is refused with its reason and position
// and nothing is loaded.
func TestClusterPlanCommands(t *testing.T) {
	p := newProc(t, "[slot 0]\nprofile = cloudhsm\n")
	dir := t.TempDir()
	doc := `{"seed": 7, "steps": [
  {"at": "0s", "fail": "C_Sign", "count": 3, "rv": "CKR_DEVICE_ERROR"},
  {"at": "1h", "hsm": 1, "state": "down"},
  {"at": "1h", "for": "2s", "latency": "normal(5ms,1ms)", "class": "ec-sign"}
]}`
	planFile := filepath.Join(dir, "plan.json")
	require.NoError(t, os.WriteFile(planFile, []byte(doc), 0o600))
	want, err := cluster.ParsePlan([]byte(doc))
	require.NoError(t, err)

	var none struct{ Plan *cluster.Plan }
	p.data(&none, "cluster", "plan", "show")
	assert.Nil(t, none.Plan)
	assert.Equal(t, "no fault plan is loaded\n", p.ok("cluster", "plan", "show"))

	assert.Equal(t, "loaded the fault plan "+planFile+": 3 steps, seed 7; its clock starts now\n",
		p.ok("cluster", "plan", "load", planFile))
	var shown struct{ Plan *cluster.Plan }
	p.data(&shown, "cluster", "plan", "show")
	assert.Equal(t, want, shown.Plan)
	// The text form is the plan as JSON: it loads again.
	again := filepath.Join(dir, "again.json")
	require.NoError(t, os.WriteFile(again, []byte(p.ok("cluster", "plan", "show")), 0o600))
	b, err := os.ReadFile(again)
	require.NoError(t, err)
	reparsed, err := cluster.ParsePlan(b)
	require.NoError(t, err)
	assert.Equal(t, want, reparsed)

	st := p.status()
	require.NotNil(t, st.Plan)
	assert.Equal(t, uint64(7), st.Plan.Seed)
	require.Len(t, st.Plan.Steps, 3)
	assert.Equal(t, "active", st.Plan.Steps[0].State)
	assert.Equal(t, int64(3), st.Plan.Steps[0].Remaining)
	assert.Equal(t, "pending", st.Plan.Steps[1].State)
	assert.Equal(t, []string{"up", "up"}, hsmStates(st), "the step at 1h has not fired")
	text := p.ok("cluster", "status")
	assert.Contains(t, text, "fault plan: seed 7, loaded ")
	assert.Regexp(t, `(?m)^0\s+active\s+3\s+at 0s: fail C_Sign`, text)

	// Bad plans: nothing loaded, the one before stays.
	for _, tc := range []struct{ doc, want string }{
		{"{\"steps\": [\n  {\"at\": \"1s\",, }\n]}", "bad.json:2:15: cluster: plan: invalid character ','"},
		{`{"steps": [{"at": "1s", "hsm": 1, "state": "down", "fail": "C_Sign", "rv": "CKR_DEVICE_ERROR"}]}`, "bad.json: cluster: plan: step 0: want exactly one of"},
		{`{"steps": [{"at": "1s", "hsm": 1, "state": "sideways"}]}`, `step 0: state "sideways"`},
		{`{"steps": [{"at": "1s", "fail": "C_Sign", "rv": "CKR_NOPE"}]}`, `step 0: rv "CKR_NOPE"`},
		{`{"steps": [], "extra": 1}`, `unknown field "extra"`},
		{`{"steps": [{"at": "soon", "store": "down", "for": "1s"}]}`, `"soon" is not a duration`},
		{`{"steps": [{"at": "1s", "hsm": 2, "state": "down"}]}`, "bad.json: cluster: plan: step 0: hsm 2: the cluster has HSMs 0 to 1"},
	} {
		bad := filepath.Join(dir, "bad.json")
		require.NoError(t, os.WriteFile(bad, []byte(tc.doc), 0o600))
		p.fails("bad_plan", []string{"cluster plan load: " + bad, tc.want}, "cluster", "plan", "load", bad)
	}
	p.data(&shown, "cluster", "plan", "show")
	assert.Equal(t, want, shown.Plan, "the refused plans changed nothing")
	p.fails("error", []string{"no-such-file.json"}, "cluster", "plan", "load", filepath.Join(dir, "no-such-file.json"))
	// A file that never ends is refused after 16 KiB, not read whole.
	p.fails("bad_plan", []string{"/dev/zero: cluster: plan: more than 16384 bytes"}, "cluster", "plan", "load", "/dev/zero")

	assert.Equal(t, "cleared the fault plan: its pending steps will not fire; HSM states stay as they are\n", p.ok("cluster", "plan", "clear"))
	p.data(&none, "cluster", "plan", "show")
	assert.Nil(t, none.Plan)
	assert.Nil(t, p.status().Plan)
	assert.Equal(t, "no fault plan was loaded\n", p.ok("cluster", "plan", "clear"))

	// A step that is due fires at the next status, in that process, once:
	// the HSM is down for every process after, the step done.
	now := filepath.Join(dir, "now.json")
	require.NoError(t, os.WriteFile(now, []byte(`{"steps": [{"at": "0s", "hsm": 1, "state": "down"}, {"at": "0s", "for": "1h", "store": "down"}]}`), 0o600))
	p.ok("cluster", "plan", "load", now)
	st = p.status()
	assert.Equal(t, []string{"up", "down"}, hsmStates(st))
	require.NotNil(t, st.Plan)
	assert.Equal(t, "done", st.Plan.Steps[0].State)
	require.NotNil(t, st.StoreDownUntil, "the store is down for an hour")
	assert.Contains(t, p.ok("cluster", "status"), "store down until ")
	// The control plane works while the store is down; the audit log,
	// written beside the plan's store fault, says what happened.
	assert.Equal(t, uint32(1), p.status().HSMs[1].Epoch, "fired once")
	p.ok("cluster", "plan", "clear")
	p.ok("cluster", "reset")
	for _, stream := range []string{"hsm-0", "hsm-1"} {
		log := p.ok("audit", "show", "--stream", stream)
		assert.Contains(t, log, "Opcode : GOHSM_FAULT_PLAN (0x1013)\n", stream)
		assert.Contains(t, log, "Opcode : GOHSM_STORE_FAULT (0x1014)\n", stream)
	}
	assert.Contains(t, p.ok("audit", "show", "--stream", "hsm-1"), "Opcode : GOHSM_HSM_STATE (0x1011)\n")

	// Reset removes a plan too.
	p.ok("cluster", "plan", "load", planFile)
	p.ok("cluster", "reset")
	assert.Nil(t, p.status().Plan)
}

// TestClusterPlanOverFaultPlanFile: with fault_plan in the slot's
// section, every gohsm run opens the cluster with it; a plan loaded or
// cleared by one run must still be so in the next.
func TestClusterPlanOverFaultPlanFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file.json")
	require.NoError(t, os.WriteFile(file, []byte(`{"seed": 1, "steps": [{"at": "1h", "hsm": 1, "state": "down"}]}`), 0o600))
	other := filepath.Join(dir, "other.json")
	require.NoError(t, os.WriteFile(other, []byte(`{"seed": 2, "steps": [{"at": "2h", "hsm": 0, "state": "down"}]}`), 0o600))
	p := newProc(t, "[slot 0]\nprofile = cloudhsm\nfault_plan = "+file+"\n")
	var shown struct{ Plan *cluster.Plan }
	p.data(&shown, "cluster", "plan", "show")
	require.NotNil(t, shown.Plan)
	assert.Equal(t, uint64(1), shown.Plan.Seed, "the file's plan")

	p.ok("cluster", "plan", "load", other)
	p.data(&shown, "cluster", "plan", "show")
	require.NotNil(t, shown.Plan)
	assert.Equal(t, uint64(2), shown.Plan.Seed, "the loaded plan, not the file's again")

	p.ok("cluster", "plan", "clear")
	p.data(&shown, "cluster", "plan", "show")
	assert.Nil(t, shown.Plan, "cleared, not the file's again")
}

// TestClusterBadFaultPlanFile: a fault_plan the parser refuses stops
// every command on the slot with one line naming the file and the
// parser's reason (the module cannot open the slot's cluster).
func TestClusterBadFaultPlanFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "broken.json")
	require.NoError(t, os.WriteFile(file, []byte(`{"steps": [`), 0o600))
	p := newProc(t, "[slot 0]\nprofile = cloudhsm\nfault_plan = "+file+"\n")
	p.fails("CKR_GENERAL_ERROR", []string{"cluster status: CKR_GENERAL_ERROR (slot 0: cluster: fault_plan " + file + ": cluster: plan: unexpected EOF)"},
		"cluster", "status")
}
