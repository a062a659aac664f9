package attrs

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/asn1"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/mechanisms"
)

// The Montgomery schemas (table.go) in the exhaustive counts of
// attrs_test.go, through its registry (extra_test.go).
func init() {
	extraSchemas += 2 // CKO_PUBLIC_KEY and CKO_PRIVATE_KEY CKK_EC_MONTGOMERY
	extraSecrets = append(extraSecrets, struct {
		class ck.ObjectClass
		kt    ck.KeyType
		a     ck.AttributeType
	}{ck.CKO_PRIVATE_KEY, ck.CKK_EC_MONTGOMERY, ck.CKA_VALUE})
}

// secp256k1 keys (SEC 2, OID 1.3.132.0.10) are created, generated and
// parsed like the NIST curves': CKA_EC_PARAMS, CKA_EC_POINT and CKA_VALUE
// round-trip.
func TestSecp256k1Keys(t *testing.T) {
	gen, ok := mechanisms.Lookup(ck.CKM_EC_KEY_PAIR_GEN)
	require.True(t, ok)
	params := mustOID(t, 1, 3, 132, 0, 10)
	pub, priv, err := gen.GenerateKeyPair(rand.Reader, mechanisms.KeyGenParams{ECParams: params})
	require.NoError(t, err)

	privT := mustTemplate(t, priv)
	assert.Equal(t, params, privT[ck.CKA_EC_PARAMS])
	require.Len(t, privT[ck.CKA_VALUE], 32)
	pubT := mustTemplate(t, pub)
	assert.Equal(t, privT[ck.CKA_EC_POINT], pubT[ck.CKA_EC_POINT])
	require.Len(t, pubT[ck.CKA_EC_POINT], 2+65) // OCTET STRING around 04 || X || Y

	got, err := Build(OpCreate, ck.CKO_PRIVATE_KEY, ck.CKK_EC, 0, Template{ck.CKA_EC_PARAMS: params, ck.CKA_VALUE: privT[ck.CKA_VALUE]})
	require.NoError(t, err)
	assert.Equal(t, pubT[ck.CKA_EC_POINT], got[ck.CKA_EC_POINT])
	k, err := KeyFromTemplate(ck.CKO_PRIVATE_KEY, ck.CKK_EC, got)
	require.NoError(t, err)
	assert.Equal(t, priv, k)

	got, err = Build(OpCreate, ck.CKO_PUBLIC_KEY, ck.CKK_EC, 0, Template{ck.CKA_EC_PARAMS: params, ck.CKA_EC_POINT: pubT[ck.CKA_EC_POINT]})
	require.NoError(t, err)
	k, err = KeyFromTemplate(ck.CKO_PUBLIC_KEY, ck.CKK_EC, got)
	require.NoError(t, err)
	assert.Equal(t, pub, k)

	// A P-256 point is not a secp256k1 point.
	_, err = Build(OpCreate, ck.CKO_PUBLIC_KEY, ck.CKK_EC, 0, Template{ck.CKA_EC_PARAMS: params,
		ck.CKA_EC_POINT: append([]byte{4, 65, 4}, make([]byte, 64)...)})
	requireRV(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
}

// X25519 keys (CKK_EC_MONTGOMERY): both CKA_EC_PARAMS forms, both
// CKA_EC_POINT forms (v3.0 DER, v3.1 bare), generation defaults.
func TestX25519Keys(t *testing.T) {
	gen, ok := mechanisms.Lookup(ck.CKM_EC_MONTGOMERY_KEY_PAIR_GEN)
	require.True(t, ok)
	oid := mustOID(t, 1, 3, 101, 110)
	name, err := asn1.MarshalWithParams("curve25519", "printable")
	require.NoError(t, err)
	pub, priv, err := gen.GenerateKeyPair(rand.Reader, mechanisms.KeyGenParams{ECParams: name})
	require.NoError(t, err)
	xpriv := priv.(*ecdh.PrivateKey)

	privT := mustTemplate(t, priv)
	assert.Equal(t, oid, privT[ck.CKA_EC_PARAMS])
	assert.Equal(t, xpriv.Bytes(), privT[ck.CKA_VALUE])
	pubT := mustTemplate(t, pub)
	assert.Equal(t, append([]byte{4, 32}, xpriv.PublicKey().Bytes()...), pubT[ck.CKA_EC_POINT])

	for _, params := range [][]byte{oid, name} {
		got, err := Build(OpCreate, ck.CKO_PRIVATE_KEY, ck.CKK_EC_MONTGOMERY, 0, Template{ck.CKA_EC_PARAMS: params, ck.CKA_VALUE: privT[ck.CKA_VALUE]})
		require.NoError(t, err)
		assert.Equal(t, pubT[ck.CKA_EC_POINT], got[ck.CKA_EC_POINT])
		assert.Equal(t, params, got[ck.CKA_EC_PARAMS], "the given form is kept")
		assert.Equal(t, Bool(true), got[ck.CKA_DERIVE])
		assert.Equal(t, Bool(false), got[ck.CKA_SIGN])
		k, err := KeyFromTemplate(ck.CKO_PRIVATE_KEY, ck.CKK_EC_MONTGOMERY, got)
		require.NoError(t, err)
		assert.True(t, xpriv.Equal(k))

		for _, point := range [][]byte{pubT[ck.CKA_EC_POINT], xpriv.PublicKey().Bytes()} {
			got, err := Build(OpCreate, ck.CKO_PUBLIC_KEY, ck.CKK_EC_MONTGOMERY, 0, Template{ck.CKA_EC_PARAMS: params, ck.CKA_EC_POINT: point})
			require.NoError(t, err)
			k, err := KeyFromTemplate(ck.CKO_PUBLIC_KEY, ck.CKK_EC_MONTGOMERY, got)
			require.NoError(t, err)
			assert.True(t, xpriv.PublicKey().Equal(k))
		}
	}

	pubGen, err := Build(OpGeneratePublic, ck.CKO_PUBLIC_KEY, ck.CKK_EC_MONTGOMERY, ck.CKM_EC_MONTGOMERY_KEY_PAIR_GEN, Template{ck.CKA_EC_PARAMS: oid})
	require.NoError(t, err)
	pubGen, err = WithMaterial(pubGen, pubT)
	require.NoError(t, err)
	assert.Equal(t, pubT[ck.CKA_EC_POINT], pubGen[ck.CKA_EC_POINT])

	for name, c := range map[string]struct {
		class ck.ObjectClass
		t     Template
		want  ck.RV
	}{
		"31-byte value":  {ck.CKO_PRIVATE_KEY, Template{ck.CKA_EC_PARAMS: oid, ck.CKA_VALUE: make([]byte, 31)}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		"33-byte point":  {ck.CKO_PUBLIC_KEY, Template{ck.CKA_EC_PARAMS: oid, ck.CKA_EC_POINT: make([]byte, 33)}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		"X448":           {ck.CKO_PUBLIC_KEY, Template{ck.CKA_EC_PARAMS: mustOID(t, 1, 3, 101, 111), ck.CKA_EC_POINT: make([]byte, 56)}, ck.CKR_CURVE_NOT_SUPPORTED},
		"Ed25519 params": {ck.CKO_PRIVATE_KEY, Template{ck.CKA_EC_PARAMS: mustOID(t, 1, 3, 101, 112), ck.CKA_VALUE: make([]byte, 32)}, ck.CKR_CURVE_NOT_SUPPORTED},
		"no value":       {ck.CKO_PRIVATE_KEY, Template{ck.CKA_EC_PARAMS: oid}, ck.CKR_TEMPLATE_INCOMPLETE},
	} {
		_, err := Build(OpCreate, c.class, ck.CKK_EC_MONTGOMERY, 0, c.t)
		assert.ErrorIs(t, err, c.want, name)
	}
	assert.True(t, IsSecret(ck.CKO_PRIVATE_KEY, ck.CKK_EC_MONTGOMERY, ck.CKA_VALUE))
}
