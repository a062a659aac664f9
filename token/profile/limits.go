package profile

import (
	"fmt"
	"slices"

	"gohsm/internal/ck"
	"gohsm/mechanisms"
)

// SizeRange is the range of sizes a key type may have, in the unit
// CK_MECHANISM_INFO and the mechanism table use for it: bits for RSA and
// EC, bytes for AES, DES3 and generic secrets. Step 0 or 1 allows every
// size in range; RSA's 256 allows Min, Min+256, ...
type SizeRange struct{ Min, Max, Step uint }

// Contains reports whether n is a size of the range.
func (r SizeRange) Contains(n uint) bool {
	if n < r.Min || n > r.Max {
		return false
	}
	return r.Step <= 1 || (n-r.Min)%r.Step == 0
}

// Limits is what the profile limits: the key types and sizes a token
// holds, and how many objects (cloudhsm-facts §1.5, §2.4, §2.9).
type Limits struct {
	// KeyTypes are the key types the profile holds; nil: every one gohsm
	// holds.
	KeyTypes []ck.KeyType
	// KeySizes per key type; a type without an entry has only the
	// mechanisms' limits.
	KeySizes map[ck.KeyType]SizeRange
	Quotas   Quotas
	// Sharees is how many crypto users besides its owner a key may be
	// shared with; 0: any number.
	Sharees int
}

// Quotas bound the token objects of the whole token (every owner); 0:
// none. A key pair is two keys: CloudHSM counts keys, and a pair's halves
// are two keys with their own handles and attributes (`key list` shows
// both); hsm2m's asymmetric quota is an odd 3,333, which pairs alone
// could not fill. Session keys are not counted (they live in one process,
// CloudHSM keeps them apart from its key store: HsmKeysSessionOccupied).
type Quotas struct {
	Keys, AsymmetricKeys, Certificates int
}

func standardLimits() Limits { return Limits{} }

// The quotas of CloudHSM's two HSM types (UG:limits, "System quotas";
// certificate storage UG:pkcs11-certificate-storage-limits, hsm2m only).
const (
	HSM1MaxKeys          = 3300
	HSM2MMaxKeys         = 16666
	HSM2MMaxAsymmetric   = 3333
	HSM2MMaxCertificates = 60
	MaxSharees           = 7
)

func cloudhsmLimits(s Settings) Limits {
	l := Limits{
		// UG:pkcs11-key-types (cloudhsm-facts §2.4). Edwards and
		// Montgomery keys (Ed25519, X25519) and the per-hash HMAC key
		// types are not SDK 5 PKCS#11 key types.
		KeyTypes: []ck.KeyType{ck.CKK_RSA, ck.CKK_EC, ck.CKK_AES, ck.CKK_DES3, ck.CKK_GENERIC_SECRET},
		KeySizes: map[ck.KeyType]SizeRange{
			ck.CKK_RSA:            {Min: 2048, Max: 4096, Step: 256},
			ck.CKK_EC:             {Min: 224, Max: 521}, // P-224 .. P-521; the curve set is the mechanisms'
			ck.CKK_AES:            {Min: 16, Max: 32, Step: 8},
			ck.CKK_DES3:           {Min: 24, Max: 24},
			ck.CKK_GENERIC_SECRET: {Min: 1, Max: 800},
		},
	}
	// "You can share a key with up to seven CUs in addition to the key
	// owner" (UG:cloudhsm_cli-key-share).
	l.Sharees = MaxSharees
	switch s.HSMType {
	case HSM1:
		l.Quotas = Quotas{Keys: HSM1MaxKeys}
	default:
		l.Quotas = Quotas{Keys: HSM2MMaxKeys, AsymmetricKeys: HSM2MMaxAsymmetric, Certificates: HSM2MMaxCertificates}
	}
	return l
}

// KeySize is the range of sizes of kt keys the profile holds (ok false:
// no limit of the profile's beyond the mechanisms'). A key type the
// profile does not hold has the empty range 0..0.
func (l Limits) KeySize(kt ck.KeyType) (r SizeRange, ok bool) {
	if l.KeyTypes != nil && !slices.Contains(l.KeyTypes, kt) {
		return SizeRange{}, true
	}
	r, ok = l.KeySizes[kt]
	return r, ok
}

// MechanismKeySize is a mechanism row's key size range for
// CK_MECHANISM_INFO under the profile, in the row's unit: the row's range
// narrowed to the profile's for the row's key types (the widest among
// those the profile holds). ok false: the profile holds none of the row's
// key types (the mechanism has no key the profile could use, or none at
// all: then the row's range is returned).
func (l Limits) MechanismKeySize(m *mechanisms.Mechanism) (lo, hi uint, ok bool) {
	if len(m.KeyTypes) == 0 {
		return m.MinKeySize, m.MaxKeySize, true
	}
	for _, kt := range m.KeyTypes {
		a, b := m.MinKeySize, m.MaxKeySize
		if r, limited := l.KeySize(kt); limited {
			if r.Max == 0 {
				continue // a key type the profile does not hold
			}
			a, b = max(a, r.Min), min(b, r.Max)
			if a > b {
				continue
			}
		}
		if !ok {
			lo, hi, ok = a, b, true
			continue
		}
		lo, hi = min(lo, a), max(hi, b)
	}
	if !ok {
		return m.MinKeySize, m.MaxKeySize, false
	}
	return lo, hi, true
}

// CheckKey checks a key the token is about to hold: its type, and its size
// (0: unknown, not checked) in the SizeRange unit. Both are attributes of
// the object being made (CKA_KEY_TYPE; CKA_MODULUS_BITS or CKA_MODULUS,
// CKA_VALUE_LEN or CKA_VALUE), so the error is
// CKR_ATTRIBUTE_VALUE_INVALID: C_GenerateKey(Pair), C_CreateObject,
// C_UnwrapKey and C_DeriveKey may not return CKR_KEY_SIZE_RANGE, which
// is about a key being used.
func (l Limits) CheckKey(kt ck.KeyType, size uint) error {
	r, ok := l.KeySize(kt)
	if !ok {
		return nil
	}
	if r.Max == 0 {
		return fmt.Errorf("profile: %v keys are not supported: %w", kt, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	if size != 0 && !r.Contains(size) {
		step := ""
		if r.Step > 1 {
			step = fmt.Sprintf(" in steps of %d", r.Step)
		}
		return fmt.Errorf("profile: %v key of size %d: want %d..%d%s: %w", kt, size, r.Min, r.Max, step, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	return nil
}
