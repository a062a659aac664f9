package attrs_test

import (
	"gohsm/token/attrs"
	"gohsm/token/profile"
)

func init() {
	attrs.CloudHSMPolicyForTest = func() (*attrs.Policy, error) {
		p, err := profile.New("cloudhsm", profile.DefaultSettings("cloudhsm"))
		if err != nil {
			return nil, err
		}
		return &p.Attributes, nil
	}
}
