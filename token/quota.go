package token

import (
	"fmt"

	"gohsm/internal/ck"
	"gohsm/token/profile"
	"gohsm/token/store"
)

// slotQuotas are a slot's profile's object quotas (with a test
// configuration's replacements) for the store, which counts them in the
// transaction that creates objects: every creating call (generate,
// create, unwrap, derive, copy, a session key made a token key) goes
// through addObjectsLocked. They are made once, with the slot.
//
// The error is CKR_FUNCTION_FAILED, the one CloudHSM documents for an
// object quota (certificate storage's 61st certificate: "MaxObjectsReached"
// in the audit log); SDK 5 reports refusals the HSM makes so (throttling
// too, cloudhsm-facts §2.8).
func slotQuotas(prof *profile.Profile, cfg SlotConfig) []store.Quota {
	q, t := prof.Limits.Quotas, cfg.TestQuotas
	// A test value replaces a quota the profile has, never adds one.
	if t.Keys > 0 && q.Keys > 0 {
		q.Keys = t.Keys
	}
	if t.AsymmetricKeys > 0 && q.AsymmetricKeys > 0 {
		q.AsymmetricKeys = t.AsymmetricKeys
	}
	if t.Certificates > 0 && q.Certificates > 0 {
		q.Certificates = t.Certificates
	}
	var out []store.Quota
	add := func(max int, what string, classes ...ck.ObjectClass) {
		if max > 0 {
			out = append(out, store.Quota{Classes: classes, Max: max,
				Err: fmt.Errorf("token: the token holds at most %d %s: %w", max, what, ck.CKR_FUNCTION_FAILED)})
		}
	}
	add(q.Keys, "keys", ck.CKO_PUBLIC_KEY, ck.CKO_PRIVATE_KEY, ck.CKO_SECRET_KEY)
	add(q.AsymmetricKeys, "asymmetric keys", ck.CKO_PUBLIC_KEY, ck.CKO_PRIVATE_KEY)
	add(q.Certificates, "certificates", ck.CKO_CERTIFICATE)
	return out
}
