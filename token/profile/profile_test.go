package profile

import "testing"

func TestEveryNameMakesAProfile(t *testing.T) {
	for _, n := range Names {
		p, err := New(n, DefaultSettings(n))
		if err != nil || p.Name != n {
			t.Fatalf("New(%q) = %v, %v", n, p, err)
		}
	}
	if _, err := New("cloudhsm", Settings{HSMType: "hsm9", FIPS: true}); err == nil {
		t.Fatal("hsm_type hsm9 accepted")
	}
	if _, err := New("cloudhsm", Settings{HSMType: HSM1, FIPS: false}); err == nil {
		t.Fatal("non-FIPS hsm1 accepted")
	}
	if _, err := New("softhsm", Settings{}); err == nil {
		t.Fatal("unknown profile accepted")
	}
}
