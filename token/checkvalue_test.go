package token

import (
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token/attrs"
)

// TestCheckValueSecretKeysOnly: CKA_CHECK_VALUE is a secret key's (and a
// certificate's) attribute, in both profiles; an RSA or EC key answers
// CKR_ATTRIBUTE_TYPE_INVALID. PKCS#11 3.0 defines it for certificates and
// secret keys only. CloudHSM shows a check value for asymmetric keys too,
// "the first 3 bytes of the SHA-1 hash of the public key"
// (UG:chsm-cli-key-attribute-details), without saying which encoding of
// the public key it hashes (SubjectPublicKeyInfo, PKCS#1, the bare modulus
// or point...), and no AWS example has both a whole public key and its
// check value to tell. A value gohsm guessed would be compared against
// CloudHSM's or a script's and mislead; so gohsm gives none (docs/cloudhsm.md,
// row 12).
func TestCheckValueSecretKeysOnly(t *testing.T) {
	attrsBothProfiles(t, func(t *testing.T, cloudhsm bool) {
		m, h := attrsTestToken(t, map[bool]string{false: "standard", true: "cloudhsm"}[cloudhsm])
		pub, priv, err := attrsRSAPair(m, h, attrs.Template{ck.CKA_VERIFY: attrs.Bool(true)}, attrs.Template{ck.CKA_SIGN: attrs.Bool(true)})
		require.NoError(t, err)
		for _, k := range []ck.ULong{pub, priv} {
			r, err := m.GetAttributeValue(h, k, []ck.AttributeType{ck.CKA_CHECK_VALUE})
			require.NoError(t, err) // the answer is per attribute
			require.ErrorIs(t, r[0].Err, ck.CKR_ATTRIBUTE_TYPE_INVALID)
		}
		aes, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN},
			attrs.Template{ck.CKA_VALUE_LEN: attrs.ULong(32), ck.CKA_ENCRYPT: attrs.Bool(true)})
		require.NoError(t, err)
		r, err := m.GetAttributeValue(h, aes, []ck.AttributeType{ck.CKA_CHECK_VALUE})
		require.NoError(t, err)
		require.Len(t, r[0].Value, 3)
	})
}
