package token

import "gohsm/token/attrs"

// attrPolicy is the slot's profile's attribute policy for the validator
// (profile.Attributes has attrs.Policy's layout; nil for no profile).
// Taken at object creation, reading and change, never on a crypto
// operation's path.
func (s *Slot) attrPolicy() *attrs.Policy {
	if s.prof == nil {
		return nil
	}
	p := attrs.Policy(s.prof.Attributes)
	return &p
}
