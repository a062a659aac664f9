package console

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"gohsm/internal/testenv"
)

// buildSigner compiles testdata/signer.c: a plain C client of the
// library, through dlopen and the function list.
func buildSigner(t *testing.T) string {
	t.Helper()
	return testenv.CompileC(t, filepath.Join("testdata", "signer.c"), filepath.Join(t.TempDir(), "signer"))
}

// figure reads a metrics figure's data-value.
func (f *fixture) figure(t *testing.T, ctx context.Context, test string) float64 {
	t.Helper()
	v := eval[string](t, f, ctx, `(document.querySelector('[data-test="`+test+`"]') || {dataset: {value: '0'}}).dataset.value`)
	x, err := strconv.ParseFloat(v, 64)
	if err != nil {
		t.Fatalf("data-test=%s has data-value %q", test, v)
	}
	return x
}

// TestLiveChart: while the metrics page is open, a library process signs
// in a loop through the C ABI on the same token; the page's operations
// total and its ec-sign rate rise, and the chart's canvas changes between
// two screenshots. The counters are on because the console watches
// (metrics = auto, docs/console.md).
func TestLiveChart(t *testing.T) {
	f := setup(t)
	lib := testenv.Library(t)
	signer := buildSigner(t)

	ctx := f.tab(t)
	f.login(t, ctx, "officer", "officer-password")
	f.do(t, ctx, "open the metrics page",
		chromedp.Navigate(f.base+"#/metrics"),
		chromedp.WaitVisible(css(`[data-test="chart-ops"] canvas`)))
	rate0 := f.figure(t, ctx, "rate-ec-sign")
	f.shot(t, ctx, "metrics-0-before-signing")

	sctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	update := os.Getenv("GOHSM_UPDATE_SCREENSHOT") == "1"
	seconds := "30"
	if update {
		seconds = "50" // the picture for docs/console.png has more of a line
	}
	cmd := exec.CommandContext(sctx, signer, lib, seconds)
	cmd.Env = append(os.Environ(), "GOHSM_CONF="+f.conf, "SIGNER_PIN=alice:"+alicePass)
	cmd.WaitDelay = 5 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan string, 1)
	ready := make(chan bool, 1)
	go func() {
		var out strings.Builder
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if sc.Text() == "READY" {
				ready <- true
			}
		}
		cmd.Wait()
		done <- out.String()
	}()
	defer func() {
		cmd.Process.Kill()
		t.Logf("signer: %s%s", <-done, stderr.String())
	}()
	select {
	case <-ready:
	case <-time.After(20 * time.Second):
		t.Fatalf("the signer did not start signing in 20 s: %s", stderr.String())
	}

	// The page shows ec-sign calls within a few seconds: the library
	// process counts once it sees the console's watch lease.
	start := time.Now()
	var rate1 float64
	for {
		rate1 = f.figure(t, ctx, "rate-ec-sign")
		if rate1 > 0 {
			break
		}
		if time.Since(start) > 15*time.Second {
			f.shot(t, ctx, "FAILED-metrics-no-ec-sign")
			t.Fatalf("no ec-sign rate on the metrics page 15 s after the signer started (before: %v)", rate0)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("ec-sign showed on the page %v after signing started: %.0f/s", time.Since(start).Round(time.Millisecond), rate1)
	total1 := f.figure(t, ctx, "ops-total")
	chart1 := get(t, f, ctx, "capture the ops chart", chromedp.Screenshot(css(`[data-test="chart-ops"]`)))
	f.shot(t, ctx, "metrics-1-signing")

	time.Sleep(3 * time.Second)
	total2 := f.figure(t, ctx, "ops-total")
	rate2 := f.figure(t, ctx, "rate-ec-sign")
	samples := f.figure(t, ctx, "samples")
	throttled := f.figure(t, ctx, "throttled-rate")
	p50, p95, p99 := f.figure(t, ctx, "latency-p50"), f.figure(t, ctx, "latency-p95"), f.figure(t, ctx, "latency-p99")
	failed := f.figure(t, ctx, "failed-rate")
	chart2 := get(t, f, ctx, "capture the ops chart again", chromedp.Screenshot(css(`[data-test="chart-ops"]`)))
	f.shot(t, ctx, "metrics-2-signing-later")
	t.Logf("ops total %.0f -> %.0f over 3 s; ec-sign %.0f/s -> %.0f/s; throttled %.0f/s, failed %.0f/s; %.0f samples",
		total1, total2, rate1, rate2, throttled, failed, samples)

	if rate0 != 0 {
		t.Errorf("ec-sign rate before signing: %v, want 0", rate0)
	}
	if !(total2 > total1) {
		t.Errorf("the page's ops total did not rise while signing: %v -> %v", total1, total2)
	}
	if !(rate2 > 0) {
		t.Errorf("the page's ec-sign rate after 3 more seconds of signing: %v", rate2)
	}
	// Over the budget of 2 x 2000/s with no retry: throttled calls, which
	// are failed calls too.
	if !(throttled > 0) || !(failed >= throttled) {
		t.Errorf("the page shows %v throttled/s and %v failed/s, want throttled > 0 and failed >= throttled", throttled, failed)
	}
	// The latency chart's last point: ECDSA P-256 signing takes tens of
	// microseconds, not nothing and not seconds.
	t.Logf("ec-sign latency p50 %.1f µs, p95 %.1f µs, p99 %.1f µs", p50, p95, p99)
	if !(p50 > 0 && p50 <= p95 && p95 <= p99 && p99 < 1e6) {
		t.Errorf("the page's ec-sign latency: p50 %v, p95 %v, p99 %v µs, want 0 < p50 <= p95 <= p99 < 1 s", p50, p95, p99)
	}
	if bytes.Equal(chart1, chart2) {
		t.Errorf("the ops chart's canvas did not change in 3 s of signing")
	}
	if update {
		time.Sleep(20 * time.Second)
		png := f.shot(t, ctx, "metrics-3-for-docs")
		p := filepath.Join(testenv.RepoRoot(t), "docs", "console.png")
		if png == nil {
			t.Fatal("no screenshot for docs/console.png")
		}
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", p)
	}
}
