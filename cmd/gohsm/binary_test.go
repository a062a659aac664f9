package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token"
)

// TestBinary builds gohsm as the Makefile does (CGO_ENABLED=0) and runs it
// as a real process: exit statuses, standard error, the configuration from
// $GOHSM_CONF, and the refusal to delete a token another process has open.
func TestBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "gohsm")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	conf := testConfig(t, "")
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOHSM_") {
			env = append(env, kv)
		}
	}
	env = append(env, "GOHSM_CONF="+conf)
	gohsm := func(extraEnv []string, args ...string) result {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(env, extraEnv...)
		return runCmd(t, cmd)
	}

	r := gohsm(nil, "token", "init", "--label", "bin", "--pin", coPIN)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, `initialised token "bin" in slot 0`)
	assert.Empty(t, r.stderr)

	r = gohsm([]string{"GOHSM_PIN=" + coPIN}, "user", "create", "--username", "alice", "--role", "cu", "--password", "alice-pw")
	require.Equal(t, 0, r.code, r.stderr)

	r = gohsm(nil, "--json", "user", "list")
	require.Equal(t, 0, r.code, r.stderr)
	var ul struct {
		Code int `json:"error_code"`
		Data struct{ Users []userJSON }
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &ul), r.stdout)
	require.Len(t, ul.Data.Users, 2)
	assert.Equal(t, "alice", ul.Data.Users[1].Name)

	// A wrong password: status 1 and exactly one line (the module's own
	// warning log stays off the terminal).
	r = gohsm(nil, "key", "list", "--pin", "alice:wrong")
	assert.Equal(t, 1, r.code)
	assert.Equal(t, "gohsm: key list: CKR_PIN_INCORRECT: wrong name or password (login \"alice\")\n", r.stderr)
	assert.Empty(t, r.stdout)

	r = gohsm(nil, "key", "generate", "aes")
	assert.Equal(t, 2, r.code)
	assert.Equal(t, 2, strings.Count(r.stderr, "\n"), r.stderr)
	assert.Contains(t, r.stderr, "usage: gohsm key generate aes")

	// Another process (this test) has the token open: delete is refused and
	// the token stays.
	cfg, err := token.LoadConfig(conf)
	require.NoError(t, err)
	m, err := token.Open(cfg)
	require.NoError(t, err)
	h, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION)
	require.NoError(t, err)
	_, err = m.Users(h)
	require.NoError(t, err)
	r = gohsm(nil, "token", "delete", "--yes", "--pin", coPIN)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "CKR_SESSION_EXISTS")
	assert.Contains(t, r.stderr, fmt.Sprintf("in use by process %d", os.Getpid()))
	r = gohsm(nil, "token", "reset", "--yes") // nor without a PIN
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, fmt.Sprintf("reset token: in use by process %d", os.Getpid()))
	// A backup is taken while the token is open; a restore over it is
	// refused (docs/backup.md).
	bk := filepath.Join(t.TempDir(), "open.gohsm-backup")
	r = gohsm(nil, "token", "backup", "--out", bk, "--pin", coPIN)
	require.Equal(t, 0, r.code, r.stderr)
	r = gohsm(nil, "token", "restore", "--from", bk, "--yes")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "CKR_SESSION_EXISTS")
	assert.Contains(t, r.stderr, fmt.Sprintf("is open in process %d", os.Getpid()))
	us, err := m.Users(h)
	require.NoError(t, err, "the token survives")
	assert.Len(t, us, 2)
	require.NoError(t, m.Close())

	r = gohsm(nil, "token", "delete", "--yes", "--pin", coPIN)
	require.Equal(t, 0, r.code, r.stderr)
	r = gohsm(nil, "--json", "token", "list")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, `"initialized": false`)
}
