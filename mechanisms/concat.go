package mechanisms

import (
	"fmt"

	"gohsm/internal/ck"
)

// The simple derivations of PKCS#11 v3.0 "Miscellaneous simple key
// derivation mechanisms". Each computes a byte string from the base key and
// its parameter; the derived key is its leftmost CKA_VALUE_LEN bytes (or the
// whole string, or the key type's fixed length: deriveLen), and asking for
// more than the string holds is an error.

func derivationData(param any, what string) ([]byte, error) {
	// CK_KEY_DERIVATION_STRING_DATA; nil means no parameter at all.
	d, ok := param.([]byte)
	if !ok || d == nil {
		return nil, fmt.Errorf("mechanisms: %s: parameter %T: %w", what, param, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	return d, nil
}

// truncate returns the leftmost bytes of v the target asks for.
func truncate(what string, v []byte, t DeriveTarget) ([]byte, error) {
	n, err := deriveLen(what, t, len(v), len(v))
	if err != nil {
		clear(v)
		return nil, err
	}
	clear(v[n:])
	return finishKey(t, v[:n:n]), nil
}

// concatBaseAndKey is CKM_CONCATENATE_BASE_AND_KEY: base || other key. The
// token resolves the CK_OBJECT_HANDLE parameter into *KeyMaterial after
// checking the caller may use that key.
func concatBaseAndKey(base, param any, t DeriveTarget) ([]byte, error) {
	const what = "concatenate base and key"
	b, err := secretKey(base, what)
	if err != nil {
		return nil, err
	}
	km, ok := param.(*KeyMaterial)
	if !ok || km == nil {
		return nil, fmt.Errorf("mechanisms: %s: parameter %T: %w", what, param, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	other, ok := km.Key.([]byte)
	if !ok {
		return nil, fmt.Errorf("mechanisms: %s: second key of type %T: %w", what, km.Key, ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	return truncate(what, append(append(make([]byte, 0, len(b)+len(other)), b...), other...), t)
}

// withData is the common shape of the derivations that combine the base
// key's value with CK_KEY_DERIVATION_STRING_DATA.
func withData(what string, combine func(b, d []byte) []byte) func(base, param any, t DeriveTarget) ([]byte, error) {
	return func(base, param any, t DeriveTarget) ([]byte, error) {
		b, err := secretKey(base, what)
		if err != nil {
			return nil, err
		}
		d, err := derivationData(param, what)
		if err != nil {
			return nil, err
		}
		return truncate(what, combine(b, d), t)
	}
}

// concatBaseAndData is CKM_CONCATENATE_BASE_AND_DATA: base || data.
var concatBaseAndData = withData("concatenate base and data", func(b, d []byte) []byte {
	return append(append(make([]byte, 0, len(b)+len(d)), b...), d...)
})

// concatDataAndBase is CKM_CONCATENATE_DATA_AND_BASE: data || base.
var concatDataAndBase = withData("concatenate data and base", func(b, d []byte) []byte {
	return append(append(make([]byte, 0, len(b)+len(d)), d...), b...)
})

// xorBaseAndData is CKM_XOR_BASE_AND_DATA: base XOR data, as long as the
// shorter of the two.
var xorBaseAndData = withData("xor base and data", func(b, d []byte) []byte {
	v := make([]byte, min(len(b), len(d)))
	for i := range v {
		v[i] = b[i] ^ d[i]
	}
	return v
})

// extractKeyFromKey is CKM_EXTRACT_KEY_FROM_KEY: CKA_VALUE_LEN bytes of the
// base key starting at bit index (CK_EXTRACT_PARAMS), bits numbered from the
// most significant bit of the first byte, wrapping around at the end. The
// spec gives no natural length, and the derived key may not be longer than
// the base key.
func extractKeyFromKey(base, param any, t DeriveTarget) ([]byte, error) {
	const what = "extract key from key"
	b, err := secretKey(base, what)
	if err != nil {
		return nil, err
	}
	idx, ok := param.(ck.ULong)
	if !ok {
		return nil, fmt.Errorf("mechanisms: %s: parameter %T: %w", what, param, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	nbits := uint64(len(b)) * 8
	if uint64(idx) >= nbits {
		return nil, fmt.Errorf("mechanisms: %s: bit %d of a %d-bit key: %w", what, idx, nbits, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	n, err := deriveLen(what, t, 0, len(b))
	if err != nil {
		return nil, err
	}
	out := make([]byte, n)
	pos := uint64(idx)
	for i := range n * 8 {
		bit := b[pos/8] >> (7 - pos%8) & 1
		out[i/8] |= bit << (7 - i%8)
		if pos++; pos == nbits {
			pos = 0
		}
	}
	return finishKey(t, out), nil
}
