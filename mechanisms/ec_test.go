package mechanisms

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/asn1"
	"math/big"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
)

func TestECParams(t *testing.T) {
	// DER of id-ecPrime256v1 / secp256r1, 1.2.840.10045.3.1.7 (RFC 5480 §2.1.1.1).
	p256, err := ECParams(elliptic.P256())
	require.NoError(t, err)
	assert.Equal(t, unhex("06082a8648ce3d030107"), p256)
	// secp384r1, 1.3.132.0.34.
	p384, err := ECParams(elliptic.P384())
	require.NoError(t, err)
	assert.Equal(t, unhex("06052b81040022"), p384)

	// secp256k1, 1.3.132.0.10 (SEC 2 §A.2).
	k1, err := ECParams(secp256k1Curve)
	require.NoError(t, err)
	assert.Equal(t, unhex("06052b8104000a"), k1)

	for _, c := range allCurves {
		der, err := ECParams(c)
		require.NoError(t, err)
		got, err := CurveFromParams(der)
		require.NoError(t, err)
		assert.Equal(t, c, got)
	}

	for name, c := range map[string]struct {
		der  []byte
		want ck.RV
	}{
		"secp192r1":      {unhex("06082a8648ce3d030101"), ck.CKR_CURVE_NOT_SUPPORTED},
		"explicit":       {unhex("3003020101"), ck.CKR_CURVE_NOT_SUPPORTED},
		"implicitlyCA":   {unhex("0500"), ck.CKR_CURVE_NOT_SUPPORTED},
		"trailing bytes": {append(bytes.Clone(p256), 0), ck.CKR_DOMAIN_PARAMS_INVALID},
		"truncated":      {p256[:len(p256)-1], ck.CKR_DOMAIN_PARAMS_INVALID},
		"empty":          {nil, ck.CKR_DOMAIN_PARAMS_INVALID},
	} {
		_, err := CurveFromParams(c.der)
		assert.ErrorIs(t, err, c.want, name)
	}
}

// allCurves are the curves CKA_EC_PARAMS may name.
var allCurves = []elliptic.Curve{elliptic.P224(), elliptic.P256(), elliptic.P384(), elliptic.P521(), secp256k1Curve}

func genEC(t *testing.T, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	_, priv, err := generateEC(rand.Reader, KeyGenParams{ECParams: must(ECParams(c))})
	require.NoError(t, err)
	return priv.(*ecdsa.PrivateKey)
}

func TestECPoint(t *testing.T) {
	for _, c := range allCurves {
		priv := genEC(t, c)
		pt := ECPoint(&priv.PublicKey)
		raw, err := pointBytes(&priv.PublicKey)
		require.NoError(t, err)
		// X9.62: 04 || X || Y, each padded to the field size.
		want := append([]byte{4}, priv.X.FillBytes(make([]byte, byteLen(c)))...)
		want = append(want, priv.Y.FillBytes(make([]byte, byteLen(c)))...)
		assert.Equal(t, want, raw)

		// DER OCTET STRING (tag 4) around 04 || X || Y.
		var inner []byte
		rest, err := asn1.Unmarshal(pt, &inner)
		require.NoError(t, err)
		assert.Empty(t, rest)
		assert.Equal(t, byte(0x04), pt[0])
		assert.Equal(t, raw, inner)
		assert.Equal(t, byte(0x04), inner[0])
		assert.Len(t, inner, 1+2*byteLen(c))

		for _, form := range [][]byte{pt, raw} {
			pub, err := ParseECPoint(c, form)
			require.NoError(t, err)
			assert.True(t, priv.PublicKey.Equal(pub))
		}

		// Off the curve, wrong length, compressed, other curve.
		bad := bytes.Clone(raw)
		bad[len(bad)-1] ^= 1
		_, err = ParseECPoint(c, bad)
		assert.ErrorIs(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
		_, err = ParseECPoint(c, raw[:len(raw)-1])
		assert.ErrorIs(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
		comp := append([]byte{0x02 | raw[len(raw)-1]&1}, raw[1:1+byteLen(c)]...)
		_, err = ParseECPoint(c, comp)
		assert.ErrorIs(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
		_, err = ParseECPoint(c, append(bytes.Clone(pt), 0))
		assert.ErrorIs(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	_, err = ParseECPoint(elliptic.P384(), ECPoint(&p256.PublicKey))
	assert.ErrorIs(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	// A P-256 point is (almost surely) not on secp256k1, and back; the
	// hybrid form 06/07 that the secp256k1 library also parses is refused.
	_, err = ParseECPoint(secp256k1Curve, ECPoint(&p256.PublicKey))
	assert.ErrorIs(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	k1 := genEC(t, secp256k1Curve)
	_, err = ParseECPoint(elliptic.P256(), ECPoint(&k1.PublicKey))
	assert.ErrorIs(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	hybrid := must(pointBytes(&k1.PublicKey))
	hybrid[0] = 6 | byte(k1.Y.Bit(0))
	_, err = ParseECPoint(secp256k1Curve, hybrid)
	assert.ErrorIs(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	// An invalid key has no CKA_EC_POINT.
	assert.Nil(t, ECPoint(&ecdsa.PublicKey{Curve: secp256k1Curve, X: big.NewInt(1), Y: big.NewInt(1)}))
	// P-256's DER form is 04 41 04 ...; P-521's needs a long-form length.
	assert.Equal(t, unhex("044104"), ECPoint(&p256.PublicKey)[:3])
	p521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	require.NoError(t, err)
	assert.Equal(t, unhex("04818504"), ECPoint(&p521.PublicKey)[:4])
}

func TestECPrivateKey(t *testing.T) {
	for _, c := range allCurves {
		priv := genEC(t, c)
		d, err := ECPrivateValue(priv)
		require.NoError(t, err)
		require.Len(t, d, byteLen(c))
		got, err := ECPrivateKey(c, d)
		require.NoError(t, err)
		assert.True(t, priv.Equal(got))
		assert.True(t, priv.PublicKey.Equal(&got.PublicKey))

		// Leading zeros stripped, or one extra.
		small := make([]byte, byteLen(c))
		small[len(small)-1] = 7
		k, err := ECPrivateKey(c, []byte{7})
		require.NoError(t, err)
		want, err := ECPrivateKey(c, small)
		require.NoError(t, err)
		assert.True(t, want.Equal(k))
		assert.Equal(t, small, must(ECPrivateValue(k)))
		// d = 7: the public point is 7G.
		x, y := c.ScalarBaseMult([]byte{7})
		assert.Zero(t, x.Cmp(k.X))
		assert.Zero(t, y.Cmp(k.Y))
		k, err = ECPrivateKey(c, append([]byte{0}, d...))
		require.NoError(t, err)
		assert.True(t, priv.Equal(k))

		for name, d := range map[string][]byte{
			"zero":     make([]byte, byteLen(c)),
			"too long": append([]byte{1}, d...),
			"order":    c.Params().N.Bytes(),
		} {
			_, err := ECPrivateKey(c, d)
			assert.ErrorIs(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID, name)
		}
		_, err = ECPrivateValue(&ecdsa.PrivateKey{PublicKey: priv.PublicKey, D: c.Params().N})
		assert.ErrorIs(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
}

// ECPrivateValue's result is the caller's: clearing it leaves the key
// usable (ecdsa.PrivateKey.Bytes returns crypto/ecdsa's cached scalar).
func TestECPrivateValueIsACopy(t *testing.T) {
	priv := genEC(t, elliptic.P256())
	want := must(ECPrivateValue(priv))
	clear(must(ECPrivateValue(priv)))
	assert.Equal(t, want, must(ECPrivateValue(priv)))
	h := make([]byte, 32)
	r, s, err := ecdsa.Sign(rand.Reader, priv, h)
	require.NoError(t, err)
	assert.True(t, ecdsa.Verify(&priv.PublicKey, h, r, s))
}

func TestMontgomeryCurveFromParams(t *testing.T) {
	printable := must(asn1.MarshalWithParams("curve25519", "printable"))
	// id-X25519, 1.3.101.110 (RFC 8410 §3).
	assert.Equal(t, unhex("06032b656e"), X25519Params())
	assert.NoError(t, MontgomeryCurveFromParams(X25519Params()))
	assert.NoError(t, MontgomeryCurveFromParams(printable))
	for name, c := range map[string]struct {
		der  []byte
		want ck.RV
	}{
		"id-X448":      {unhex("06032b656f"), ck.CKR_CURVE_NOT_SUPPORTED},
		"curve448":     {must(asn1.MarshalWithParams("curve448", "printable")), ck.CKR_CURVE_NOT_SUPPORTED},
		"id-Ed25519":   {unhex("06032b6570"), ck.CKR_CURVE_NOT_SUPPORTED},
		"edwards25519": {must(asn1.MarshalWithParams("edwards25519", "printable")), ck.CKR_CURVE_NOT_SUPPORTED},
		"garbage":      {[]byte{0x13}, ck.CKR_DOMAIN_PARAMS_INVALID},
		"empty":        {nil, ck.CKR_DOMAIN_PARAMS_INVALID},
	} {
		assert.ErrorIs(t, MontgomeryCurveFromParams(c.der), c.want, name)
	}
}

// RFC 7748 §6.1: Alice's and Bob's keys, their public keys and K.
func TestX25519Encodings(t *testing.T) {
	a, err := X25519PrivateKey(unhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"))
	require.NoError(t, err)
	assert.Equal(t, unhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"), a.PublicKey().Bytes())
	bPub := unhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
	for _, form := range [][]byte{bPub, must(asn1.Marshal(bPub))} {
		pub, err := ParseX25519Point(form)
		require.NoError(t, err)
		assert.Equal(t, bPub, pub.Bytes())
	}
	assert.Equal(t, append([]byte{4, 32}, bPub...), X25519Point(must(ParseX25519Point(bPub))))
	z, err := ecdhDerive(a, &ECDH1Params{KDF: ck.CKD_NULL, PublicData: bPub}, DeriveTarget{})
	require.NoError(t, err)
	assert.Equal(t, unhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"), z)

	for name, b := range map[string][]byte{"short": bPub[:31], "long": append(bytes.Clone(bPub), 0), "bad der": append([]byte{4, 33}, bPub...)} {
		_, err := ParseX25519Point(b)
		assert.ErrorIs(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID, name)
	}
	_, err = X25519PrivateKey(make([]byte, 31))
	assert.ErrorIs(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
}

func TestEdwardsCurveFromParams(t *testing.T) {
	printable, err := asn1.MarshalWithParams("edwards25519", "printable")
	require.NoError(t, err)
	// id-Ed25519, 1.3.101.112 (RFC 8410 §3).
	assert.NoError(t, EdwardsCurveFromParams(unhex("06032b6570")))
	assert.NoError(t, EdwardsCurveFromParams(printable))

	ed448, _ := asn1.MarshalWithParams("edwards448", "printable")
	utf8, _ := asn1.MarshalWithParams("edwards25519", "utf8")
	for name, c := range map[string]struct {
		der  []byte
		want ck.RV
	}{
		"id-Ed448":          {unhex("06032b6571"), ck.CKR_CURVE_NOT_SUPPORTED},
		"edwards448":        {ed448, ck.CKR_CURVE_NOT_SUPPORTED},
		"P-256":             {unhex("06082a8648ce3d030107"), ck.CKR_CURVE_NOT_SUPPORTED},
		"utf8 edwards25519": {utf8, ck.CKR_CURVE_NOT_SUPPORTED},
		"garbage":           {[]byte{0x06}, ck.CKR_DOMAIN_PARAMS_INVALID},
		"trailing":          {append(unhex("06032b6570"), 0), ck.CKR_DOMAIN_PARAMS_INVALID},
	} {
		assert.ErrorIs(t, EdwardsCurveFromParams(c.der), c.want, name)
	}
}
