package attrs

import (
	"bytes"
	"crypto/aes"
	"crypto/des"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/mldsa"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/asn1"
	"fmt"
	"math/big"
	"sync"

	"gohsm/internal/ck"
	"gohsm/mechanisms"
)

// KeyFromTemplate builds the standard library key an object's material
// describes:
//
//	CKO_SECRET_KEY (AES, generic secret, DES3)  []byte
//	CKO_PUBLIC_KEY / CKO_PRIVATE_KEY CKK_RSA    *rsa.PublicKey / *rsa.PrivateKey
//	CKK_EC                                      *ecdsa.PublicKey / *ecdsa.PrivateKey
//	CKK_EC_EDWARDS (Ed25519)                    ed25519.PublicKey / ed25519.PrivateKey
//	CKK_EC_MONTGOMERY (X25519)                  *ecdh.PublicKey / *ecdh.PrivateKey
//	CKK_ML_DSA                                  *mldsa.PublicKey / *mldsa.PrivateKey
//	CKK_ML_KEM                                  *mlkem.EncapsulationKey768/1024 / *mlkem.DecapsulationKey768/1024 (512: circl's, in mechanisms)
//
// Missing material is CKR_TEMPLATE_INCOMPLETE; malformed material
// CKR_ATTRIBUTE_VALUE_INVALID (or the more precise code the conversion
// reports, e.g. CKR_CURVE_NOT_SUPPORTED).
func KeyFromTemplate(class ck.ObjectClass, keyType ck.KeyType, t Reader) (any, error) {
	conv, ok := converters()[schemaKey{class, keyType}]
	if !ok {
		return nil, fmt.Errorf("attrs: no key conversion for %s %s: %w", class, keyType, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	for _, a := range conv.needs {
		if len(attrOf(t, a)) == 0 {
			return nil, fmt.Errorf("attrs: %s %s: %s missing: %w", class, keyType, a, ck.CKR_TEMPLATE_INCOMPLETE)
		}
	}
	k, err := conv.fromTemplate(keyType, t)
	if err != nil {
		return nil, fmt.Errorf("attrs: %s %s: %w", class, keyType, rvWrap(err))
	}
	return k, nil
}

// rvWrap keeps err's ck.RV, or makes it CKR_ATTRIBUTE_VALUE_INVALID.
func rvWrap(err error) error {
	if rv := rvOf(err, 0); rv != 0 {
		return err
	}
	return fmt.Errorf("%v: %w", err.Error(), ck.CKR_ATTRIBUTE_VALUE_INVALID)
}

type converter struct {
	needs        []ck.AttributeType
	fromTemplate func(keyType ck.KeyType, t Reader) (any, error)
}

// converters are the key conversions by schema, made on first use like
// schemas.
var converters = sync.OnceValue(func() map[schemaKey]converter {
	m := map[schemaKey]converter{
		{ck.CKO_SECRET_KEY, ck.CKK_AES}:            {[]ck.AttributeType{ck.CKA_VALUE}, secretFromTemplate},
		{ck.CKO_SECRET_KEY, ck.CKK_GENERIC_SECRET}: {[]ck.AttributeType{ck.CKA_VALUE}, secretFromTemplate},
		{ck.CKO_SECRET_KEY, ck.CKK_DES3}:           {[]ck.AttributeType{ck.CKA_VALUE}, secretFromTemplate},
		{ck.CKO_PUBLIC_KEY, ck.CKK_RSA}:            {[]ck.AttributeType{ck.CKA_MODULUS, ck.CKA_PUBLIC_EXPONENT}, rsaPublicFromTemplate},
		{ck.CKO_PRIVATE_KEY, ck.CKK_RSA}: {[]ck.AttributeType{ck.CKA_MODULUS, ck.CKA_PUBLIC_EXPONENT,
			ck.CKA_PRIVATE_EXPONENT, ck.CKA_PRIME_1, ck.CKA_PRIME_2}, rsaPrivateFromTemplate},
		{ck.CKO_PUBLIC_KEY, ck.CKK_EC}:             {[]ck.AttributeType{ck.CKA_EC_PARAMS, ck.CKA_EC_POINT}, ecPublicFromTemplate},
		{ck.CKO_PRIVATE_KEY, ck.CKK_EC}:            {[]ck.AttributeType{ck.CKA_EC_PARAMS, ck.CKA_VALUE}, ecPrivateFromTemplate},
		{ck.CKO_PUBLIC_KEY, ck.CKK_EC_EDWARDS}:     {[]ck.AttributeType{ck.CKA_EC_PARAMS, ck.CKA_EC_POINT}, edPublicFromTemplate},
		{ck.CKO_PRIVATE_KEY, ck.CKK_EC_EDWARDS}:    {[]ck.AttributeType{ck.CKA_EC_PARAMS, ck.CKA_VALUE}, edPrivateFromTemplate},
		{ck.CKO_PUBLIC_KEY, ck.CKK_EC_MONTGOMERY}:  {[]ck.AttributeType{ck.CKA_EC_PARAMS, ck.CKA_EC_POINT}, x25519PublicFromTemplate},
		{ck.CKO_PRIVATE_KEY, ck.CKK_EC_MONTGOMERY}: {[]ck.AttributeType{ck.CKA_EC_PARAMS, ck.CKA_VALUE}, x25519PrivateFromTemplate},
		{ck.CKO_PUBLIC_KEY, ck.CKK_ML_DSA}:         {[]ck.AttributeType{ck.CKA_PARAMETER_SET, ck.CKA_VALUE}, mldsaPublicFromTemplate},
		{ck.CKO_PRIVATE_KEY, ck.CKK_ML_DSA}:        {[]ck.AttributeType{ck.CKA_PARAMETER_SET, ck.CKA_SEED}, mldsaPrivateFromTemplate},
		{ck.CKO_PUBLIC_KEY, ck.CKK_ML_KEM}:         {[]ck.AttributeType{ck.CKA_PARAMETER_SET, ck.CKA_VALUE}, mlkemPublicFromTemplate},
		{ck.CKO_PRIVATE_KEY, ck.CKK_ML_KEM}:        {[]ck.AttributeType{ck.CKA_PARAMETER_SET, ck.CKA_SEED}, mlkemPrivateFromTemplate},
	}
	addHMACConverters(m)
	return m
})

func mlkemPublicFromTemplate(_ ck.KeyType, t Reader) (any, error) {
	set, _ := t.ULong(ck.CKA_PARAMETER_SET)
	return mechanisms.MLKEMPublicKey(set, attrOf(t, ck.CKA_VALUE))
}

func mlkemPrivateFromTemplate(_ ck.KeyType, t Reader) (any, error) {
	set, _ := t.ULong(ck.CKA_PARAMETER_SET)
	return mechanisms.MLKEMPrivateKey(set, attrOf(t, ck.CKA_SEED))
}

func secretFromTemplate(keyType ck.KeyType, t Reader) (any, error) {
	v := attrOf(t, ck.CKA_VALUE)
	if err := checkSecretLength(keyType, len(v)); err != nil {
		return nil, err
	}
	return bytes.Clone(v), nil
}

func rsaPublicFromTemplate(_ ck.KeyType, t Reader) (any, error) {
	return mechanisms.RSAPublicKey(attrOf(t, ck.CKA_MODULUS), attrOf(t, ck.CKA_PUBLIC_EXPONENT))
}

func rsaPrivateFromTemplate(_ ck.KeyType, t Reader) (any, error) {
	return mechanisms.RSAPrivateKey(attrOf(t, ck.CKA_MODULUS), attrOf(t, ck.CKA_PUBLIC_EXPONENT), attrOf(t, ck.CKA_PRIVATE_EXPONENT),
		attrOf(t, ck.CKA_PRIME_1), attrOf(t, ck.CKA_PRIME_2))
}

func ecPublicFromTemplate(_ ck.KeyType, t Reader) (any, error) {
	c, err := mechanisms.CurveFromParams(attrOf(t, ck.CKA_EC_PARAMS))
	if err != nil {
		return nil, err
	}
	return mechanisms.ParseECPoint(c, attrOf(t, ck.CKA_EC_POINT))
}

func ecPrivateFromTemplate(_ ck.KeyType, t Reader) (any, error) {
	c, err := mechanisms.CurveFromParams(attrOf(t, ck.CKA_EC_PARAMS))
	if err != nil {
		return nil, err
	}
	return mechanisms.ECPrivateKey(c, attrOf(t, ck.CKA_VALUE))
}

func edPublicFromTemplate(_ ck.KeyType, t Reader) (any, error) {
	if err := mechanisms.EdwardsCurveFromParams(attrOf(t, ck.CKA_EC_PARAMS)); err != nil {
		return nil, err
	}
	// v3.0 mechanisms spec, Edwards public key objects: CKA_EC_POINT is the DER encoding (an OCTET STRING) of
	// the RFC 8032 public key; v3.1 made it the raw 32 bytes. Accept both.
	p := attrOf(t, ck.CKA_EC_POINT)
	if len(p) != ed25519.PublicKeySize {
		var raw []byte
		rest, err := asn1.Unmarshal(p, &raw)
		if err != nil || len(rest) != 0 {
			return nil, fmt.Errorf("ed25519 public key: CKA_EC_POINT not an OCTET STRING: %w", ck.CKR_ATTRIBUTE_VALUE_INVALID)
		}
		p = raw
	}
	if len(p) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("ed25519 public key: %d bytes: %w", len(p), ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	return ed25519.PublicKey(bytes.Clone(p)), nil
}

func edPrivateFromTemplate(_ ck.KeyType, t Reader) (any, error) {
	if err := mechanisms.EdwardsCurveFromParams(attrOf(t, ck.CKA_EC_PARAMS)); err != nil {
		return nil, err
	}
	// CKA_VALUE is the RFC 8032 private key: the 32-byte seed.
	seed := attrOf(t, ck.CKA_VALUE)
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("ed25519 private key: %d-byte seed: %w", len(seed), ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// x25519PublicFromTemplate: v3.0 mechanisms spec, Montgomery public key
// objects: CKA_EC_POINT is the RFC 7748 public key (a DER OCTET STRING in
// v3.0, the bare 32 bytes in v3.1; both accepted).
func x25519PublicFromTemplate(_ ck.KeyType, t Reader) (any, error) {
	if err := mechanisms.MontgomeryCurveFromParams(attrOf(t, ck.CKA_EC_PARAMS)); err != nil {
		return nil, err
	}
	return mechanisms.ParseX25519Point(attrOf(t, ck.CKA_EC_POINT))
}

// x25519PrivateFromTemplate: CKA_VALUE is the 32-byte RFC 7748 private key.
func x25519PrivateFromTemplate(_ ck.KeyType, t Reader) (any, error) {
	if err := mechanisms.MontgomeryCurveFromParams(attrOf(t, ck.CKA_EC_PARAMS)); err != nil {
		return nil, err
	}
	return mechanisms.X25519PrivateKey(attrOf(t, ck.CKA_VALUE))
}

// oidEd25519 is id-Ed25519 (RFC 8410); we write CKA_EC_PARAMS of Edwards keys
// as this OID, one of the two forms the v3.0 mechanisms spec allows.
var oidEd25519 = asn1.ObjectIdentifier{1, 3, 101, 112}

// TemplateFromKey is the inverse of KeyFromTemplate: the material attributes
// of a key.
//
//	[]byte              CKA_VALUE, CKA_VALUE_LEN
//	*rsa.PublicKey      CKA_MODULUS, CKA_PUBLIC_EXPONENT, CKA_MODULUS_BITS
//	*rsa.PrivateKey     CKA_MODULUS, CKA_PUBLIC_EXPONENT, CKA_PRIVATE_EXPONENT,
//	                    CKA_PRIME_1, CKA_PRIME_2, CKA_EXPONENT_1, CKA_EXPONENT_2,
//	                    CKA_COEFFICIENT
//	*ecdsa.PublicKey    CKA_EC_PARAMS, CKA_EC_POINT
//	*ecdsa.PrivateKey   CKA_EC_PARAMS, CKA_VALUE, CKA_EC_POINT (our extension)
//	ed25519.PublicKey   CKA_EC_PARAMS, CKA_EC_POINT
//	ed25519.PrivateKey  CKA_EC_PARAMS, CKA_VALUE (the seed), CKA_EC_POINT
//	*ecdh.PublicKey     CKA_EC_PARAMS, CKA_EC_POINT (X25519)
//	*ecdh.PrivateKey    CKA_EC_PARAMS, CKA_VALUE, CKA_EC_POINT (X25519)
//	*mldsa.PublicKey    CKA_PARAMETER_SET, CKA_VALUE
//	*mldsa.PrivateKey   CKA_PARAMETER_SET, CKA_SEED, CKA_VALUE (the expanded key)
//	ML-KEM public key   CKA_PARAMETER_SET, CKA_VALUE (ek)
//	ML-KEM private key  CKA_PARAMETER_SET, CKA_SEED, CKA_VALUE (the expanded key dk)
//
// CKA_CHECK_VALUE depends on the key type, not just the key: see CheckValue.
func TemplateFromKey(key any) (Template, error) {
	switch k := key.(type) {
	case []byte:
		return Template{ck.CKA_VALUE: bytes.Clone(k), ck.CKA_VALUE_LEN: ULong(ck.ULong(len(k)))}, nil
	case *rsa.PublicKey:
		return Template{
			ck.CKA_MODULUS:         k.N.Bytes(),
			ck.CKA_PUBLIC_EXPONENT: big.NewInt(int64(k.E)).Bytes(),
			ck.CKA_MODULUS_BITS:    ULong(ck.ULong(k.N.BitLen())),
		}, nil
	case *rsa.PrivateKey:
		if len(k.Primes) != 2 {
			return nil, fmt.Errorf("attrs: rsa private key with %d primes: %w", len(k.Primes), ck.CKR_ATTRIBUTE_VALUE_INVALID)
		}
		// The CRT values, computed here rather than by k.Precompute so that
		// a key shared between goroutines is never written.
		p, q := k.Primes[0], k.Primes[1]
		one := big.NewInt(1)
		dp := new(big.Int).Mod(k.D, new(big.Int).Sub(p, one))
		dq := new(big.Int).Mod(k.D, new(big.Int).Sub(q, one))
		qinv := new(big.Int).ModInverse(q, p)
		if qinv == nil {
			return nil, fmt.Errorf("attrs: rsa private key: primes not coprime: %w", ck.CKR_ATTRIBUTE_VALUE_INVALID)
		}
		return Template{
			ck.CKA_MODULUS:          k.N.Bytes(),
			ck.CKA_PUBLIC_EXPONENT:  big.NewInt(int64(k.E)).Bytes(),
			ck.CKA_PRIVATE_EXPONENT: k.D.Bytes(),
			ck.CKA_PRIME_1:          p.Bytes(),
			ck.CKA_PRIME_2:          q.Bytes(),
			ck.CKA_EXPONENT_1:       dp.Bytes(),
			ck.CKA_EXPONENT_2:       dq.Bytes(),
			ck.CKA_COEFFICIENT:      qinv.Bytes(),
		}, nil
	case *ecdsa.PublicKey:
		params, err := mechanisms.ECParams(k.Curve)
		if err != nil {
			return nil, fmt.Errorf("attrs: %w", rvWrap(err))
		}
		return Template{ck.CKA_EC_PARAMS: params, ck.CKA_EC_POINT: mechanisms.ECPoint(k)}, nil
	case *ecdsa.PrivateKey:
		t, err := TemplateFromKey(&k.PublicKey)
		if err != nil {
			return nil, err
		}
		// Not k.Bytes(): that is crypto/ecdsa's cached scalar, which a
		// caller clearing the template would corrupt; and it refuses
		// secp256k1.
		d, err := mechanisms.ECPrivateValue(k)
		if err != nil {
			return nil, fmt.Errorf("attrs: %w", rvWrap(err))
		}
		t[ck.CKA_VALUE] = d
		return t, nil
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("attrs: ed25519 public key of %d bytes: %w", len(k), ck.CKR_ATTRIBUTE_VALUE_INVALID)
		}
		return edTemplate(k), nil
	case ed25519.PrivateKey:
		if len(k) != ed25519.PrivateKeySize {
			return nil, fmt.Errorf("attrs: ed25519 private key of %d bytes: %w", len(k), ck.CKR_ATTRIBUTE_VALUE_INVALID)
		}
		t := edTemplate(k.Public().(ed25519.PublicKey))
		t[ck.CKA_VALUE] = bytes.Clone(k.Seed())
		return t, nil
	case *mldsa.PublicKey:
		return mldsaPublicTemplate(k), nil
	case *mldsa.PrivateKey:
		return mldsaPrivateTemplate(k), nil
	case *ecdh.PublicKey:
		if k.Curve() != ecdh.X25519() {
			return nil, fmt.Errorf("attrs: ecdh public key on %v: %w", k.Curve(), ck.CKR_GENERAL_ERROR)
		}
		return Template{ck.CKA_EC_PARAMS: mechanisms.X25519Params(), ck.CKA_EC_POINT: mechanisms.X25519Point(k)}, nil
	case *ecdh.PrivateKey:
		if k.Curve() != ecdh.X25519() {
			return nil, fmt.Errorf("attrs: ecdh private key on %v: %w", k.Curve(), ck.CKR_GENERAL_ERROR)
		}
		return Template{
			ck.CKA_EC_PARAMS: mechanisms.X25519Params(),
			ck.CKA_EC_POINT:  mechanisms.X25519Point(k.PublicKey()),
			ck.CKA_VALUE:     k.Bytes(), // a copy
		}, nil
	}
	if set, ek, seed, ok := mechanisms.MLKEMKeyMaterial(key); ok {
		t := Template{ck.CKA_PARAMETER_SET: ULong(set)}
		if seed != nil {
			t[ck.CKA_SEED] = seed
			t[ck.CKA_VALUE] = mechanisms.MLKEMExpandedKey(key) // dk, from the seed
		} else {
			t[ck.CKA_VALUE] = ek
		}
		return t, nil
	}
	return nil, fmt.Errorf("attrs: unsupported key type %T: %w", key, ck.CKR_GENERAL_ERROR)
}

func edTemplate(pub ed25519.PublicKey) Template {
	params, _ := asn1.Marshal(oidEd25519) // cannot fail for a valid OID
	point, _ := asn1.Marshal([]byte(pub)) // OCTET STRING: cannot fail
	return Template{ck.CKA_EC_PARAMS: params, ck.CKA_EC_POINT: point}
}

// CheckValue computes CKA_CHECK_VALUE:
//
//   - AES and DES3 keys: "the first three bytes of the ECB encryption of a
//     single block of null (0x00) bytes, using the default cipher associated
//     with the key type" (mechanisms spec, AES and DES key objects);
//   - generic secrets: "the first three bytes of the SHA-1 hash of the ...
//     CKA_VALUE attribute" (mechanisms spec, generic secret key objects);
//   - certificates (keyType NoKeyType): "the first three bytes of the SHA-1
//     hash of the certificate object's CKA_VALUE attribute" (base spec
//     §4.6).
//
// It returns nil for a key type without a check value or a value the cipher
// rejects.
func CheckValue(keyType ck.KeyType, value []byte) []byte {
	switch keyType {
	case ck.CKK_AES, ck.CKK_DES3:
		newCipher := aes.NewCipher
		if keyType == ck.CKK_DES3 {
			newCipher = des.NewTripleDESCipher
		}
		c, err := newCipher(value)
		if err != nil {
			return nil
		}
		block := make([]byte, c.BlockSize())
		c.Encrypt(block, block)
		return block[:3]
	case ck.CKK_GENERIC_SECRET, NoKeyType:
		h := sha1.Sum(value)
		return h[:3]
	}
	return nil
}
