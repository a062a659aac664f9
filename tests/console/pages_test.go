package console

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestOfficerPages: an officer's users, audit and token pages. The users
// page lists every user with its lock state and failed logins, creates a
// user (which the CLI then lists) and deletes it; the audit page shows
// records and that every chain verifies; the token page shows the status
// row and a backup link that downloads the token file.
func TestOfficerPages(t *testing.T) {
	f := setup(t)
	ctx := f.tab(t)
	f.login(t, ctx, "officer", "officer-password")

	// An officer makes no keys: the keys page offers no generate or
	// import form (the token would refuse them anyway).
	if n := eval[int](t, f, ctx, `document.querySelectorAll('[data-test="gen-form"], [data-test="import-form"]').length`); n != 0 {
		t.Errorf("the officer's keys page offers %d key forms", n)
	}

	f.do(t, ctx, "open the users page",
		chromedp.Navigate(f.base+"#/users"),
		chromedp.WaitVisible(css(`[data-test="user-row"][data-user="alice"]`)))
	f.shot(t, ctx, "pages-1-users")
	users := eval[[]string](t, f, ctx, `[...document.querySelectorAll('[data-test="user-row"]')].map(r => r.dataset.user)`)
	for _, u := range []string{"officer", "alice", "bob"} {
		if !strings.Contains(strings.Join(users, ","), u) {
			t.Errorf("the users page lists %v, without %s", users, u)
		}
	}

	f.do(t, ctx, "create carol",
		chromedp.SendKeys(css(`[data-test="new-username"]`), "carol"),
		chromedp.SendKeys(css(`[data-test="new-user-password"]`), "carol-password"),
		chromedp.Click(css(`[data-test="user-create"]`)),
		chromedp.WaitVisible(css(`[data-test="user-row"][data-user="carol"]`)))
	f.shot(t, ctx, "pages-2-carol-created")
	if _, ok := f.users(t)["carol"]; !ok {
		t.Errorf("the CLI's user list lacks carol, created in the UI")
	}
	eval[bool](t, f, ctx, `(window.confirm = () => true, true)`)
	f.do(t, ctx, "delete carol",
		chromedp.Click(css(`[data-test="user-delete"][data-user="carol"]`)),
		chromedp.WaitNotPresent(css(`[data-test="user-row"][data-user="carol"]`)))
	if _, ok := f.users(t)["carol"]; ok {
		t.Errorf("the CLI's user list still has carol, deleted in the UI")
	}

	f.do(t, ctx, "open the audit page",
		chromedp.Navigate(f.base+"#/audit"),
		chromedp.WaitVisible(css(`[data-test="audit-row"]`)),
		chromedp.WaitVisible(css(`[data-test="audit-verify-status"]`)))
	f.shot(t, ctx, "pages-3-audit")
	if ok := get(t, f, ctx, "read the verification", chromedp.AttributeValue(css(`[data-test="audit-verify"]`), "data-ok")).Value; ok != "true" {
		t.Errorf("the audit page says the log does not verify: %q", f.text(t, ctx, `[data-test="audit-verify"]`))
	}
	f.do(t, ctx, "filter the audit log by user carol",
		chromedp.SendKeys(css(`[data-test="audit-user"]`), "carol"),
		chromedp.Click(css(`[data-test="audit-apply"]`)),
		chromedp.WaitNotPresent(css(`[data-test="audit-row"]:not([data-opcode*="USER"])`)),
		chromedp.WaitVisible(css(`[data-test="audit-row"]`)))
	ops := eval[[]string](t, f, ctx, `[...document.querySelectorAll('[data-test="audit-row"]')].map(r => r.dataset.opcode)`)
	t.Logf("carol's audit records: %v", ops)
	f.shot(t, ctx, "pages-4-audit-carol")

	f.do(t, ctx, "open the token page",
		chromedp.Navigate(f.base+"#/token"),
		chromedp.WaitVisible(css(`[data-test="token-status"]`)),
		chromedp.WaitVisible(css(`[data-test="token-backup"]`)))
	f.shot(t, ctx, "pages-5-token")
	if label := f.text(t, ctx, `[data-test="token-status"] [data-field="label"] td`); label != tokenLabel {
		t.Errorf("the token page's label is %q, want %q", label, tokenLabel)
	}
	dl := get(t, f, ctx, "download the backup through the page's link", chromedp.Evaluate[string](
		`fetch(document.querySelector('[data-test="token-backup"]').href).then(async r => r.status + ' ' + r.headers.get('Content-Disposition') + ' ' + (await r.arrayBuffer()).byteLength)`,
		chromedp.EvalAwaitPromise))
	t.Logf("backup download: %s", dl)
	if !strings.HasPrefix(dl, "200 attachment") || strings.HasSuffix(dl, " 0") {
		t.Errorf("the backup link answers %q, want 200, an attachment, bytes", dl)
	}
}

// TestUserPageAsCryptoUser: a crypto user's users page lists the users
// but offers no create or delete, and a password form for itself only.
func TestUserPageAsCryptoUser(t *testing.T) {
	f := setup(t)
	ctx := f.tab(t)
	f.login(t, ctx, "bob", bobPass)
	f.do(t, ctx, "open the users page",
		chromedp.Navigate(f.base+"#/users"),
		chromedp.WaitVisible(css(`[data-test="user-row"][data-user="alice"]`)))
	f.shot(t, ctx, "pages-6-users-as-bob")
	controls := eval[[]string](t, f, ctx, `[...document.querySelectorAll('[data-test="user-create-form"], [data-test="user-delete"], [data-test="user-password"]')].map(e => e.dataset.test + ':' + (e.dataset.user || ''))`)
	if len(controls) != 1 || controls[0] != "user-password:bob" {
		t.Errorf("bob's users page offers %v, want only his own password", controls)
	}

	// His own password: set in the page, then the CLI logs in with it;
	// set back the same way (the other tests log in as bob).
	for _, pw := range []string{"bob-password-2", bobPass} {
		f.do(t, ctx, "bob sets his password",
			chromedp.Click(css(`[data-test="user-password"][data-user="bob"]`)),
			chromedp.WaitVisible(css(`[data-test="new-password"]`)),
			chromedp.SendKeys(css(`[data-test="new-password"]`), pw),
			chromedp.Click(css(`[data-test="password-submit"]`)),
			chromedp.WaitNotPresent(css(`[data-test="password-form"]`)))
		if _, err := f.run("key", "list", "--pin", "bob:"+pw); err != nil {
			t.Fatalf("after bob set his password in the UI the CLI cannot log in with it: %v", err)
		}
	}
}
