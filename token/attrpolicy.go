package token

import "gohsm/token/attrs"

// attrPolicy is the slot's profile's attribute policy for the validator:
// object creation, reading and change take it, never a crypto operation's
// path.
func (s *Slot) attrPolicy() *attrs.Policy { return &s.prof.Attributes }
