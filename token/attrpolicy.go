package token

import (
	"gohsm/token/attrs"
	"gohsm/token/profile"
)

// attrPolicyOf is a profile's attribute policy for the validator; nil for
// no profile.
func attrPolicyOf(p *profile.Profile) *attrs.Policy {
	if p == nil {
		return nil
	}
	return &p.Attributes
}

// attrPolicy is the slot's attribute policy, made once with the slot:
// object creation, reading and change take it, never a crypto
// operation's path.
func (s *Slot) attrPolicy() *attrs.Policy { return s.attrPol }
