package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/testenv/pgtest"
	"gohsm/token/cluster"
)

// The gohsm binary the cluster tests run: $GOHSM_CLI (tests/run.sh sets
// it to build/gohsm), else built once here as the Makefile builds it.
var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

func TestMain(m *testing.M) {
	code := pgtest.Run(m) // the PostgreSQL server of store_test.go, if one started
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func gohsmBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if p := os.Getenv("GOHSM_CLI"); p != "" {
			binPath = p
			return
		}
		if binDir, binErr = os.MkdirTemp("", "gohsm-bin-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "gohsm")
		build := exec.Command("go", "build", "-o", binPath, ".")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			binErr = errors.New("go build: " + err.Error() + ": " + string(out))
		}
	})
	require.NoError(t, binErr)
	return binPath
}

// proc runs the gohsm binary as its own process on conf: every command of
// a test is another process, sharing the token and its cluster.state.
type proc struct {
	t    *testing.T
	bin  string
	conf string
}

func newProc(t *testing.T, extra string) *proc {
	return &proc{t: t, bin: gohsmBinary(t), conf: testConfig(t, extra)}
}

func (p *proc) run(args ...string) result {
	p.t.Helper()
	cmd := exec.Command(p.bin, append([]string{"--config", p.conf}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOHSM_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	return runCmd(p.t, cmd)
}

// runCmd runs a process to its end: its exit code and output (a process
// that cannot start fails the test).
func runCmd(t *testing.T, cmd *exec.Cmd) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return result{code, stdout.String(), stderr.String()}
}

// ok runs a command that must succeed with nothing on standard error.
func (p *proc) ok(args ...string) string {
	p.t.Helper()
	r := p.run(args...)
	require.Equal(p.t, 0, r.code, "gohsm %s: %s", strings.Join(args, " "), r.stderr)
	require.Empty(p.t, r.stderr)
	return r.stdout
}

// data runs a command with --json and decodes its data into v, refusing
// any field v does not have: the JSON's shape is pinned by the Go type.
func (p *proc) data(v any, args ...string) {
	p.t.Helper()
	out := p.ok(append([]string{"--json"}, args...)...)
	var env struct {
		Code *int            `json:"error_code"`
		Data json.RawMessage `json:"data"`
	}
	require.NoError(p.t, strictJSON([]byte(out), &env), out)
	require.NotNil(p.t, env.Code, out)
	require.Equal(p.t, 0, *env.Code)
	require.NoError(p.t, strictJSON(env.Data, v), out)
}

func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// fails runs a command that must fail with exit status 1, every want in
// its one line on standard error, and --json's code.
func (p *proc) fails(code string, want []string, args ...string) {
	p.t.Helper()
	r := p.run(args...)
	require.Equal(p.t, 1, r.code, "gohsm %s: %q %q", strings.Join(args, " "), r.stdout, r.stderr)
	require.Equal(p.t, 1, strings.Count(r.stderr, "\n"), "one line: %q", r.stderr)
	for _, w := range want {
		require.Contains(p.t, r.stderr, w)
	}
	r = p.run(append([]string{"--json"}, args...)...)
	var je jsonError
	require.NoError(p.t, strictJSON([]byte(r.stdout), &je), r.stdout)
	require.Equal(p.t, code, je.Kind, r.stdout)
}

func (p *proc) status() cluster.Status {
	p.t.Helper()
	var st cluster.Status
	p.data(&st, "cluster", "status")
	return st
}

func hsmStates(st cluster.Status) []string {
	var out []string
	for _, h := range st.HSMs {
		out = append(out, h.State)
	}
	return out
}

// times matches the RFC 3339 times of --json output, for golden files.
var times = regexp.MustCompile(`"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z"`)

// TestClusterStatusFresh: cluster status on a fresh cloudhsm slot: two
// HSMs up since the state file was made, epoch 0, the check on, retry
// standard, no budgets, no plan; --json byte for byte with times
// normalised (testdata/cluster-status-fresh.json; -update rewrites it),
// and the text table.
func TestClusterStatusFresh(t *testing.T) {
	p := newProc(t, "[slot 0]\nprofile = cloudhsm\n")
	before := time.Now().Add(-time.Second)
	st := p.status()
	require.Len(t, st.HSMs, 2)
	for i, h := range st.HSMs {
		assert.Equal(t, i, h.Index)
		assert.Equal(t, cluster.StreamName(i), h.ID)
		assert.Equal(t, "up", h.State)
		assert.Zero(t, h.Epoch)
		assert.Empty(t, h.Classes, "no budgets, no calls")
		assert.WithinRange(t, h.Since, before, time.Now().Add(time.Second))
	}
	assert.True(t, st.Check)
	assert.Equal(t, "standard", st.Retry)
	assert.Nil(t, st.Plan)
	assert.Nil(t, st.StoreDownUntil)

	out := times.ReplaceAllString(p.ok("--json", "cluster", "status"), `"<time>"`)
	checkGolden(t, "cluster-status-fresh.json", out)

	text := p.ok("cluster", "status")
	assert.Contains(t, text, "2 HSMs, key availability check on, retry mode standard\n")
	assert.Regexp(t, `(?m)^HSM\s+ID\s+STATE\s+SINCE\s+EPOCH$`, text)
	assert.Regexp(t, `(?m)^0\s+hsm-0\s+up\s+\d{4}-.* ago\)\s+0$`, text)
	assert.Regexp(t, `(?m)^1\s+hsm-1\s+up\s+`, text)
	assert.Contains(t, text, "no fault plan\n")
}

// TestClusterHSMCommands: hsm down, up and degrade change the state every
// process sees (each command is a process of its own); the epoch counts
// the times an HSM went down; K out of range is refused naming the range;
// reset brings every HSM up and keeps the epochs.
func TestClusterHSMCommands(t *testing.T) {
	p := newProc(t, "[slot 0]\nprofile = cloudhsm\nhsms = 3\n")
	var down struct{ HSM cluster.HSMStatus }
	p.data(&down, "cluster", "hsm", "down", "1")
	assert.Equal(t, "down", down.HSM.State)
	assert.Equal(t, "hsm-1", down.HSM.ID)
	assert.Equal(t, uint32(1), down.HSM.Epoch)

	st := p.status() // another process
	assert.Equal(t, []string{"up", "down", "up"}, hsmStates(st))
	assert.Equal(t, uint32(1), st.HSMs[1].Epoch)
	assert.Regexp(t, `(?m)^1\s+hsm-1\s+down\s+`, p.ok("cluster", "status"))

	assert.Equal(t, "HSM 1 (hsm-1) is up (epoch 1)\n", p.ok("cluster", "hsm", "up", "1"))
	assert.Equal(t, "HSM 2 (hsm-2) is degraded (epoch 0)\n", p.ok("cluster", "hsm", "degrade", "2"))
	p.ok("cluster", "hsm", "down", "1")
	st = p.status()
	assert.Equal(t, []string{"up", "down", "degraded"}, hsmStates(st))
	assert.Equal(t, uint32(2), st.HSMs[1].Epoch, "down twice")

	p.fails("no_such_hsm", []string{"cluster hsm down: CKR_ARGUMENTS_BAD: the cluster has 3 HSMs (0 to 2): there is no HSM 3"},
		"cluster", "hsm", "down", "3")
	p.fails("no_such_hsm", []string{"there is no HSM 32"}, "cluster", "hsm", "up", "32")
	assert.Equal(t, []string{"up", "down", "degraded"}, hsmStates(p.status()), "the refusals changed nothing")

	// Each change is in the HSM's own stream, the refusals nowhere.
	audit := p.ok("audit", "show", "--stream", "hsm-1", "--opcode", "GOHSM_HSM_STATE")
	assert.Equal(t, 3, strings.Count(audit, "Opcode : GOHSM_HSM_STATE (0x1011)\n"), audit)
	assert.Equal(t, 2, strings.Count(audit, "Detail : hsm 1: up -> down\n"), audit)
	assert.Contains(t, p.ok("audit", "show", "--stream", "hsm-2"), "Detail : hsm 2: up -> degraded\n")
	assert.NotContains(t, p.ok("audit", "show"), "hsm 3")

	assert.Equal(t, "reset the cluster: 3 HSMs up, counters zero, no fault plan\n", p.ok("cluster", "reset"))
	st = p.status()
	assert.Equal(t, []string{"up", "up", "up"}, hsmStates(st))
	assert.Equal(t, uint32(2), st.HSMs[1].Epoch, "reset keeps epochs: a session key lost stays lost")
}

// TestClusterJSONGolden: every cluster command's --json output, success
// and error, byte for byte with times normalised
// (testdata/cluster-json.golden; -update rewrites it). Scripts read these.
func TestClusterJSONGolden(t *testing.T) {
	p := newProc(t, "[slot 0]\nprofile = cloudhsm\nthrottle.rsa-sign = 100\n[slot 1]\nprofile = standard\n")
	dir := t.TempDir()
	plan := filepath.Join(dir, "plan.json")
	require.NoError(t, os.WriteFile(plan, []byte(`{"seed": 3, "steps": [
  {"at": "0s", "fail": "C_Sign", "count": 2, "rv": "CKR_DEVICE_ERROR"},
  {"at": "1h", "for": "1s", "store": "down"}
]}`), 0o600))
	bad := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"steps": [{"at": "1s"}]}`), 0o600))
	var b strings.Builder
	add := func(args ...string) {
		t.Helper()
		r := p.run(append([]string{"--json"}, args...)...)
		out := times.ReplaceAllString(r.stdout, `"<time>"`)
		out = strings.ReplaceAll(out, dir, "<dir>")
		b.WriteString("$ gohsm --json " + strings.ReplaceAll(strings.Join(args, " "), dir, "<dir>") + "\n" + out)
	}
	add("cluster", "hsm", "down", "1")
	add("cluster", "hsm", "degrade", "0")
	add("cluster", "hsm", "up", "1")
	add("cluster", "hsm", "down", "2")
	add("cluster", "plan", "show")
	add("cluster", "plan", "load", plan)
	add("cluster", "plan", "show")
	add("cluster", "plan", "load", bad)
	add("cluster", "status")
	add("cluster", "plan", "clear")
	add("cluster", "reset")
	add("--slot", "1", "cluster", "status")
	add("--slot", "7", "cluster", "status")
	checkGolden(t, "cluster-json.golden", b.String())
}
