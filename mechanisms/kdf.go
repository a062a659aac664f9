package mechanisms

import (
	"fmt"
	"io"
	"math/bits"

	"gohsm/internal/ck"
)

// maxDerivedBytes bounds what one C_DeriveKey may ask for (CKA_VALUE_LEN),
// so a template cannot make the token compute gigabytes. Keys are at most
// secretMaxBytes; CKM_HKDF_DATA makes data objects, which may be longer.
const maxDerivedBytes = 64 << 10

// deriveLen resolves the length of a derived value (PKCS#11 v3.0
// C_DeriveKey; the rules of "Concatenation of a base key and another key"
// and its siblings, which the other KDFs here follow too):
//
//   - CKA_VALUE_LEN given: that many bytes; it must suit the key type
//     (AES 16/24/32, DES3 24, DES2 16, DES 8), else CKR_ATTRIBUTE_VALUE_INVALID,
//     and the mechanism must be able to produce it (max), else
//     CKR_TEMPLATE_INCONSISTENT.
//   - no CKA_VALUE_LEN: the key type's fixed length (DES, DES2, DES3); AES
//     has none (CKR_TEMPLATE_INCOMPLETE); other types (generic secret,
//     HMAC, HKDF, data objects) take the mechanism's natural length, and a
//     mechanism without one (natural = 0) needs CKA_VALUE_LEN.
func deriveLen(mech string, t DeriveTarget, natural, max int) (int, error) {
	n := t.ValueLen
	if n < 0 || n > maxDerivedBytes {
		return 0, fmt.Errorf("mechanisms: %s: CKA_VALUE_LEN %d: %w", mech, n, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	fixed := map[ck.KeyType]int{ck.CKK_DES: 8, ck.CKK_DES2: 16, ck.CKK_DES3: 24}[t.KeyType]
	switch {
	case n == 0 && fixed > 0:
		n = fixed
	case n == 0 && t.KeyType == ck.CKK_AES:
		return 0, fmt.Errorf("mechanisms: %s: an AES key needs CKA_VALUE_LEN: %w", mech, ck.CKR_TEMPLATE_INCOMPLETE)
	case n == 0 && natural == 0:
		return 0, fmt.Errorf("mechanisms: %s: no CKA_VALUE_LEN: %w", mech, ck.CKR_TEMPLATE_INCOMPLETE)
	case n == 0:
		n = natural
	case fixed > 0 && n != fixed,
		t.KeyType == ck.CKK_AES && n != 16 && n != 24 && n != 32:
		return 0, fmt.Errorf("mechanisms: %s: CKA_VALUE_LEN %d for %v: %w", mech, n, t.KeyType, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	if n > max {
		return 0, fmt.Errorf("mechanisms: %s: %d bytes asked, at most %d: %w", mech, n, max, ck.CKR_TEMPLATE_INCONSISTENT)
	}
	return n, nil
}

// finishKey adjusts a derived value for its key type: DES keys get odd
// parity in each byte's low bit (the concatenation mechanisms require it,
// PKCS#11 v3.0 "Concatenation of a base key and another key"; DES ignores
// those bits, so doing it for every KDF costs nothing).
func finishKey(t DeriveTarget, b []byte) []byte {
	switch t.KeyType {
	case ck.CKK_DES, ck.CKK_DES2, ck.CKK_DES3:
		for i, c := range b {
			c &^= 1
			if bits.OnesCount8(c)%2 == 0 {
				c |= 1
			}
			b[i] = c
		}
	}
	return b
}

// simpleDeriveKeys are the base key types of the simple derivations
// (concatenation, XOR, extraction): any secret key.
var simpleDeriveKeys = []ck.KeyType{ck.CKK_GENERIC_SECRET, ck.CKK_AES, ck.CKK_DES3}

// kdfRows are the key derivation mechanisms (HKDF, SP 800-108 counter
// mode, the simple concatenation/XOR/extraction derivations) and HKDF key
// generation, and PKCS#5 PBKDF2 key generation (a generation mechanism with
// a parameter: the password and salt).
func kdfRows() []Mechanism {
	return []Mechanism{
		{
			Type: ck.CKM_PKCS5_PBKD2, KeyTypes: simpleDeriveKeys,
			MinKeySize: secretMinBytes, MaxKeySize: secretMaxBytes,
			Param: ParamPBKD2, GenerateKey: pbkdf2Row,
		},
		{
			Type: ck.CKM_HKDF_KEY_GEN, KeyTypes: []ck.KeyType{ck.CKK_HKDF},
			MinKeySize: secretMinBytes, MaxKeySize: secretMaxBytes,
			GenerateKey: generateSecret,
		},
		{
			Type: ck.CKM_HKDF_DERIVE, KeyTypes: hkdfKeys,
			MinKeySize: secretMinBytes, MaxKeySize: secretMaxBytes,
			Param: ParamHKDF, Derive: hkdfDerive, DeriveHidesBase: true,
		},
		{
			Type: ck.CKM_HKDF_DATA, KeyTypes: hkdfKeys,
			MinKeySize: secretMinBytes, MaxKeySize: secretMaxBytes,
			Param: ParamHKDF, Derive: hkdfDerive, DeriveHidesBase: true,
		},
		{
			Type: ck.CKM_SP800_108_COUNTER_KDF, KeyTypes: kbkdfKeys(), InfoBits: true,
			MinKeySize: secretMinBytes, MaxKeySize: secretMaxBytes,
			Param: ParamSP800108, Derive: kbkdfCounter, DeriveHidesBase: true,
		},
		{
			Type: ck.CKM_CONCATENATE_BASE_AND_KEY, KeyTypes: simpleDeriveKeys,
			MinKeySize: secretMinBytes, MaxKeySize: secretMaxBytes,
			Param: ParamKeyHandle, Derive: concatBaseAndKey,
		},
		{
			Type: ck.CKM_CONCATENATE_BASE_AND_DATA, KeyTypes: simpleDeriveKeys,
			MinKeySize: secretMinBytes, MaxKeySize: secretMaxBytes,
			Param: ParamBytes, Derive: concatBaseAndData,
		},
		{
			Type: ck.CKM_CONCATENATE_DATA_AND_BASE, KeyTypes: simpleDeriveKeys,
			MinKeySize: secretMinBytes, MaxKeySize: secretMaxBytes,
			Param: ParamBytes, Derive: concatDataAndBase,
		},
		{
			Type: ck.CKM_XOR_BASE_AND_DATA, KeyTypes: simpleDeriveKeys,
			MinKeySize: secretMinBytes, MaxKeySize: secretMaxBytes,
			Param: ParamBytes, Derive: xorBaseAndData,
		},
		{
			Type: ck.CKM_EXTRACT_KEY_FROM_KEY, KeyTypes: simpleDeriveKeys,
			MinKeySize: secretMinBytes, MaxKeySize: secretMaxBytes,
			Param: ParamULong, Derive: extractKeyFromKey,
		},
	}
}

// pbkdf2Row is CKM_PKCS5_PBKD2's GenerateKey: the parameter rides in
// KeyGenParams.Param.
func pbkdf2Row(_ io.Reader, p KeyGenParams) (any, error) {
	pp, _ := p.Param.(*PBKD2Params)
	return PBKDF2Generate(pp, p.ValueLen)
}
