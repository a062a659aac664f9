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
)

// gohsmLib is the built module, or the test is skipped (failed under CI).
func gohsmLib(t *testing.T) string {
	t.Helper()
	lib := os.Getenv("GOHSM_LIB")
	if lib == "" {
		lib = "../../build/libgohsm.so"
	}
	abs, err := filepath.Abs(lib)
	require.NoError(t, err)
	if _, err := os.Stat(abs); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("p11bench: %s missing (run make lib): %v", abs, err)
		}
		t.Skipf("p11bench: %s missing (run make lib)", abs)
	}
	return abs
}

// TestSmoke runs every operation for a few milliseconds against gohsm with
// two sessions and 20 find objects: the harness sets up a fresh token,
// reuses it on a second pass, and reports every operation as measured or
// (for a mechanism the module does not list) unsupported. No timing is
// asserted.
func TestSmoke(t *testing.T) {
	lib := gohsmLib(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "gohsm.conf")
	require.NoError(t, os.WriteFile(conf, []byte("token_dir = "+dir+"/tokens\n"+
		"kdf_time = 1\nkdf_memory = 64\nkdf_threads = 1\nlogin_cache = off\n[slot 0]\nlabel = bench\n[slot 1]\nlabel = find\n"), 0o600))
	// The configuration goes in through C_Initialize's pReserved: a Go
	// c-shared library reads the environment of the process's start, so a
	// GOHSM_CONF set here would not reach it (and the test would use the
	// user's default token).

	jsonPath := filepath.Join(dir, "out.json")
	cfg, err := parseFlags([]string{"-module", "gohsm=" + lib, "-pin", "user:smoke-user", "-so-pin", "admin:smoke-so",
		"-reserved", "gohsm=" + conf, "-duration", "20ms", "-warmup", "2ms", "-objects", "20", "-sessions", "1,2", "-json", jsonPath}, os.Stderr)
	require.NoError(t, err)

	rep, err := bench(cfg)
	require.NoError(t, err)
	require.NotNil(t, rep)
	seen := map[string]bool{}
	for _, r := range rep.Results {
		seen[r.Op] = true
		switch r.Status {
		case statusOK:
			rounds := 5 // the default
			if opByName(r.Op).scales {
				rounds = 15 // the default for the sign operations
			}
			assert.Len(t, r.RoundsOpsPerSec, rounds, "%s %d sessions", r.Op, r.Sessions)
			assert.Contains(t, r.RoundsOpsPerSec, r.OpsPerSec, "%s %d sessions: the median is one of the rounds", r.Op, r.Sessions)
			assert.Positive(t, r.Ops, "%s %d sessions", r.Op, r.Sessions)
			assert.Positive(t, r.OpsPerSec, "%s %d sessions", r.Op, r.Sessions)
			assert.LessOrEqual(t, r.P50us, r.P99us, "%s %d sessions", r.Op, r.Sessions)
		case statusUnsupported:
			// Only for a mechanism the module does not list.
			assert.Contains(t, r.Reason, "not in C_GetMechanismList", r.Op)
		default:
			t.Errorf("%s %d sessions: %s: %s", r.Op, r.Sessions, r.Status, r.Reason)
		}
	}
	for _, op := range opDefs {
		assert.True(t, seen[op.name], "operation %s not run", op.name)
	}
	require.Len(t, rep.Modules, 1)
	assert.Contains(t, rep.Modules[0].FindSetup, "created 20 data objects")
	require.Len(t, rep.GoBaseline, 8) // ECDSA, ECDSA ASN.1, AES-GCM, SHA-256, ML-DSA-65 sign and verify, ML-KEM-768 encaps and decaps
	for _, g := range rep.GoBaseline {
		assert.Positive(t, g.OpsPerSec, g.Op)
		assert.Len(t, g.RoundsOpsPerSec, cfg.roundsFor(opByName(g.ModuleOp)), "%s: a rate in every round of %s", g.Op, g.ModuleOp)
		assert.Contains(t, []string{verdictPass, verdictMiss, verdictInfo}, g.Verdict, "%s: judged against the module", g.Op)
	}
	require.Len(t, rep.OpenSSLBaseline, 2, "OpenSSL baseline (libcrypto.so.3 is installed by tests/deps.sh)")
	for _, o := range rep.OpenSSLBaseline {
		assert.Positive(t, o.One, o.Op)
		assert.Positive(t, o.Two, o.Op)
		assert.Positive(t, o.P50One, "%s: every signature is timed", o.Op)
		assert.LessOrEqual(t, o.P50One, o.P99One, o.Op)
		assert.Positive(t, o.P50Two, "%s: every signature is timed", o.Op)
		assert.LessOrEqual(t, o.P50Two, o.P99Two, o.Op)
		assert.Equal(t, "gohsm", o.Module, "matched to the module's scaling row")
	}

	var b strings.Builder
	require.NoError(t, rep.write(cfg, &b))
	for _, op := range opDefs {
		assert.Contains(t, b.String(), "| "+op.name, "table row")
	}
	raw, err := os.ReadFile(jsonPath)
	require.NoError(t, err)
	var back report
	require.NoError(t, json.Unmarshal(raw, &back))
	assert.Len(t, back.Results, len(rep.Results))

	// A second run on the same token directory reuses the token, keys and
	// find objects, and a find for a label that does not exist is an error,
	// not a measurement.
	cfg.ops = []string{"find-label"}
	cfg.goBaseline = false
	cfg.osslBase = false
	cfg.jsonPath = ""
	rep, err = bench(cfg)
	require.NoError(t, err)
	assert.Contains(t, rep.Modules[0].FindSetup, "reused 20 data objects")

	p, err := load(lib, conf)
	require.NoError(t, err)
	m := &module{name: "gohsm", path: lib, p11: p, soPIN: "admin:smoke-so", pin: "user:smoke-user"}
	require.NoError(t, m.setup(cfg))
	require.NoError(t, m.setupFind(cfg))
	defer func() { require.NoError(t, m.finalize()) }()
	m.findObjects = 21 // labels 00000..00020: one is missing
	res := run(m.findWorkers[:1], opByName("find-label"), 50*time.Millisecond)
	require.Error(t, res.err)
	assert.Contains(t, res.err.Error(), "wrong result")
}

func TestPinFor(t *testing.T) {
	names := []string{"gohsm", "softhsm"}
	raw := []string{"1234", "gohsm=user:pw"}
	assert.Equal(t, "user:pw", pinFor(raw, "gohsm", "def", names))
	assert.Equal(t, "1234", pinFor(raw, "softhsm", "def", names))
	assert.Equal(t, "def", pinFor(nil, "softhsm", "def", names))
	// A PIN containing '=' whose prefix is no module name is a PIN for all.
	assert.Equal(t, "a=b", pinFor([]string{"a=b"}, "gohsm", "def", names))
}

func TestParseFlags(t *testing.T) {
	cfg, err := parseFlags([]string{"-module", "a=/x/liba.so,/y/libsofthsm2.so", "-sessions", "1,2,4", "-ops", "ecdsa,gcm-1m"}, os.Stderr)
	require.NoError(t, err)
	require.Len(t, cfg.modules, 2)
	assert.Equal(t, modSpec{"a", "/x/liba.so"}, cfg.modules[0])
	assert.Equal(t, modSpec{"softhsm2", "/y/libsofthsm2.so"}, cfg.modules[1])
	assert.Equal(t, []int{1, 2, 4}, cfg.sessions)
	assert.Equal(t, 5, cfg.rounds, "default")
	assert.Equal(t, 15, cfg.roundsFor(opByName("ecdsa-p256")), "default for a sign operation")
	assert.Equal(t, 5, cfg.roundsFor(opByName("aes256-gcm-1m")))
	cfg.rounds = 20
	assert.Equal(t, 20, cfg.roundsFor(opByName("ecdsa-p256")), "-rounds above -scaling-rounds wins")
	assert.Equal(t, 16, cfg.slices, "default")
	var names []string
	for _, op := range cfg.selected() {
		names = append(names, op.name)
	}
	assert.Equal(t, []string{"ecdsa-p256", "ecdsa-sha256-p256", "aes256-gcm-1m"}, names)

	for _, bad := range [][]string{
		{},
		{"-module", "x", "-sessions", "0"},
		{"-module", "x", "-ops", "nothing-matches"},
		{"-module", "x", "-objects", "100000"},
		{"-module", "x", "-slices", "0"},
		{"-module", "x", "-rounds", "0"},
		{"-module", "x", "-scaling-rounds", "-1"},
		{"-module", "x", "-duration", "10ms", "-slices", "20"},
		{"-module", "a=/a.so,b=/b.so", "-pair", "a/c"},
		{"-module", "a=/a.so,b=/b.so", "-pair", "a/a"},
		{"-module", "a=/a.so,b=/b.so", "-pair", "a-b"},
		{"-module", "a=/a.so,b=/b.so", "-pair", "a/b"},
		{"-module", "a=/a.so,b=/b.so", "-pair", "b/a=0"},
		{"-module", "a=/a.so,b=/b.so", "-pair", "b/a=x"},
	} {
		_, err := parseFlags(bad, &strings.Builder{})
		assert.Error(t, err, "%q", bad)
	}
}

// TestPairs: -pair adds a ratio column whose target holds on the
// operations that use a token key only.
func TestPairs(t *testing.T) {
	cfg, err := parseFlags([]string{"-module", "gohsm=/a.so,softhsm=/b.so,gohsm-pg=/c.so", "-pair", "gohsm-pg/gohsm=0.95", "-pair", "gohsm-pg/softhsm"}, os.Stderr)
	require.NoError(t, err)
	require.Equal(t, []pairSpec{{"gohsm-pg", "gohsm", 0.95}, {"gohsm-pg", "softhsm", 0}}, cfg.pairs)

	r := &report{Sessions: []int{1}}
	add := func(op, mod string, rate float64) {
		r.Results = append(r.Results, result{Op: op, Module: mod, Sessions: 1, Status: statusOK, OpsPerSec: rate})
	}
	for _, m := range []struct {
		name       string
		sign, kgen float64
	}{{"gohsm", 1000, 500}, {"softhsm", 400, 20}, {"gohsm-pg", 960, 100}} {
		r.Modules = append(r.Modules, moduleReport{Name: m.name})
		add("ecdsa-p256", m.name, m.sign)
		add("keygen-aes256-token", m.name, m.kgen)
	}
	r.summarise([]string{"gohsm", "softhsm", "gohsm-pg"}, cfg.pairs)
	row := func(pair, op string) ratioRow {
		for _, x := range r.Ratios {
			if x.Pair == pair && x.Op == op {
				return x
			}
		}
		t.Fatalf("no ratio %s %s in %+v", pair, op, r.Ratios)
		return ratioRow{}
	}
	assert.InDelta(t, 2.5, row("gohsm/softhsm", "ecdsa-p256").Ratio, 1e-9)
	assert.Equal(t, verdictPass, row("gohsm/softhsm", "ecdsa-p256").Verdict)
	sign := row("gohsm-pg/gohsm", "ecdsa-p256")
	assert.InDelta(t, 0.96, sign.Ratio, 1e-9)
	assert.Equal(t, 0.95, sign.Target)
	assert.Equal(t, verdictPass, sign.Verdict)
	kgen := row("gohsm-pg/gohsm", "keygen-aes256-token")
	assert.InDelta(t, 0.2, kgen.Ratio, 1e-9)
	assert.Equal(t, verdictInfo, kgen.Verdict, "key generation writes: no target")
	assert.InDelta(t, 5.0, row("gohsm-pg/softhsm", "keygen-aes256-token").Ratio, 1e-9)
	assert.Equal(t, verdictInfo, row("gohsm-pg/softhsm", "ecdsa-p256").Verdict)
	r.find("ecdsa-p256", "gohsm-pg", 1).OpsPerSec = 900
	r.Ratios = nil
	r.summarise([]string{"gohsm", "softhsm", "gohsm-pg"}, cfg.pairs)
	assert.Equal(t, verdictMiss, row("gohsm-pg/gohsm", "ecdsa-p256").Verdict, "0.90x < 0.95x")

	md := r.markdown()
	assert.Contains(t, md, "| gohsm/softhsm | target | | gohsm-pg/gohsm | target | | gohsm-pg/softhsm | target | |")
	assert.Contains(t, md, "| 0.90x | >= 0.95x | MISS |")
}

func TestPercentile(t *testing.T) {
	// Values below 64 ns are exact; above, within 1/64.
	assert.Equal(t, time.Duration(10), histValue(10))
	for _, v := range []uint64{100, 1000, 123456, 5_000_000_000} {
		got := float64(histValue(v))
		assert.InEpsilon(t, float64(v), got, 1.0/64, "%d", v)
	}
	hist := make([]uint64, histBuckets)
	for v := uint64(1); v <= 100; v++ {
		hist[histBucket(v*1000)]++
	}
	assert.InEpsilon(t, 50_000.0, float64(percentile(hist, 100, 0.50)), 1.0/32)
	assert.InEpsilon(t, 99_000.0, float64(percentile(hist, 100, 0.99)), 1.0/32)
	assert.Zero(t, percentile(hist, 0, 0.5))
}

func TestMedianRound(t *testing.T) {
	ok := func(v float64) result { return result{Status: statusOK, OpsPerSec: v} }
	m := median([]result{ok(30), ok(10), ok(20)})
	assert.Equal(t, 20.0, m.OpsPerSec)
	assert.Equal(t, []float64{30, 10, 20}, m.RoundsOpsPerSec, "every round, in order")
	assert.Equal(t, 20.0, median([]result{ok(20)}).OpsPerSec)
	failed := result{Status: statusError, Reason: "boom"}
	assert.Equal(t, statusError, median([]result{ok(1), failed, ok(3)}).Status, "a failed round is never hidden")
}

// TestPairedRatio: a ratio is the median of the rounds' own ratios, so a
// machine that slows down in one round moves both sides of that round's
// ratio; the ratio of the medians would mix rounds.
func TestPairedRatio(t *testing.T) {
	rounds := func(v ...float64) *result {
		r := median(func() (rs []result) {
			for _, x := range v {
				rs = append(rs, result{Status: statusOK, OpsPerSec: x})
			}
			return
		}())
		return &r
	}
	// Round 2 ran on a machine half as fast for both session counts, and
	// round 3's 2-session measurement met a busy neighbour.
	one, two := rounds(100, 50, 100), rounds(190, 95, 120)
	assert.InDelta(t, 1.9, pairedRatio(two, one), 1e-9, "rounds' ratios 1.9, 1.9, 1.2")
	assert.InDelta(t, 1.2, two.OpsPerSec/one.OpsPerSec, 1e-9, "the medians (120, 100) come from different rounds")
	// Without per-round rates (or with a different count), the medians.
	a, b := &result{OpsPerSec: 30}, &result{OpsPerSec: 10}
	assert.InDelta(t, 3.0, pairedRatio(a, b), 1e-9)
	assert.InDelta(t, 4.0, pairedRatio(rounds(20, 40), rounds(10)), 1e-9, "upper median 40 over 10")
	assert.Zero(t, medianRatio([]float64{1}, []float64{0}), "no usable round")
	assert.InDelta(t, 3.0, medianRatio([]float64{1, 4, 9, 16}, []float64{1, 2, 3, 4}), 1e-9, "upper median of 1, 2, 3, 4")
	assert.Equal(t, []float64{1.9, 1.9, 1.2}, roundRatios(two.RoundsOpsPerSec, one.RoundsOpsPerSec), "in round order")
	assert.Equal(t, "1.20-1.90", spread(roundRatios(two.RoundsOpsPerSec, one.RoundsOpsPerSec)))
	assert.Equal(t, "-", spread(nil))
}

// TestMedianInterval: the interval is a pair of order statistics whose
// coverage of the median (binomial, p = 1/2) is at least the confidence
// asked for, and the narrowest such pair.
func TestMedianInterval(t *testing.T) {
	v := func(n int) []float64 { // n, n-1, ..., 1: unsorted on purpose
		var out []float64
		for i := n; i >= 1; i-- {
			out = append(out, float64(i))
		}
		return out
	}
	// n = 5: min and max cover with 1 - 2/32 = 0.9375; the 2nd and 4th
	// only with 1 - 2*6/32 = 0.625.
	lo, hi, ok := medianInterval(v(5), 0.90)
	assert.True(t, ok)
	assert.Equal(t, []float64{1, 5}, []float64{lo, hi})
	// n = 4: min and max cover with 1 - 2/16 = 0.875 < 0.90.
	_, _, ok = medianInterval(v(4), 0.90)
	assert.False(t, ok, "four rounds cannot give 90%")
	lo, hi, ok = medianInterval(v(4), 0.85)
	assert.True(t, ok)
	assert.Equal(t, []float64{1, 4}, []float64{lo, hi})
	// n = 15: P(B <= 3) = 576/32768 = 0.0176 (coverage 0.965), P(B <= 4)
	// = 1941/32768 = 0.0592 (0.882): the 4th smallest and 4th largest.
	lo, hi, ok = medianInterval(v(15), 0.90)
	assert.True(t, ok)
	assert.Equal(t, []float64{4, 12}, []float64{lo, hi})
	// n = 25: P(B <= 7) = 0.0216 (0.957), P(B <= 8) = 0.0539 (0.892).
	lo, hi, ok = medianInterval(v(25), 0.90)
	assert.True(t, ok)
	assert.Equal(t, []float64{8, 18}, []float64{lo, hi})
	_, _, ok = medianInterval(nil, 0.90)
	assert.False(t, ok)
	assert.Equal(t, "-", interval(0, 0))
	assert.Equal(t, "1.84-1.93", interval(1.84, 1.93))
}

// TestTurnOrder: slices alternate the cells' order, each slice a
// permutation.
func TestTurnOrder(t *testing.T) {
	var got [][]int
	for s := range 3 {
		var order []int
		for j := range 4 {
			order = append(order, turnOrder(s, j, 4))
		}
		got = append(got, order)
	}
	assert.Equal(t, [][]int{{0, 1, 2, 3}, {3, 2, 1, 0}, {0, 1, 2, 3}}, got)
}

// -module-ops restricts a module to some operations: the others are
// skipped, shown as such, with no note and no ratio.
func TestModuleOps(t *testing.T) {
	cfg, err := parseFlags([]string{"-module", "gohsm=/a.so,softhsm=/b.so,gohsm-nohook=/c.so", "-module-ops", "gohsm-nohook=ecdsa,hmac"}, os.Stderr)
	require.NoError(t, err)
	assert.True(t, cfg.runs("gohsm-nohook", opByName("ecdsa-p256")))
	assert.True(t, cfg.runs("gohsm-nohook", opByName("hmac-sha256-64")))
	assert.False(t, cfg.runs("gohsm-nohook", opByName("aes256-gcm-64")))
	assert.True(t, cfg.runs("gohsm", opByName("aes256-gcm-64")))
	for _, bad := range [][]string{{"-module", "a=/a.so", "-module-ops", "b=ecdsa"}, {"-module", "a=/a.so", "-module-ops", "a="}, {"-module", "a=/a.so", "-module-ops", "ecdsa"}} {
		_, err := parseFlags(bad, &strings.Builder{})
		assert.ErrorContains(t, err, "-module-ops", "%q", bad)
	}
	r := &report{Sessions: []int{1}, Modules: []moduleReport{{Name: "gohsm"}, {Name: "gohsm-nohook"}}}
	r.Results = []result{{Op: "aes256-gcm-64", Module: "gohsm", Sessions: 1, Status: statusOK, OpsPerSec: 10},
		{Op: "aes256-gcm-64", Module: "gohsm-nohook", Sessions: 1, Status: statusSkipped, Reason: "not in -module-ops"}}
	r.summarise([]string{"gohsm", "gohsm-nohook"}, nil)
	md := r.markdown()
	assert.Contains(t, md, "| skipped | - | - |")
	assert.NotContains(t, md, "not in -module-ops")
}
