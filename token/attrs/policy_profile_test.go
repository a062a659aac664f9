package attrs

import (
	"sync"
	"testing"

	"gohsm/token/profile"
)

var (
	cloudhsmPolicyOnce sync.Once
	cloudhsmPol        *Policy
)

// cloudhsmPolicy is the cloudhsm profile's policy, converted as the token
// converts it (profile.Attributes has Policy's layout).
func cloudhsmPolicy(t testing.TB) *Policy {
	cloudhsmPolicyOnce.Do(func() {
		p, err := profile.New("cloudhsm", profile.DefaultSettings("cloudhsm"))
		if err != nil {
			t.Fatal(err)
		}
		pol := Policy(p.Attributes)
		cloudhsmPol = &pol
	})
	return cloudhsmPol
}
