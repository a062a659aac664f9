package mechanisms

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/asn1"
	"fmt"

	"gohsm/internal/ck"
)

// namedCurves are the prime curves CKA_EC_PARAMS may name, by their OIDs
// from RFC 5480 §2.1.1.1 (secp224r1, secp256r1, secp384r1, secp521r1).
// Which of them a mechanism accepts is its row's key size range.
var namedCurves = []struct {
	curve elliptic.Curve
	oid   asn1.ObjectIdentifier
	der   []byte // set by init from oid
}{
	{curve: elliptic.P224(), oid: asn1.ObjectIdentifier{1, 3, 132, 0, 33}},
	{curve: elliptic.P256(), oid: asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}},
	{curve: elliptic.P384(), oid: asn1.ObjectIdentifier{1, 3, 132, 0, 34}},
	{curve: elliptic.P521(), oid: asn1.ObjectIdentifier{1, 3, 132, 0, 35}},
}

// Ed25519 as CKA_EC_PARAMS (PKCS#11 v3.0, Edwards key objects): the RFC 8410 OID
// id-Ed25519, or the PrintableString curve name.
var (
	oidEd25519        = asn1.ObjectIdentifier{1, 3, 101, 112}
	curveEdwards25519 = "edwards25519"
)

func init() {
	for i := range namedCurves {
		der, err := asn1.Marshal(namedCurves[i].oid)
		if err != nil {
			panic("mechanisms: encoding curve oid: " + err.Error())
		}
		namedCurves[i].der = der
	}
}

// CurveFromParams decodes CKA_EC_PARAMS: the DER of a namedCurve OID (the
// only form of X9.62 ECParameters this token supports, per CKF_EC_NAMEDCURVE).
func CurveFromParams(der []byte) (elliptic.Curve, error) {
	for _, c := range namedCurves {
		if bytes.Equal(der, c.der) {
			return c.curve, nil
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
	for _, nc := range namedCurves {
		if nc.curve == c {
			return bytes.Clone(nc.der), nil
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

// ECPoint encodes a public key as CKA_EC_POINT: a DER OCTET STRING holding
// the X9.62 uncompressed point, the form PKCS#11 v3.0 ("Elliptic curve
// public key objects") specifies and
// OpenSSL/libp11, NSS and SunPKCS11 expect. It returns nil for a key that is
// not a valid point on a supported curve.
func ECPoint(pub *ecdsa.PublicKey) []byte {
	pt, err := pub.Bytes()
	if err != nil {
		return nil
	}
	der, err := asn1.Marshal(pt)
	if err != nil {
		return nil
	}
	return der
}

// ParseECPoint decodes CKA_EC_POINT on curve c. It accepts the DER OCTET
// STRING form and, since some clients send it, the bare uncompressed point.
// Both start with 0x04; the length tells them apart.
func ParseECPoint(c elliptic.Curve, b []byte) (*ecdsa.PublicKey, error) {
	if c == nil || c.Params() == nil {
		return nil, fmt.Errorf("mechanisms: ec point: no curve: %w", ck.CKR_CURVE_NOT_SUPPORTED)
	}
	size := 1 + 2*byteLen(c)
	pt := b
	if len(b) != size {
		var inner []byte
		rest, err := asn1.Unmarshal(b, &inner)
		if err != nil || len(rest) != 0 || len(inner) != size {
			return nil, fmt.Errorf("mechanisms: ec point of %d bytes on %s: %w", len(b), curveName(c), ck.CKR_ATTRIBUTE_VALUE_INVALID)
		}
		pt = inner
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
	priv, err := ecdsa.ParseRawPrivateKey(c, buf)
	if err != nil {
		return nil, fmt.Errorf("mechanisms: ec private key on %s: %w (%w)", curveName(c), ck.CKR_ATTRIBUTE_VALUE_INVALID, err)
	}
	return priv, nil
}

// EdwardsCurveFromParams checks that CKA_EC_PARAMS names Ed25519, the one
// Edwards curve supported: either the OID id-Ed25519 (RFC 8410) or the
// PrintableString "edwards25519" (PKCS#11 v3.0, Edwards key objects).
func EdwardsCurveFromParams(der []byte) error {
	var raw asn1.RawValue
	rest, err := asn1.Unmarshal(der, &raw)
	if err != nil || len(rest) != 0 || raw.Class != asn1.ClassUniversal {
		return fmt.Errorf("mechanisms: edwards params %x: %w", der, ck.CKR_DOMAIN_PARAMS_INVALID)
	}
	switch raw.Tag {
	case asn1.TagOID:
		var oid asn1.ObjectIdentifier
		if _, err := asn1.Unmarshal(der, &oid); err != nil {
			return fmt.Errorf("mechanisms: edwards params %x: %w", der, ck.CKR_DOMAIN_PARAMS_INVALID)
		}
		if oid.Equal(oidEd25519) {
			return nil
		}
	case asn1.TagPrintableString:
		if string(raw.Bytes) == curveEdwards25519 {
			return nil
		}
	}
	// Ed448 and everything else well-formed.
	return fmt.Errorf("mechanisms: edwards params %x: %w", der, ck.CKR_CURVE_NOT_SUPPORTED)
}

// byteLen is the size in bytes of a curve's field elements and scalars.
func byteLen(c elliptic.Curve) int { return (c.Params().BitSize + 7) / 8 }
