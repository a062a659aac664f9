package mechanisms

import (
	"crypto/ecdh"
	"io"

	"gohsm/internal/ck"
)

// generateX25519 is CKM_EC_MONTGOMERY_KEY_PAIR_GEN (PKCS#11 v3.0 Current
// Mechanisms, "Montgomery Elliptic curve key pair generation") for X25519,
// the one Montgomery curve supported (CKA_EC_PARAMS id-X25519 or
// "curve25519"). Keys are used with CKM_ECDH1_DERIVE (ecdh.go).
func generateX25519(r io.Reader, p KeyGenParams) (pub, priv any, err error) {
	if err := MontgomeryCurveFromParams(p.ECParams); err != nil {
		return nil, nil, err
	}
	k, err := ecdh.X25519().GenerateKey(r)
	if err != nil {
		return nil, nil, cryptoErr("x25519 key pair gen", err)
	}
	return k.PublicKey(), k, nil
}

var montgomeryKey = []ck.KeyType{ck.CKK_EC_MONTGOMERY}

// montgomeryRows are the X25519 mechanisms besides ECDH1_DERIVE.
func montgomeryRows() []Mechanism {
	return []Mechanism{
		{Type: ck.CKM_EC_MONTGOMERY_KEY_PAIR_GEN, KeyTypes: montgomeryKey,
			MinKeySize: curve25519Bits, MaxKeySize: curve25519Bits, GenerateKeyPair: generateX25519},
	}
}
