package mechanisms

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/asn1"
	"fmt"
	"math/big"
	"sync"
	"sync/atomic"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"gohsm/internal/ck"
)

// secp256k1Curve is secp256k1 (SEC 2 §2.4.1) as an elliptic.Curve, so that
// its keys are *ecdsa.PrivateKey / *ecdsa.PublicKey like the NIST curves'
// and the token stores, classifies and encodes them the same way. The
// standard library has no secp256k1: the curve value comes from
// github.com/decred/dcrd/dcrec/secp256k1, and every operation on its keys
// (point validation, signing, verification, ECDH) goes through that
// library's constant-time field and scalar code, never through
// crypto/ecdsa's deprecated math/big fallback for custom curves. Its
// elliptic.Curve adapter is marked deprecated upstream because it is slow;
// we use it only as the curve's identity and for its parameters.
var secp256k1Curve elliptic.Curve = secp256k1.S256() //nolint:staticcheck // identity only, see above

// namedCurves are the prime curves CKA_EC_PARAMS may name, by their OIDs
// from RFC 5480 §2.1.1.1 (secp224r1, secp256r1, secp384r1, secp521r1) and
// SEC 2 §A.2 (secp256k1). Which of them a mechanism accepts is its row's
// key size range. secp256k1 comes after P-256 so that a lookup by size
// finds the NIST curve first.
var namedCurves = []struct {
	curve elliptic.Curve
	oid   asn1.ObjectIdentifier
}{
	{curve: elliptic.P224(), oid: asn1.ObjectIdentifier{1, 3, 132, 0, 33}},
	{curve: elliptic.P256(), oid: asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}},
	{curve: elliptic.P384(), oid: asn1.ObjectIdentifier{1, 3, 132, 0, 34}},
	{curve: elliptic.P521(), oid: asn1.ObjectIdentifier{1, 3, 132, 0, 35}},
	{curve: secp256k1Curve, oid: asn1.ObjectIdentifier{1, 3, 132, 0, 10}},
}

// Ed25519 and X25519 as CKA_EC_PARAMS (PKCS#11 v3.0, Edwards and
// Montgomery key objects): the RFC 8410 OIDs id-Ed25519 and id-X25519, or
// the PrintableString curve names.
var (
	oidEd25519        = asn1.ObjectIdentifier{1, 3, 101, 112}
	curveEdwards25519 = "edwards25519"
	oidX25519         = asn1.ObjectIdentifier{1, 3, 101, 110}
	curveCurve25519   = "curve25519"
)

// namedCurveDER is the DER of each namedCurves OID, in the same order.
// It is encoded on the first use of a curve, not at package
// initialisation: encoding/asn1's reflection has no business in a process
// that never touches an EC key (docs/bench.md, "One-shot processes, third
// pass").
var namedCurveDER = sync.OnceValue(func() [][]byte {
	curveDERBuilt.Store(true)
	out := make([][]byte, len(namedCurves))
	for i, c := range namedCurves {
		der, err := asn1.Marshal(c.oid)
		if err != nil {
			panic("mechanisms: encoding curve oid: " + err.Error())
		}
		out[i] = der
	}
	return out
})

// curveDERBuilt records that namedCurveDER ran (TestDERTablesLazy).
var curveDERBuilt atomic.Bool

func isSecp256k1(c elliptic.Curve) bool { return c == secp256k1Curve }

// CurveFromParams decodes CKA_EC_PARAMS: the DER of a namedCurve OID (the
// only form of X9.62 ECParameters this token supports, per CKF_EC_OID).
func CurveFromParams(der []byte) (elliptic.Curve, error) {
	for i, d := range namedCurveDER() {
		if bytes.Equal(der, d) {
			return namedCurves[i].curve, nil
		}
	}
	// Well-formed but unknown OIDs, explicit parameters (a SEQUENCE) and
	// implicitlyCA (NULL) are curves we do not support; anything else is
	// not an ECParameters value at all.
	var raw asn1.RawValue
	if rest, err := asn1.Unmarshal(der, &raw); err == nil && len(rest) == 0 && raw.Class == asn1.ClassUniversal {
		switch raw.Tag {
		case asn1.TagOID, asn1.TagSequence, asn1.TagNull, asn1.TagPrintableString:
			return nil, fmt.Errorf("mechanisms: ec params %x: %w", der, ck.CKR_CURVE_NOT_SUPPORTED)
		}
	}
	return nil, fmt.Errorf("mechanisms: ec params %x: %w", der, ck.CKR_DOMAIN_PARAMS_INVALID)
}

// ECParams encodes a curve as CKA_EC_PARAMS (DER namedCurve OID).
func ECParams(c elliptic.Curve) ([]byte, error) {
	for i, nc := range namedCurves {
		if nc.curve == c {
			return bytes.Clone(namedCurveDER()[i]), nil
		}
	}
	return nil, fmt.Errorf("mechanisms: curve %s: %w", curveName(c), ck.CKR_CURVE_NOT_SUPPORTED)
}

func curveName(c elliptic.Curve) string {
	if c == nil || c.Params() == nil {
		return "<nil>"
	}
	return c.Params().Name
}

// pointBytes is the X9.62 uncompressed encoding 04 || X || Y of a public key.
func pointBytes(pub *ecdsa.PublicKey) ([]byte, error) {
	if pub == nil || pub.Curve == nil {
		return nil, fmt.Errorf("mechanisms: ec point: no key: %w", ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	if isSecp256k1(pub.Curve) {
		k, err := secp256k1Public(pub)
		if err != nil {
			return nil, err
		}
		return k.SerializeUncompressed(), nil
	}
	return pub.Bytes()
}

// ECPoint encodes a public key as CKA_EC_POINT: a DER OCTET STRING holding
// the X9.62 uncompressed point, the form PKCS#11 v3.0 ("Elliptic curve
// public key objects") specifies and
// OpenSSL/libp11, NSS and SunPKCS11 expect. It returns nil for a key that is
// not a valid point on a supported curve.
func ECPoint(pub *ecdsa.PublicKey) []byte {
	pt, err := pointBytes(pub)
	if err != nil {
		return nil
	}
	der, err := asn1.Marshal(pt)
	if err != nil {
		return nil
	}
	return der
}

// unwrapPoint returns the encoded point inside b: b itself when it has the
// expected size, else the content of a DER OCTET STRING of that size.
func unwrapPoint(b []byte, size int) ([]byte, bool) {
	if len(b) == size {
		return b, true
	}
	var inner []byte
	rest, err := asn1.Unmarshal(b, &inner)
	if err != nil || len(rest) != 0 || len(inner) != size {
		return nil, false
	}
	return inner, true
}

// ParseECPoint decodes CKA_EC_POINT on curve c. It accepts the DER OCTET
// STRING form and, since some clients send it, the bare uncompressed point.
// Both start with 0x04; the length tells them apart. The point must be on
// the curve.
func ParseECPoint(c elliptic.Curve, b []byte) (*ecdsa.PublicKey, error) {
	if c == nil || c.Params() == nil {
		return nil, fmt.Errorf("mechanisms: ec point: no curve: %w", ck.CKR_CURVE_NOT_SUPPORTED)
	}
	pt, ok := unwrapPoint(b, 1+2*byteLen(c))
	if !ok {
		return nil, fmt.Errorf("mechanisms: ec point of %d bytes on %s: %w", len(b), curveName(c), ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	if isSecp256k1(c) {
		// ParsePubKey also takes the hybrid forms 06/07; only 04 is X9.62
		// uncompressed.
		if pt[0] != 4 {
			return nil, fmt.Errorf("mechanisms: ec point on secp256k1: format %#x: %w", pt[0], ck.CKR_ATTRIBUTE_VALUE_INVALID)
		}
		k, err := secp256k1.ParsePubKey(pt)
		if err != nil {
			return nil, fmt.Errorf("mechanisms: ec point on secp256k1: %w (%w)", ck.CKR_ATTRIBUTE_VALUE_INVALID, err)
		}
		return &ecdsa.PublicKey{Curve: secp256k1Curve, X: k.X(), Y: k.Y()}, nil
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(c, pt)
	if err != nil {
		return nil, fmt.Errorf("mechanisms: ec point on %s: %w (%w)", curveName(c), ck.CKR_ATTRIBUTE_VALUE_INVALID, err)
	}
	return pub, nil
}

// ECPrivateKey builds a private key from CKA_VALUE, the big-endian scalar d
// (PKCS#11 v3.0, "Elliptic curve private key objects"), deriving the public point. Clients sometimes strip
// leading zero bytes, so shorter values are padded to the curve's size.
func ECPrivateKey(c elliptic.Curve, d []byte) (*ecdsa.PrivateKey, error) {
	if c == nil || c.Params() == nil {
		return nil, fmt.Errorf("mechanisms: ec private key: no curve: %w", ck.CKR_CURVE_NOT_SUPPORTED)
	}
	n := byteLen(c)
	for len(d) > n && d[0] == 0 {
		d = d[1:]
	}
	if len(d) > n {
		return nil, fmt.Errorf("mechanisms: ec private key of %d bytes on %s: %w", len(d), curveName(c), ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	buf := make([]byte, n)
	defer clear(buf)
	copy(buf[n-len(d):], d)
	if isSecp256k1(c) {
		var s secp256k1.ModNScalar
		defer s.Zero()
		if overflow := s.SetByteSlice(buf); overflow || s.IsZero() {
			return nil, fmt.Errorf("mechanisms: ec private key on secp256k1: not in [1, n-1]: %w", ck.CKR_ATTRIBUTE_VALUE_INVALID)
		}
		pub := secp256k1.NewPrivateKey(&s).PubKey()
		return &ecdsa.PrivateKey{
			PublicKey: ecdsa.PublicKey{Curve: secp256k1Curve, X: pub.X(), Y: pub.Y()},
			D:         new(big.Int).SetBytes(buf),
		}, nil
	}
	priv, err := ecdsa.ParseRawPrivateKey(c, buf)
	if err != nil {
		return nil, fmt.Errorf("mechanisms: ec private key on %s: %w (%w)", curveName(c), ck.CKR_ATTRIBUTE_VALUE_INVALID, err)
	}
	return priv, nil
}

// ECPrivateValue is CKA_VALUE of an EC private key: d, big-endian, padded
// to the curve's byte length (the inverse of ECPrivateKey). The result is a
// fresh slice the caller may clear. (ecdsa.PrivateKey.Bytes is not: it
// returns the scalar inside crypto/ecdsa's per-key cache, and clearing it
// corrupts concurrent operations with the same key.)
func ECPrivateValue(k *ecdsa.PrivateKey) ([]byte, error) {
	if k == nil || k.Curve == nil || k.Curve.Params() == nil || k.D == nil {
		return nil, fmt.Errorf("mechanisms: ec private key: empty: %w", ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	if k.D.Sign() <= 0 || k.D.Cmp(k.Curve.Params().N) >= 0 {
		return nil, fmt.Errorf("mechanisms: ec private key on %s: not in [1, n-1]: %w", curveName(k.Curve), ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	return k.D.FillBytes(make([]byte, byteLen(k.Curve))), nil
}

// secp256k1Private converts a secp256k1 key to the library's form, for its
// signing and ECDH. The caller zeroes the result when done.
func secp256k1Private(k *ecdsa.PrivateKey) (*secp256k1.PrivateKey, error) {
	var buf [32]byte
	defer clear(buf[:])
	if k.D == nil || k.D.Sign() <= 0 || k.D.BitLen() > 256 {
		return nil, fmt.Errorf("mechanisms: secp256k1 private key out of range: %w", ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	k.D.FillBytes(buf[:])
	var s secp256k1.ModNScalar
	if overflow := s.SetBytes(&buf); overflow != 0 || s.IsZero() {
		return nil, fmt.Errorf("mechanisms: secp256k1 private key out of range: %w", ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	return secp256k1.NewPrivateKey(&s), nil
}

// secp256k1Public converts a secp256k1 public key to the library's form,
// checking that it is on the curve.
func secp256k1Public(k *ecdsa.PublicKey) (*secp256k1.PublicKey, error) {
	if k.X == nil || k.Y == nil || k.X.Sign() < 0 || k.Y.Sign() < 0 || k.X.BitLen() > 256 || k.Y.BitLen() > 256 {
		return nil, fmt.Errorf("mechanisms: secp256k1 public key out of range: %w", ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	var x, y secp256k1.FieldVal
	var b [32]byte
	if x.SetByteSlice(k.X.FillBytes(b[:])) {
		return nil, fmt.Errorf("mechanisms: secp256k1 public key x >= p: %w", ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	if y.SetByteSlice(k.Y.FillBytes(b[:])) {
		return nil, fmt.Errorf("mechanisms: secp256k1 public key y >= p: %w", ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	pub := secp256k1.NewPublicKey(&x, &y)
	if !pub.IsOnCurve() {
		return nil, fmt.Errorf("mechanisms: secp256k1 public key not on the curve: %w", ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	return pub, nil
}

// curveFromOIDOrName checks CKA_EC_PARAMS against one curve named either by
// OID or by PrintableString (the two forms PKCS#11 v3.0 allows for Edwards
// and Montgomery curves).
func curveFromOIDOrName(kind string, der []byte, oid asn1.ObjectIdentifier, name string) error {
	var raw asn1.RawValue
	rest, err := asn1.Unmarshal(der, &raw)
	if err != nil || len(rest) != 0 || raw.Class != asn1.ClassUniversal {
		return fmt.Errorf("mechanisms: %s params %x: %w", kind, der, ck.CKR_DOMAIN_PARAMS_INVALID)
	}
	switch raw.Tag {
	case asn1.TagOID:
		var got asn1.ObjectIdentifier
		if _, err := asn1.Unmarshal(der, &got); err != nil {
			return fmt.Errorf("mechanisms: %s params %x: %w", kind, der, ck.CKR_DOMAIN_PARAMS_INVALID)
		}
		if got.Equal(oid) {
			return nil
		}
	case asn1.TagPrintableString:
		if string(raw.Bytes) == name {
			return nil
		}
	}
	// Ed448/X448 and everything else well-formed.
	return fmt.Errorf("mechanisms: %s params %x: %w", kind, der, ck.CKR_CURVE_NOT_SUPPORTED)
}

// EdwardsCurveFromParams checks that CKA_EC_PARAMS names Ed25519, the one
// Edwards curve supported: either the OID id-Ed25519 (RFC 8410) or the
// PrintableString "edwards25519" (PKCS#11 v3.0, Edwards key objects).
func EdwardsCurveFromParams(der []byte) error {
	return curveFromOIDOrName("edwards", der, oidEd25519, curveEdwards25519)
}

// MontgomeryCurveFromParams checks that CKA_EC_PARAMS names X25519, the one
// Montgomery curve supported: the OID id-X25519 (RFC 8410) or the
// PrintableString "curve25519" (PKCS#11 v3.0, Montgomery key objects).
func MontgomeryCurveFromParams(der []byte) error {
	return curveFromOIDOrName("montgomery", der, oidX25519, curveCurve25519)
}

// X25519Params is CKA_EC_PARAMS written for X25519 keys: the OID form.
func X25519Params() []byte {
	der, _ := asn1.Marshal(oidX25519) // a valid OID: cannot fail
	return der
}

// X25519Point encodes an X25519 public key as CKA_EC_POINT: a DER OCTET
// STRING around the 32-byte little-endian u-coordinate (RFC 7748), the v3.0
// form (v3.1 made it the bare 32 bytes; ParseX25519Point takes both).
func X25519Point(pub *ecdh.PublicKey) []byte {
	der, _ := asn1.Marshal(pub.Bytes()) // an OCTET STRING: cannot fail
	return der
}

// ParseX25519Point decodes CKA_EC_POINT of an X25519 public key: the bare 32
// bytes or a DER OCTET STRING around them. Every 32-byte string is a
// u-coordinate (RFC 7748 §5); low-order points are caught when used.
func ParseX25519Point(b []byte) (*ecdh.PublicKey, error) {
	pt, ok := unwrapPoint(b, 32)
	if !ok {
		return nil, fmt.Errorf("mechanisms: x25519 point of %d bytes: %w", len(b), ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	pub, err := ecdh.X25519().NewPublicKey(pt)
	if err != nil {
		return nil, fmt.Errorf("mechanisms: x25519 point: %w (%w)", ck.CKR_ATTRIBUTE_VALUE_INVALID, err)
	}
	return pub, nil
}

// X25519PrivateKey builds an X25519 private key from CKA_VALUE, the 32-byte
// scalar as RFC 7748 encodes it.
func X25519PrivateKey(value []byte) (*ecdh.PrivateKey, error) {
	k, err := ecdh.X25519().NewPrivateKey(value)
	if err != nil {
		return nil, fmt.Errorf("mechanisms: x25519 private key of %d bytes: %w (%w)", len(value), ck.CKR_ATTRIBUTE_VALUE_INVALID, err)
	}
	return k, nil
}

// byteLen is the size in bytes of a curve's field elements and scalars.
func byteLen(c elliptic.Curve) int { return (c.Params().BitSize + 7) / 8 }
