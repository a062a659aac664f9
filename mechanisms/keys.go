package mechanisms

import (
	"fmt"

	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/mldsa"
	"crypto/mlkem"
	"crypto/rsa"

	"gohsm/internal/ck"
)

// keyClass is the Go representation of a key (see the package comment).
type keyClass int

const (
	classNone keyClass = iota
	classRSA
	classEC         // *ecdsa.PrivateKey / *ecdsa.PublicKey: the NIST curves and secp256k1
	classEdwards    // ed25519.PrivateKey / ed25519.PublicKey
	classMontgomery // *ecdh.PrivateKey / *ecdh.PublicKey on ecdh.X25519()
	classSecret
	classMLDSA // *mldsa.PrivateKey / *mldsa.PublicKey
	classMLKEM // *mlkem.DecapsulationKey768/1024, *mlkem512Private / *mlkem.EncapsulationKey768/1024, *mlkem512Public
)

// keyClasses maps the key types rows name to their Go representation.
var keyClasses = map[ck.KeyType]keyClass{
	ck.CKK_RSA:            classRSA,
	ck.CKK_EC:             classEC,
	ck.CKK_EC_EDWARDS:     classEdwards,
	ck.CKK_EC_MONTGOMERY:  classMontgomery,
	ck.CKK_AES:            classSecret,
	ck.CKK_GENERIC_SECRET: classSecret,
	ck.CKK_DES3:           classSecret,
	ck.CKK_ML_DSA:         classMLDSA,
	ck.CKK_ML_KEM:         classMLKEM,
}

// curve25519Bits is the size of Ed25519 and X25519 keys in CK_MECHANISM_INFO:
// PKCS#11 v3.0 (Current Mechanisms, "Edwards Elliptic curve key pair
// generation" and "Montgomery Elliptic curve key pair generation") counts
// "the number of bits in the field sizes", and the field of both curves is
// GF(2^255 - 19) (RFC 7748 §4.1).
const curve25519Bits = 255

// keyInfo classifies a key and gives its size in the unit its
// CK_MECHANISM_INFO uses.
func keyInfo(key any) (keyClass, uint) {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k != nil && k.N != nil {
			return classRSA, uint(k.N.BitLen())
		}
	case *rsa.PublicKey:
		if k != nil && k.N != nil {
			return classRSA, uint(k.N.BitLen())
		}
	case *ecdsa.PrivateKey:
		if k != nil && k.Curve != nil {
			return classEC, uint(k.Curve.Params().BitSize)
		}
	case *ecdsa.PublicKey:
		if k != nil && k.Curve != nil {
			return classEC, uint(k.Curve.Params().BitSize)
		}
	case ed25519.PrivateKey:
		if len(k) == ed25519.PrivateKeySize {
			return classEdwards, curve25519Bits
		}
	case ed25519.PublicKey:
		if len(k) == ed25519.PublicKeySize {
			return classEdwards, curve25519Bits
		}
	case *ecdh.PrivateKey:
		if k != nil && k.Curve() == ecdh.X25519() {
			return classMontgomery, curve25519Bits
		}
	case *ecdh.PublicKey:
		if k != nil && k.Curve() == ecdh.X25519() {
			return classMontgomery, curve25519Bits
		}
	case []byte:
		return classSecret, uint(len(k))
	case *mldsa.PrivateKey:
		if k != nil {
			return classMLDSA, uint(k.PublicKey().Parameters().PublicKeySize())
		}
	case *mldsa.PublicKey:
		if k != nil {
			return classMLDSA, uint(k.Parameters().PublicKeySize())
		}
	case *mlkem512Private, *mlkem512Public:
		return classMLKEM, 512
	case *mlkem.DecapsulationKey768, *mlkem.EncapsulationKey768:
		if k != nil {
			return classMLKEM, 768
		}
	case *mlkem.DecapsulationKey1024, *mlkem.EncapsulationKey1024:
		if k != nil {
			return classMLKEM, 1024
		}
	}
	return classNone, 0
}

// keyGenCurveBits is the field size, in bits, of the curve CKA_EC_PARAMS
// names for generating a key of class c (classEC, classEdwards,
// classMontgomery): the number the guard checks against the row's range.
func keyGenCurveBits(c keyClass, params []byte) (int, error) {
	switch c {
	case classEC:
		curve, err := CurveFromParams(params)
		if err != nil {
			return 0, err
		}
		return curve.Params().BitSize, nil
	case classEdwards:
		return curve25519Bits, EdwardsCurveFromParams(params)
	case classMontgomery:
		return curve25519Bits, MontgomeryCurveFromParams(params)
	}
	return 0, fmt.Errorf("mechanisms: key class %d has no curve: %w", c, ck.CKR_GENERAL_ERROR)
}
