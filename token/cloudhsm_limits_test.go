package token

import (
	"crypto/aes"
	"crypto/cipher"
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/mechanisms"
	"gohsm/token/attrs"
)

// TestCloudHSMKeySizeLimits: behaviour 14. RSA 2048-4096 in 256-bit
// steps, AES 16/24/32 bytes, generic secrets 1-800 bytes, no Edwards
// keys, at generation, creation, unwrapping and derivation, with
// CKR_ATTRIBUTE_VALUE_INVALID; standard holds what its mechanisms hold.
func TestCloudHSMKeySizeLimits(t *testing.T) {
	attrsBothProfiles(t, func(t *testing.T, cloudhsm bool) {
		m, h := attrsTestToken(t, map[bool]string{false: "standard", true: "cloudhsm"}[cloudhsm])
		// Generation.
		genRSA := func(bits ck.ULong) error {
			_, _, err := attrsRSAPair(m, h, attrs.Template{ck.CKA_MODULUS_BITS: attrs.ULong(bits)}, nil)
			return err
		}
		attrsWant(t, cloudhsm, genRSA(1024), ck.CKR_ATTRIBUTE_VALUE_INVALID)
		attrsWant(t, cloudhsm, genRSA(2056), ck.CKR_ATTRIBUTE_VALUE_INVALID)
		require.NoError(t, genRSA(2048))
		genSecret := func(mech ck.MechanismType, n ck.ULong) error {
			_, err := m.GenerateKey(h, Mechanism{Type: mech}, attrs.Template{ck.CKA_VALUE_LEN: attrs.ULong(n)})
			return err
		}
		require.NoError(t, genSecret(ck.CKM_GENERIC_SECRET_KEY_GEN, 800))
		require.NoError(t, genSecret(ck.CKM_GENERIC_SECRET_KEY_GEN, 1))
		attrsWant(t, cloudhsm, genSecret(ck.CKM_GENERIC_SECRET_KEY_GEN, 801), ck.CKR_ATTRIBUTE_VALUE_INVALID)
		for _, n := range []ck.ULong{16, 24, 32} {
			require.NoError(t, genSecret(ck.CKM_AES_KEY_GEN, n))
		}
		requireRVBoth := func(err error) { attrsRV(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID) }
		requireRVBoth(genSecret(ck.CKM_AES_KEY_GEN, 20))

		// Creation.
		rsaPub := func(bits int) error {
			_, err := m.CreateObject(h, attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_PUBLIC_KEY)),
				ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_RSA)), ck.CKA_MODULUS: oddNumber(t, bits).Bytes(), ck.CKA_PUBLIC_EXPONENT: attrsPubExp})
			return err
		}
		require.NoError(t, rsaPub(2304))
		require.NoError(t, rsaPub(4096))
		attrsWant(t, cloudhsm, rsaPub(2305), ck.CKR_ATTRIBUTE_VALUE_INVALID)
		attrsWant(t, cloudhsm, rsaPub(4352), ck.CKR_ATTRIBUTE_VALUE_INVALID)
		attrsWant(t, cloudhsm, rsaPub(1024), ck.CKR_ATTRIBUTE_VALUE_INVALID)
		secret := func(kt ck.KeyType, n int, extra attrs.Template) (ck.ULong, error) {
			tmpl := attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY)),
				ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(kt)), ck.CKA_VALUE: make([]byte, n)}
			for a, v := range extra {
				tmpl[a] = v
			}
			return m.CreateObject(h, tmpl)
		}
		_, err := secret(ck.CKK_GENERIC_SECRET, 801, nil)
		attrsWant(t, cloudhsm, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
		_, err = secret(ck.CKK_SHA256_HMAC, 32, nil)
		attrsWant(t, cloudhsm, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
		_, err = m.CreateObject(h, attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_PRIVATE_KEY)),
			ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_EC_EDWARDS)), ck.CKA_EC_PARAMS: oidEd25519, ck.CKA_VALUE: make([]byte, 32)})
		attrsWant(t, cloudhsm, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)

		// Unwrapping (AES-GCM, an SDK 5 unwrap mechanism): an 801-byte
		// generic secret.
		kek := make([]byte, 32)
		unwrapping, err := secret(ck.CKK_AES, 32, attrs.Template{ck.CKA_UNWRAP: attrs.Bool(true)})
		require.NoError(t, err)
		blk, err := aes.NewCipher(kek)
		require.NoError(t, err)
		gcm, err := cipher.NewGCM(blk)
		require.NoError(t, err)
		iv := make([]byte, 12)
		unwrap := func(n int) error {
			wrapped := gcm.Seal(nil, iv, make([]byte, n), nil)
			_, err := m.UnwrapKey(h, Mechanism{Type: ck.CKM_AES_GCM, Param: &mechanisms.GCMParams{IV: iv, TagBits: 128}}, unwrapping, wrapped,
				attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY)), ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_GENERIC_SECRET))})
			return err
		}
		require.NoError(t, unwrap(800))
		attrsWant(t, cloudhsm, unwrap(801), ck.CKR_ATTRIBUTE_VALUE_INVALID)

		// Derivation (ECDH, an SDK 5 mechanism): AES of 20 bytes is
		// refused in both; a per-hash HMAC key type only in cloudhsm.
		_, priv, err := m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN}, attrs.Template{ck.CKA_EC_PARAMS: p256},
			attrs.Template{ck.CKA_DERIVE: attrs.Bool(true)})
		require.NoError(t, err)
		r, err := m.GetAttributeValue(h, priv, []ck.AttributeType{ck.CKA_EC_POINT})
		require.NoError(t, err)
		require.NoError(t, r[0].Err)
		derive := func(kt ck.KeyType, n ck.ULong) error {
			_, err := m.DeriveKey(h, Mechanism{Type: ck.CKM_ECDH1_DERIVE, Param: &mechanisms.ECDH1Params{KDF: ck.CKD_NULL, PublicData: r[0].Value}}, priv,
				attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY)), ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(kt)), ck.CKA_VALUE_LEN: attrs.ULong(n)})
			return err
		}
		require.NoError(t, derive(ck.CKK_AES, 16))
		requireRVBoth(derive(ck.CKK_AES, 20))
		attrsWant(t, cloudhsm, derive(ck.CKK_SHA256_HMAC, 32), ck.CKR_ATTRIBUTE_VALUE_INVALID)
	})
}

// TestCloudHSMMechanismKeySizes: C_GetMechanismInfo reports the sizes the
// profile holds.
func TestCloudHSMMechanismKeySizes(t *testing.T) {
	attrsBothProfiles(t, func(t *testing.T, cloudhsm bool) {
		m, _ := attrsTestToken(t, map[bool]string{false: "standard", true: "cloudhsm"}[cloudhsm])
		lo, hi, _, err := m.MechanismInfo(3, ck.CKM_RSA_PKCS_KEY_PAIR_GEN)
		require.NoError(t, err)
		if cloudhsm {
			require.Equal(t, [2]ck.ULong{2048, 4096}, [2]ck.ULong{lo, hi})
		} else {
			require.Equal(t, [2]ck.ULong{1024, 4096}, [2]ck.ULong{lo, hi})
		}
		lo, hi, _, err = m.MechanismInfo(3, ck.CKM_GENERIC_SECRET_KEY_GEN)
		require.NoError(t, err)
		if cloudhsm {
			require.Equal(t, [2]ck.ULong{8, 6400}, [2]ck.ULong{lo, hi}, "bits, as the spec has it for this mechanism")
		} else {
			require.Equal(t, [2]ck.ULong{8, 8192}, [2]ck.ULong{lo, hi})
		}
		lo, hi, _, err = m.MechanismInfo(3, ck.CKM_AES_KEY_GEN)
		require.NoError(t, err)
		require.Equal(t, [2]ck.ULong{16, 32}, [2]ck.ULong{lo, hi})
	})
}
