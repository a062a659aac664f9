package mechanisms

import (
	"crypto/hkdf"
	"fmt"

	"gohsm/internal/ck"
)

// hkdfKeys are the base key types of CKM_HKDF_DERIVE and CKM_HKDF_DATA
// (PKCS#11 v3.0 "HKDF"): HKDF keys and generic secrets (e.g. an ECDH result).
var hkdfKeys = []ck.KeyType{ck.CKK_HKDF, ck.CKK_GENERIC_SECRET}

// hkdfDerive is CKM_HKDF_DERIVE and CKM_HKDF_DATA (the same computation;
// the token makes a key or a data object of the result): RFC 5869 with
// the hash CK_HKDF_PARAMS.prfHashMechanism names.
//
//   - bExtract: PRK = HMAC(salt, base key). The salt is none (CKF_HKDF_SALT_NULL:
//     HashLen zero bytes, RFC 5869 §2.2), pSalt (CKF_HKDF_SALT_DATA), or the
//     value of hSaltKey, which the token resolves into Salt
//     (CKF_HKDF_SALT_KEY); the last two must not be empty.
//   - bExpand: OKM = HKDF-Expand(PRK, pInfo, L), L = CKA_VALUE_LEN, by default
//     HashLen, at most 255*HashLen (RFC 5869 §2.3). Without bExtract the base
//     key is the PRK.
//   - extract only: the result is the PRK, HashLen bytes; a template asking
//     another length is inconsistent.
//   - neither: CKR_MECHANISM_PARAM_INVALID.
func hkdfDerive(base, param any, t DeriveTarget) ([]byte, error) {
	const what = "hkdf"
	ikm, err := secretKey(base, what)
	if err != nil {
		return nil, err
	}
	p, ok := param.(*HKDFParams)
	if !ok || p == nil {
		return nil, fmt.Errorf("mechanisms: %s: parameter %T: %w", what, param, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	if !p.Extract && !p.Expand {
		return nil, fmt.Errorf("mechanisms: %s: neither extract nor expand: %w", what, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	a, ok := digestByMech(p.PRF)
	if !ok {
		return nil, fmt.Errorf("mechanisms: %s: prf hash %v: %w", what, p.PRF, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	h := a.hash
	size := h.Size()

	prk := ikm
	if p.Extract {
		var salt []byte
		switch p.SaltType {
		case ck.CKF_HKDF_SALT_NULL:
		case ck.CKF_HKDF_SALT_DATA, ck.CKF_HKDF_SALT_KEY:
			if len(p.Salt) == 0 {
				return nil, fmt.Errorf("mechanisms: %s: salt type 0x%x without salt: %w", what, p.SaltType, ck.CKR_MECHANISM_PARAM_INVALID)
			}
			salt = p.Salt
		default:
			return nil, fmt.Errorf("mechanisms: %s: salt type 0x%x: %w", what, p.SaltType, ck.CKR_MECHANISM_PARAM_INVALID)
		}
		if prk, err = hkdf.Extract(h.New, ikm, salt); err != nil {
			return nil, cryptoErr(what, err)
		}
		if !p.Expand {
			if t.ValueLen != 0 && t.ValueLen != size {
				clear(prk)
				return nil, fmt.Errorf("mechanisms: %s: extract gives %d bytes, CKA_VALUE_LEN %d: %w", what, size, t.ValueLen, ck.CKR_TEMPLATE_INCONSISTENT)
			}
			n, err := deriveLen(what, t, size, size)
			if err != nil {
				clear(prk)
				return nil, err
			}
			return finishKey(t, prk[:n]), nil
		}
		defer clear(prk)
	}
	n, err := deriveLen(what, t, size, 255*size)
	if err != nil {
		return nil, err
	}
	okm, err := hkdf.Expand(h.New, prk, string(p.Info), n)
	if err != nil {
		return nil, cryptoErr(what, err)
	}
	return finishKey(t, okm), nil
}
