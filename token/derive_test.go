package token

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/mechanisms"
	"gohsm/token/attrs"
)

// deriveCase is how TestDeriveProtectionEveryMechanism calls one derive
// row: a parameter that makes the base key's bytes show in the derived
// value wherever the mechanism can (zero XOR data, extraction from bit 0),
// given the handle of a second key for CKM_CONCATENATE_BASE_AND_KEY.
type deriveCase struct {
	param    func(other ck.ULong) any
	valueLen int // CKA_VALUE_LEN of the derived key, 0 for the natural length
}

func deriveCases(t *testing.T) map[ck.MechanismType]deriveCase {
	peer, err := ecdh.P256().GenerateKey(rand.Reader)
	require.NoError(t, err)
	bytesParam := func(b []byte) func(ck.ULong) any { return func(ck.ULong) any { return b } }
	hkdf := func(ck.ULong) any {
		return &mechanisms.HKDFParams{Extract: true, Expand: true, PRF: ck.CKM_SHA256, SaltType: ck.CKF_HKDF_SALT_NULL, Info: []byte("i")}
	}
	ecdhParam := func(ck.ULong) any {
		return &mechanisms.ECDH1Params{KDF: ck.CKD_NULL, PublicData: peer.PublicKey().Bytes()}
	}
	return map[ck.MechanismType]deriveCase{
		ck.CKM_AES_ECB_ENCRYPT_DATA: {param: bytesParam(make([]byte, 32))},
		ck.CKM_AES_CBC_ENCRYPT_DATA: {param: func(ck.ULong) any {
			return &mechanisms.CBCEncryptDataParams{IV: make([]byte, 16), Data: make([]byte, 32)}
		}},
		ck.CKM_DES3_ECB_ENCRYPT_DATA: {param: bytesParam(make([]byte, 24))},
		ck.CKM_DES3_CBC_ENCRYPT_DATA: {param: func(ck.ULong) any {
			return &mechanisms.CBCEncryptDataParams{IV: make([]byte, 8), Data: make([]byte, 24)}
		}},
		ck.CKM_ECDH1_DERIVE:          {param: ecdhParam},
		ck.CKM_ECDH1_COFACTOR_DERIVE: {param: ecdhParam},
		ck.CKM_HKDF_DERIVE:           {param: hkdf},
		ck.CKM_HKDF_DATA:             {param: hkdf},
		ck.CKM_SP800_108_COUNTER_KDF: {param: func(ck.ULong) any {
			return &mechanisms.SP800108Params{PRF: ck.CKM_SHA256_HMAC, Data: []mechanisms.PRFData{
				{Type: ck.CK_SP800_108_ITERATION_VARIABLE, WidthBits: 32},
				{Type: ck.CK_SP800_108_BYTE_ARRAY, Bytes: []byte("label")},
			}}
		}},
		ck.CKM_CLOUDHSM_SP800_108_COUNTER_KDF: {param: func(ck.ULong) any {
			return &mechanisms.CloudHSMKDFParams{PRF: ck.CKM_SHA256_HMAC, Data: []mechanisms.PRFData{
				{Type: ck.CK_CLOUDHSM_PRF_COUNTER_FORMAT, WidthBits: 32},
				{Type: ck.CK_CLOUDHSM_PRF_BYTE_ARRAY, Bytes: []byte("label")},
			}}
		}},
		ck.CKM_CONCATENATE_BASE_AND_KEY:  {param: func(o ck.ULong) any { return mechanisms.KeyHandle(o) }},
		ck.CKM_CONCATENATE_BASE_AND_DATA: {param: bytesParam([]byte("data"))},
		ck.CKM_CONCATENATE_DATA_AND_BASE: {param: bytesParam([]byte("data"))},
		ck.CKM_XOR_BASE_AND_DATA:         {param: bytesParam(make([]byte, 32))},
		ck.CKM_EXTRACT_KEY_FROM_KEY:      {param: func(ck.ULong) any { return ck.ULong(0) }, valueLen: 32},
	}
}

// baseKeyGen is the generation mechanism of each base key type.
var baseKeyGen = map[ck.KeyType]ck.MechanismType{
	ck.CKK_AES: ck.CKM_AES_KEY_GEN, ck.CKK_DES3: ck.CKM_DES3_KEY_GEN, ck.CKK_GENERIC_SECRET: ck.CKM_GENERIC_SECRET_KEY_GEN,
	ck.CKK_HKDF: ck.CKM_HKDF_KEY_GEN, ck.CKK_EC: ck.CKM_EC_KEY_PAIR_GEN,
}

// protection is a key's CKA_SENSITIVE and CKA_EXTRACTABLE.
type protection struct{ sensitive, extractable bool }

var (
	protected = protection{sensitive: true, extractable: false}
	plain     = protection{sensitive: false, extractable: true}
)

// createBase makes a session base key of a type with a value the test
// knows (so that a leak can be seen) and the given protection.
func createBase(t *testing.T, m *Module, h ck.ULong, kt ck.KeyType, p protection) (ck.ULong, []byte) {
	t.Helper()
	tmpl := attrs.Template{
		ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(kt)), ck.CKA_DERIVE: attrs.Bool(true),
		ck.CKA_SENSITIVE: attrs.Bool(p.sensitive), ck.CKA_EXTRACTABLE: attrs.Bool(p.extractable),
	}
	var v []byte
	if kt == ck.CKK_EC {
		k, err := ecdh.P256().GenerateKey(rand.Reader)
		require.NoError(t, err)
		v = k.Bytes()
		tmpl[ck.CKA_CLASS] = attrs.ULong(ck.ULong(ck.CKO_PRIVATE_KEY))
		tmpl[ck.CKA_EC_PARAMS] = p256
	} else {
		n := 32
		if kt == ck.CKK_DES3 {
			n = 24
		}
		v = make([]byte, n)
		rand.Read(v)
		tmpl[ck.CKA_CLASS] = attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY))
	}
	tmpl[ck.CKA_VALUE] = bytes.Clone(v)
	o, err := m.CreateObject(h, tmpl)
	require.NoError(t, err)
	return o, v
}

// generateBase makes a base key of a type by generation, so that its
// CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE are CK_TRUE when protected.
func generateBase(t *testing.T, m *Module, h ck.ULong, kt ck.KeyType, p protection) ck.ULong {
	t.Helper()
	gen, ok := baseKeyGen[kt]
	require.True(t, ok, "no generation mechanism for %v", kt)
	tmpl := attrs.Template{ck.CKA_DERIVE: attrs.Bool(true),
		ck.CKA_SENSITIVE: attrs.Bool(p.sensitive), ck.CKA_EXTRACTABLE: attrs.Bool(p.extractable)}
	if kt == ck.CKK_EC {
		_, priv, err := m.GenerateKeyPair(h, Mechanism{Type: gen}, attrs.Template{ck.CKA_EC_PARAMS: p256}, tmpl)
		require.NoError(t, err)
		return priv
	}
	if kt != ck.CKK_DES3 {
		tmpl[ck.CKA_VALUE_LEN] = attrs.ULong(32)
	}
	if kt != ck.CKK_GENERIC_SECRET && kt != ck.CKK_HKDF {
		tmpl[ck.CKA_KEY_TYPE] = attrs.ULong(ck.ULong(kt))
	}
	k, err := m.GenerateKey(h, Mechanism{Type: gen}, tmpl)
	require.NoError(t, err)
	return k
}

func boolAttrs(t *testing.T, m *Module, h, o ck.ULong, types ...ck.AttributeType) []bool {
	t.Helper()
	res, err := m.GetAttributeValue(h, o, types)
	require.NoError(t, err)
	out := make([]bool, len(types))
	for i, r := range res {
		require.NoError(t, r.Err, "%v", types[i])
		out[i] = r.Value[0] == 1
	}
	return out
}

// TestDeriveProtectionEveryMechanism runs every derive row of the mechanism
// table with both base-key flavours (sensitive and unextractable, or
// neither) and checks the spec's rules for the derived key: a mechanism
// whose value holds the base key's bytes (concatenation, XOR, extraction)
// passes the base key's protection on and refuses a template that asks for
// less (CKR_TEMPLATE_INCONSISTENT); the others (KDFs, key agreement,
// encryption of data) take CKA_SENSITIVE and CKA_EXTRACTABLE from the
// template; for all, CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE follow
// the base key's. A new derive row fails here until it has a case.
func TestDeriveProtectionEveryMechanism(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	cases := deriveCases(t)
	rows := 0
	for _, mm := range mechanisms.All() {
		if mm.Derive == nil {
			continue
		}
		rows++
		c, ok := cases[mm.Type]
		if !ok {
			t.Errorf("%v: a derive row without a case in deriveCases", mm.Type)
			continue
		}
		kt := mm.KeyTypes[0]
		dataObject := mm.Type == ck.CKM_HKDF_DATA
		derived := func(p *protection) attrs.Template {
			if dataObject {
				return attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_DATA)), ck.CKA_VALUE_LEN: attrs.ULong(32)}
			}
			tmpl := attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY)),
				ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_GENERIC_SECRET))}
			if c.valueLen > 0 {
				tmpl[ck.CKA_VALUE_LEN] = attrs.ULong(ck.ULong(c.valueLen))
			}
			if p != nil {
				tmpl[ck.CKA_SENSITIVE] = attrs.Bool(p.sensitive)
				tmpl[ck.CKA_EXTRACTABLE] = attrs.Bool(p.extractable)
			}
			return tmpl
		}
		for _, bp := range []protection{protected, plain} {
			t.Run(mm.Type.String()+"/"+map[protection]string{protected: "protected", plain: "plain"}[bp], func(t *testing.T) {
				base, baseValue := createBase(t, m, h, kt, bp)
				other, otherValue := createBase(t, m, h, kt, bp)
				mech := Mechanism{Type: mm.Type, Param: c.param(other)}

				// The template asks for a readable key.
				d, err := m.DeriveKey(h, mech, base, derived(&plain))
				if err == nil && bp == protected {
					res, err := m.GetAttributeValue(h, d, []ck.AttributeType{ck.CKA_VALUE})
					require.NoError(t, err)
					if v := res[0].Value; res[0].Err == nil {
						require.False(t, bytes.Contains(v, baseValue), "derived CKA_VALUE %x holds the protected base key %x", v, baseValue)
						require.False(t, bytes.Contains(v, otherValue), "derived CKA_VALUE %x holds the protected second key %x", v, otherValue)
					}
				}
				if bp == protected && !mm.DeriveHidesBase && !dataObject {
					require.ErrorIs(t, err, ck.CKR_TEMPLATE_INCONSISTENT, "asks less protection than the base key's")
				} else {
					require.NoError(t, err)
					require.NotEmpty(t, value(t, m, h, d))
					if !dataObject {
						got := boolAttrs(t, m, h, d, ck.CKA_SENSITIVE, ck.CKA_EXTRACTABLE, ck.CKA_ALWAYS_SENSITIVE, ck.CKA_NEVER_EXTRACTABLE)
						require.Equal(t, []bool{false, true, false, false}, got)
					}
				}
				if dataObject {
					return
				}

				// No protection in the template: inherited, or the defaults
				// (sensitive, extractable).
				d, err = m.DeriveKey(h, mech, base, derived(nil))
				require.NoError(t, err)
				got := boolAttrs(t, m, h, d, ck.CKA_SENSITIVE, ck.CKA_EXTRACTABLE, ck.CKA_ALWAYS_SENSITIVE, ck.CKA_NEVER_EXTRACTABLE)
				want := []bool{true, true, false, false} // created base keys were never "always" anything
				if bp == protected && !mm.DeriveHidesBase {
					want[1] = false
				}
				require.Equal(t, want, got)
				res, err := m.GetAttributeValue(h, d, []ck.AttributeType{ck.CKA_VALUE})
				require.NoError(t, err)
				require.ErrorIs(t, res[0].Err, ck.CKR_ATTRIBUTE_SENSITIVE)

				// A generated base key: CKA_ALWAYS_SENSITIVE and
				// CKA_NEVER_EXTRACTABLE carry over as the spec says.
				gbase := generateBase(t, m, h, kt, bp)
				gother := generateBase(t, m, h, kt, bp)
				gmech := Mechanism{Type: mm.Type, Param: c.param(gother)}
				d, err = m.DeriveKey(h, gmech, gbase, derived(nil))
				require.NoError(t, err)
				got = boolAttrs(t, m, h, d, ck.CKA_SENSITIVE, ck.CKA_EXTRACTABLE, ck.CKA_ALWAYS_SENSITIVE, ck.CKA_NEVER_EXTRACTABLE)
				if bp == protected && !mm.DeriveHidesBase {
					require.Equal(t, []bool{true, false, true, true}, got)
				} else if bp == protected {
					require.Equal(t, []bool{true, true, true, false}, got)
				} else {
					require.Equal(t, []bool{true, true, false, false}, got, "a base key that was not always sensitive")
				}
			})
		}
	}
	require.GreaterOrEqual(t, rows, len(cases), "every case names a derive row")
}

// TestConcatenateBaseAndKeyEitherKey: CKM_CONCATENATE_BASE_AND_KEY's derived
// key is sensitive if either key is, unextractable if either is (mechanisms
// spec, "Concatenation of a base key and another key").
func TestConcatenateBaseAndKeyEitherKey(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	tmpl := attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY)), ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_GENERIC_SECRET))}
	for _, order := range [][2]protection{{plain, protected}, {protected, plain}} {
		base, _ := createBase(t, m, h, ck.CKK_GENERIC_SECRET, order[0])
		other, _ := createBase(t, m, h, ck.CKK_GENERIC_SECRET, order[1])
		mech := Mechanism{Type: ck.CKM_CONCATENATE_BASE_AND_KEY, Param: mechanisms.KeyHandle(other)}
		leak := tmpl.Clone()
		leak[ck.CKA_SENSITIVE], leak[ck.CKA_EXTRACTABLE] = attrs.Bool(false), attrs.Bool(true)
		_, err := m.DeriveKey(h, mech, base, leak)
		require.ErrorIs(t, err, ck.CKR_TEMPLATE_INCONSISTENT)
		d, err := m.DeriveKey(h, mech, base, tmpl)
		require.NoError(t, err)
		require.Equal(t, []bool{true, false}, boolAttrs(t, m, h, d, ck.CKA_SENSITIVE, ck.CKA_EXTRACTABLE))
	}
}

// TestDeriveNoTemplate: C_DeriveKey with an empty template (ulAttributeCount
// 0: a generic secret of the mechanism's natural length) from a sensitive,
// unextractable key gets the inherited protection, not a panic.
func TestDeriveNoTemplate(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	base, _ := createBase(t, m, h, ck.CKK_GENERIC_SECRET, protected)
	d, err := m.DeriveKey(h, Mechanism{Type: ck.CKM_XOR_BASE_AND_DATA, Param: make([]byte, 32)}, base, nil)
	require.NoError(t, err)
	require.Equal(t, []bool{true, false}, boolAttrs(t, m, h, d, ck.CKA_SENSITIVE, ck.CKA_EXTRACTABLE))
}

// TestDeriveDataObjectPrivate: CKM_HKDF_DATA makes a data object, whose
// CKA_PRIVATE defaults to CK_FALSE like any data object's; one derived from
// a private key would then be readable without logging in. Unless the
// template says otherwise it is private like the base key.
func TestDeriveDataObjectPrivate(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	base, _ := createBase(t, m, h, ck.CKK_HKDF, protected)
	mech := Mechanism{Type: ck.CKM_HKDF_DATA, Param: deriveCases(t)[ck.CKM_HKDF_DATA].param(0)}
	tmpl := attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_DATA)), ck.CKA_VALUE_LEN: attrs.ULong(32),
		ck.CKA_TOKEN: attrs.Bool(true), ck.CKA_LABEL: []byte("okm")}
	d, err := m.DeriveKey(h, mech, base, tmpl)
	require.NoError(t, err)
	require.Equal(t, []bool{true}, boolAttrs(t, m, h, d, ck.CKA_PRIVATE), "derived from a private key")
	require.NoError(t, m.Logout(h))
	_, err = m.GetAttributeValue(h, d, []ck.AttributeType{ck.CKA_VALUE})
	require.ErrorIs(t, err, ck.CKR_OBJECT_HANDLE_INVALID, "readable without a login")

	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	base, _ = createBase(t, m, h, ck.CKK_HKDF, protected) // the logout destroyed the session key
	tmpl[ck.CKA_PRIVATE] = attrs.Bool(false)
	d, err = m.DeriveKey(h, mech, base, tmpl)
	require.NoError(t, err)
	require.Equal(t, []bool{false}, boolAttrs(t, m, h, d, ck.CKA_PRIVATE), "the template decides")
}
