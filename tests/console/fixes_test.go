package console

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestPlanEditorRoundTrip: with a plan loaded (by the CLI), the cluster
// page's editor shows the plan file itself, not GET /cluster/plan's
// {"plan": ...} wrapper, so saving it as it stands loads it again.
func TestPlanEditorRoundTrip(t *testing.T) {
	f := setup(t)
	t.Cleanup(func() { f.run("cluster", "plan", "clear") })
	plan := filepath.Join(t.TempDir(), "plan.json")
	if err := os.WriteFile(plan, []byte(`{"seed": 5, "steps": [{"at": "1h", "hsm": 1, "state": "down", "for": "5m"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := f.run("cluster", "plan", "load", plan); err != nil {
		t.Fatal(err)
	}
	ctx := f.tab(t)
	f.login(t, ctx, "alice", alicePass)
	f.do(t, ctx, "open the cluster page with a plan loaded",
		chromedp.Navigate(f.base+"#/cluster"),
		chromedp.WaitVisible(css(`[data-test="plan-status"] [data-test="plan-step"]`)),
		chromedp.WaitVisible(css(`[data-test="plan-text"]`)))
	text := eval[string](t, f, ctx, `document.querySelector('[data-test="plan-text"]').value`)
	var shown map[string]json.RawMessage
	if err := json.Unmarshal([]byte(text), &shown); err != nil {
		t.Fatalf("the editor holds %q: %v", text, err)
	}
	if _, ok := shown["steps"]; !ok {
		t.Errorf("the editor holds %s: want the plan file (seed, steps), not the API's wrapper", text)
	}
	f.shot(t, ctx, "plan-1-editor-loaded")
	f.do(t, ctx, "save the editor's text",
		chromedp.Click(css(`[data-test="plan-load"]`)),
		chromedp.WaitVisible(css(`#flash.ok, [data-test="plan-error"]`)))
	f.shot(t, ctx, "plan-2-saved")
	if n := eval[int](t, f, ctx, `document.querySelectorAll('[data-test="plan-error"]').length`); n != 0 {
		t.Fatalf("saving the loaded plan: %s", f.text(t, ctx, `[data-test="plan-error"]`))
	}
	if got := f.text(t, ctx, `#flash`); !strings.Contains(got, "Plan loaded") {
		t.Errorf("flash after saving: %q", got)
	}
	var st struct {
		Plan *struct {
			Seed  uint64            `json:"seed"`
			Steps []json.RawMessage `json:"steps"`
		} `json:"plan"`
	}
	f.cliJSON(t, &st, "cluster", "status")
	if st.Plan == nil || st.Plan.Seed != 5 || len(st.Plan.Steps) != 1 {
		t.Errorf("gohsm cluster status after saving the editor: %+v, want the plan of seed 5, one step", st.Plan)
	}
}

// TestOfficerSetsTrusted: an officer's key page has a CKA_TRUSTED control
// (PUT /keys/{handle}/trusted); the change holds when the page is read
// again. A crypto user's page for the same key has no such control.
func TestOfficerSetsTrusted(t *testing.T) {
	f := setup(t)
	var data struct {
		Keys []cliKey `json:"matched_keys"`
	}
	f.cliJSON(t, &data, "key", "list", "--label", "alice-signer", "--pin", "alice:"+alicePass)
	var pub uint64
	for _, k := range data.Keys {
		if k.Class == "public-key" {
			pub = k.Handle
		}
	}
	if pub == 0 {
		t.Fatalf("no public key alice-signer in %+v", data.Keys)
	}
	t.Cleanup(func() {
		f.run("key", "set-trusted", "--handle", fmt.Sprint(pub), "--trusted=false", "--pin", officerPIN)
	})
	page := fmt.Sprintf("%s#/keys/%d", f.base, pub)

	ctx := f.tab(t)
	f.login(t, ctx, "officer", "officer-password")
	f.do(t, ctx, "open alice's public key as the officer",
		chromedp.Navigate(page),
		chromedp.WaitVisible(css(`[data-test="key-trusted"][data-trusted="false"]`)))
	f.shot(t, ctx, "trusted-1-not-trusted")
	f.do(t, ctx, "mark it trusted",
		chromedp.Click(css(`[data-test="key-trust-toggle"]`)),
		chromedp.WaitVisible(css(`[data-test="key-trusted"][data-trusted="true"]`)))
	f.do(t, ctx, "read the page again",
		chromedp.Navigate(f.base+"#/keys"),
		chromedp.WaitVisible(css(`[data-test="key-list-box"] > [data-test]`)),
		chromedp.Navigate(page),
		chromedp.WaitVisible(css(`[data-test="key-trusted"][data-trusted="true"]`)),
		chromedp.WaitVisible(css(`[data-test="attr"][data-attr="CKA_TRUSTED"]`)))
	if v := f.text(t, ctx, `[data-test="attr"][data-attr="CKA_TRUSTED"] td:last-child`); v != "yes" && v != "true" {
		t.Errorf("CKA_TRUSTED after the click reads %q", v)
	}
	f.shot(t, ctx, "trusted-2-trusted")

	actx := f.tab(t)
	f.login(t, actx, "alice", alicePass)
	f.do(t, actx, "open the key as alice",
		chromedp.Navigate(page),
		chromedp.WaitVisible(css(`[data-test="attr-table"]`)))
	if n := eval[int](t, f, actx, `document.querySelectorAll('[data-test="trusted-box"]').length`); n != 0 {
		t.Errorf("a crypto user's key page offers the CKA_TRUSTED control")
	}
}

// TestPollsKeepIdle: the metrics and cluster pages' timers send
// X-Gohsm-Poll: 1, so while they refresh the session's idle deadline
// stays where the last user action left it.
func TestPollsKeepIdle(t *testing.T) {
	f := setup(t)
	ctx := f.tab(t)
	f.login(t, ctx, "alice", alicePass)
	// The session's deadline, read without renewing it.
	const expiry = `fetch('/api/v1/session', {headers: {'X-Gohsm-Poll': '1'}}).then(r => r.json()).then(s => s.expires_at)`
	for _, p := range []struct {
		route, ready string
		wait         time.Duration
	}{
		{"#/metrics", `[data-test="ops-total"]`, 2500 * time.Millisecond},
		{"#/cluster", `[data-test="hsm-row"]`, 4500 * time.Millisecond},
	} {
		f.do(t, ctx, "open "+p.route,
			chromedp.Navigate(f.base+p.route),
			chromedp.WaitVisible(css(p.ready)))
		before := get(t, f, ctx, "read the deadline", chromedp.Evaluate[string](expiry, chromedp.EvalAwaitPromise))
		time.Sleep(p.wait) // two polls at least
		after := get(t, f, ctx, "read the deadline again", chromedp.Evaluate[string](expiry, chromedp.EvalAwaitPromise))
		if before != after {
			t.Errorf("%s: the idle deadline moved from %s to %s while the page only polled", p.route, before, after)
		}
	}
}
