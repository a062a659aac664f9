package attrs

import (
	"bytes"
	"fmt"
	"slices"

	"gohsm/internal/ck"
)

// schemaOf finds the schema of a stored object.
func schemaOf(obj Reader) (*Schema, error) {
	class, keyType, err := ClassAndKeyType(obj)
	if err != nil {
		return nil, fmt.Errorf("attrs: stored object: %w", err)
	}
	return lookup(class, keyType)
}

// CheckSet applies the C_SetAttributeValue rules (§5.7) to changes on obj:
//
//   - obj has CKA_MODIFIABLE CK_FALSE -> CKR_ACTION_PROHIBITED (v3.0);
//   - an attribute foreign to the class -> CKR_ATTRIBUTE_TYPE_INVALID;
//   - a malformed value -> CKR_ATTRIBUTE_VALUE_INVALID;
//   - an attribute without footnote 8 (identity, key material, CKA_LOCAL,
//     CKA_UNIQUE_ID, CKA_VALUE_LEN, CKA_MODULUS_BITS; CKA_TOKEN and
//     CKA_PRIVATE, which change only by copying) -> CKR_ATTRIBUTE_READ_ONLY;
//   - footnotes 11/12: CKA_SENSITIVE and CKA_WRAP_WITH_TRUSTED may only go
//     to CK_TRUE, CKA_EXTRACTABLE and CKA_COPYABLE only to CK_FALSE ->
//     otherwise CKR_ATTRIBUTE_READ_ONLY.
//
// CKA_TRUSTED has no footnote 8: only the admin interface sets it, with
// ApplySet directly.
func CheckSet(obj, changes Template) error { return CheckSetWith(nil, obj, changes) }

// CheckSetWith is CheckSet under a profile's Policy (nil: the tables'
// rules): its Settable list replaces footnote 8, its RaiseOnly and Fixed
// rules apply on top of the one-way rules, its unsupported attributes are
// CKR_TEMPLATE_INCONSISTENT.
func CheckSetWith(p *Policy, obj, changes Template) error {
	s, err := schemaOf(obj)
	if err != nil {
		return err
	}
	if len(changes) == 0 {
		return nil
	}
	if m, _ := obj.Bool(ck.CKA_MODIFIABLE); !m {
		return fmt.Errorf("attrs: object is not modifiable: %w", ck.CKR_ACTION_PROHIBITED)
	}
	return checkChanges(p, s, obj, changes, Modifiable, OpSet)
}

// checkChanges is the rule shared by set and copy: every attribute must
// belong to s, be well formed, carry one of the flags in allowed, and respect
// the one-way rules.
func checkChanges(p *Policy, s *Schema, obj, changes Template, allowed Flag, op Op) error {
	for _, a := range changes.Types() {
		row, ok := p.has(s, a)
		if !ok {
			return p.foreign(s, a)
		}
		v := changes[a]
		if err := checkEncoding(*row, v); err != nil {
			return err
		}
		if p.applies(s.Class) && p.Settable != nil {
			if err := p.checkChange(s, a, obj[a], v); err != nil {
				return err
			}
		} else if row.Flags&allowed == 0 {
			return fmt.Errorf("attrs: %s cannot change on %s: %w", a, op, ck.CKR_ATTRIBUTE_READ_ONLY)
		}
		if row.Kind != KindBool {
			continue // only booleans carry the one-way and SO-only rules
		}
		cur, _ := obj.Bool(a)
		next := v[0] == 1
		switch {
		case row.Has(OnceTrue) && cur && !next:
			return fmt.Errorf("attrs: %s cannot go back to CK_FALSE: %w", a, ck.CKR_ATTRIBUTE_READ_ONLY)
		case row.Has(OnceFalse) && !cur && next:
			return fmt.Errorf("attrs: %s cannot go back to CK_TRUE: %w", a, ck.CKR_ATTRIBUTE_READ_ONLY)
		case row.Has(SOOnly) && next:
			return fmt.Errorf("attrs: %s can only be set to CK_TRUE by the SO: %w", a, ck.CKR_ATTRIBUTE_READ_ONLY)
		}
	}
	return nil
}

// ApplySet returns obj with changes applied (call CheckSet first). Nothing
// else follows from a change: CKA_SENSITIVE going to CK_TRUE leaves
// CKA_ALWAYS_SENSITIVE as it was (the key was not always sensitive), and
// CKA_EXTRACTABLE going to CK_FALSE leaves CKA_NEVER_EXTRACTABLE.
func ApplySet(obj, changes Template) Template {
	out := obj.Clone()
	for a, v := range changes {
		out[a] = bytes.Clone(v)
	}
	return out
}

// CheckCopy applies the C_CopyObject rules (§5.7) and returns the copy's
// attributes: obj with t applied, without CKA_UNIQUE_ID (the token assigns a
// new one). CKA_COPYABLE CK_FALSE -> CKR_ACTION_PROHIBITED. t may change the
// footnote-8 attributes and CKA_TOKEN, CKA_PRIVATE, CKA_MODIFIABLE (§4.4),
// within the one-way rules; anything else -> CKR_ATTRIBUTE_READ_ONLY. The
// copy keeps CKA_LOCAL, CKA_KEY_GEN_MECHANISM, CKA_ALWAYS_SENSITIVE and
// CKA_NEVER_EXTRACTABLE ("CKA_LOCAL ... or created as a copy of a key which
// had its CKA_LOCAL attribute set to CK_TRUE").
func CheckCopy(obj, t Template) (Template, error) {
	s, err := schemaOf(obj)
	if err != nil {
		return nil, err
	}
	if c, _ := obj.Bool(ck.CKA_COPYABLE); !c {
		return nil, fmt.Errorf("attrs: object is not copyable: %w", ck.CKR_ACTION_PROHIBITED)
	}
	if err := checkChanges(nil, s, obj, t, Modifiable|CopyOnly, OpCopy); err != nil {
		return nil, err
	}
	out := ApplySet(obj, t)
	x := FromTemplate(out)
	if err := checkAlwaysAuthenticate(&x); err != nil {
		return nil, err
	}
	delete(out, ck.CKA_UNIQUE_ID)
	return out, nil
}

// Readable applies the C_GetAttributeValue rules (§5.7) to attribute a of
// obj: CKR_ATTRIBUTE_TYPE_INVALID when a does not belong to the object's
// class and key type; CKR_ATTRIBUTE_SENSITIVE for a footnote-7 attribute
// (secret and private key material) while CKA_SENSITIVE is CK_TRUE or
// CKA_EXTRACTABLE is CK_FALSE; nil otherwise. An attribute of the class that
// obj lacks (CKA_UNIQUE_ID before assignment) is the caller's
// CK_UNAVAILABLE_INFORMATION.
func Readable(obj Reader, a ck.AttributeType) error { return ReadableWith(nil, obj, a) }

// ReadableWith is Readable under a profile's Policy (nil: the tables'
// rules): its unsupported attributes are CKR_ATTRIBUTE_TYPE_INVALID.
func ReadableWith(p *Policy, obj Reader, a ck.AttributeType) error {
	s, err := schemaOf(obj)
	if err != nil {
		return err
	}
	row, ok := p.has(s, a)
	if !ok {
		return fmt.Errorf("attrs: %s not valid for %s: %w", a, s, ck.CKR_ATTRIBUTE_TYPE_INVALID)
	}
	if row.Has(Sensitive) {
		sensitive, _ := obj.Bool(ck.CKA_SENSITIVE)
		extractable, _ := obj.Bool(ck.CKA_EXTRACTABLE)
		if p.applies(s.Class) && slices.Contains(p.NeverRevealed, s.Class) {
			return fmt.Errorf("attrs: %s of %s is never revealed: %w", a, s, ck.CKR_ATTRIBUTE_SENSITIVE)
		}
		if sensitive || !extractable {
			return fmt.Errorf("attrs: %s of a sensitive or unextractable key: %w", a, ck.CKR_ATTRIBUTE_SENSITIVE)
		}
	}
	return nil
}

// IsSecret reports whether attribute a of a (class, keyType) object is key
// material that is stored encrypted at rest (the footnote-7 attributes:
// secret-key and EC/EdDSA private CKA_VALUE, the RSA private exponent,
// primes, CRT exponents and coefficient).
func IsSecret(class ck.ObjectClass, keyType ck.KeyType, a ck.AttributeType) bool {
	s, ok := Lookup(class, keyType)
	if !ok {
		return false
	}
	row, ok := s.row(a)
	return ok && row.Has(Sensitive)
}
