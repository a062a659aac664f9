package profile

import "testing"

// TestQuorumClusterByHSMType: the quorum service "cluster" exists on
// hsm2m.medium only (UG:quorum-auth-chsm-cli-service-names); standard has
// none.
func TestQuorumClusterByHSMType(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Settings
		want bool
	}{
		{"cloudhsm", Settings{HSMType: HSM2M, FIPS: true}, true},
		{"cloudhsm", Settings{HSMType: HSM1, FIPS: true}, false},
		{"standard", Settings{}, false},
	} {
		p, err := New(tc.name, tc.s)
		if err != nil {
			t.Fatal(err)
		}
		if p.Identity.QuorumCluster != tc.want {
			t.Errorf("%s %s: QuorumCluster = %v, want %v", tc.name, tc.s.HSMType, p.Identity.QuorumCluster, tc.want)
		}
	}
}
