package token

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token/attrs"
)

// attrsTestToken opens a module whose slot 3 has the given profile (and
// extra slot configuration lines), with an officer admin and a crypto user
// "user" made through the token API, as the CLI makes them: it works in
// both profiles (cloudhsm has no C_InitToken or C_InitPIN for
// applications). It returns the module and a R/W session logged in as
// the crypto user.
func attrsTestToken(t testing.TB, prof string, extra ...string) (*Module, ck.ULong) {
	t.Helper()
	m := profileModuleLines(t, t.TempDir(), strings.Join(append([]string{"profile = " + prof}, extra...), "\n"))
	h := profileSetUp(t, m, soPIN, "user", "user-pw-1")
	require.NoError(t, m.Logout(h))
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	return m, h
}

// attrsBothProfiles runs f once per profile.
func attrsBothProfiles(t *testing.T, f func(t *testing.T, cloudhsm bool)) {
	for _, p := range []string{"standard", "cloudhsm"} {
		t.Run(p, func(t *testing.T) { f(t, p == "cloudhsm") })
	}
}

func attrsRV(t *testing.T, err error, want ck.RV) {
	t.Helper()
	require.Error(t, err)
	var got ck.RV
	require.True(t, errors.As(err, &got), "error %q wraps no ck.RV", err)
	require.Equal(t, want, got, "error: %v", err)
}

// attrsWant: want in the cloudhsm profile and nil (success) in standard.
func attrsWant(t *testing.T, cloudhsm bool, err error, want ck.RV) {
	t.Helper()
	if cloudhsm {
		attrsRV(t, err, want)
	} else {
		require.NoError(t, err)
	}
}

func attrsBool(t *testing.T, m *Module, h, obj ck.ULong, a ck.AttributeType) bool {
	t.Helper()
	r, err := m.GetAttributeValue(h, obj, []ck.AttributeType{a})
	require.NoError(t, err)
	require.NoError(t, r[0].Err, "%v", a)
	return len(r[0].Value) == 1 && r[0].Value[0] == 1
}

var attrsPubExp = []byte{1, 0, 1}

func attrsRSAPair(m *Module, h ck.ULong, pub, priv attrs.Template) (ck.ULong, ck.ULong, error) {
	p := attrs.Template{ck.CKA_MODULUS_BITS: attrs.ULong(2048), ck.CKA_PUBLIC_EXPONENT: attrsPubExp}
	for a, v := range pub {
		p[a] = v
	}
	return m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_RSA_PKCS_KEY_PAIR_GEN}, p, priv)
}

// TestCloudHSMAttributeDefaults: behaviours 11 and 12. A key made with
// nothing but its size has every usage flag CK_FALSE in cloudhsm (CK_TRUE
// for what the key type does in standard); CKA_TOKEN false, sensitive,
// extractable and destroyable in both; CKA_LOCAL true only when generated.
func TestCloudHSMAttributeDefaults(t *testing.T) {
	attrsBothProfiles(t, func(t *testing.T, cloudhsm bool) {
		m, h := attrsTestToken(t, map[bool]string{false: "standard", true: "cloudhsm"}[cloudhsm])
		aes, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, attrs.Template{ck.CKA_VALUE_LEN: attrs.ULong(32)})
		require.NoError(t, err)
		for _, a := range []ck.AttributeType{ck.CKA_ENCRYPT, ck.CKA_DECRYPT, ck.CKA_SIGN, ck.CKA_VERIFY, ck.CKA_WRAP, ck.CKA_UNWRAP} {
			require.Equal(t, !cloudhsm, attrsBool(t, m, h, aes, a), "AES %v", a)
		}
		pub, priv, err := m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN}, attrs.Template{ck.CKA_EC_PARAMS: p256}, nil)
		require.NoError(t, err)
		require.Equal(t, !cloudhsm, attrsBool(t, m, h, pub, ck.CKA_VERIFY))
		require.Equal(t, !cloudhsm, attrsBool(t, m, h, priv, ck.CKA_SIGN))
		for _, k := range []ck.ULong{aes, priv} {
			require.False(t, attrsBool(t, m, h, k, ck.CKA_TOKEN))
			require.False(t, attrsBool(t, m, h, k, ck.CKA_DERIVE))
			require.True(t, attrsBool(t, m, h, k, ck.CKA_SENSITIVE))
			require.True(t, attrsBool(t, m, h, k, ck.CKA_EXTRACTABLE))
			require.True(t, attrsBool(t, m, h, k, ck.CKA_DESTROYABLE))
			require.True(t, attrsBool(t, m, h, k, ck.CKA_LOCAL))
			require.True(t, attrsBool(t, m, h, k, ck.CKA_PRIVATE))
			require.True(t, attrsBool(t, m, h, k, ck.CKA_MODIFIABLE))
		}
		// Signing with the defaults: refused in cloudhsm.
		err = m.SignInit(h, Mechanism{Type: ck.CKM_ECDSA}, priv)
		attrsWant(t, cloudhsm, err, ck.CKR_KEY_FUNCTION_NOT_PERMITTED)
		if err == nil {
			m.Abort(h, OpSign)
		}
		// A created key is not local.
		created, err := m.CreateObject(h, attrs.Template{
			ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY)), ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_AES)),
			ck.CKA_VALUE: make([]byte, 16)})
		require.NoError(t, err)
		require.False(t, attrsBool(t, m, h, created, ck.CKA_LOCAL))
		require.Equal(t, !cloudhsm, attrsBool(t, m, h, created, ck.CKA_ENCRYPT))
	})
}

// TestCloudHSMTemplateRules: behaviours 12 and 13 at creation.
func TestCloudHSMTemplateRules(t *testing.T) {
	attrsBothProfiles(t, func(t *testing.T, cloudhsm bool) {
		m, h := attrsTestToken(t, map[bool]string{false: "standard", true: "cloudhsm"}[cloudhsm])
		gen := func(extra attrs.Template) error {
			tmpl := attrs.Template{ck.CKA_VALUE_LEN: attrs.ULong(16)}
			for a, v := range extra {
				tmpl[a] = v
			}
			_, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, tmpl)
			return err
		}
		// Read-only in both.
		for _, a := range []ck.AttributeType{ck.CKA_LOCAL, ck.CKA_ALWAYS_SENSITIVE, ck.CKA_NEVER_EXTRACTABLE} {
			attrsRV(t, gen(attrs.Template{a: attrs.Bool(true)}), ck.CKR_ATTRIBUTE_READ_ONLY)
		}
		// CKA_CHECK_VALUE: checked against the key in standard (a wrong
		// one is refused there too), read-only in cloudhsm.
		created := func(extra attrs.Template) error {
			tmpl := attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY)), ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_AES)),
				ck.CKA_VALUE: make([]byte, 16)}
			for a, v := range extra {
				tmpl[a] = v
			}
			_, err := m.CreateObject(h, tmpl)
			return err
		}
		kcv := attrs.CheckValue(ck.CKK_AES, make([]byte, 16))
		attrsWant(t, cloudhsm, created(attrs.Template{ck.CKA_CHECK_VALUE: kcv}), ck.CKR_ATTRIBUTE_READ_ONLY)
		// Spec attributes CloudHSM does not support.
		for _, a := range []ck.AttributeType{ck.CKA_START_DATE, ck.CKA_END_DATE} {
			attrsWant(t, cloudhsm, gen(attrs.Template{a: []byte("20260101")}), ck.CKR_TEMPLATE_INCONSISTENT)
		}
		attrsWant(t, cloudhsm, gen(attrs.Template{ck.CKA_COPYABLE: attrs.Bool(true)}), ck.CKR_TEMPLATE_INCONSISTENT)
		attrsWant(t, cloudhsm, gen(attrs.Template{ck.CKA_ALLOWED_MECHANISMS: attrs.ULong(ck.ULong(ck.CKM_AES_GCM))}), ck.CKR_TEMPLATE_INCONSISTENT)
		// A spec attribute of another class: TYPE_INVALID in standard,
		// TEMPLATE_INCONSISTENT (not supported for the key type) in
		// cloudhsm; a made-up attribute is TYPE_INVALID in both.
		err := gen(attrs.Template{ck.CKA_MODULUS_BITS: attrs.ULong(2048)})
		if cloudhsm {
			attrsRV(t, err, ck.CKR_TEMPLATE_INCONSISTENT)
		} else {
			attrsRV(t, err, ck.CKR_ATTRIBUTE_TYPE_INVALID)
		}
		attrsRV(t, gen(attrs.Template{ck.AttributeType(0x7ffffff0): attrs.Bool(true)}), ck.CKR_ATTRIBUTE_TYPE_INVALID)
		// CKA_PRIVATE / CKA_MODIFIABLE only at their defaults.
		attrsWant(t, cloudhsm, gen(attrs.Template{ck.CKA_PRIVATE: attrs.Bool(false)}), ck.CKR_ATTRIBUTE_VALUE_INVALID)
		attrsWant(t, cloudhsm, gen(attrs.Template{ck.CKA_MODIFIABLE: attrs.Bool(false)}), ck.CKR_ATTRIBUTE_VALUE_INVALID)
		require.NoError(t, gen(attrs.Template{ck.CKA_PRIVATE: attrs.Bool(true), ck.CKA_MODIFIABLE: attrs.Bool(true)}))
		// CKA_DERIVE can never be true on a public key in cloudhsm.
		_, _, err = attrsRSAPair(m, h, attrs.Template{ck.CKA_DERIVE: attrs.Bool(true)}, nil)
		attrsWant(t, cloudhsm, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
		// Mandatory attributes: CKR_TEMPLATE_INCOMPLETE in both, and the
		// public exponent is mandatory in cloudhsm.
		_, err = m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, nil)
		attrsRV(t, err, ck.CKR_TEMPLATE_INCOMPLETE)
		_, _, err = m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN}, nil, nil)
		attrsRV(t, err, ck.CKR_TEMPLATE_INCOMPLETE)
		_, _, err = m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_RSA_PKCS_KEY_PAIR_GEN}, attrs.Template{ck.CKA_PUBLIC_EXPONENT: attrsPubExp}, nil)
		attrsRV(t, err, ck.CKR_TEMPLATE_INCOMPLETE)
		_, _, err = m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_RSA_PKCS_KEY_PAIR_GEN}, attrs.Template{ck.CKA_MODULUS_BITS: attrs.ULong(2048)}, nil)
		attrsWant(t, cloudhsm, err, ck.CKR_TEMPLATE_INCOMPLETE)
	})
}

// TestCloudHSMReadRules: reading an unsupported attribute is
// CKR_ATTRIBUTE_TYPE_INVALID in cloudhsm; private components are never
// returned (CKR_ATTRIBUTE_SENSITIVE) in either profile.
func TestCloudHSMReadRules(t *testing.T) {
	attrsBothProfiles(t, func(t *testing.T, cloudhsm bool) {
		m, h := attrsTestToken(t, map[bool]string{false: "standard", true: "cloudhsm"}[cloudhsm])
		pub, priv, err := attrsRSAPair(m, h, nil, attrs.Template{ck.CKA_SIGN: attrs.Bool(true)})
		require.NoError(t, err)
		r, err := m.GetAttributeValue(h, priv, []ck.AttributeType{ck.CKA_START_DATE, ck.CKA_KEY_GEN_MECHANISM, ck.CKA_UNIQUE_ID,
			ck.CKA_PRIVATE_EXPONENT, ck.CKA_PRIME_1, ck.CKA_PRIME_2, ck.CKA_EXPONENT_1, ck.CKA_EXPONENT_2, ck.CKA_COEFFICIENT,
			ck.CKA_MODULUS, ck.CKA_ID})
		require.NoError(t, err)
		for _, x := range r[:3] {
			if cloudhsm {
				attrsRV(t, x.Err, ck.CKR_ATTRIBUTE_TYPE_INVALID)
			} else {
				require.NoError(t, x.Err)
			}
		}
		for _, x := range r[3:9] {
			attrsRV(t, x.Err, ck.CKR_ATTRIBUTE_SENSITIVE)
		}
		for _, x := range r[9:] {
			require.NoError(t, x.Err)
		}
		_ = pub
		// A private key made non-sensitive and extractable: its
		// components are readable in standard, never in cloudhsm (the
		// attribute table's "S"); a secret key's value follows the spec
		// in both.
		_, priv2, err := attrsRSAPair(m, h, nil, attrs.Template{ck.CKA_SENSITIVE: attrs.Bool(false), ck.CKA_EXTRACTABLE: attrs.Bool(true)})
		require.NoError(t, err)
		r, err = m.GetAttributeValue(h, priv2, []ck.AttributeType{ck.CKA_PRIVATE_EXPONENT, ck.CKA_PRIME_1})
		require.NoError(t, err)
		for _, x := range r {
			if cloudhsm {
				attrsRV(t, x.Err, ck.CKR_ATTRIBUTE_SENSITIVE)
			} else {
				require.NoError(t, x.Err)
			}
		}
		sec, err := m.CreateObject(h, attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY)),
			ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_AES)), ck.CKA_VALUE: make([]byte, 16), ck.CKA_SENSITIVE: attrs.Bool(false)})
		require.NoError(t, err)
		r, err = m.GetAttributeValue(h, sec, []ck.AttributeType{ck.CKA_VALUE})
		require.NoError(t, err)
		require.NoError(t, r[0].Err)
	})
}

// TestCloudHSMChangeRules: behaviour 23 on the token's attribute-change
// path (SetKeyAttributes, which CloudHSM's `key set-attribute` maps to):
// CKA_ID never changes, CKA_TOKEN only from false to true,
// CKA_WRAP_WITH_TRUSTED never back to false, CKA_TRUSTED only by an
// officer. Standard keeps the spec's rules (CKA_ID changes, CKA_TOKEN
// only by copying).
func TestCloudHSMChangeRules(t *testing.T) {
	attrsBothProfiles(t, func(t *testing.T, cloudhsm bool) {
		m, h := attrsTestToken(t, map[bool]string{false: "standard", true: "cloudhsm"}[cloudhsm])
		k, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, attrs.Template{
			ck.CKA_VALUE_LEN: attrs.ULong(16), ck.CKA_ID: []byte("a"), ck.CKA_WRAP_WITH_TRUSTED: attrs.Bool(true)})
		require.NoError(t, err)
		set := func(a ck.AttributeType, v []byte) error {
			n, err := m.SetKeyAttributes(h, k, attrs.Template{a: v})
			if err == nil {
				k = n
			}
			return err
		}
		require.NoError(t, set(ck.CKA_LABEL, []byte("renamed")))
		require.NoError(t, set(ck.CKA_ENCRYPT, attrs.Bool(true)))
		err = set(ck.CKA_ID, []byte("b"))
		if cloudhsm {
			attrsRV(t, err, ck.CKR_ATTRIBUTE_READ_ONLY)
		} else {
			require.NoError(t, err)
		}
		// CKA_EXTRACTABLE cannot change in cloudhsm; in standard it may
		// go to false.
		attrsWant(t, cloudhsm, set(ck.CKA_EXTRACTABLE, attrs.Bool(false)), ck.CKR_ATTRIBUTE_READ_ONLY)
		attrsRV(t, set(ck.CKA_WRAP_WITH_TRUSTED, attrs.Bool(false)), ck.CKR_ATTRIBUTE_READ_ONLY)
		attrsRV(t, set(ck.CKA_TRUSTED, attrs.Bool(true)), ck.CKR_ATTRIBUTE_READ_ONLY)
		if cloudhsm {
			attrsRV(t, set(ck.CKA_TRUSTED, attrs.Bool(false)), ck.CKR_ATTRIBUTE_READ_ONLY)
		}
		// CKA_TOKEN false -> true: a session key becomes a token key in
		// cloudhsm; standard changes CKA_TOKEN only by copying.
		old := k
		err = set(ck.CKA_TOKEN, attrs.Bool(true))
		if !cloudhsm {
			attrsRV(t, err, ck.CKR_ATTRIBUTE_READ_ONLY)
			return
		}
		require.NoError(t, err)
		require.NotEqual(t, old, k)
		require.True(t, attrsBool(t, m, h, k, ck.CKA_TOKEN))
		require.True(t, attrsBool(t, m, h, k, ck.CKA_ENCRYPT))
		_, err = m.GetAttributeValue(h, old, []ck.AttributeType{ck.CKA_TOKEN})
		attrsRV(t, err, ck.CKR_OBJECT_HANDLE_INVALID)
		// The token key still encrypts (its value was sealed on the way).
		require.NoError(t, m.EncryptInit(h, Mechanism{Type: ck.CKM_AES_ECB}, k))
		_, err = m.Encrypt(h, make([]byte, 16), Out{Buf: make([]byte, 16)})
		require.NoError(t, err)
		attrsRV(t, set(ck.CKA_TOKEN, attrs.Bool(false)), ck.CKR_ATTRIBUTE_READ_ONLY)
		// An officer may set CKA_TRUSTED, either way.
		o := openRW(t, m)
		require.NoError(t, m.Logout(h))
		require.NoError(t, m.Login(o, ck.CKU_SO, []byte(soPIN)))
		require.NoError(t, m.SetTrusted(o, k, true))
		require.NoError(t, m.SetTrusted(o, k, false))
	})
}

// TestCloudHSMSessionKeys: behaviour 11's session keys, the same in both
// profiles: a session key (CKA_TOKEN false, the default) is usable from
// another session of the application; once the session that made it
// closes, any use is CKR_KEY_HANDLE_INVALID; another application (module)
// does not see it.
func TestCloudHSMSessionKeys(t *testing.T) {
	attrsBothProfiles(t, func(t *testing.T, cloudhsm bool) {
		m, h := attrsTestToken(t, map[bool]string{false: "standard", true: "cloudhsm"}[cloudhsm])
		k, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, attrs.Template{ck.CKA_VALUE_LEN: attrs.ULong(16),
			ck.CKA_ENCRYPT: attrs.Bool(true), ck.CKA_LABEL: []byte("sess")})
		require.NoError(t, err)
		other := openRW(t, m)
		require.NoError(t, m.EncryptInit(other, Mechanism{Type: ck.CKM_AES_ECB}, k))
		_, err = m.Encrypt(other, make([]byte, 16), Out{Buf: make([]byte, 16)})
		require.NoError(t, err)

		cfg := *m.cfg
		m2, err := Open(&cfg)
		require.NoError(t, err)
		defer m2.Close()
		h2 := openRW(t, m2)
		require.NoError(t, m2.Login(h2, ck.CKU_USER, []byte(userPIN)))
		require.NoError(t, m2.FindObjectsInit(h2, attrs.Template{ck.CKA_LABEL: []byte("sess")}))
		found, err := m2.FindObjects(h2, 10)
		require.NoError(t, err)
		require.Empty(t, found, "another application sees no session key")

		require.NoError(t, m.CloseSession(h))
		attrsRV(t, m.EncryptInit(other, Mechanism{Type: ck.CKM_AES_ECB}, k), ck.CKR_KEY_HANDLE_INVALID)
	})
}
