package cluster

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPlanFileYieldsToCLI: with fault_plan set, a plan loaded or cleared
// by the operator (gohsm cluster plan load|clear) stays so when the next
// process opens, the CLI's own runs included; the file is loaded again
// when its contents change or after a reset. (Before, every Open found
// "a plan of other contents", or none, and put the file's back with its
// clock restarted, undoing the operator's command at the next process.)
func TestPlanFileYieldsToCLI(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(t.TempDir(), "plan.json")
	require.NoError(t, os.WriteFile(file, []byte(`{"seed":1,"steps":[{"at":"1h","hsm":1,"state":"down"}]}`), 0o600))
	cfg := testConfig(2)
	require.NoError(t, cfg.Set("fault_plan", file, ""))
	seed := func(c *Cluster) uint64 {
		t.Helper()
		s := c.Status()
		if s.Plan == nil {
			return 0
		}
		return s.Plan.Seed
	}

	c, _ := open(t, dir, cfg)
	assert.Equal(t, uint64(1), seed(c), "the file's plan, at the first Open")

	require.NoError(t, c.LoadPlan(mustPlan(t, `{"seed":2,"steps":[{"at":"2h","hsm":0,"state":"down"}]}`)))
	c2, rec2 := open(t, dir, cfg)
	assert.Equal(t, uint64(2), seed(c2), "the operator's plan stays")
	assert.Empty(t, eventsOf(rec2, PlanLoaded))

	require.NoError(t, c2.ClearPlan())
	c3, _ := open(t, dir, cfg)
	assert.Zero(t, seed(c3), "cleared stays cleared")

	require.NoError(t, os.WriteFile(file, []byte(`{"seed":4,"steps":[{"at":"1h","hsm":1,"state":"down"}]}`), 0o600))
	c4, rec4 := open(t, dir, cfg)
	assert.Equal(t, uint64(4), seed(c4), "a changed file is loaded")
	assert.Len(t, eventsOf(rec4, PlanLoaded), 1)
	assert.Equal(t, uint64(4), seed(c), "by every process")

	require.NoError(t, c4.Reset())
	assert.Zero(t, seed(c4))
	c5, _ := open(t, dir, cfg)
	assert.Equal(t, uint64(4), seed(c5), "after a reset the file loads again")
}

// A fault_plan that never ends (a device) or is too large is refused at
// Open after reading one byte more than a plan may hold.
func TestPlanFileBounded(t *testing.T) {
	for _, path := range []string{"/dev/zero", "/dev/urandom"} {
		cfg := testConfig(2)
		require.NoError(t, cfg.Set("fault_plan", path, ""))
		_, err := Open(t.TempDir(), cfg, 0o600)
		assert.ErrorContains(t, err, "more than 16384 bytes", path)
	}
	b, err := ReadPlanFile("/dev/zero")
	require.NoError(t, err)
	assert.Len(t, b, planCap+1)
}
