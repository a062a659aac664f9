package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTokenListShowsDamagedSlot: with one slot's token.db corrupt, token
// list still lists every slot, the bad one as damaged. Before, the module
// did not open at all ("file is not a database").
func TestTokenListShowsDamagedSlot(t *testing.T) {
	t.Setenv("GOHSM_PIN", "")
	c := &cli{t: t, conf: testConfig(t, "[slot 0]\n[slot 7]\n")}
	text, err := os.ReadFile(c.conf)
	require.NoError(t, err)
	var tokenDir string
	for _, l := range strings.Split(string(text), "\n") {
		if v, ok := strings.CutPrefix(l, "token_dir = "); ok {
			tokenDir = v
		}
	}
	bad := filepath.Join(tokenDir, "slot-7")
	require.NoError(t, os.MkdirAll(bad, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(bad, "token.db"), bytes.Repeat([]byte("garbage!"), 1024), 0o600))

	var d struct {
		Slots []struct {
			Slot        int  `json:"slot"`
			Initialized bool `json:"initialized"`
			Damaged     bool `json:"damaged"`
		}
	}
	c.data(&d, "token", "list")
	require.Len(t, d.Slots, 2)
	assert.False(t, d.Slots[0].Damaged)
	assert.Equal(t, 7, d.Slots[1].Slot)
	assert.True(t, d.Slots[1].Damaged)
	assert.Contains(t, c.ok("token", "list"), "(damaged)")
}
