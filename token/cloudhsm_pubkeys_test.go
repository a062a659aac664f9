package token

import (
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token/attrs"
	"gohsm/token/store"
)

// TestCloudHSMPublicKeysPrivateAndSeenByAll: in cloudhsm a public key is
// private (default true, false refused: the attribute table's note 1;
// pkcs11-tool without --private fails against CloudHSM, OpenSC#2747) and
// yet every crypto user sees and may use every public key (behaviour 9:
// "all public keys in the cluster"), while only its owner may destroy it
// and nobody sees another user's private key. In standard a public key
// may be non-private, and a private one is its owner's alone.
func TestCloudHSMPublicKeysPrivateAndSeenByAll(t *testing.T) {
	attrsBothProfiles(t, func(t *testing.T, cloudhsm bool) {
		prof := map[bool]string{true: "cloudhsm", false: "standard"}[cloudhsm]
		m, h := attrsTestToken(t, prof)
		gen := func(pub attrs.Template) (ck.ULong, ck.ULong, error) {
			pub[ck.CKA_EC_PARAMS] = p256
			pub[ck.CKA_TOKEN] = attrs.Bool(true)
			pub[ck.CKA_VERIFY] = attrs.Bool(true)
			return m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN}, pub,
				attrs.Template{ck.CKA_TOKEN: attrs.Bool(true), ck.CKA_SIGN: attrs.Bool(true)})
		}
		_, _, err := gen(attrs.Template{ck.CKA_PRIVATE: attrs.Bool(false)})
		attrsWant(t, cloudhsm, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)

		// A public key made private (cloudhsm: by default).
		pubTmpl := attrs.Template{}
		if !cloudhsm {
			pubTmpl[ck.CKA_PRIVATE] = attrs.Bool(true)
		}
		pub, priv, err := gen(pubTmpl)
		require.NoError(t, err)
		require.True(t, attrsBool(t, m, h, pub, ck.CKA_PRIVATE))

		// A second crypto user.
		require.NoError(t, m.Logout(h))
		require.NoError(t, m.Login(h, ck.CKU_SO, []byte(soPIN)))
		require.NoError(t, m.CreateUser(h, "bob", store.RoleCU, []byte("bob-pw-12")))
		require.NoError(t, m.Logout(h))
		require.NoError(t, m.Login(h, ck.CKU_USER, []byte("bob:bob-pw-12")))

		find := func(class ck.ObjectClass) []ck.ULong {
			require.NoError(t, m.FindObjectsInit(h, attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(class))}))
			got, err := m.FindObjects(h, 100)
			require.NoError(t, err)
			require.NoError(t, m.FindObjectsFinal(h))
			return got
		}
		require.Empty(t, find(ck.CKO_PRIVATE_KEY), "bob sees alice's private key")
		_, err = m.GetAttributeValue(h, priv, []ck.AttributeType{ck.CKA_LABEL})
		attrsRV(t, err, ck.CKR_OBJECT_HANDLE_INVALID)
		if !cloudhsm {
			// The first pair's non-private public key is everyone's.
			require.NotContains(t, find(ck.CKO_PUBLIC_KEY), pub, "standard: a private public key is its owner's")
			_, err = m.GetAttributeValue(h, pub, []ck.AttributeType{ck.CKA_EC_POINT})
			attrsRV(t, err, ck.CKR_OBJECT_HANDLE_INVALID)
			return
		}
		require.Equal(t, []ck.ULong{pub}, find(ck.CKO_PUBLIC_KEY), "cloudhsm: every crypto user sees every public key")
		r, err := m.GetAttributeValue(h, pub, []ck.AttributeType{ck.CKA_EC_POINT})
		require.NoError(t, err)
		require.NoError(t, r[0].Err)
		require.NotEmpty(t, r[0].Value)
		require.NoError(t, m.VerifyInit(h, Mechanism{Type: ck.CKM_ECDSA}, pub), "bob verifies with alice's public key")
		attrsRV(t, m.Verify(h, make([]byte, 32), make([]byte, 64)), ck.CKR_SIGNATURE_INVALID)
		attrsRV(t, m.DestroyObject(h, pub), ck.CKR_ACTION_PROHIBITED)
	})
}
