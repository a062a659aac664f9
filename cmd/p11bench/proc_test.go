package main

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"gohsm/internal/testenv"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseProcSpec(t *testing.T) {
	s, err := parseProcSpec(strings.NewReader("# c\n" +
		"cmd\tsign\ta\tx --sign\n" +
		"cmd\tsign\tb\ty --sign\n" +
		"cmd\tlist\ta\tx -L\n" +
		"\n" +
		"target\tsign\t2\t2\n" +
		"target\tlist\t1.3\t0\n" +
		"pair\ta\tb\n"))
	require.NoError(t, err)
	assert.Equal(t, []string{"sign", "list"}, s.rows)
	assert.Equal(t, []string{"a", "b"}, s.modules)
	assert.Equal(t, "y --sign", s.cmds[[2]string{"sign", "b"}])
	assert.Equal(t, [2]float64{1.3, 0}, s.targets["list"])
	assert.Equal(t, [2]string{"a", "b"}, s.pair)

	for _, bad := range []string{
		"",                                      // no commands
		"cmd\tsign\ta\n",                        // no command
		"cmd\tsign\ta\tx\ncmd\tsign\ta\ty\n",    // twice
		"cmd\tsign\ta\tx\ntarget\tsign\tx\t2\n", // not a number
		"cmd\tsign\ta\tx\ntarget\tsign\t-1\t2\n",
		"cmd\tsign\ta\tx\ntarget\tother\t2\t2\n", // unknown row
		"cmd\tsign\ta\tx\npair\ta\tz\n",          // unknown module
		"run\tsign\ta\tx\n",                      // unknown kind
	} {
		_, err := parseProcSpec(strings.NewReader(bad))
		assert.Error(t, err, "%q", bad)
	}
}

func TestProcStats(t *testing.T) {
	ms := time.Millisecond
	st := summarise([]procSample{{30 * ms, 300}, {10 * ms, 100}, {20 * ms, 250}, {50 * ms, 200}})
	assert.Equal(t, procStats{medWall: 25 * ms, maxWall: 50 * ms, medRSS: 225, maxRSS: 300}, st)
	st = summarise([]procSample{{30 * ms, 3}, {10 * ms, 1}, {20 * ms, 2}})
	assert.Equal(t, procStats{medWall: 20 * ms, maxWall: 30 * ms, medRSS: 2, maxRSS: 3}, st)
	assert.Equal(t, procStats{}, summarise(nil))

	assert.Equal(t, verdictPass, procVerdict(2, 2))
	assert.Equal(t, verdictMiss, procVerdict(2.01, 2))
	assert.Equal(t, verdictInfo, procVerdict(9, 0))
}

func TestProcTable(t *testing.T) {
	s, err := parseProcSpec(strings.NewReader("cmd\tsign\ta\tx\ncmd\tsign\tb\ty\ncmd\tlist\ta\tx\ncmd\tlist\tb\ty\n" +
		"target\tsign\t2\t2\ntarget\tlist\t1.3\t0\npair\ta\tb\n"))
	require.NoError(t, err)
	ms := time.Millisecond
	stats := map[[2]string]procStats{
		{"sign", "a"}: {medWall: 30 * ms, maxWall: 40 * ms, medRSS: 30 << 20, maxRSS: 31 << 20},
		{"sign", "b"}: {medWall: 10 * ms, maxWall: 11 * ms, medRSS: 20 << 20, maxRSS: 20 << 20},
		{"list", "a"}: {medWall: 12 * ms, maxWall: 13 * ms, medRSS: 20 << 20, maxRSS: 20 << 20},
		{"list", "b"}: {medWall: 10 * ms, maxWall: 10 * ms, medRSS: 10 << 20, maxRSS: 10 << 20},
	}
	var b strings.Builder
	miss := writeProcTable(&b, s, stats, 3)
	out := b.String()
	assert.Equal(t, 1, miss)
	assert.Contains(t, out, "| sign | a | 0.030 s | 0.040 s | 30.0 MiB | 31.0 MiB |")
	assert.Contains(t, out, "| sign | 3.00x | ≤ 2.00x | MISS | 1.50x | ≤ 2.00x | PASS |")
	assert.Contains(t, out, "| list | 1.20x | ≤ 1.30x | PASS | 2.00x | - | info |")
	assert.Contains(t, out, "Whole-process targets: 2 PASS, 1 MISS.")
}

// TestProcMain runs a spec of two trivial commands end to end: the runs
// are counted, a failing command is an error.
func TestProcMain(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "spec")
	require.NoError(t, os.WriteFile(spec, []byte("cmd\ttrue\ta\ttrue\ncmd\ttrue\tb\tsleep 0.01\npair\ta\tb\n"), 0o600))
	var out, errb strings.Builder
	require.NoError(t, procMain([]string{"-runs", "3", spec}, &out, &errb))
	assert.Contains(t, out.String(), "3 runs of each command")
	// b sleeps 10 ms: its median is at least that (no upper bound: a
	// loaded machine only makes it longer).
	m := regexp.MustCompile(`\| true \| b \| ([0-9.]+) s \|`).FindStringSubmatch(out.String())
	require.NotNil(t, m, out.String())
	med, err := strconv.ParseFloat(m[1], 64)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, med, 0.0095, out.String())

	require.NoError(t, os.WriteFile(spec, []byte("cmd\tfalse\ta\tfalse\n"), 0o600))
	assert.Error(t, procMain([]string{spec}, &out, &errb))
}

// TestProcLauncher: through build/maxrss a command's peak RSS is its own.
// Run directly, `true` reads at least this test's own peak (the floor
// docs/bench.md describes: the child shares this process's memory until
// its exec); through the launcher it reads what `true` uses, and a
// command that touches 32 MiB reads at least that.
func TestProcLauncher(t *testing.T) {
	launcher := testenv.CompileC(t, "startprobe/maxrss.c", filepath.Join(t.TempDir(), "maxrss"))
	ballast := make([]byte, 64<<20)
	for i := range ballast {
		ballast[i] = 1
	}
	direct, err := runOnce("true", io.Discard)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, direct.rss, int64(64<<20), "the floor under runOnce")
	launched, err := runLaunched(launcher, "true", io.Discard)
	require.NoError(t, err)
	assert.Less(t, launched.rss, int64(16<<20), "true through the launcher")
	assert.Greater(t, launched.rss, int64(0))
	big, err := runLaunched(launcher, "dd if=/dev/zero of=/dev/null bs=32M count=1 status=none", io.Discard)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, big.rss, int64(32<<20), "dd's 32 MiB buffer")
	runtime.KeepAlive(ballast)

	_, err = runLaunched(launcher, "false", io.Discard)
	assert.Error(t, err, "a failing command fails")
	for _, bad := range []string{"", "maxrss_kb=0 wall_us=1", "maxrss_kb=12", "wall_us=3 maxrss_kb=4"} {
		_, err := parseLaunched(bad)
		assert.Error(t, err, "%q", bad)
	}
	s, err := parseLaunched("maxrss_kb=984 wall_us=1500\n")
	require.NoError(t, err)
	assert.Equal(t, procSample{wall: 1500 * time.Microsecond, rss: 984 * 1024}, s)
}
