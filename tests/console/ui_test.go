package console

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

type cliUser struct {
	Name     string `json:"username"`
	Locked   bool   `json:"locked"`
	Failures int    `json:"failed_logins"`
}

func (f *fixture) users(t *testing.T) map[string]cliUser {
	t.Helper()
	var data struct {
		Users []cliUser `json:"users"`
	}
	f.cliJSON(t, &data, "user", "list", "--pin", officerPIN)
	m := map[string]cliUser{}
	for _, u := range data.Users {
		m[u.Name] = u
	}
	return m
}

type cliKey struct {
	Handle     uint64   `json:"handle"`
	Class      string   `json:"class"`
	Label      string   `json:"label"`
	Owner      string   `json:"owner"`
	SharedWith []string `json:"shared_with"`
}

// handle is the handle of the secret or private key labelled label that
// pin's user sees.
func (f *fixture) handle(t *testing.T, pin, label string) uint64 {
	t.Helper()
	var data struct {
		Keys []cliKey `json:"matched_keys"`
	}
	f.cliJSON(t, &data, "key", "list", "--label", label, "--pin", pin)
	var found []uint64
	for _, k := range data.Keys {
		if k.Class != "public-key" {
			found = append(found, k.Handle)
		}
	}
	if len(found) != 1 {
		t.Fatalf("gohsm key list --label %s: %+v, want one secret or private key", label, data.Keys)
	}
	return found[0]
}

// TestLogin: a wrong password shows the token's error on the login page
// and counts as a failed login (the CLI's user list says so); the right
// one reaches the keys page.
func TestLogin(t *testing.T) {
	f := setup(t)
	ctx := f.tab(t)
	before := f.users(t)["alice"].Failures

	f.do(t, ctx, "open the console",
		chromedp.Navigate(f.base),
		chromedp.WaitVisible(css(`[data-test="login-form"]`)))
	f.shot(t, ctx, "login-1-form")
	f.do(t, ctx, "log in with a wrong password",
		chromedp.SendKeys(css(`[data-test="login-username"]`), "alice"),
		chromedp.SendKeys(css(`[data-test="login-password"]`), "not-alices-password"),
		chromedp.Click(css(`[data-test="login-submit"]`)),
		chromedp.WaitVisible(css(`[data-test="login-error"]`)))
	errText := f.text(t, ctx, `[data-test="login-error"]`)
	ckr := get(t, f, ctx, "read the error's CKR", chromedp.AttributeValue(css(`[data-test="login-error"]`), "data-ckr")).Value
	f.shot(t, ctx, "login-2-wrong-password")
	t.Logf("login error shown: %q", errText)
	if ckr != "CKR_PIN_INCORRECT" || !strings.Contains(errText, "CKR_PIN_INCORRECT") {
		t.Errorf("wrong password: the page shows %q (ckr %q), want CKR_PIN_INCORRECT", errText, ckr)
	}
	if got := f.users(t)["alice"].Failures; got != before+1 {
		t.Errorf("after a wrong password in the console the CLI shows %d failed logins for alice, want %d", got, before+1)
	}

	f.do(t, ctx, "log in with the right password",
		chromedp.Clear(css(`[data-test="login-password"]`)),
		chromedp.SendKeys(css(`[data-test="login-password"]`), alicePass),
		chromedp.Click(css(`[data-test="login-submit"]`)),
		chromedp.WaitVisible(css(`#view[data-page="keys"] [data-test="key-table"]`)))
	hash := eval[string](t, f, ctx, `location.hash`)
	who := f.text(t, ctx, `[data-test="who"]`)
	f.shot(t, ctx, "login-3-keys-page")
	if hash != "#/keys" || !strings.Contains(who, "alice") {
		t.Errorf("after login: hash %q, header %q; want #/keys and alice", hash, who)
	}
	if got := f.users(t)["alice"].Failures; got != 0 {
		t.Errorf("after the right password the CLI shows %d failed logins for alice, want 0", got)
	}

	// A session the server no longer knows (here: the browser lost its
	// cookie; an expired session answers the same 401) sends the page
	// back to the login form at its next request, saying why.
	f.do(t, ctx, "lose the cookie, then open the users page",
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, network.ClearBrowserCookies, cdp.Empty{})
			return err
		}),
		chromedp.Navigate(f.base+"#/users"),
		chromedp.WaitVisible(css(`[data-test="login-form"]`)),
		chromedp.WaitVisible(css(`[data-test="flash"]`)))
	f.shot(t, ctx, "login-4-session-gone")
	t.Logf("after the session was lost the page says %q", f.text(t, ctx, `[data-test="flash"]`))
	f.login(t, ctx, "alice", alicePass)

	// Logging out returns to the login page, and the session is gone:
	// the keys page sends the browser back to #/login.
	f.do(t, ctx, "log out",
		chromedp.Click(css(`[data-test="logout"]`)),
		chromedp.WaitVisible(css(`[data-test="login-form"]`)),
		chromedp.Navigate(f.base+"#/keys"),
		chromedp.WaitVisible(css(`[data-test="login-form"]`)))
}

// keyRows reads the key table's rows as label -> handle.
func (f *fixture) keyRows(t *testing.T, ctx context.Context) map[string]uint64 {
	t.Helper()
	type row struct {
		Label  string `json:"label"`
		Handle uint64 `json:"handle"`
	}
	rows := eval[[]row](t, f, ctx, `[...document.querySelectorAll('[data-test="key-row"]')].map(r => ({label: r.dataset.label, handle: Number(r.dataset.handle)}))`)
	m := map[string]uint64{}
	for _, r := range rows {
		m[r.Label] = r.Handle
	}
	return m
}

// TestKeyList: alice sees her keys and the one bob shared with her, never
// bob's unshared key, in the list or by its handle.
func TestKeyList(t *testing.T) {
	f := setup(t)
	bobPrivate := f.handle(t, "bob:"+bobPass, "bob-private")
	ctx := f.tab(t)
	f.login(t, ctx, "alice", alicePass)
	rows := f.keyRows(t, ctx)
	f.shot(t, ctx, "keylist-1-alice")
	labels := make([]string, 0, len(rows))
	for l := range rows {
		labels = append(labels, l)
	}
	slices.Sort(labels)
	t.Logf("alice's key list: %v", labels)
	for _, want := range []string{"alice-signer", "alice-to-share", "bob-shared"} {
		if _, ok := rows[want]; !ok {
			t.Errorf("alice's key list lacks %s: %v", want, labels)
		}
	}
	if _, ok := rows["bob-private"]; ok {
		t.Errorf("alice's key list shows bob's unshared key bob-private")
	}
	for l, h := range rows {
		if h == bobPrivate {
			t.Errorf("alice's key list has bob-private's handle %d (as %q)", h, l)
		}
	}

	// The filter: by owner.
	f.do(t, ctx, "filter by owner bob",
		chromedp.SendKeys(css(`[data-test="filter-owner"]`), "bob"),
		chromedp.Click(css(`[data-test="filter-apply"]`)),
		chromedp.WaitNotPresent(css(`[data-test="key-row"][data-owner="alice"]`)),
		chromedp.WaitVisible(css(`[data-test="key-list-box"] > [data-test]`)))
	rows = f.keyRows(t, ctx)
	if _, ok := rows["bob-shared"]; !ok || len(rows) != 1 {
		t.Errorf("alice's keys owned by bob: %v, want bob-shared only", rows)
	}
	f.shot(t, ctx, "keylist-2-owner-bob")

	// A key's page: attributes, owner and shares.
	signer := f.handle(t, "alice:"+alicePass, "alice-signer")
	f.do(t, ctx, "open alice-signer",
		chromedp.Navigate(fmt.Sprintf("%s#/keys/%d", f.base, signer)),
		chromedp.WaitVisible(css(`[data-test="attr-table"]`)))
	owner := f.text(t, ctx, `[data-test="key-owner"]`)
	label := f.text(t, ctx, `[data-test="attr"][data-attr="CKA_LABEL"] td:last-child`)
	f.shot(t, ctx, "keylist-3-detail")
	if owner != "alice" || label != "alice-signer" {
		t.Errorf("alice-signer's page: owner %q, CKA_LABEL %q", owner, label)
	}

	// bob's unshared key by its handle: the token says no such key.
	f.do(t, ctx, "open bob-private by its handle",
		chromedp.Navigate(fmt.Sprintf("%s#/keys/%d", f.base, bobPrivate)),
		chromedp.WaitVisible(css(`[data-test="key-error"]`)))
	msg := f.text(t, ctx, `[data-test="key-error"]`)
	f.shot(t, ctx, "keylist-4-bobs-key-refused")
	t.Logf("bob-private's page for alice: %q", msg)
	attrs := eval[int](t, f, ctx, `document.querySelectorAll('[data-test="attr"]').length`)
	if attrs != 0 || strings.Contains(msg, "bob-private") {
		t.Errorf("alice's page of bob-private shows %d attributes, message %q", attrs, msg)
	}
}

// TestShareKey: alice shares a key with bob in the UI; bob's session
// lists it.
func TestShareKey(t *testing.T) {
	f := setup(t)
	h := f.handle(t, "alice:"+alicePass, "alice-to-share")
	alice := f.tab(t)
	f.login(t, alice, "alice", alicePass)
	f.do(t, alice, "open alice-to-share",
		chromedp.Navigate(fmt.Sprintf("%s#/keys/%d", f.base, h)),
		chromedp.WaitVisible(css(`[data-test="share-username"]`)),
		chromedp.WaitVisible(css(`[data-test="no-shares"]`)))
	f.shot(t, alice, "share-1-before")
	f.do(t, alice, "share with bob",
		chromedp.SendKeys(css(`[data-test="share-username"]`), "bob"),
		chromedp.Click(css(`[data-test="share-submit"]`)),
		chromedp.WaitVisible(css(`[data-test="share"][data-user="bob"]`)))
	f.shot(t, alice, "share-2-shared-with-bob")

	var k struct {
		Keys []cliKey `json:"matched_keys"`
	}
	f.cliJSON(t, &k, "key", "list", "--label", "alice-to-share", "--pin", "alice:"+alicePass)
	if len(k.Keys) != 1 || !slices.Contains(k.Keys[0].SharedWith, "bob") {
		t.Errorf("the CLI after sharing in the UI: %+v, want shared with bob", k.Keys)
	}

	bob := f.tab(t)
	f.login(t, bob, "bob", bobPass)
	rows := f.keyRows(t, bob)
	f.shot(t, bob, "share-3-bob-sees-it")
	if rows["alice-to-share"] != h {
		t.Errorf("bob's key list %v lacks alice-to-share (handle %d)", rows, h)
	}
	f.do(t, bob, "bob opens the shared key",
		chromedp.Navigate(fmt.Sprintf("%s#/keys/%d", f.base, h)),
		chromedp.WaitVisible(css(`[data-test="key-owner"]`)))
	owner := f.text(t, bob, `[data-test="key-owner"]`)
	controls := eval[int](t, f, bob, `document.querySelectorAll('[data-test="share-form"], [data-test="key-delete"]').length`)
	if owner != "alice" || controls != 0 {
		t.Errorf("bob's page of alice's key: owner %q, %d owner controls shown", owner, controls)
	}

	// Unshare again in alice's page: bob's list loses it.
	f.do(t, alice, "unshare",
		chromedp.Click(css(`[data-test="unshare"][data-user="bob"]`)),
		chromedp.WaitVisible(css(`[data-test="no-shares"]`)))
	f.do(t, bob, "bob's list again",
		chromedp.Navigate(f.base+"#/users"), chromedp.WaitVisible(css(`[data-test="user-table"]`)),
		chromedp.Navigate(f.base+"#/keys"), chromedp.WaitVisible(css(`[data-test="key-table"]`)))
	if _, ok := f.keyRows(t, bob)["alice-to-share"]; ok {
		t.Errorf("bob still lists alice-to-share after alice unshared it")
	}
}

type cliStatus struct {
	HSMs []struct {
		Index int    `json:"index"`
		State string `json:"state"`
	} `json:"hsms"`
}

func (f *fixture) hsmState(t *testing.T, k int) string {
	t.Helper()
	var st cliStatus
	f.cliJSON(t, &st, "cluster", "status")
	for _, h := range st.HSMs {
		if h.Index == k {
			return h.State
		}
	}
	t.Fatalf("gohsm cluster status: no HSM %d in %+v", k, st)
	return ""
}

// TestHSMDown: on the cloudhsm slot (2 HSMs), a click takes hsm-1 down,
// which the CLI's cluster status shows; another brings it up.
func TestHSMDown(t *testing.T) {
	f := setup(t)
	t.Cleanup(func() { f.run("cluster", "hsm", "up", "1") })
	ctx := f.tab(t)
	f.login(t, ctx, "alice", alicePass)
	f.do(t, ctx, "open the cluster page",
		chromedp.Navigate(f.base+"#/cluster"),
		chromedp.WaitVisible(css(`[data-test="hsm-row"][data-index="1"][data-state="up"]`)))
	f.shot(t, ctx, "cluster-1-up")
	f.do(t, ctx, "take hsm-1 down",
		chromedp.Click(css(`[data-test="hsm-down"][data-index="1"]`)),
		chromedp.WaitVisible(css(`[data-test="hsm-row"][data-index="1"][data-state="down"]`)))
	f.shot(t, ctx, "cluster-2-hsm-1-down")
	if got := f.hsmState(t, 1); got != "down" {
		t.Errorf("after the click, gohsm cluster status shows hsm 1 %q, want down", got)
	}
	if got := f.hsmState(t, 0); got != "up" {
		t.Errorf("hsm 0 is %q, want up", got)
	}
	f.do(t, ctx, "bring hsm-1 up",
		chromedp.Click(css(`[data-test="hsm-up"][data-index="1"]`)),
		chromedp.WaitVisible(css(`[data-test="hsm-row"][data-index="1"][data-state="up"]`)))
	f.shot(t, ctx, "cluster-3-hsm-1-up")
	if got := f.hsmState(t, 1); got != "up" {
		t.Errorf("after the second click, gohsm cluster status shows hsm 1 %q, want up", got)
	}

	// A fault plan: the example in the text box (hsm 1 down at 5 s, up at
	// 20 s) loads, shows its steps, and clears.
	f.do(t, ctx, "load the example plan",
		chromedp.Click(css(`[data-test="plan-load"]`)),
		chromedp.WaitVisible(css(`[data-test="plan-status"] [data-test="plan-step"]`)))
	f.shot(t, ctx, "cluster-4-plan-loaded")
	var st struct {
		Plan *struct {
			Steps []struct{ Step string } `json:"steps"`
		} `json:"plan"`
	}
	f.cliJSON(t, &st, "cluster", "status")
	if st.Plan == nil || len(st.Plan.Steps) != 2 {
		t.Errorf("gohsm cluster status after loading the plan in the UI: %+v, want a plan of 2 steps", st.Plan)
	}
	f.do(t, ctx, "clear the plan",
		chromedp.Click(css(`[data-test="plan-clear"]`)),
		chromedp.WaitVisible(css(`[data-test="plan-none"]`)))
	st.Plan = nil
	f.cliJSON(t, &st, "cluster", "status")
	if st.Plan != nil {
		t.Errorf("gohsm cluster status after clearing the plan in the UI: %+v, want none", st.Plan)
	}

	// A change made elsewhere (the CLI) shows in the page within its 2 s
	// refresh.
	if _, err := f.run("cluster", "hsm", "degrade", "0"); err != nil {
		t.Fatal(err)
	}
	defer f.run("cluster", "hsm", "up", "0")
	start := time.Now()
	f.do(t, ctx, "see the CLI's change",
		chromedp.WaitVisible(css(`[data-test="hsm-row"][data-index="0"][data-state="degraded"]`)))
	t.Logf("the CLI's degrade showed in the page after %v", time.Since(start).Round(time.Millisecond))
}

// TestGenerateDelete: alice generates an EC key pair in the UI (both
// halves appear, and in the CLI's list), then deletes the private key
// from its page.
func TestGenerateDelete(t *testing.T) {
	f := setup(t)
	ctx := f.tab(t)
	f.login(t, ctx, "alice", alicePass)
	f.do(t, ctx, "generate an EC pair",
		chromedp.SendKeys(css(`[data-test="gen-label"]`), "ui-made"),
		chromedp.Click(css(`[data-test="gen-submit"]`)),
		chromedp.WaitVisible(css(`[data-test="key-row"][data-label="ui-made"]`)))
	f.shot(t, ctx, "generate-1-made")
	n := eval[int](t, f, ctx, `document.querySelectorAll('[data-test="key-row"][data-label="ui-made"]').length`)
	if n != 2 {
		t.Errorf("after generating an EC pair the list has %d rows labelled ui-made, want 2", n)
	}
	h := f.handle(t, "alice:"+alicePass, "ui-made")
	f.do(t, ctx, "open the private key",
		chromedp.Navigate(fmt.Sprintf("%s#/keys/%d", f.base, h)),
		chromedp.WaitVisible(css(`[data-test="key-delete"]`)))
	eval[bool](t, f, ctx, `(window.confirm = () => true, true)`)
	f.do(t, ctx, "delete it",
		chromedp.Click(css(`[data-test="key-delete"]`)),
		chromedp.WaitVisible(css(`[data-test="key-table"]`)))
	f.shot(t, ctx, "generate-2-deleted")
	var data struct {
		Keys []cliKey `json:"matched_keys"`
	}
	f.cliJSON(t, &data, "key", "list", "--label", "ui-made", "--pin", "alice:"+alicePass)
	if len(data.Keys) != 1 || data.Keys[0].Class != "public-key" {
		t.Errorf("after deleting the private key in the UI the CLI lists %+v, want the public key only", data.Keys)
	}
}

// TestImport: alice imports an AES key (hex) and a P-256 private key
// (PKCS#8 PEM) through the import form; both show in her list.
func TestImport(t *testing.T) {
	f := setup(t)
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pemText := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	ctx := f.tab(t)
	f.login(t, ctx, "alice", alicePass)
	f.do(t, ctx, "import an AES key",
		chromedp.SendKeys(css(`[data-test="import-label"]`), "ui-aes"),
		chromedp.SendKeys(css(`[data-test="import-aes"]`), strings.Repeat("0f", 32)),
		chromedp.Click(css(`[data-test="import-submit"]`)),
		chromedp.WaitVisible(css(`[data-test="key-row"][data-label="ui-aes"]`)))
	f.do(t, ctx, "import a PEM private key",
		chromedp.SendKeys(css(`[data-test="import-label"]`), "ui-pem"),
		chromedp.SetValue(css(`[data-test="import-pem"]`), pemText),
		chromedp.Click(css(`[data-test="import-submit"]`)),
		chromedp.WaitVisible(css(`[data-test="key-row"][data-label="ui-pem"]`)))
	f.shot(t, ctx, "import-1-imported")
	rows := eval[[]string](t, f, ctx, `[...document.querySelectorAll('[data-test="key-row"][data-label^="ui-"]')].map(r => r.dataset.label + ' ' + r.children[2].textContent)`)
	t.Logf("imported rows: %v", rows)
	for _, want := range []string{"ui-aes secret-key", "ui-pem private-key"} {
		if !slices.Contains(rows, want) {
			t.Errorf("after the imports alice's list has %v, without %q", rows, want)
		}
	}

	// Neither given: the form shows the API's refusal.
	f.do(t, ctx, "import nothing",
		chromedp.SendKeys(css(`[data-test="import-label"]`), "ui-none"),
		chromedp.Click(css(`[data-test="import-submit"]`)),
		chromedp.WaitVisible(css(`[data-test="import-error"]`)))
	t.Logf("an empty import says %q", f.text(t, ctx, `[data-test="import-error"]`))
}
