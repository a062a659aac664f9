package attrs

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/mechanisms"
)

// The ML-DSA schemas (mldsa.go) in the exhaustive counts of attrs_test.go.
func init() {
	extraSchemas += 2 // CKO_PUBLIC_KEY and CKO_PRIVATE_KEY CKK_ML_DSA
	for _, a := range []ck.AttributeType{ck.CKA_SEED, ck.CKA_VALUE} {
		extraSecrets = append(extraSecrets, struct {
			class ck.ObjectClass
			kt    ck.KeyType
			a     ck.AttributeType
		}{ck.CKO_PRIVATE_KEY, ck.CKK_ML_DSA, a})
	}
}

// TestMLDSATemplates: PKCS#11 3.2's ML-DSA attribute forms. The private
// key gives CKA_PARAMETER_SET, CKA_SEED and the expanded CKA_VALUE; the
// public key CKA_PARAMETER_SET and CKA_VALUE. A private key is created from
// the seed, with or without a matching expanded key; a mismatched one is
// CKR_ATTRIBUTE_VALUE_INVALID, the expanded key alone
// CKR_TEMPLATE_INCOMPLETE (crypto/mldsa signs from the seed only).
func TestMLDSATemplates(t *testing.T) {
	sizes := map[ck.ULong][2]int{ck.CKP_ML_DSA_44: {1312, 2560}, ck.CKP_ML_DSA_65: {1952, 4032}, ck.CKP_ML_DSA_87: {2592, 4896}}
	for set, sz := range sizes {
		seed := bytes.Repeat([]byte{byte(set)}, 32)
		sk, err := mechanisms.MLDSAPrivateKey(set, seed)
		require.NoError(t, err)
		privT := mustTemplate(t, sk)
		pubT := mustTemplate(t, sk.PublicKey())
		assert.Equal(t, ULong(set), privT[ck.CKA_PARAMETER_SET])
		assert.Equal(t, ULong(set), pubT[ck.CKA_PARAMETER_SET])
		assert.Equal(t, seed, privT[ck.CKA_SEED])
		assert.Len(t, pubT[ck.CKA_VALUE], sz[0])
		assert.Len(t, privT[ck.CKA_VALUE], sz[1])

		pub, err := KeyFromTemplate(ck.CKO_PUBLIC_KEY, ck.CKK_ML_DSA, pubT)
		require.NoError(t, err)
		assert.True(t, sk.PublicKey().Equal(pub))

		base := Template{ck.CKA_CLASS: ULong(ck.ULong(ck.CKO_PRIVATE_KEY)), ck.CKA_KEY_TYPE: ULong(ck.ULong(ck.CKK_ML_DSA)),
			ck.CKA_PARAMETER_SET: ULong(set)}
		for name, tc := range map[string]struct {
			add  Template
			want ck.RV
		}{
			"seed":              {Template{ck.CKA_SEED: seed}, 0},
			"seed and expanded": {Template{ck.CKA_SEED: seed, ck.CKA_VALUE: privT[ck.CKA_VALUE]}, 0},
			"mismatch":          {Template{ck.CKA_SEED: bytes.Repeat([]byte{9}, 32), ck.CKA_VALUE: privT[ck.CKA_VALUE]}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
			"expanded alone":    {Template{ck.CKA_VALUE: privT[ck.CKA_VALUE]}, ck.CKR_TEMPLATE_INCOMPLETE},
			"short seed":        {Template{ck.CKA_SEED: seed[:31]}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		} {
			tmpl := base.Clone()
			for a, v := range tc.add {
				tmpl[a] = v
			}
			full, err := Build(OpCreate, ck.CKO_PRIVATE_KEY, ck.CKK_ML_DSA, 0, tmpl)
			if tc.want != 0 {
				requireRV(t, err, tc.want)
				continue
			}
			require.NoError(t, err, name)
			assert.Equal(t, privT[ck.CKA_VALUE], full[ck.CKA_VALUE], name)
			k, err := KeyFromTemplate(ck.CKO_PRIVATE_KEY, ck.CKK_ML_DSA, full)
			require.NoError(t, err, name)
			assert.True(t, sk.Equal(k), name)
		}
	}
	// An unknown parameter set or a public key of the wrong length.
	_, err := KeyFromTemplate(ck.CKO_PUBLIC_KEY, ck.CKK_ML_DSA, Template{ck.CKA_PARAMETER_SET: ULong(4), ck.CKA_VALUE: make([]byte, 1312)})
	requireRV(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	_, err = KeyFromTemplate(ck.CKO_PUBLIC_KEY, ck.CKK_ML_DSA, Template{ck.CKA_PARAMETER_SET: ULong(ck.CKP_ML_DSA_65), ck.CKA_VALUE: make([]byte, 1312)})
	requireRV(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
}
