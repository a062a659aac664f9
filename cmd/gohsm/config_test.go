package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A --config file that cannot be read: code "config", the read's reason.
func TestUnreadableConfigFile(t *testing.T) {
	noStdin(t)
	missing := filepath.Join(t.TempDir(), "missing.conf")
	var out, errb bytes.Buffer
	code := run([]string{"--json", "--config", missing, "user", "list"}, &out, &errb)
	assert.Equal(t, 1, code)
	var m map[string]any
	require.NoError(t, json.Unmarshal(out.Bytes(), &m), out.String())
	assert.Equal(t, "config", m["code"])
	assert.Contains(t, m["error"], "config: open "+missing+": no such file or directory")
	assert.True(t, strings.HasPrefix(errb.String(), "gohsm: "), errb.String())
}
