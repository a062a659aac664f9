package mechanisms

import (
	"crypto"
	"crypto/pbkdf2"
	"fmt"

	"gohsm/internal/ck"
)

// pbkdf2PRFs maps CK_PKCS5_PBKDF2_PSEUDO_RANDOM_FUNCTION_TYPE to hashes
// (HMAC-<hash> is the PRF). GOST R 34.11 is not offered.
var pbkdf2PRFs = map[ck.ULong]crypto.Hash{
	ck.CKP_PKCS5_PBKD2_HMAC_SHA1:       crypto.SHA1,
	ck.CKP_PKCS5_PBKD2_HMAC_SHA224:     crypto.SHA224,
	ck.CKP_PKCS5_PBKD2_HMAC_SHA256:     crypto.SHA256,
	ck.CKP_PKCS5_PBKD2_HMAC_SHA384:     crypto.SHA384,
	ck.CKP_PKCS5_PBKD2_HMAC_SHA512:     crypto.SHA512,
	ck.CKP_PKCS5_PBKD2_HMAC_SHA512_224: crypto.SHA512_224,
	ck.CKP_PKCS5_PBKD2_HMAC_SHA512_256: crypto.SHA512_256,
}

// PBKDF2Generate is CKM_PKCS5_PBKD2 (PKCS#11 v3.0 "PKCS #5 PBKDF2 key
// generation"), which the spec makes a key generation mechanism with a
// parameter: C_GenerateKey with CK_PKCS5_PBKD2_PARAMS2 (the password is in
// the parameter, no base key). The table's GenerateKey takes no parameter,
// so the token calls this directly until it does; valueLen is the key's
// length in bytes (CKA_VALUE_LEN, or the length its key type fixes).
//
// pbkdf2MaxIterations bounds the work one C_GenerateKey may ask for: ten
// times OWASP's 2023 recommendation for PBKDF2-HMAC-SHA256 (600,000), a
// few seconds of one core. An iteration count of 2^32-1 ran for hours.
const pbkdf2MaxIterations = 6_000_000

// PBKDF2 per RFC 8018 §5.2. The salt source must be CKZ_SALT_SPECIFIED and
// the PRF one of pbkdf2PRFs (whose pPrfData must be empty: it exists for
// GOST). Errors are those C_GenerateKey may return.
func PBKDF2Generate(p *PBKD2Params, valueLen int) ([]byte, error) {
	const what = "pbkdf2"
	if p == nil {
		return nil, fmt.Errorf("mechanisms: %s: no parameter: %w", what, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	if p.SaltSource != ck.CKZ_SALT_SPECIFIED {
		return nil, fmt.Errorf("mechanisms: %s: salt source 0x%x: %w", what, p.SaltSource, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	h, ok := pbkdf2PRFs[p.PRF]
	if !ok || len(p.PRFData) != 0 {
		return nil, fmt.Errorf("mechanisms: %s: prf 0x%x with %d bytes of prf data: %w", what, p.PRF, len(p.PRFData), ck.CKR_MECHANISM_PARAM_INVALID)
	}
	if p.Iterations < 1 || p.Iterations > pbkdf2MaxIterations {
		return nil, fmt.Errorf("mechanisms: %s: %d iterations (1..%d): %w", what, p.Iterations, pbkdf2MaxIterations, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	switch {
	case valueLen == 0:
		return nil, fmt.Errorf("mechanisms: %s: no CKA_VALUE_LEN: %w", what, ck.CKR_TEMPLATE_INCOMPLETE)
	case valueLen < 0 || valueLen > secretMaxBytes:
		return nil, fmt.Errorf("mechanisms: %s: CKA_VALUE_LEN %d not in 1..%d: %w", what, valueLen, secretMaxBytes, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	k, err := pbkdf2.Key(h.New, string(p.Password), p.Salt, p.Iterations, valueLen)
	if err != nil {
		return nil, cryptoErr(what, err)
	}
	return k, nil
}
