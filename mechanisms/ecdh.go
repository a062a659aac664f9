package mechanisms

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	_ "crypto/sha1" // CKD_SHA1_KDF
	"encoding/binary"
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"gohsm/internal/ck"
)

// ecdhKDFs are the key derivation functions CK_ECDH1_DERIVE_PARAMS.kdf may
// name that we implement: CKD_NULL (the shared secret itself) and the ANSI
// X9.63 KDF over each hash (PKCS#11 v3.0 Current Mechanisms,
// "EC mechanism parameters": CKD_SHA*_KDF, CKD_SHA3_*_KDF). The SP 800-56C
// variants (CKD_*_KDF_SP800), the X9.42 ASN.1/concatenate forms and
// CKD_CPDIVERSIFY_KDF are not supported: CKR_MECHANISM_PARAM_INVALID.
var ecdhKDFs = map[ck.ULong]crypto.Hash{
	ck.CKD_NULL:         0,
	ck.CKD_SHA1_KDF:     crypto.SHA1,
	ck.CKD_SHA224_KDF:   crypto.SHA224,
	ck.CKD_SHA256_KDF:   crypto.SHA256,
	ck.CKD_SHA384_KDF:   crypto.SHA384,
	ck.CKD_SHA512_KDF:   crypto.SHA512,
	ck.CKD_SHA3_224_KDF: crypto.SHA3_224,
	ck.CKD_SHA3_256_KDF: crypto.SHA3_256,
	ck.CKD_SHA3_384_KDF: crypto.SHA3_384,
	ck.CKD_SHA3_512_KDF: crypto.SHA3_512,
}

// des3KeyLen is the length a DES3 key derived without CKA_VALUE_LEN gets
// (DES3 keys have no CKA_VALUE_LEN attribute).
const des3KeyLen = 24

// ecdhDerive is CKM_ECDH1_DERIVE and CKM_ECDH1_COFACTOR_DERIVE (PKCS#11
// v3.0 Current Mechanisms, "Elliptic curve Diffie-Hellman key derivation"
// and "... with cofactor"): Z is the x-coordinate of d * Q (for X25519 the
// RFC 7748 output), then the KDF. Every prime curve we support has cofactor
// 1, so both mechanisms compute the same value.
//
// Decisions the spec leaves open:
//   - an invalid, off-curve or wrongly encoded peer point in pPublicData is
//     CKR_MECHANISM_PARAM_INVALID (it is part of the mechanism parameter;
//     C_DeriveKey has no return value naming a bad peer key), as is an
//     X25519 peer point of small order (all-zero Z, RFC 7748 §6.1);
//   - with CKD_NULL, shared data must be absent; the key is Z, or its
//     last CKA_VALUE_LEN bytes when the template asks for fewer (as
//     SoftHSMv2 and NSS truncate); more than len(Z) is CKR_KEY_SIZE_RANGE;
//   - with a KDF, the output is CKA_VALUE_LEN bytes, or the hash length
//     when the template gives none (24 bytes for DES3).
func ecdhDerive(base, param any, target DeriveTarget) ([]byte, error) {
	p, ok := param.(*ECDH1Params)
	if !ok || p == nil {
		return nil, fmt.Errorf("mechanisms: ecdh: parameter %T: %w", param, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	h, ok := ecdhKDFs[p.KDF]
	if !ok {
		return nil, fmt.Errorf("mechanisms: ecdh: kdf %#x: %w", p.KDF, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	if h == 0 && len(p.SharedData) != 0 {
		return nil, fmt.Errorf("mechanisms: ecdh: shared data with CKD_NULL: %w", ck.CKR_MECHANISM_PARAM_INVALID)
	}
	if target.ValueLen < 0 {
		return nil, fmt.Errorf("mechanisms: ecdh: key length %d: %w", target.ValueLen, ck.CKR_KEY_SIZE_RANGE)
	}
	z, err := sharedSecret(base, p.PublicData)
	if err != nil {
		return nil, err
	}
	defer clear(z)

	n := target.ValueLen
	if n == 0 && target.KeyType == ck.CKK_DES3 {
		n = des3KeyLen
	}
	if h == 0 {
		if n == 0 {
			n = len(z)
		}
		if n > len(z) {
			return nil, fmt.Errorf("mechanisms: ecdh: %d-byte key from a %d-byte secret: %w", n, len(z), ck.CKR_KEY_SIZE_RANGE)
		}
		return append([]byte(nil), z[len(z)-n:]...), nil
	}
	if n == 0 {
		n = h.Size()
	}
	return x963KDF(h, z, p.SharedData, n), nil
}

// x963KDF is the ANSI X9.63 key derivation function (SEC 1 v2 §3.6.1):
// Hash(Z || counter || SharedInfo) for a 32-bit big-endian counter from 1,
// concatenated and cut to n bytes.
func x963KDF(h crypto.Hash, z, shared []byte, n int) []byte {
	out := make([]byte, 0, n+h.Size())
	d := h.New()
	var ctr [4]byte
	for i := uint32(1); len(out) < n; i++ {
		d.Reset()
		d.Write(z)
		binary.BigEndian.PutUint32(ctr[:], i)
		d.Write(ctr[:])
		d.Write(shared)
		out = d.Sum(out)
	}
	clear(out[n:cap(out)])
	return out[:n]
}

// ecdhCurves maps the NIST curves but P-224 (see sharedSecretGeneric) to crypto/ecdh, which validates peer
// points (on the curve, not the identity) and computes Z in constant time.
var ecdhCurves = map[elliptic.Curve]ecdh.Curve{
	elliptic.P256(): ecdh.P256(),
	elliptic.P384(): ecdh.P384(),
	elliptic.P521(): ecdh.P521(),
}

// sharedSecret computes Z from our private key and the peer's public data.
func sharedSecret(base any, peer []byte) ([]byte, error) {
	switch k := base.(type) {
	case *ecdh.PrivateKey:
		pub, err := ParseX25519Point(peer)
		if err != nil {
			return nil, fmt.Errorf("mechanisms: ecdh: peer point: %w (%w)", ck.CKR_MECHANISM_PARAM_INVALID, err)
		}
		z, err := k.ECDH(pub)
		if err != nil {
			// The only failure: a small-order peer point gives all zeros.
			return nil, fmt.Errorf("mechanisms: ecdh: x25519 with a small-order point: %w (%w)", ck.CKR_MECHANISM_PARAM_INVALID, err)
		}
		return z, nil
	case *ecdsa.PrivateKey:
		if k.Curve == nil {
			break
		}
		pub, err := ParseECPoint(k.Curve, peer)
		if err != nil {
			return nil, fmt.Errorf("mechanisms: ecdh: peer point: %w (%w)", ck.CKR_MECHANISM_PARAM_INVALID, err)
		}
		if isSecp256k1(k.Curve) {
			priv, err := secp256k1Private(k)
			if err != nil {
				return nil, err
			}
			defer priv.Zero()
			q, err := secp256k1Public(pub)
			if err != nil {
				return nil, fmt.Errorf("mechanisms: ecdh: peer point: %w (%w)", ck.CKR_MECHANISM_PARAM_INVALID, err)
			}
			return secp256k1.GenerateSharedSecret(priv, q), nil
		}
		if c := ecdhCurves[k.Curve]; c != nil {
			priv, err := k.ECDH()
			if err != nil {
				return nil, cryptoErr("ecdh", err)
			}
			q, err := pub.ECDH()
			if err != nil {
				return nil, fmt.Errorf("mechanisms: ecdh: peer point: %w (%w)", ck.CKR_MECHANISM_PARAM_INVALID, err)
			}
			z, err := priv.ECDH(q)
			if err != nil {
				return nil, cryptoErr("ecdh", err)
			}
			return z, nil
		}
		return sharedSecretGeneric(k, pub)
	}
	return nil, fmt.Errorf("mechanisms: ecdh with %T: %w", base, ck.CKR_KEY_TYPE_INCONSISTENT)
}

// sharedSecretGeneric is ECDH on P-224, which crypto/ecdh lacks, through
// the elliptic.Curve interface; Go implements P-224 there with its
// constant-time nistec code. pub is on the curve (ParseECPoint checked),
// and with cofactor 1 and d in [1, n-1], d * Q is never the identity.
func sharedSecretGeneric(k *ecdsa.PrivateKey, pub *ecdsa.PublicKey) ([]byte, error) {
	d, err := ECPrivateValue(k)
	if err != nil {
		return nil, err
	}
	defer clear(d)
	x, y := k.Curve.ScalarMult(pub.X, pub.Y, d)     //nolint:staticcheck // P-224 has no crypto/ecdh
	if x == nil || x.Sign() == 0 && y.Sign() == 0 { // (0, 0) stands for the identity
		return nil, fmt.Errorf("mechanisms: ecdh: point at infinity: %w", ck.CKR_MECHANISM_PARAM_INVALID)
	}
	return x.FillBytes(make([]byte, byteLen(k.Curve))), nil
}

// ecdhRows are the EC key agreement mechanisms.
func ecdhRows() []Mechanism {
	return []Mechanism{
		{Type: ck.CKM_ECDH1_DERIVE, KeyTypes: []ck.KeyType{ck.CKK_EC, ck.CKK_EC_MONTGOMERY},
			MinKeySize: ecMinFieldBits, MaxKeySize: ecMaxFieldBits, Param: ParamECDH1, Derive: ecdhDerive, DeriveHidesBase: true},
		{Type: ck.CKM_ECDH1_COFACTOR_DERIVE, KeyTypes: ecKey,
			MinKeySize: ecMinFieldBits, MaxKeySize: ecMaxFieldBits, Param: ParamECDH1, Derive: ecdhDerive, DeriveHidesBase: true},
	}
}
