package mechanisms

import (
	"fmt"

	"gohsm/internal/ck"
)

// Key derivation by data encryption (PKCS#11 v3.0 Current Mechanisms, "Key
// derivation by data encryption - DES & AES"): the derived key's value is
// the ECB or CBC encryption of the parameter's data under the base key,
// its trailing bytes dropped when the key is shorter. The data must be
// whole blocks. The key is CKA_VALUE_LEN bytes long, or the key type's
// fixed length (DES3: 24, with its parity bits set), or the whole
// ciphertext; data too short for it is CKR_DATA_LEN_RANGE, as the
// mechanism's description says.

func (a *blockAlg) encryptDataDerive(mode blockMode) func(base, param any, t DeriveTarget) ([]byte, error) {
	return func(base, param any, t DeriveTarget) ([]byte, error) {
		what := a.name + "-" + mode.suffix() + "-encrypt-data"
		var data []byte
		var cparam any
		switch p := param.(type) {
		case []byte:
			if mode != modeECB {
				return nil, fmt.Errorf("mechanisms: %s: parameter %T: %w", what, param, ck.CKR_MECHANISM_PARAM_INVALID)
			}
			data = p
		case *CBCEncryptDataParams:
			if mode != modeCBC || p == nil {
				return nil, fmt.Errorf("mechanisms: %s: parameter %T: %w", what, param, ck.CKR_MECHANISM_PARAM_INVALID)
			}
			data, cparam = p.Data, p.IV
		default:
			return nil, fmt.Errorf("mechanisms: %s: parameter %T: %w", what, param, ck.CKR_MECHANISM_PARAM_INVALID)
		}
		if len(data) == 0 || len(data)%a.size != 0 {
			return nil, fmt.Errorf("mechanisms: %s: %d bytes of data, not whole blocks: %w", what, len(data), ck.CKR_MECHANISM_PARAM_INVALID)
		}
		n := t.ValueLen
		if n == 0 {
			n = len(data)
			if t.KeyType == ck.CKK_DES3 {
				n = des3KeySize
			}
		}
		if n < 0 || n > len(data) {
			return nil, fmt.Errorf("mechanisms: %s: %d-byte key from %d bytes: %w", what, n, len(data), ck.CKR_DATA_LEN_RANGE)
		}
		c, err := a.newCipher(base, cparam, mode, true)
		if err != nil {
			return nil, err
		}
		out := c.crypt(nil, data)
		clear(out[n:])
		out = out[:n]
		if t.KeyType == ck.CKK_DES3 {
			setDESParity(out)
		}
		return out, nil
	}
}
