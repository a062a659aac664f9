package profile

import (
	"testing"

	"gohsm/internal/ck"
)

// TestCloudHSMQuotas: CloudHSM's users per cluster (1,024 for both HSM
// types, see maxUsers) and sessions per application (1,024); standard has
// neither limit.
func TestCloudHSMQuotas(t *testing.T) {
	for _, ht := range []string{HSM1, HSM2M} {
		p, err := New("cloudhsm", Settings{HSMType: ht, FIPS: true})
		if err != nil {
			t.Fatal(err)
		}
		if p.Identity.MaxUsers != 1024 || p.Sessions.MaxSessions != 1024 {
			t.Errorf("%s: %d users, %d sessions", ht, p.Identity.MaxUsers, p.Sessions.MaxSessions)
		}
		if p.Identity.QuotaError != ck.CKR_DEVICE_MEMORY || p.Sessions.SessionCountError != ck.CKR_SESSION_COUNT {
			t.Errorf("%s: errors %v %v", ht, p.Identity.QuotaError, p.Sessions.SessionCountError)
		}
		if len(p.Sessions.Info.Model) > 16 {
			t.Errorf("%s: model %q longer than CK_TOKEN_INFO.model", ht, p.Sessions.Info.Model)
		}
	}
	s := Standard()
	if s.Identity.MaxUsers != 0 || s.Sessions.MaxSessions != 0 || s.Identity.NamedPINOnly || s.Sessions.ReadOnlyError != 0 {
		t.Errorf("standard has cloudhsm rules: %+v %+v", s.Identity, s.Sessions)
	}
	for f := Function(0); f < NumFunctions; f++ {
		if s.Sessions.Unsupported[f] {
			t.Errorf("standard refuses %v", f)
		}
		if f.String() == "function?" {
			t.Errorf("function %d has no name", f)
		}
	}
}
