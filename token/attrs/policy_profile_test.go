package attrs

import (
	"sync"
	"testing"
)

// CloudHSMPolicyForTest is the cloudhsm profile's attribute policy. The
// profile imports this package, so only an external test file
// (policy_hook_test.go, package attrs_test) can make it; it sets this
// before the tests run.
var CloudHSMPolicyForTest func() (*Policy, error)

var (
	cloudhsmPolicyOnce sync.Once
	cloudhsmPol        *Policy
	cloudhsmPolErr     error
)

// cloudhsmPolicy is the cloudhsm profile's policy, as the token uses it.
func cloudhsmPolicy(t testing.TB) *Policy {
	cloudhsmPolicyOnce.Do(func() {
		if CloudHSMPolicyForTest == nil {
			cloudhsmPolErr = errNoHook
			return
		}
		cloudhsmPol, cloudhsmPolErr = CloudHSMPolicyForTest()
	})
	if cloudhsmPolErr != nil {
		t.Fatal(cloudhsmPolErr)
	}
	return cloudhsmPol
}

type hookError string

func (e hookError) Error() string { return string(e) }

const errNoHook = hookError("attrs: CloudHSMPolicyForTest not set (policy_hook_test.go)")
