package token

import (
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token/attrs"
)

// TestCloudHSMOfficerSeesPublicKeys: CloudHSM's key list, run by an
// admin, shows "all public keys in the CloudHSM cluster" (UG:
// cloudhsm_cli-key-list; cloudhsm-facts §1.1). In cloudhsm, where public
// keys are private, an officer finds and reads every public key and may
// set CKA_TRUSTED on it found by attributes, but sees no private or secret
// key and uses, changes or destroys none. In standard an officer sees
// only non-private objects, as PKCS#11 has it.
func TestCloudHSMOfficerSeesPublicKeys(t *testing.T) {
	attrsBothProfiles(t, func(t *testing.T, cloudhsm bool) {
		prof := map[bool]string{true: "cloudhsm", false: "standard"}[cloudhsm]
		m, h := attrsTestToken(t, prof)
		pubTmpl := attrs.Template{ck.CKA_EC_PARAMS: p256, ck.CKA_TOKEN: attrs.Bool(true), ck.CKA_VERIFY: attrs.Bool(true),
			ck.CKA_LABEL: []byte("wrap-pub")}
		if !cloudhsm {
			pubTmpl[ck.CKA_PRIVATE] = attrs.Bool(true)
		}
		pub, priv, err := m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN}, pubTmpl,
			attrs.Template{ck.CKA_TOKEN: attrs.Bool(true), ck.CKA_SIGN: attrs.Bool(true)})
		require.NoError(t, err)

		require.NoError(t, m.Logout(h))
		require.NoError(t, m.Login(h, ck.CKU_SO, []byte(soPIN)))
		find := func(tmpl attrs.Template) []ck.ULong {
			require.NoError(t, m.FindObjectsInit(h, tmpl))
			got, err := m.FindObjects(h, 100)
			require.NoError(t, err)
			require.NoError(t, m.FindObjectsFinal(h))
			return got
		}
		byLabel := attrs.Template{ck.CKA_LABEL: []byte("wrap-pub")}
		if !cloudhsm {
			require.Empty(t, find(attrs.Template{}), "standard: an officer sees no private object")
			_, err = m.GetAttributeValue(h, pub, []ck.AttributeType{ck.CKA_LABEL})
			attrsRV(t, err, ck.CKR_OBJECT_HANDLE_INVALID)
			return
		}
		require.Equal(t, []ck.ULong{pub}, find(attrs.Template{}), "cloudhsm: every public key, no private key")
		require.Equal(t, []ck.ULong{pub}, find(byLabel))
		r, err := m.GetAttributeValue(h, pub, []ck.AttributeType{ck.CKA_EC_POINT})
		require.NoError(t, err)
		require.NotEmpty(t, r[0].Value)
		_, err = m.GetAttributeValue(h, priv, []ck.AttributeType{ck.CKA_LABEL})
		attrsRV(t, err, ck.CKR_OBJECT_HANDLE_INVALID)
		require.NoError(t, m.SetTrusted(h, pub, true))
		require.True(t, attrsBool(t, m, h, pub, ck.CKA_TRUSTED))
		require.Error(t, m.VerifyInit(h, Mechanism{Type: ck.CKM_ECDSA}, pub), "an officer uses no key")
		require.Error(t, m.DestroyObject(h, pub), "an officer destroys no key")
		_, err = m.SetKeyAttributes(h, pub, attrs.Template{ck.CKA_LABEL: []byte("x")})
		require.Error(t, err, "an officer changes no key attribute but trusted")
	})
}
