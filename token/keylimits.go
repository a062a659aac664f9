package token

import (
	"math/big"

	"gohsm/internal/ck"
	"gohsm/mechanisms"
	"gohsm/token/attrs"
)

// checkKeyLimits applies the profile's key type and size limits
// (profile.Limits.CheckKey) to a key about to be made: t is its template
// as BuildAttrs made it (the size asked for: CKA_MODULUS_BITS, CKA_VALUE_LEN)
// or its full attributes (the size it has: CKA_MODULUS, CKA_VALUE).
// Objects that are not keys pass. It reads only the slot's profile, which
// never changes, so it needs no lock. t is an *attrs.Attrs, not an
// attrs.Reader, so that a caller's Attrs stays where the caller has it
// (a pointer passed as an interface escapes to the heap).
func (s *Slot) checkKeyLimits(class ck.ObjectClass, keyType ck.KeyType, t *attrs.Attrs) error {
	if !isKeyClass(class) {
		return nil
	}
	return s.prof.Limits.CheckKey(keyType, keySize(keyType, t))
}

// keySize is a key's size in profile.SizeRange's unit, 0 when t does not
// say.
func keySize(keyType ck.KeyType, t *attrs.Attrs) uint {
	switch keyType {
	case ck.CKK_RSA:
		if n, _ := t.Get(ck.CKA_MODULUS); len(n) > 0 {
			return uint(new(big.Int).SetBytes(n).BitLen())
		}
		if b, ok := t.ULong(ck.CKA_MODULUS_BITS); ok {
			return uint(min(b, 1<<31))
		}
	case ck.CKK_EC:
		if c, err := mechanisms.CurveFromParams(attrValue(t, ck.CKA_EC_PARAMS)); err == nil {
			return uint(c.Params().BitSize)
		}
	case ck.CKK_EC_EDWARDS, ck.CKK_EC_MONTGOMERY, ck.CKK_ML_DSA:
		return 0
	default:
		if v, ok := t.Get(ck.CKA_VALUE); ok {
			return uint(len(v))
		}
		if n, ok := t.ULong(ck.CKA_VALUE_LEN); ok {
			return uint(min(n, 1<<31))
		}
		if keyType == ck.CKK_DES3 {
			return 24
		}
	}
	return 0
}

// attrValue is attribute a of t, nil when absent.
func attrValue(t *attrs.Attrs, a ck.AttributeType) []byte {
	v, _ := t.Get(a)
	return v
}
