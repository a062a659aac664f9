package attrs

import (
	"fmt"
	"slices"
	"strings"

	"gohsm/internal/ck"
)

// Policy is what a token profile changes in the tables' rules for key
// objects (public, private and secret keys; data objects and certificates
// keep the tables'). token/profile holds each profile's (Profile.Attributes)
// and the token hands it to the validator; a nil or zero Policy leaves the
// tables as the spec has them.
type Policy struct {
	// Defaults replace the tables' defaults, per key class, for the
	// boolean attributes the class's schema has.
	Defaults map[ck.ObjectClass]map[ck.AttributeType]bool
	// Fixed are the only values a template (or a change) may give to an
	// attribute of a key class: another value is
	// CKR_ATTRIBUTE_VALUE_INVALID.
	Fixed map[ck.ObjectClass]map[ck.AttributeType]bool
	// Unsupported attributes are treated as absent from every key schema:
	// in a template CKR_TEMPLATE_INCONSISTENT, read
	// CKR_ATTRIBUTE_TYPE_INVALID.
	Unsupported []ck.AttributeType
	// ForeignInconsistent: an attribute the specification defines that
	// the key's schema lacks (or that is Unsupported) is
	// CKR_TEMPLATE_INCONSISTENT in a template, not
	// CKR_ATTRIBUTE_TYPE_INVALID; an attribute the specification does not
	// define stays CKR_ATTRIBUTE_TYPE_INVALID.
	ForeignInconsistent bool
	// ReadOnly attributes may not be given in a creating template
	// (CKR_ATTRIBUTE_READ_ONLY) although the tables let the caller give
	// them (CKA_CHECK_VALUE, which the tables check against the key).
	ReadOnly []ck.AttributeType
	// RequiredToGenerate are attributes a generating template of a key
	// type's public key (C_GenerateKeyPair) or secret key (C_GenerateKey)
	// must give beyond the tables' (CKR_TEMPLATE_INCOMPLETE).
	RequiredToGenerate map[ck.KeyType][]ck.AttributeType
	// Settable, when not nil, are the only attributes that may change
	// after creation (CKR_ATTRIBUTE_READ_ONLY for the others), within the
	// tables' one-way rules.
	Settable []ck.AttributeType
	// RaiseOnly are attributes a change may take from CK_FALSE to CK_TRUE
	// and never back (CloudHSM's CKA_TOKEN: a session key may become a
	// token key).
	RaiseOnly []ck.AttributeType
	// NeverRevealed are the key classes whose key material (footnote 7)
	// C_GetAttributeValue never returns, whatever CKA_SENSITIVE and
	// CKA_EXTRACTABLE say (CKR_ATTRIBUTE_SENSITIVE).
	NeverRevealed []ck.ObjectClass
	// Prototypes, when not nil, keeps the templates BuildAttrs starts
	// from under Defaults (without it they are made for each object).
	Prototypes *Prototypes
}

// specDefined reports whether a is an attribute the specification defines
// (a name in the generated table below the vendor range).
func specDefined(a ck.AttributeType) bool {
	return a < ck.CKA_VENDOR_DEFINED && !strings.HasPrefix(a.String(), "CKA(")
}

// applies reports whether p has anything to say about an object of class.
func (p *Policy) applies(class ck.ObjectClass) bool {
	return p != nil && isKeyClass(class)
}

// has looks a up in s, with p's unsupported attributes removed from key
// schemas.
func (p *Policy) has(s *Schema, a ck.AttributeType) (*Attr, bool) {
	row, ok := s.row(a)
	if ok && p.applies(s.Class) && slices.Contains(p.Unsupported, a) {
		return nil, false
	}
	return row, ok
}

// foreign is the error for an attribute of a template that s lacks.
func (p *Policy) foreign(s *Schema, a ck.AttributeType) error {
	if p.applies(s.Class) && p.ForeignInconsistent && specDefined(a) {
		return fmt.Errorf("attrs: %s not supported for %s: %w", a, s, ck.CKR_TEMPLATE_INCONSISTENT)
	}
	return fmt.Errorf("attrs: %s not valid for %s: %w", a, s, ck.CKR_ATTRIBUTE_TYPE_INVALID)
}

// checkGiven applies the policy's read-only and fixed-value rules to an
// attribute a template gives.
func (p *Policy) checkGiven(s *Schema, a ck.AttributeType, v []byte, creating bool) error {
	if !p.applies(s.Class) {
		return nil
	}
	return p.checkGivenFixed(p.Fixed[s.Class], s, a, v, creating)
}

// checkGivenFixed is checkGiven for a policy that applies to s, with its
// Fixed values for s's class, fixed (read once per template by
// checkBuild).
func (p *Policy) checkGivenFixed(fixed map[ck.AttributeType]bool, s *Schema, a ck.AttributeType, v []byte, creating bool) error {
	if creating && slices.Contains(p.ReadOnly, a) {
		return fmt.Errorf("attrs: %s is read-only: %w", a, ck.CKR_ATTRIBUTE_READ_ONLY)
	}
	if fixed == nil {
		return nil
	}
	if want, ok := fixed[a]; ok && len(v) == 1 && (v[0] == 1) != want {
		return fmt.Errorf("attrs: %s of %s can only be %v: %w", a, s, want, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	return nil
}

// defaultOf is the default of row for an object of s.
func (p *Policy) defaultOf(s *Schema, row Attr) []byte {
	if p.applies(s.Class) && row.Kind == KindBool {
		if v, ok := p.Defaults[s.Class][row.Type]; ok {
			return Bool(v)
		}
	}
	return row.Default
}

// required lists the attributes p adds to those a generating template of s
// must give.
func (p *Policy) required(s *Schema, op Op) []ck.AttributeType {
	if !p.applies(s.Class) {
		return nil
	}
	if (op == OpGeneratePublic && s.Class == ck.CKO_PUBLIC_KEY) || (op == OpGenerate && s.Class == ck.CKO_SECRET_KEY) {
		return p.RequiredToGenerate[s.KeyType]
	}
	return nil
}

// checkChange applies the policy's rules for changing attribute a of an
// existing key from cur to the encoded value v.
func (p *Policy) checkChange(s *Schema, a ck.AttributeType, cur, v []byte) error {
	if !p.applies(s.Class) {
		return nil
	}
	if p.Settable != nil && !slices.Contains(p.Settable, a) {
		return fmt.Errorf("attrs: %s of %s cannot change: %w", a, s, ck.CKR_ATTRIBUTE_READ_ONLY)
	}
	if slices.Contains(p.RaiseOnly, a) && len(cur) == 1 && cur[0] == 1 && len(v) == 1 && v[0] == 0 {
		return fmt.Errorf("attrs: %s cannot go back to CK_FALSE: %w", a, ck.CKR_ATTRIBUTE_READ_ONLY)
	}
	return p.checkGiven(s, a, v, false)
}
