package mechanisms

import (
	"bytes"
	"crypto/des"
	"fmt"
	"io"
	"math/bits"

	"gohsm/internal/ck"
)

// Triple DES (PKCS#11 v3.0 Current Mechanisms, "Double and Triple-length
// DES"). Only three-key (24-byte) keys: the token's attribute rules accept
// only those for CKK_DES3, two-key TDEA is disallowed by NIST SP 800-131A
// since 2016, and crypto/des takes 24-byte keys. Kept for interoperability
// with legacy callers; AES is the choice for anything new.

const des3KeySize = 24

var des3Key = []ck.KeyType{ck.CKK_DES3}

var des3Alg = &blockAlg{name: "des3", newBlock: des.NewTripleDESCipher, size: des.BlockSize}

// setDESParity sets each byte's least significant bit so the byte has odd
// parity (FIPS 46-3 §3: "bits 8, 16, ..., 64 are for use in ensuring that
// each byte is of odd parity").
func setDESParity(k []byte) {
	for i, b := range k {
		b &^= 1
		if bits.OnesCount8(b)%2 == 0 {
			b |= 1
		}
		k[i] = b
	}
}

// generateDES3 is CKM_DES3_KEY_GEN: 24 random bytes with their parity bits
// set (PKCS#11 v3.0 "Triple-length DES key generation"). DES3 keys have no
// CKA_VALUE_LEN; 0 (absent) and 24 are accepted. A key whose thirds repeat
// (K1 = K2 or K2 = K3) degenerates to single DES and is drawn again.
func generateDES3(r io.Reader, p KeyGenParams) (any, error) {
	if p.ValueLen != 0 && p.ValueLen != des3KeySize {
		return nil, fmt.Errorf("mechanisms: des3 key gen: CKA_VALUE_LEN %d: %w", p.ValueLen, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	k := make([]byte, des3KeySize)
	for {
		if _, err := io.ReadFull(r, k); err != nil {
			return nil, fmt.Errorf("mechanisms: des3 key gen: %w (%w)", ck.CKR_FUNCTION_FAILED, err)
		}
		setDESParity(k)
		if !bytes.Equal(k[:8], k[8:16]) && !bytes.Equal(k[8:16], k[16:]) {
			return k, nil
		}
	}
}

// des3Rows are the DES3 mechanisms.
func des3Rows() []Mechanism {
	return []Mechanism{
		{Type: ck.CKM_DES3_KEY_GEN, KeyTypes: des3Key, MinKeySize: des3KeySize, MaxKeySize: des3KeySize,
			GenerateKey: generateDES3},
		{Type: ck.CKM_DES3_ECB, KeyTypes: des3Key, MinKeySize: des3KeySize, MaxKeySize: des3KeySize,
			Encrypt: des3Alg.ctor(modeECB, true), Decrypt: des3Alg.ctor(modeECB, false),
			Wrap: des3Alg.wrapper(modeECB), Unwrap: des3Alg.unwrapper(modeECB)},
		{Type: ck.CKM_DES3_CBC, KeyTypes: des3Key, MinKeySize: des3KeySize, MaxKeySize: des3KeySize, Param: ParamIV,
			Encrypt: des3Alg.ctor(modeCBC, true), Decrypt: des3Alg.ctor(modeCBC, false),
			Wrap: des3Alg.wrapper(modeCBC), Unwrap: des3Alg.unwrapper(modeCBC)},
		{Type: ck.CKM_DES3_CBC_PAD, KeyTypes: des3Key, MinKeySize: des3KeySize, MaxKeySize: des3KeySize, Param: ParamIV,
			Encrypt: des3Alg.ctor(modeCBCPad, true), Decrypt: des3Alg.ctor(modeCBCPad, false),
			Wrap: des3Alg.wrapper(modeCBCPad), Unwrap: des3Alg.unwrapper(modeCBCPad)},
		{Type: ck.CKM_DES3_CMAC, KeyTypes: des3Key, MinKeySize: des3KeySize, MaxKeySize: des3KeySize,
			Sign: des3Alg.cmacSigner(false), Verify: des3Alg.cmacVerifier(false)},
		{Type: ck.CKM_DES3_CMAC_GENERAL, KeyTypes: des3Key, MinKeySize: des3KeySize, MaxKeySize: des3KeySize, Param: ParamULong,
			Sign: des3Alg.cmacSigner(true), Verify: des3Alg.cmacVerifier(true)},
		{Type: ck.CKM_DES3_ECB_ENCRYPT_DATA, KeyTypes: des3Key, MinKeySize: des3KeySize, MaxKeySize: des3KeySize, Param: ParamBytes,
			Derive: des3Alg.encryptDataDerive(modeECB), DeriveHidesBase: true},
		{Type: ck.CKM_DES3_CBC_ENCRYPT_DATA, KeyTypes: des3Key, MinKeySize: des3KeySize, MaxKeySize: des3KeySize, Param: ParamCBCEncryptData,
			Derive: des3Alg.encryptDataDerive(modeCBC), DeriveHidesBase: true},
	}
}
