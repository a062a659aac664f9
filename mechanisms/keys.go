package mechanisms

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"

	"gohsm/internal/ck"
)

// keyClass is the Go representation of a key (see the package comment).
type keyClass int

const (
	classNone keyClass = iota
	classRSA
	classEC
	classEdwards
	classSecret
)

// keyClasses maps the key types rows name to their Go representation.
var keyClasses = map[ck.KeyType]keyClass{
	ck.CKK_RSA:            classRSA,
	ck.CKK_EC:             classEC,
	ck.CKK_AES:            classSecret,
	ck.CKK_GENERIC_SECRET: classSecret,
	ck.CKK_DES3:           classSecret,
}

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
	case ed25519.PrivateKey, ed25519.PublicKey:
		return classEdwards, 256
	case []byte:
		return classSecret, uint(len(k))
	}
	return classNone, 0
}
