package profile

import (
	"errors"
	"testing"

	"gohsm/internal/ck"
	"gohsm/mechanisms"
)

func TestKeySizes(t *testing.T) {
	c, err := New("cloudhsm", DefaultSettings("cloudhsm"))
	if err != nil {
		t.Fatal(err)
	}
	s := Standard()
	cases := []struct {
		kt   ck.KeyType
		size uint
		ok   bool
	}{
		{ck.CKK_RSA, 2048, true}, {ck.CKK_RSA, 2304, true}, {ck.CKK_RSA, 4096, true},
		{ck.CKK_RSA, 1024, false}, {ck.CKK_RSA, 2305, false}, {ck.CKK_RSA, 4352, false},
		{ck.CKK_AES, 16, true}, {ck.CKK_AES, 24, true}, {ck.CKK_AES, 32, true}, {ck.CKK_AES, 20, false},
		{ck.CKK_DES3, 24, true}, {ck.CKK_DES3, 16, false},
		{ck.CKK_GENERIC_SECRET, 1, true}, {ck.CKK_GENERIC_SECRET, 800, true}, {ck.CKK_GENERIC_SECRET, 801, false},
		{ck.CKK_EC, 256, true}, {ck.CKK_EC, 521, true}, {ck.CKK_EC_EDWARDS, 0, false}, {ck.CKK_SHA256_HMAC, 32, false},
	}
	for _, tc := range cases {
		err := c.Limits.CheckKey(tc.kt, tc.size)
		if (err == nil) != tc.ok || err != nil && !errors.Is(err, ck.CKR_ATTRIBUTE_VALUE_INVALID) {
			t.Errorf("cloudhsm %v %d: %v", tc.kt, tc.size, err)
		}
		if err := s.Limits.CheckKey(tc.kt, tc.size); err != nil {
			t.Errorf("standard %v %d: %v", tc.kt, tc.size, err)
		}
	}
	for _, tc := range []struct {
		mech   ck.MechanismType
		lo, hi uint
	}{
		{ck.CKM_RSA_PKCS_KEY_PAIR_GEN, 2048, 4096},
		{ck.CKM_SHA256_RSA_PKCS, 2048, 4096},
		{ck.CKM_GENERIC_SECRET_KEY_GEN, 1, 800},
		{ck.CKM_SHA256_HMAC, 1, 800}, // generic secret (CKK_SHA256_HMAC keys are not held)
		{ck.CKM_AES_KEY_GEN, 16, 32},
		{ck.CKM_EC_KEY_PAIR_GEN, 224, 521},
	} {
		m, ok := mechanisms.Lookup(tc.mech)
		if !ok {
			t.Fatalf("%v: no row", tc.mech)
		}
		lo, hi, ok := c.Limits.MechanismKeySize(m)
		if !ok || lo != tc.lo || hi != tc.hi {
			t.Errorf("cloudhsm %v: %d..%d (%v), want %d..%d", tc.mech, lo, hi, ok, tc.lo, tc.hi)
		}
		lo, hi, _ = s.Limits.MechanismKeySize(m)
		if lo != m.MinKeySize || hi != m.MaxKeySize {
			t.Errorf("standard %v: %d..%d, want the row's %d..%d", tc.mech, lo, hi, m.MinKeySize, m.MaxKeySize)
		}
	}
	if m, _ := mechanisms.Lookup(ck.CKM_EC_EDWARDS_KEY_PAIR_GEN); m != nil {
		if _, _, ok := c.Limits.MechanismKeySize(m); ok {
			t.Errorf("cloudhsm: %v has a key type the profile holds", m.Type)
		}
	}
}

// TestQuotasByHSMType: UG:limits' system quotas per HSM type, and the
// certificate storage limit (hsm2m only); standard has none.
func TestQuotasByHSMType(t *testing.T) {
	for _, tc := range []struct {
		hsm  string
		want Quotas
	}{
		{HSM1, Quotas{Keys: 3300}},
		{HSM2M, Quotas{Keys: 16666, AsymmetricKeys: 3333, Certificates: 60}},
	} {
		p, err := New("cloudhsm", Settings{HSMType: tc.hsm, FIPS: true})
		if err != nil {
			t.Fatal(err)
		}
		if p.Limits.Quotas != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.hsm, p.Limits.Quotas, tc.want)
		}
	}
	if q := Standard().Limits.Quotas; q != (Quotas{}) {
		t.Errorf("standard: %+v", q)
	}
}
