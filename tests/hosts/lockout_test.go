package hosts

import (
	"testing"

	"github.com/miekg/pkcs11"

	"gohsm/internal/testenv/pgtest"
)

// TestLockoutAcrossHosts: on a cloudhsm slot with lockout_threshold 5 (the
// profile's default, written out), 3 wrong passwords on host A and 2 on
// host B lock alice everywhere: the right password then gets
// CKR_PIN_LOCKED on A, on B and on a host C started afterwards. The
// counter is the database's, not a host's: bob, with 2 wrong on A and 2 on
// B, still logs in on C (and that resets his count, so 4 more wrong ones
// leave him unlocked too).
func TestLockoutAcrossHosts(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t, "lockout")
	newCloud := func(name string) *host {
		return newProfileHost(t, name, "cloudhsm", dsn, "lockout_threshold = 5")
	}
	a, b := newCloud("a"), newCloud("b")
	// The CloudHSM way: the CLI initialises the token and creates the users.
	a.mustGohsm("token", "init", "--label", tokenLabel, "--pin", soPIN)
	a.mustGohsm("user", "create", "--username", userName, "--role", "crypto-user", "--password", userPass, "--pin", soPIN)
	b.mustGohsm("user", "create", "--username", "bob", "--role", "crypto-user", "--password", "bob-Secret-pa55word", "--pin", soPIN)

	pa, pb := a.start(), b.start()
	pa.must("open 1")
	pb.must("open 1")
	wrong := func(p *proc, user string, n int) {
		t.Helper()
		for i := range n {
			requireRV(t, p.do("login user %s:wrong-password-%d", user, i), pkcs11.CKR_PIN_INCORRECT,
				"a wrong password on host "+p.h.name)
		}
	}
	wrong(pa, userName, 3)
	wrong(pb, userName, 2)
	requireRV(t, pa.do("login user %s", userPIN), pkcs11.CKR_PIN_LOCKED, "the right password on host a")
	requireRV(t, pb.do("login user %s", userPIN), pkcs11.CKR_PIN_LOCKED, "the right password on host b")
	c := newCloud("c")
	pc := c.start()
	pc.must("open 1")
	requireRV(t, pc.do("login user %s", userPIN), pkcs11.CKR_PIN_LOCKED, "the right password on host c")

	wrong(pa, "bob", 2)
	wrong(pb, "bob", 2)
	pc.must("login user bob:bob-Secret-pa55word")
	pc.must("logout")
	wrong(pa, "bob", 2)
	wrong(pb, "bob", 2)
	pc.must("login user bob:bob-Secret-pa55word")
	for _, p := range []*proc{pa, pb, pc} {
		p.quit()
	}
}
