package mechanisms

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/asn1"
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

	for _, c := range []elliptic.Curve{elliptic.P224(), elliptic.P256(), elliptic.P384(), elliptic.P521()} {
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
		"secp256k1":      {unhex("06052b8104000a"), ck.CKR_CURVE_NOT_SUPPORTED},
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

func TestECPoint(t *testing.T) {
	for _, c := range []elliptic.Curve{elliptic.P224(), elliptic.P256(), elliptic.P384(), elliptic.P521()} {
		priv, err := ecdsa.GenerateKey(c, rand.Reader)
		require.NoError(t, err)
		pt := ECPoint(&priv.PublicKey)
		raw, err := priv.PublicKey.Bytes()
		require.NoError(t, err)

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
	// P-256's DER form is 04 41 04 ...; P-521's needs a long-form length.
	assert.Equal(t, unhex("044104"), ECPoint(&p256.PublicKey)[:3])
	p521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	require.NoError(t, err)
	assert.Equal(t, unhex("04818504"), ECPoint(&p521.PublicKey)[:4])
}

func TestECPrivateKey(t *testing.T) {
	for _, c := range []elliptic.Curve{elliptic.P256(), elliptic.P384()} {
		priv, err := ecdsa.GenerateKey(c, rand.Reader)
		require.NoError(t, err)
		d, err := priv.Bytes()
		require.NoError(t, err)
		got, err := ECPrivateKey(c, d)
		require.NoError(t, err)
		assert.True(t, priv.Equal(got))
		assert.True(t, priv.PublicKey.Equal(&got.PublicKey))

		// Leading zeros stripped, or one extra.
		small := make([]byte, byteLen(c))
		small[len(small)-1] = 7
		k, err := ECPrivateKey(c, []byte{7})
		require.NoError(t, err)
		want, err := ecdsa.ParseRawPrivateKey(c, small)
		require.NoError(t, err)
		assert.True(t, want.Equal(k))
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
	}
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
