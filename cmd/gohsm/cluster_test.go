package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/token/cluster"
)

// TestClusterNoCluster: on a slot without an emulated cluster (standard's
// default) every cluster command fails with exit status 1, one line
// naming the keys that give the slot one, and code no_cluster.
func TestClusterNoCluster(t *testing.T) {
	c := newCLI(t)
	plan := filepath.Join(t.TempDir(), "plan.json")
	require.NoError(t, os.WriteFile(plan, []byte(`{"steps":[]}`), 0o600))
	for _, args := range [][]string{
		{"cluster", "status"},
		{"cluster", "hsm", "down", "0"},
		{"cluster", "hsm", "up", "0"},
		{"cluster", "hsm", "degrade", "0"},
		{"cluster", "plan", "load", plan},
		{"cluster", "plan", "clear"},
		{"cluster", "plan", "show"},
		{"cluster", "reset"},
	} {
		c.fails([]string{"slot 0 has no emulated cluster: set hsms = N (or cluster = on) in its section"}, args...)
		r := c.run(append([]string{"--json"}, args...)...)
		require.Equal(t, 1, r.code, "%v", args)
		var je jsonError
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &je), r.stdout)
		assert.Equal(t, jsonError{1, strings.Join(args[:len(args)-len(operandsOf(args))], " ") +
			": slot 0 has no emulated cluster: set hsms = N (or cluster = on) in its section", "", "no_cluster"}, je)
	}
}

// operandsOf is the operands at the end of a cluster command line.
func operandsOf(args []string) []string {
	if cmd := lookup(args); cmd != nil {
		return args[len(cmd.path):]
	}
	return nil
}

// TestClusterUsage: the operands K and FILE are required, single, and K is
// an index; mistakes are usage errors (exit status 2) before any token is
// opened; flags may follow the operand.
func TestClusterUsage(t *testing.T) {
	c := newCLI(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"cluster", "hsm", "down"}, "cluster hsm down: missing K"},
		{[]string{"cluster", "hsm", "up", "one"}, `cluster hsm up: K: "one" is not an HSM index`},
		{[]string{"cluster", "hsm", "degrade", "-1"}, `flag provided but not defined: -1`},
		{[]string{"cluster", "hsm", "down", "0", "1"}, `cluster hsm down: unexpected argument "1"`},
		{[]string{"cluster", "hsm", "down", "0", "--json", "1"}, `cluster hsm down: unexpected argument "1"`},
		{[]string{"cluster", "plan", "load"}, "cluster plan load: missing FILE"},
		{[]string{"cluster", "plan", "show", "x"}, `cluster plan show: unexpected argument "x"`},
		{[]string{"cluster", "hsm"}, "cluster hsm: missing subcommand (one of: down, up, degrade)"},
		{[]string{"cluster", "hsm", "kill", "0"}, `cluster hsm: unknown subcommand "kill" (one of: down, up, degrade)`},
	} {
		r := c.run(tc.args...)
		assert.Equal(t, 2, r.code, "%v: %s", tc.args, r.stderr)
		assert.Contains(t, r.stderr, tc.want, "%v", tc.args)
	}
	// The operand found among flags: the no_cluster error, not a usage one.
	c.fails([]string{"no emulated cluster"}, "cluster", "hsm", "down", "--json", "1")
	c.fails([]string{"no emulated cluster"}, "cluster", "hsm", "down", "1", "--slot", "0")
}

// TestClusterStatusText: the text form of cluster status, byte for byte
// (testdata/cluster-status.golden; -update rewrites it), from a Status with
// every part filled: a down and a degraded HSM, budgets, a plan with steps
// in each state, the store down.
func TestClusterStatusText(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 19, 0, 0, 0, time.UTC)
	down := t0.Add(3 * time.Second)
	st := cluster.Status{
		HSMs: []cluster.HSMStatus{
			{Index: 0, ID: "hsm-0", State: "up", Since: t0, Classes: []cluster.ClassStatus{
				{Class: "rsa-sign", Budget: 1000, Used: 812.5, Calls: 12034, Throttled: 17, Retried: 40},
				{Class: "ec-sign", Budget: 1500},
				{Class: "symmetric", Calls: 99, Failed: 3},
			}},
			{Index: 1, ID: "hsm-1", State: "down", Since: t0.Add(2 * time.Second), Epoch: 2},
			{Index: 2, ID: "hsm-2", State: "degraded", Since: t0.Add(-90 * time.Minute), Epoch: 1, Classes: []cluster.ClassStatus{
				{Class: "rsa-sign", Budget: 1000, Used: 2, Calls: 2},
			}},
		},
		Check: true, Retry: "standard",
		Plan: &cluster.PlanStatus{Seed: 42, Loaded: t0, Steps: []cluster.StepStatus{
			{Index: 0, Step: "at 2s: HSM 1 down", State: "done"},
			{Index: 1, Step: "at 0s: fail the next 3 C_Sign with CKR_DEVICE_ERROR", State: "active", Remaining: 1},
			{Index: 2, Step: "at 3s for 500ms: store down", State: "active"},
			{Index: 3, Step: "at 1m0s: HSM 1 up", State: "pending"},
		}},
		StoreDownUntil: &down,
	}
	var b strings.Builder
	printStatus(&b, st, t0.Add(2500*time.Millisecond))
	b.WriteString("---\n")
	printStatus(&b, cluster.Status{HSMs: []cluster.HSMStatus{{ID: "hsm-0", State: "up", Since: t0}}, Retry: "off"}, t0.Add(time.Hour))
	checkGolden(t, "cluster-status.golden", b.String())
}

// TestPlanErrorPosition: a plan's JSON mistakes are placed by line and
// column (the byte the decoder stopped at).
func TestPlanErrorPosition(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{`{"steps": x}`, ":1:11"},
		{"{\"steps\": [\n  {\"at\": \"1s\",, }\n]}", ":2:15"},
		{"{\n\"seed\": \"7\"}", ":2:11"},
	} {
		var p struct {
			Seed  uint64
			Steps []map[string]string
		}
		err := json.Unmarshal([]byte(tc.doc), &p)
		require.Error(t, err, tc.doc)
		assert.Equal(t, tc.want, position([]byte(tc.doc), err), "%s: %v", tc.doc, err)
	}
	assert.Equal(t, "", position(nil, os.ErrNotExist))
}
