package attrs

import (
	"bytes"
	"crypto/aes"
	"crypto/des"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
)

func ul(v ck.ULong) []byte { return ULong(v) }

func class(c ck.ObjectClass) []byte { return ULong(ck.ULong(c)) }
func ktype(k ck.KeyType) []byte     { return ULong(ck.ULong(k)) }

// merge returns a new template with the attributes of ts, later ones winning.
func merge(ts ...Template) Template {
	out := Template{}
	for _, t := range ts {
		for a, v := range t {
			out[a] = v
		}
	}
	return out
}

func requireRV(t *testing.T, err error, want ck.RV) {
	t.Helper()
	require.Error(t, err)
	var got ck.RV
	require.True(t, errors.As(err, &got), "error %q wraps no ck.RV", err)
	require.Equal(t, want, got, "error: %v", err)
	require.True(t, errors.Is(err, want))
}

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

func testRSAKey(t *testing.T) *rsa.PrivateKey {
	rsaOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		require.NoError(t, err)
		rsaKey = k
	})
	return rsaKey
}

func mustTemplate(t *testing.T, key any) Template {
	t.Helper()
	m, err := TemplateFromKey(key)
	require.NoError(t, err)
	return m
}

func aesKey(n int) []byte {
	k := make([]byte, n)
	for i := range k {
		k[i] = byte(i + 1)
	}
	return k
}

func TestEncodings(t *testing.T) {
	assert.Equal(t, []byte{1}, Bool(true))
	assert.Equal(t, []byte{0}, Bool(false))
	assert.Equal(t, []byte{0x34, 0x12, 0, 0, 0, 0, 0, 0}, ULong(0x1234))
	assert.Equal(t, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, ULong(ck.CK_UNAVAILABLE_INFORMATION))

	tm := Template{ck.CKA_TOKEN: {1}, ck.CKA_PRIVATE: {0}, ck.CKA_SIGN: {2}, ck.CKA_LABEL: {1, 1},
		ck.CKA_VALUE_LEN: ULong(32), ck.CKA_MODULUS_BITS: {1, 2, 3}}
	for _, c := range []struct {
		a     ck.AttributeType
		v, ok bool
	}{
		{ck.CKA_TOKEN, true, true}, {ck.CKA_PRIVATE, false, true}, {ck.CKA_SIGN, false, false},
		{ck.CKA_LABEL, false, false}, {ck.CKA_ENCRYPT, false, false},
	} {
		v, ok := tm.Bool(c.a)
		assert.Equal(t, c.v, v, c.a.String())
		assert.Equal(t, c.ok, ok, c.a.String())
	}
	n, ok := tm.ULong(ck.CKA_VALUE_LEN)
	assert.True(t, ok)
	assert.Equal(t, ck.ULong(32), n)
	_, ok = tm.ULong(ck.CKA_MODULUS_BITS)
	assert.False(t, ok)
	_, ok = tm.ULong(ck.CKA_MODULUS)
	assert.False(t, ok)

	c := tm.Clone()
	c[ck.CKA_TOKEN][0] = 0
	assert.Equal(t, byte(1), tm[ck.CKA_TOKEN][0], "Clone must copy values")
	assert.Nil(t, Template(nil).Clone())
}

func TestNestedTemplate(t *testing.T) {
	in := Template{ck.CKA_EXTRACTABLE: Bool(false), ck.CKA_KEY_TYPE: ktype(ck.CKK_AES), ck.CKA_LABEL: {}}
	enc := EncodeTemplate(in)
	out, err := DecodeTemplate(enc)
	require.NoError(t, err)
	assert.Equal(t, in, out)
	assert.Equal(t, enc, EncodeTemplate(out), "encoding is deterministic")

	_, err = DecodeTemplate(enc[:10])
	requireRV(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	_, err = DecodeTemplate(enc[:len(enc)-1])
	requireRV(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	one := EncodeTemplate(Template{ck.CKA_SIGN: Bool(true)})
	_, err = DecodeTemplate(append(one, one...))
	requireRV(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	empty, err := DecodeTemplate(nil)
	require.NoError(t, err)
	assert.Empty(t, empty)
}

// TestTableInvariants checks the composed tables against the footnote rules
// they encode.
func TestTableInvariants(t *testing.T) {
	// The 11 base schemas, plus the HMAC/HKDF secret key types (hmac_keys.go).
	require.Len(t, schemas(), 11+len(hmacKeyTypes)+1+extraSchemas)
	for key, s := range schemas() {
		name := s.String()
		for _, a := range []ck.AttributeType{ck.CKA_CLASS, ck.CKA_TOKEN, ck.CKA_PRIVATE, ck.CKA_MODIFIABLE,
			ck.CKA_LABEL, ck.CKA_COPYABLE, ck.CKA_DESTROYABLE, ck.CKA_UNIQUE_ID} {
			_, ok := s.Attr(a)
			assert.True(t, ok, "%s lacks %s", name, a)
		}
		if isKeyClass(key.class) {
			_, ok := converters()[key]
			assert.True(t, ok, "%s has no key conversion", name)
			for _, a := range []ck.AttributeType{ck.CKA_KEY_TYPE, ck.CKA_LOCAL, ck.CKA_KEY_GEN_MECHANISM, ck.CKA_ID} {
				_, ok := s.Attr(a)
				assert.True(t, ok, "%s lacks %s", name, a)
			}
		}
		assert.NotEmpty(t, classOps[key.class], name)
		for _, row := range s.Attrs() {
			what := name + " " + row.Type.String()
			if row.Default != nil {
				assert.NoError(t, checkEncoding(row, row.Default), what)
				assert.False(t, row.Flags&(MustCreate|MustGenerate|Identity) != 0, "%s: required yet has a default", what)
				assert.False(t, row.readOnly(), "%s: token-assigned yet has a default", what)
			}
			if row.Flags&(OnceTrue|OnceFalse|SOOnly) != 0 {
				assert.Equal(t, KindBool, row.Kind, what)
			}
			if row.Has(Sensitive) {
				assert.False(t, row.Flags&(Modifiable|CopyOnly) != 0, "%s: key material must not change", what)
				assert.True(t, row.Has(NotGenerate), "%s: key material comes from the mechanism", what)
			}
			if row.readOnly() || row.Has(Identity) {
				assert.False(t, row.Flags&(Modifiable|CopyOnly) != 0, what)
			}
		}
	}
}

func TestClassAndKeyType(t *testing.T) {
	cases := []struct {
		name  string
		t     Template
		class ck.ObjectClass
		kt    ck.KeyType
		err   ck.RV
	}{
		{"aes", Template{ck.CKA_CLASS: class(ck.CKO_SECRET_KEY), ck.CKA_KEY_TYPE: ktype(ck.CKK_AES)}, ck.CKO_SECRET_KEY, ck.CKK_AES, 0},
		{"rsa private", Template{ck.CKA_CLASS: class(ck.CKO_PRIVATE_KEY), ck.CKA_KEY_TYPE: ktype(ck.CKK_RSA)}, ck.CKO_PRIVATE_KEY, ck.CKK_RSA, 0},
		{"ed25519 public", Template{ck.CKA_CLASS: class(ck.CKO_PUBLIC_KEY), ck.CKA_KEY_TYPE: ktype(ck.CKK_EC_EDWARDS)}, ck.CKO_PUBLIC_KEY, ck.CKK_EC_EDWARDS, 0},
		{"data", Template{ck.CKA_CLASS: class(ck.CKO_DATA)}, ck.CKO_DATA, NoKeyType, 0},
		{"x509", Template{ck.CKA_CLASS: class(ck.CKO_CERTIFICATE), ck.CKA_CERTIFICATE_TYPE: ul(ck.ULong(ck.CKC_X_509))}, ck.CKO_CERTIFICATE, NoKeyType, 0},
		{"no class", Template{ck.CKA_KEY_TYPE: ktype(ck.CKK_AES)}, 0, 0, ck.CKR_TEMPLATE_INCOMPLETE},
		{"short class", Template{ck.CKA_CLASS: {4}}, 0, 0, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"no key type", Template{ck.CKA_CLASS: class(ck.CKO_SECRET_KEY)}, 0, 0, ck.CKR_TEMPLATE_INCOMPLETE},
		{"no cert type", Template{ck.CKA_CLASS: class(ck.CKO_CERTIFICATE)}, 0, 0, ck.CKR_TEMPLATE_INCOMPLETE},
		{"wtls cert", Template{ck.CKA_CLASS: class(ck.CKO_CERTIFICATE), ck.CKA_CERTIFICATE_TYPE: ul(ck.ULong(ck.CKC_WTLS))}, 0, 0, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"hw feature", Template{ck.CKA_CLASS: class(ck.CKO_HW_FEATURE)}, 0, 0, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"dsa", Template{ck.CKA_CLASS: class(ck.CKO_PRIVATE_KEY), ck.CKA_KEY_TYPE: ktype(ck.CKK_DSA)}, 0, 0, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"aes public key", Template{ck.CKA_CLASS: class(ck.CKO_PUBLIC_KEY), ck.CKA_KEY_TYPE: ktype(ck.CKK_AES)}, 0, 0, ck.CKR_TEMPLATE_INCONSISTENT},
		{"ec secret key", Template{ck.CKA_CLASS: class(ck.CKO_SECRET_KEY), ck.CKA_KEY_TYPE: ktype(ck.CKK_EC)}, 0, 0, ck.CKR_TEMPLATE_INCONSISTENT},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl, kt, err := ClassAndKeyType(c.t)
			if c.err != 0 {
				requireRV(t, err, c.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.class, cl)
			assert.Equal(t, c.kt, kt)
		})
	}
}

// TestBuildDefaults checks the full attribute set Build returns.
func TestBuildDefaults(t *testing.T) {
	type want map[ck.AttributeType][]byte
	T, F := Bool(true), Bool(false)
	cases := []struct {
		name   string
		op     Op
		class  ck.ObjectClass
		kt     ck.KeyType
		mech   ck.MechanismType
		t      Template
		want   want
		absent []ck.AttributeType
	}{
		{"aes generate", OpGenerate, ck.CKO_SECRET_KEY, ck.CKK_AES, ck.CKM_AES_KEY_GEN,
			Template{ck.CKA_VALUE_LEN: ul(32)},
			want{ck.CKA_CLASS: class(ck.CKO_SECRET_KEY), ck.CKA_KEY_TYPE: ktype(ck.CKK_AES),
				ck.CKA_TOKEN: F, ck.CKA_PRIVATE: T, ck.CKA_MODIFIABLE: T, ck.CKA_COPYABLE: T, ck.CKA_DESTROYABLE: T,
				ck.CKA_LABEL: {}, ck.CKA_ID: {}, ck.CKA_START_DATE: {}, ck.CKA_DERIVE: F,
				ck.CKA_SENSITIVE: T, ck.CKA_EXTRACTABLE: T, ck.CKA_ENCRYPT: T, ck.CKA_DECRYPT: T,
				ck.CKA_SIGN: T, ck.CKA_VERIFY: T, ck.CKA_WRAP: T, ck.CKA_UNWRAP: T,
				ck.CKA_WRAP_WITH_TRUSTED: F, ck.CKA_TRUSTED: F,
				ck.CKA_LOCAL: T, ck.CKA_KEY_GEN_MECHANISM: ul(ck.ULong(ck.CKM_AES_KEY_GEN)),
				ck.CKA_ALWAYS_SENSITIVE: T, ck.CKA_NEVER_EXTRACTABLE: F, ck.CKA_VALUE_LEN: ul(32),
				ck.CKA_WRAP_TEMPLATE: {}, ck.CKA_ALLOWED_MECHANISMS: {}},
			[]ck.AttributeType{ck.CKA_VALUE, ck.CKA_UNIQUE_ID, ck.CKA_CHECK_VALUE}},
		{"aes generate not extractable", OpGenerate, ck.CKO_SECRET_KEY, ck.CKK_AES, ck.CKM_AES_KEY_GEN,
			Template{ck.CKA_VALUE_LEN: ul(16), ck.CKA_EXTRACTABLE: F, ck.CKA_SENSITIVE: F, ck.CKA_TOKEN: T},
			want{ck.CKA_ALWAYS_SENSITIVE: F, ck.CKA_NEVER_EXTRACTABLE: T, ck.CKA_TOKEN: T, ck.CKA_SENSITIVE: F}, nil},
		{"generic secret generate", OpGenerate, ck.CKO_SECRET_KEY, ck.CKK_GENERIC_SECRET, ck.CKM_GENERIC_SECRET_KEY_GEN,
			Template{ck.CKA_VALUE_LEN: ul(20)},
			want{ck.CKA_SIGN: T, ck.CKA_VERIFY: T, ck.CKA_ENCRYPT: F, ck.CKA_WRAP: F}, nil},
		{"des3 generate", OpGenerate, ck.CKO_SECRET_KEY, ck.CKK_DES3, ck.CKM_DES3_KEY_GEN,
			Template{}, want{ck.CKA_ENCRYPT: T, ck.CKA_SIGN: F, ck.CKA_LOCAL: T}, []ck.AttributeType{ck.CKA_VALUE_LEN}},
		{"rsa public generate", OpGeneratePublic, ck.CKO_PUBLIC_KEY, ck.CKK_RSA, ck.CKM_RSA_PKCS_KEY_PAIR_GEN,
			Template{ck.CKA_MODULUS_BITS: ul(2048), ck.CKA_PUBLIC_EXPONENT: {1, 0, 1}},
			want{ck.CKA_PRIVATE: F, ck.CKA_ENCRYPT: T, ck.CKA_VERIFY: T, ck.CKA_WRAP: T, ck.CKA_VERIFY_RECOVER: F,
				ck.CKA_TRUSTED: F, ck.CKA_LOCAL: T, ck.CKA_KEY_GEN_MECHANISM: ul(ck.ULong(ck.CKM_RSA_PKCS_KEY_PAIR_GEN)),
				ck.CKA_SUBJECT: {}, ck.CKA_PUBLIC_KEY_INFO: {}},
			[]ck.AttributeType{ck.CKA_SENSITIVE, ck.CKA_ALWAYS_SENSITIVE, ck.CKA_MODULUS}},
		{"rsa private generate", OpGenerate, ck.CKO_PRIVATE_KEY, ck.CKK_RSA, ck.CKM_RSA_PKCS_KEY_PAIR_GEN,
			Template{ck.CKA_LABEL: []byte("k")},
			want{ck.CKA_PRIVATE: T, ck.CKA_SENSITIVE: T, ck.CKA_EXTRACTABLE: T, ck.CKA_DECRYPT: T, ck.CKA_SIGN: T,
				ck.CKA_UNWRAP: T, ck.CKA_SIGN_RECOVER: F, ck.CKA_ALWAYS_AUTHENTICATE: F, ck.CKA_LABEL: []byte("k"),
				ck.CKA_ALWAYS_SENSITIVE: T, ck.CKA_NEVER_EXTRACTABLE: F, ck.CKA_LOCAL: T}, nil},
		{"ec private generate", OpGenerate, ck.CKO_PRIVATE_KEY, ck.CKK_EC, ck.CKM_EC_KEY_PAIR_GEN,
			Template{}, want{ck.CKA_SIGN: T, ck.CKA_DECRYPT: F, ck.CKA_UNWRAP: F, ck.CKA_DERIVE: F}, nil},
		{"ec public generate", OpGeneratePublic, ck.CKO_PUBLIC_KEY, ck.CKK_EC, ck.CKM_EC_KEY_PAIR_GEN,
			Template{ck.CKA_EC_PARAMS: p256Params(t)}, want{ck.CKA_VERIFY: T, ck.CKA_ENCRYPT: F, ck.CKA_WRAP: F}, nil},
		{"aes unwrap", OpUnwrap, ck.CKO_SECRET_KEY, ck.CKK_AES, ck.CKM_AES_KEY_WRAP,
			Template{ck.CKA_CLASS: class(ck.CKO_SECRET_KEY), ck.CKA_KEY_TYPE: ktype(ck.CKK_AES), ck.CKA_VALUE_LEN: ul(16)},
			want{ck.CKA_LOCAL: F, ck.CKA_KEY_GEN_MECHANISM: ul(ck.CK_UNAVAILABLE_INFORMATION),
				ck.CKA_ALWAYS_SENSITIVE: F, ck.CKA_NEVER_EXTRACTABLE: F}, nil},
		{"aes derive", OpDerive, ck.CKO_SECRET_KEY, ck.CKK_AES, ck.CKM_ECDH1_DERIVE,
			Template{ck.CKA_VALUE_LEN: ul(32), ck.CKA_EXTRACTABLE: F},
			want{ck.CKA_LOCAL: F, ck.CKA_KEY_GEN_MECHANISM: ul(ck.CK_UNAVAILABLE_INFORMATION),
				ck.CKA_ALWAYS_SENSITIVE: T, ck.CKA_NEVER_EXTRACTABLE: T}, nil},
		{"data create", OpCreate, ck.CKO_DATA, NoKeyType, 0,
			Template{ck.CKA_VALUE: []byte("x"), ck.CKA_APPLICATION: []byte("app")},
			want{ck.CKA_CLASS: class(ck.CKO_DATA), ck.CKA_PRIVATE: F, ck.CKA_TOKEN: F, ck.CKA_OBJECT_ID: {},
				ck.CKA_VALUE: []byte("x")},
			[]ck.AttributeType{ck.CKA_KEY_TYPE, ck.CKA_LOCAL}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := c.t.Clone()
			got, err := Build(c.op, c.class, c.kt, c.mech, c.t)
			require.NoError(t, err)
			assert.Equal(t, in, c.t, "Build must not change its argument")
			for a, v := range c.want {
				assert.Equal(t, v, got[a], "%s", a)
			}
			for _, a := range c.absent {
				assert.NotContains(t, got, a)
			}
			s, _ := Lookup(c.class, c.kt)
			for a := range got {
				_, ok := s.Attr(a)
				assert.True(t, ok, "%s not in schema", a)
			}
		})
	}
}

func p256Params(t *testing.T) []byte {
	b, err := asn1.Marshal(asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7})
	require.NoError(t, err)
	return b
}

func TestBuildErrors(t *testing.T) {
	rsaPub := mustTemplate(t, &testRSAKey(t).PublicKey)
	delete(rsaPub, ck.CKA_MODULUS_BITS)
	aes16 := Template{ck.CKA_VALUE: aesKey(16)}
	cases := []struct {
		name  string
		op    Op
		class ck.ObjectClass
		kt    ck.KeyType
		t     Template
		want  ck.RV
	}{
		// required
		{"aes create without value", OpCreate, ck.CKO_SECRET_KEY, ck.CKK_AES, Template{}, ck.CKR_TEMPLATE_INCOMPLETE},
		{"aes generate without value len", OpGenerate, ck.CKO_SECRET_KEY, ck.CKK_AES, Template{}, ck.CKR_TEMPLATE_INCOMPLETE},
		{"generic generate without value len", OpGenerate, ck.CKO_SECRET_KEY, ck.CKK_GENERIC_SECRET, Template{}, ck.CKR_TEMPLATE_INCOMPLETE},
		{"rsa public generate without bits", OpGeneratePublic, ck.CKO_PUBLIC_KEY, ck.CKK_RSA, Template{ck.CKA_PUBLIC_EXPONENT: {3}}, ck.CKR_TEMPLATE_INCOMPLETE},
		{"ec public generate without params", OpGeneratePublic, ck.CKO_PUBLIC_KEY, ck.CKK_EC, Template{}, ck.CKR_TEMPLATE_INCOMPLETE},
		{"ed public generate without params", OpGeneratePublic, ck.CKO_PUBLIC_KEY, ck.CKK_EC_EDWARDS, Template{}, ck.CKR_TEMPLATE_INCOMPLETE},
		{"rsa public create without exponent", OpCreate, ck.CKO_PUBLIC_KEY, ck.CKK_RSA, Template{ck.CKA_MODULUS: rsaPub[ck.CKA_MODULUS]}, ck.CKR_TEMPLATE_INCOMPLETE},
		{"ec private create without params", OpCreate, ck.CKO_PRIVATE_KEY, ck.CKK_EC, Template{ck.CKA_VALUE: {1}}, ck.CKR_TEMPLATE_INCOMPLETE},
		{"x509 without subject", OpCreate, ck.CKO_CERTIFICATE, NoKeyType, Template{ck.CKA_VALUE: {1}}, ck.CKR_TEMPLATE_INCOMPLETE},
		{"x509 without value", OpCreate, ck.CKO_CERTIFICATE, NoKeyType, Template{ck.CKA_SUBJECT: {1}}, ck.CKR_TEMPLATE_INCOMPLETE},

		// token-assigned: always read-only
		{"local", OpCreate, ck.CKO_SECRET_KEY, ck.CKK_AES, merge(aes16, Template{ck.CKA_LOCAL: Bool(true)}), ck.CKR_ATTRIBUTE_READ_ONLY},
		{"local false on generate", OpGenerate, ck.CKO_SECRET_KEY, ck.CKK_AES, Template{ck.CKA_VALUE_LEN: ul(16), ck.CKA_LOCAL: Bool(false)}, ck.CKR_ATTRIBUTE_READ_ONLY},
		{"always sensitive", OpGenerate, ck.CKO_PRIVATE_KEY, ck.CKK_RSA, Template{ck.CKA_ALWAYS_SENSITIVE: Bool(true)}, ck.CKR_ATTRIBUTE_READ_ONLY},
		{"never extractable", OpUnwrap, ck.CKO_SECRET_KEY, ck.CKK_AES, Template{ck.CKA_NEVER_EXTRACTABLE: Bool(true)}, ck.CKR_ATTRIBUTE_READ_ONLY},
		{"key gen mechanism", OpGenerate, ck.CKO_SECRET_KEY, ck.CKK_AES, Template{ck.CKA_VALUE_LEN: ul(16), ck.CKA_KEY_GEN_MECHANISM: ul(0)}, ck.CKR_ATTRIBUTE_READ_ONLY},
		{"unique id", OpCreate, ck.CKO_DATA, NoKeyType, Template{ck.CKA_UNIQUE_ID: []byte("1")}, ck.CKR_ATTRIBUTE_READ_ONLY},
		{"ec point of private key", OpGenerate, ck.CKO_PRIVATE_KEY, ck.CKK_EC, Template{ck.CKA_EC_POINT: {4, 1, 4}}, ck.CKR_ATTRIBUTE_READ_ONLY},
		{"trusted true (SO only)", OpCreate, ck.CKO_SECRET_KEY, ck.CKK_AES, merge(aes16, Template{ck.CKA_TRUSTED: Bool(true)}), ck.CKR_ATTRIBUTE_READ_ONLY},

		// forbidden on this operation only
		{"value on generate", OpGenerate, ck.CKO_SECRET_KEY, ck.CKK_AES, Template{ck.CKA_VALUE_LEN: ul(16), ck.CKA_VALUE: aesKey(16)}, ck.CKR_TEMPLATE_INCONSISTENT},
		{"value on unwrap", OpUnwrap, ck.CKO_SECRET_KEY, ck.CKK_AES, Template{ck.CKA_VALUE: aesKey(16)}, ck.CKR_TEMPLATE_INCONSISTENT},
		{"value on derive", OpDerive, ck.CKO_SECRET_KEY, ck.CKK_AES, Template{ck.CKA_VALUE: aesKey(16)}, ck.CKR_TEMPLATE_INCONSISTENT},
		{"value len on create", OpCreate, ck.CKO_SECRET_KEY, ck.CKK_AES, merge(aes16, Template{ck.CKA_VALUE_LEN: ul(16)}), ck.CKR_TEMPLATE_INCONSISTENT},
		{"modulus on generate", OpGeneratePublic, ck.CKO_PUBLIC_KEY, ck.CKK_RSA, Template{ck.CKA_MODULUS_BITS: ul(2048), ck.CKA_MODULUS: {1}}, ck.CKR_TEMPLATE_INCONSISTENT},
		{"public exponent in private generate template", OpGenerate, ck.CKO_PRIVATE_KEY, ck.CKK_RSA, Template{ck.CKA_PUBLIC_EXPONENT: {1, 0, 1}}, ck.CKR_TEMPLATE_INCONSISTENT},
		{"ec params in private generate template", OpGenerate, ck.CKO_PRIVATE_KEY, ck.CKK_EC, Template{ck.CKA_EC_PARAMS: p256Params(t)}, ck.CKR_TEMPLATE_INCONSISTENT},
		{"modulus bits on create", OpCreate, ck.CKO_PUBLIC_KEY, ck.CKK_RSA, merge(rsaPub, Template{ck.CKA_MODULUS_BITS: ul(2048)}), ck.CKR_TEMPLATE_INCONSISTENT},
		{"ec point on generate", OpGeneratePublic, ck.CKO_PUBLIC_KEY, ck.CKK_EC, Template{ck.CKA_EC_PARAMS: p256Params(t), ck.CKA_EC_POINT: {4}}, ck.CKR_TEMPLATE_INCONSISTENT},

		// identity
		{"class contradicts", OpCreate, ck.CKO_SECRET_KEY, ck.CKK_AES, merge(aes16, Template{ck.CKA_CLASS: class(ck.CKO_PUBLIC_KEY)}), ck.CKR_TEMPLATE_INCONSISTENT},
		{"key type contradicts", OpGenerate, ck.CKO_SECRET_KEY, ck.CKK_AES, Template{ck.CKA_VALUE_LEN: ul(16), ck.CKA_KEY_TYPE: ktype(ck.CKK_GENERIC_SECRET)}, ck.CKR_TEMPLATE_INCONSISTENT},
		{"cert type contradicts", OpCreate, ck.CKO_CERTIFICATE, NoKeyType, Template{ck.CKA_CERTIFICATE_TYPE: ul(ck.ULong(ck.CKC_WTLS))}, ck.CKR_TEMPLATE_INCONSISTENT},
		{"secret class, public op", OpGeneratePublic, ck.CKO_SECRET_KEY, ck.CKK_AES, Template{}, ck.CKR_TEMPLATE_INCONSISTENT},
		{"generate a data object", OpGenerate, ck.CKO_DATA, NoKeyType, Template{}, ck.CKR_TEMPLATE_INCONSISTENT},
		{"aes public key", OpCreate, ck.CKO_PUBLIC_KEY, ck.CKK_AES, Template{}, ck.CKR_TEMPLATE_INCONSISTENT},
		{"unsupported key type", OpCreate, ck.CKO_SECRET_KEY, ck.CKK_RC4, Template{}, ck.CKR_ATTRIBUTE_VALUE_INVALID},

		// foreign to the class
		{"modulus on aes", OpCreate, ck.CKO_SECRET_KEY, ck.CKK_AES, merge(aes16, Template{ck.CKA_MODULUS: {1}}), ck.CKR_ATTRIBUTE_TYPE_INVALID},
		{"sign on public key", OpGeneratePublic, ck.CKO_PUBLIC_KEY, ck.CKK_EC, Template{ck.CKA_EC_PARAMS: p256Params(t), ck.CKA_SIGN: Bool(true)}, ck.CKR_ATTRIBUTE_TYPE_INVALID},
		{"value len on des3", OpGenerate, ck.CKO_SECRET_KEY, ck.CKK_DES3, Template{ck.CKA_VALUE_LEN: ul(24)}, ck.CKR_ATTRIBUTE_TYPE_INVALID},
		{"key type on data", OpCreate, ck.CKO_DATA, NoKeyType, Template{ck.CKA_KEY_TYPE: ktype(ck.CKK_AES)}, ck.CKR_ATTRIBUTE_TYPE_INVALID},
		{"vendor attribute", OpCreate, ck.CKO_DATA, NoKeyType, Template{ck.CKA_VENDOR_DEFINED | 1: {1}}, ck.CKR_ATTRIBUTE_TYPE_INVALID},

		// encodings and values
		{"bool of 2 bytes", OpGenerate, ck.CKO_SECRET_KEY, ck.CKK_AES, Template{ck.CKA_VALUE_LEN: ul(16), ck.CKA_TOKEN: {1, 0}}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"bool of value 2", OpGenerate, ck.CKO_SECRET_KEY, ck.CKK_AES, Template{ck.CKA_VALUE_LEN: ul(16), ck.CKA_SIGN: {2}}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"empty bool", OpGenerate, ck.CKO_SECRET_KEY, ck.CKK_AES, Template{ck.CKA_VALUE_LEN: ul(16), ck.CKA_SIGN: {}}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"ulong of 4 bytes", OpGenerate, ck.CKO_SECRET_KEY, ck.CKK_AES, Template{ck.CKA_VALUE_LEN: {16, 0, 0, 0}}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"bad date", OpGenerate, ck.CKO_SECRET_KEY, ck.CKK_AES, Template{ck.CKA_VALUE_LEN: ul(16), ck.CKA_START_DATE: []byte("2024-1-1")}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"bad mechanism list", OpGenerate, ck.CKO_SECRET_KEY, ck.CKK_AES, Template{ck.CKA_VALUE_LEN: ul(16), ck.CKA_ALLOWED_MECHANISMS: {1, 2, 3}}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"bad wrap template", OpGenerate, ck.CKO_SECRET_KEY, ck.CKK_AES, Template{ck.CKA_VALUE_LEN: ul(16), ck.CKA_WRAP_TEMPLATE: {1, 2, 3}}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"aes value of 15 bytes", OpCreate, ck.CKO_SECRET_KEY, ck.CKK_AES, Template{ck.CKA_VALUE: aesKey(15)}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"aes value len 20", OpGenerate, ck.CKO_SECRET_KEY, ck.CKK_AES, Template{ck.CKA_VALUE_LEN: ul(20)}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"generic value len 0", OpGenerate, ck.CKO_SECRET_KEY, ck.CKK_GENERIC_SECRET, Template{ck.CKA_VALUE_LEN: ul(0)}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"des3 value of 16 bytes", OpCreate, ck.CKO_SECRET_KEY, ck.CKK_DES3, Template{ck.CKA_VALUE: aesKey(16)}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"aes check value mismatch", OpCreate, ck.CKO_SECRET_KEY, ck.CKK_AES, merge(aes16, Template{ck.CKA_CHECK_VALUE: {1, 2, 3}}), ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"cert check value mismatch", OpCreate, ck.CKO_CERTIFICATE, NoKeyType, Template{ck.CKA_SUBJECT: {1}, ck.CKA_VALUE: {1}, ck.CKA_CHECK_VALUE: {0, 0, 0}}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"rsa even exponent", OpCreate, ck.CKO_PUBLIC_KEY, ck.CKK_RSA, merge(rsaPub, Template{ck.CKA_PUBLIC_EXPONENT: {1, 0, 0}}), ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"ec unknown curve", OpCreate, ck.CKO_PUBLIC_KEY, ck.CKK_EC, Template{ck.CKA_EC_PARAMS: mustOID(t, 1, 3, 36, 3, 3, 2, 8, 1, 1, 7), ck.CKA_EC_POINT: {4}}, ck.CKR_CURVE_NOT_SUPPORTED}, // brainpoolP256r1 (secp256k1 is supported)
		{"ec point off the curve", OpCreate, ck.CKO_PUBLIC_KEY, ck.CKK_EC, Template{ck.CKA_EC_PARAMS: p256Params(t), ck.CKA_EC_POINT: append([]byte{4}, make([]byte, 64)...)}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"ed25519 seed of 31 bytes", OpCreate, ck.CKO_PRIVATE_KEY, ck.CKK_EC_EDWARDS, Template{ck.CKA_EC_PARAMS: mustOID(t, 1, 3, 101, 112), ck.CKA_VALUE: make([]byte, 31)}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Build(c.op, c.class, c.kt, 0, c.t)
			requireRV(t, err, c.want)
		})
	}
	_, err := Build(OpSet, ck.CKO_DATA, NoKeyType, 0, Template{})
	requireRV(t, err, ck.CKR_GENERAL_ERROR)
}

func mustOID(t *testing.T, arcs ...int) []byte {
	b, err := asn1.Marshal(asn1.ObjectIdentifier(arcs))
	require.NoError(t, err)
	return b
}

// TestBuildCreateComputes checks what C_CreateObject adds from the material.
func TestBuildCreateComputes(t *testing.T) {
	t.Run("aes", func(t *testing.T) {
		key := aesKey(32)
		kcv := aesKCV(t, key)
		got, err := Build(OpCreate, ck.CKO_SECRET_KEY, ck.CKK_AES, 0, Template{ck.CKA_VALUE: key, ck.CKA_SENSITIVE: Bool(false)})
		require.NoError(t, err)
		assert.Equal(t, kcv, got[ck.CKA_CHECK_VALUE])
		assert.Equal(t, ul(32), got[ck.CKA_VALUE_LEN])
		assert.Equal(t, Bool(false), got[ck.CKA_LOCAL])
		assert.Equal(t, Bool(false), got[ck.CKA_ALWAYS_SENSITIVE], "created keys were not always sensitive")
		assert.Equal(t, Bool(false), got[ck.CKA_NEVER_EXTRACTABLE])
		assert.Equal(t, ul(ck.CK_UNAVAILABLE_INFORMATION), got[ck.CKA_KEY_GEN_MECHANISM])
		// A matching check value is accepted.
		_, err = Build(OpCreate, ck.CKO_SECRET_KEY, ck.CKK_AES, 0, Template{ck.CKA_VALUE: key, ck.CKA_CHECK_VALUE: kcv})
		require.NoError(t, err)
	})
	t.Run("rsa public", func(t *testing.T) {
		pub := mustTemplate(t, &testRSAKey(t).PublicKey)
		delete(pub, ck.CKA_MODULUS_BITS)
		got, err := Build(OpCreate, ck.CKO_PUBLIC_KEY, ck.CKK_RSA, 0, pub)
		require.NoError(t, err)
		assert.Equal(t, ul(2048), got[ck.CKA_MODULUS_BITS])
	})
	t.Run("rsa private fills crt values", func(t *testing.T) {
		full := mustTemplate(t, testRSAKey(t))
		in := full.Clone()
		delete(in, ck.CKA_EXPONENT_1)
		delete(in, ck.CKA_EXPONENT_2)
		delete(in, ck.CKA_COEFFICIENT)
		got, err := Build(OpCreate, ck.CKO_PRIVATE_KEY, ck.CKK_RSA, 0, in)
		require.NoError(t, err)
		for _, a := range []ck.AttributeType{ck.CKA_EXPONENT_1, ck.CKA_EXPONENT_2, ck.CKA_COEFFICIENT} {
			assert.Equal(t, full[a], got[a], "%s", a)
		}
		assert.NotContains(t, got, ck.CKA_MODULUS_BITS)
		// Leading zeros in a given CRT value still match.
		in[ck.CKA_COEFFICIENT] = append([]byte{0}, full[ck.CKA_COEFFICIENT]...)
		_, err = Build(OpCreate, ck.CKO_PRIVATE_KEY, ck.CKK_RSA, 0, in)
		require.NoError(t, err)
		in[ck.CKA_COEFFICIENT] = []byte{1}
		_, err = Build(OpCreate, ck.CKO_PRIVATE_KEY, ck.CKK_RSA, 0, in)
		requireRV(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
		// Wrong private exponent: the key does not validate.
		bad := full.Clone()
		bad[ck.CKA_PRIVATE_EXPONENT] = []byte{3}
		_, err = Build(OpCreate, ck.CKO_PRIVATE_KEY, ck.CKK_RSA, 0, bad)
		requireRV(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	})
	t.Run("ec private gets its public point", func(t *testing.T) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		m := mustTemplate(t, k)
		got, err := Build(OpCreate, ck.CKO_PRIVATE_KEY, ck.CKK_EC, 0, Template{ck.CKA_EC_PARAMS: m[ck.CKA_EC_PARAMS], ck.CKA_VALUE: m[ck.CKA_VALUE]})
		require.NoError(t, err)
		pubT := mustTemplate(t, &k.PublicKey)
		assert.Equal(t, pubT[ck.CKA_EC_POINT], got[ck.CKA_EC_POINT])
	})
	t.Run("certificate check value", func(t *testing.T) {
		der := selfSigned(t)
		got, err := Build(OpCreate, ck.CKO_CERTIFICATE, NoKeyType, 0, Template{ck.CKA_SUBJECT: []byte("s"), ck.CKA_VALUE: der})
		require.NoError(t, err)
		h := sha1.Sum(der)
		assert.Equal(t, h[:3], got[ck.CKA_CHECK_VALUE])
		assert.Equal(t, ul(ck.ULong(ck.CKC_X_509)), got[ck.CKA_CERTIFICATE_TYPE])
		assert.Equal(t, ul(ck.ULong(ck.CKM_SHA_1)), got[ck.CKA_NAME_HASH_ALGORITHM])
		assert.Equal(t, ul(0), got[ck.CKA_CERTIFICATE_CATEGORY])
		assert.Equal(t, Bool(false), got[ck.CKA_PRIVATE])
		assert.Equal(t, Bool(false), got[ck.CKA_TRUSTED])
	})
}

func selfSigned(t *testing.T) []byte {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gohsm"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<31, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	require.NoError(t, err)
	return der
}

// aesKCV computes the AES key check value independently of CheckValue.
func aesKCV(t *testing.T, key []byte) []byte {
	b, err := aes.NewCipher(key)
	require.NoError(t, err)
	out := make([]byte, aes.BlockSize)
	b.Encrypt(out, make([]byte, aes.BlockSize))
	return out[:3]
}

func TestCheckValue(t *testing.T) {
	// FIPS 197 Appendix C.1 key; AES-128(000102..0f, 00*16) computed
	// independently with crypto/aes, and the first bytes pinned:
	// 0xc6a13b37878f5b826f4f8162a1c8d879.
	key := []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	assert.Equal(t, aesKCV(t, key), CheckValue(ck.CKK_AES, key))
	assert.Equal(t, []byte{0xc6, 0xa1, 0x3b}, CheckValue(ck.CKK_AES, key))

	k3 := aesKey(24)
	c, err := des.NewTripleDESCipher(k3)
	require.NoError(t, err)
	blk := make([]byte, 8)
	c.Encrypt(blk, blk)
	assert.Equal(t, blk[:3], CheckValue(ck.CKK_DES3, k3))

	h := sha1.Sum([]byte("secret"))
	assert.Equal(t, h[:3], CheckValue(ck.CKK_GENERIC_SECRET, []byte("secret")))
	assert.Equal(t, h[:3], CheckValue(NoKeyType, []byte("secret")))

	assert.Nil(t, CheckValue(ck.CKK_AES, aesKey(15)))
	assert.Nil(t, CheckValue(ck.CKK_RSA, key))
}

func TestWithMaterial(t *testing.T) {
	t.Run("aes generate", func(t *testing.T) {
		obj, err := Build(OpGenerate, ck.CKO_SECRET_KEY, ck.CKK_AES, ck.CKM_AES_KEY_GEN, Template{ck.CKA_VALUE_LEN: ul(32)})
		require.NoError(t, err)
		key := aesKey(32)
		got, err := WithMaterial(obj, mustTemplate(t, key))
		require.NoError(t, err)
		assert.Equal(t, key, got[ck.CKA_VALUE])
		assert.Equal(t, aesKCV(t, key), got[ck.CKA_CHECK_VALUE])
		assert.Equal(t, Bool(true), got[ck.CKA_LOCAL])

		_, err = WithMaterial(obj, mustTemplate(t, aesKey(16)))
		requireRV(t, err, ck.CKR_TEMPLATE_INCONSISTENT)
	})
	t.Run("aes unwrap with check value", func(t *testing.T) {
		key := aesKey(16)
		obj, err := Build(OpUnwrap, ck.CKO_SECRET_KEY, ck.CKK_AES, 0, Template{ck.CKA_CHECK_VALUE: aesKCV(t, key)})
		require.NoError(t, err)
		_, err = WithMaterial(obj, mustTemplate(t, key))
		require.NoError(t, err)
		_, err = WithMaterial(obj, mustTemplate(t, aesKey(24)))
		requireRV(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	})
	t.Run("rsa key pair", func(t *testing.T) {
		k := testRSAKey(t)
		pubObj, err := Build(OpGeneratePublic, ck.CKO_PUBLIC_KEY, ck.CKK_RSA, ck.CKM_RSA_PKCS_KEY_PAIR_GEN,
			Template{ck.CKA_MODULUS_BITS: ul(2048), ck.CKA_PUBLIC_EXPONENT: {1, 0, 1}})
		require.NoError(t, err)
		pub, err := WithMaterial(pubObj, mustTemplate(t, &k.PublicKey))
		require.NoError(t, err)
		assert.Equal(t, k.N.Bytes(), pub[ck.CKA_MODULUS])
		privObj, err := Build(OpGenerate, ck.CKO_PRIVATE_KEY, ck.CKK_RSA, ck.CKM_RSA_PKCS_KEY_PAIR_GEN, Template{})
		require.NoError(t, err)
		priv, err := WithMaterial(privObj, mustTemplate(t, k))
		require.NoError(t, err)
		assert.Equal(t, k.D.Bytes(), priv[ck.CKA_PRIVATE_EXPONENT])
		assert.NotContains(t, priv, ck.CKA_MODULUS_BITS)

		pubObj[ck.CKA_MODULUS_BITS] = ul(3072)
		_, err = WithMaterial(pubObj, mustTemplate(t, &k.PublicKey))
		requireRV(t, err, ck.CKR_TEMPLATE_INCONSISTENT)
	})
}

func TestApplyDeriveBase(t *testing.T) {
	obj, err := Build(OpDerive, ck.CKO_SECRET_KEY, ck.CKK_AES, 0, Template{ck.CKA_VALUE_LEN: ul(16), ck.CKA_EXTRACTABLE: Bool(false)})
	require.NoError(t, err)
	base := Template{ck.CKA_ALWAYS_SENSITIVE: Bool(true), ck.CKA_NEVER_EXTRACTABLE: Bool(true)}
	got := ApplyDeriveBase(obj, base)
	assert.Equal(t, Bool(true), got[ck.CKA_ALWAYS_SENSITIVE])
	assert.Equal(t, Bool(true), got[ck.CKA_NEVER_EXTRACTABLE])
	base = Template{ck.CKA_ALWAYS_SENSITIVE: Bool(false), ck.CKA_NEVER_EXTRACTABLE: Bool(false)}
	got = ApplyDeriveBase(obj, base)
	assert.Equal(t, Bool(false), got[ck.CKA_ALWAYS_SENSITIVE])
	assert.Equal(t, Bool(false), got[ck.CKA_NEVER_EXTRACTABLE])
	assert.Equal(t, Bool(true), obj[ck.CKA_ALWAYS_SENSITIVE], "argument unchanged")
	// Any of several keys (CKM_CONCATENATE_BASE_AND_KEY) not always
	// sensitive makes the derived key not always sensitive.
	always := Template{ck.CKA_ALWAYS_SENSITIVE: Bool(true), ck.CKA_NEVER_EXTRACTABLE: Bool(true)}
	got = ApplyDeriveBase(obj, always, base)
	assert.Equal(t, Bool(false), got[ck.CKA_ALWAYS_SENSITIVE])
	assert.Equal(t, Bool(false), got[ck.CKA_NEVER_EXTRACTABLE])
}

func TestInheritProtection(t *testing.T) {
	protected := Template{ck.CKA_SENSITIVE: Bool(true), ck.CKA_EXTRACTABLE: Bool(false)}
	plain := Template{ck.CKA_SENSITIVE: Bool(false), ck.CKA_EXTRACTABLE: Bool(true)}
	got, err := InheritProtection(Template{}, plain, protected)
	require.NoError(t, err)
	assert.Equal(t, Template{ck.CKA_SENSITIVE: Bool(true), ck.CKA_EXTRACTABLE: Bool(false)}, got)
	got, err = InheritProtection(Template{ck.CKA_SENSITIVE: Bool(false)}, plain)
	require.NoError(t, err)
	assert.Equal(t, Template{ck.CKA_SENSITIVE: Bool(false)}, got, "a plain key leaves the template alone")
	_, err = InheritProtection(Template{ck.CKA_SENSITIVE: Bool(false)}, protected)
	requireRV(t, err, ck.CKR_TEMPLATE_INCONSISTENT)
	_, err = InheritProtection(Template{ck.CKA_EXTRACTABLE: Bool(true)}, plain, protected)
	requireRV(t, err, ck.CKR_TEMPLATE_INCONSISTENT)
	got, err = InheritProtection(nil, protected)
	require.NoError(t, err)
	assert.Equal(t, Template{ck.CKA_SENSITIVE: Bool(true), ck.CKA_EXTRACTABLE: Bool(false)}, got, "no template at all")
	in := Template{ck.CKA_LABEL: []byte("x")}
	_, err = InheritProtection(in, protected)
	require.NoError(t, err)
	assert.Equal(t, Template{ck.CKA_LABEL: []byte("x")}, in, "argument unchanged")
}

// stored objects for the set / copy / read tests.
func aesObject(t *testing.T, extra Template) Template {
	obj, err := Build(OpGenerate, ck.CKO_SECRET_KEY, ck.CKK_AES, ck.CKM_AES_KEY_GEN, merge(Template{ck.CKA_VALUE_LEN: ul(16)}, extra))
	require.NoError(t, err)
	obj, err = WithMaterial(obj, mustTemplate(t, aesKey(16)))
	require.NoError(t, err)
	obj[ck.CKA_UNIQUE_ID] = []byte("42")
	return obj
}

func rsaPrivateObject(t *testing.T, extra Template) Template {
	obj, err := Build(OpCreate, ck.CKO_PRIVATE_KEY, ck.CKK_RSA, 0, merge(mustTemplate(t, testRSAKey(t)), extra))
	require.NoError(t, err)
	return obj
}

func TestCheckSet(t *testing.T) {
	cases := []struct {
		name    string
		obj     Template
		changes Template
		want    ck.RV
	}{
		{"label", nil, Template{ck.CKA_LABEL: []byte("new")}, 0},
		{"id", nil, Template{ck.CKA_ID: []byte{1}}, 0},
		{"usage", nil, Template{ck.CKA_ENCRYPT: Bool(false), ck.CKA_DERIVE: Bool(true)}, 0},
		{"dates", nil, Template{ck.CKA_START_DATE: []byte("20240101"), ck.CKA_END_DATE: {}}, 0},
		{"sensitive to true", Template{ck.CKA_SENSITIVE: Bool(false)}, Template{ck.CKA_SENSITIVE: Bool(true)}, 0},
		{"sensitive to false", nil, Template{ck.CKA_SENSITIVE: Bool(false)}, ck.CKR_ATTRIBUTE_READ_ONLY},
		{"sensitive true again", nil, Template{ck.CKA_SENSITIVE: Bool(true)}, 0},
		{"extractable to false", nil, Template{ck.CKA_EXTRACTABLE: Bool(false)}, 0},
		{"extractable to true", Template{ck.CKA_EXTRACTABLE: Bool(false)}, Template{ck.CKA_EXTRACTABLE: Bool(true)}, ck.CKR_ATTRIBUTE_READ_ONLY},
		{"wrap with trusted to true", nil, Template{ck.CKA_WRAP_WITH_TRUSTED: Bool(true)}, ck.CKR_ATTRIBUTE_READ_ONLY},
		{"copyable to false", nil, Template{ck.CKA_COPYABLE: Bool(false)}, 0},
		{"copyable to true", Template{ck.CKA_COPYABLE: Bool(false)}, Template{ck.CKA_COPYABLE: Bool(true)}, ck.CKR_ATTRIBUTE_READ_ONLY},
		{"trusted", nil, Template{ck.CKA_TRUSTED: Bool(true)}, ck.CKR_ATTRIBUTE_READ_ONLY},
		{"token", nil, Template{ck.CKA_TOKEN: Bool(true)}, ck.CKR_ATTRIBUTE_READ_ONLY},
		{"private", nil, Template{ck.CKA_PRIVATE: Bool(false)}, ck.CKR_ATTRIBUTE_READ_ONLY},
		{"modifiable", nil, Template{ck.CKA_MODIFIABLE: Bool(false)}, ck.CKR_ATTRIBUTE_READ_ONLY},
		{"class", nil, Template{ck.CKA_CLASS: class(ck.CKO_SECRET_KEY)}, ck.CKR_ATTRIBUTE_READ_ONLY},
		{"key type", nil, Template{ck.CKA_KEY_TYPE: ktype(ck.CKK_AES)}, ck.CKR_ATTRIBUTE_READ_ONLY},
		{"value", nil, Template{ck.CKA_VALUE: aesKey(16)}, ck.CKR_ATTRIBUTE_READ_ONLY},
		{"value len", nil, Template{ck.CKA_VALUE_LEN: ul(16)}, ck.CKR_ATTRIBUTE_READ_ONLY},
		{"local", nil, Template{ck.CKA_LOCAL: Bool(true)}, ck.CKR_ATTRIBUTE_READ_ONLY},
		{"unique id", nil, Template{ck.CKA_UNIQUE_ID: []byte("7")}, ck.CKR_ATTRIBUTE_READ_ONLY},
		{"check value", nil, Template{ck.CKA_CHECK_VALUE: {1, 2, 3}}, ck.CKR_ATTRIBUTE_READ_ONLY},
		{"always sensitive", nil, Template{ck.CKA_ALWAYS_SENSITIVE: Bool(true)}, ck.CKR_ATTRIBUTE_READ_ONLY},
		{"destroyable", nil, Template{ck.CKA_DESTROYABLE: Bool(false)}, ck.CKR_ATTRIBUTE_READ_ONLY},
		{"wrap template", nil, Template{ck.CKA_WRAP_TEMPLATE: {}}, ck.CKR_ATTRIBUTE_READ_ONLY},
		{"foreign", nil, Template{ck.CKA_MODULUS: {1}}, ck.CKR_ATTRIBUTE_TYPE_INVALID},
		{"bad encoding", nil, Template{ck.CKA_SIGN: {1, 1}}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"not modifiable", Template{ck.CKA_MODIFIABLE: Bool(false)}, Template{ck.CKA_LABEL: []byte("x")}, ck.CKR_ACTION_PROHIBITED},
		{"nothing on unmodifiable", Template{ck.CKA_MODIFIABLE: Bool(false)}, Template{}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			obj := aesObject(t, c.obj)
			err := CheckSet(obj, c.changes)
			if c.want != 0 {
				requireRV(t, err, c.want)
				return
			}
			require.NoError(t, err)
			got := ApplySet(obj, c.changes)
			for a, v := range c.changes {
				assert.Equal(t, v, got[a])
			}
			assert.Equal(t, obj[ck.CKA_ALWAYS_SENSITIVE], got[ck.CKA_ALWAYS_SENSITIVE])
			assert.Equal(t, obj[ck.CKA_NEVER_EXTRACTABLE], got[ck.CKA_NEVER_EXTRACTABLE])
		})
	}
	t.Run("private key material", func(t *testing.T) {
		obj := rsaPrivateObject(t, nil)
		requireRV(t, CheckSet(obj, Template{ck.CKA_PRIME_1: {3}}), ck.CKR_ATTRIBUTE_READ_ONLY)
		requireRV(t, CheckSet(obj, Template{ck.CKA_MODULUS_BITS: ul(2048)}), ck.CKR_ATTRIBUTE_TYPE_INVALID)
		require.NoError(t, CheckSet(obj, Template{ck.CKA_SUBJECT: []byte("cn")}))
	})
	t.Run("set sensitive keeps always sensitive false", func(t *testing.T) {
		obj := aesObject(t, Template{ck.CKA_SENSITIVE: Bool(false)})
		require.Equal(t, Bool(false), obj[ck.CKA_ALWAYS_SENSITIVE])
		ch := Template{ck.CKA_SENSITIVE: Bool(true), ck.CKA_EXTRACTABLE: Bool(false)}
		require.NoError(t, CheckSet(obj, ch))
		got := ApplySet(obj, ch)
		assert.Equal(t, Bool(false), got[ck.CKA_ALWAYS_SENSITIVE])
		assert.Equal(t, Bool(false), got[ck.CKA_NEVER_EXTRACTABLE])
		assert.Equal(t, Bool(true), obj[ck.CKA_EXTRACTABLE], "ApplySet must not change its argument")
	})
}

func TestCheckCopy(t *testing.T) {
	cases := []struct {
		name string
		obj  Template
		t    Template
		want ck.RV
	}{
		{"plain", nil, Template{}, 0},
		{"token, private, modifiable", nil, Template{ck.CKA_TOKEN: Bool(true), ck.CKA_PRIVATE: Bool(false), ck.CKA_MODIFIABLE: Bool(false)}, 0},
		{"label of unmodifiable", Template{ck.CKA_MODIFIABLE: Bool(false)}, Template{ck.CKA_LABEL: []byte("copy")}, 0},
		{"copyable to false", nil, Template{ck.CKA_COPYABLE: Bool(false)}, 0},
		{"not copyable", Template{ck.CKA_COPYABLE: Bool(false)}, Template{}, ck.CKR_ACTION_PROHIBITED},
		{"sensitive to false", nil, Template{ck.CKA_SENSITIVE: Bool(false)}, ck.CKR_ATTRIBUTE_READ_ONLY},
		{"extractable to true", Template{ck.CKA_EXTRACTABLE: Bool(false)}, Template{ck.CKA_EXTRACTABLE: Bool(true)}, ck.CKR_ATTRIBUTE_READ_ONLY},
		{"value", nil, Template{ck.CKA_VALUE: aesKey(16)}, ck.CKR_ATTRIBUTE_READ_ONLY},
		{"class", nil, Template{ck.CKA_CLASS: class(ck.CKO_DATA)}, ck.CKR_ATTRIBUTE_READ_ONLY},
		{"local", nil, Template{ck.CKA_LOCAL: Bool(false)}, ck.CKR_ATTRIBUTE_READ_ONLY},
		{"trusted", nil, Template{ck.CKA_TRUSTED: Bool(true)}, ck.CKR_ATTRIBUTE_READ_ONLY},
		{"foreign", nil, Template{ck.CKA_EC_POINT: {4}}, ck.CKR_ATTRIBUTE_TYPE_INVALID},
		{"bad encoding", nil, Template{ck.CKA_TOKEN: {9}}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			obj := aesObject(t, c.obj)
			got, err := CheckCopy(obj, c.t)
			if c.want != 0 {
				requireRV(t, err, c.want)
				return
			}
			require.NoError(t, err)
			assert.NotContains(t, got, ck.CKA_UNIQUE_ID, "the copy gets a new CKA_UNIQUE_ID")
			assert.Contains(t, obj, ck.CKA_UNIQUE_ID)
			for a, v := range c.t {
				assert.Equal(t, v, got[a])
			}
			for _, a := range []ck.AttributeType{ck.CKA_VALUE, ck.CKA_LOCAL, ck.CKA_KEY_GEN_MECHANISM, ck.CKA_ALWAYS_SENSITIVE} {
				assert.Equal(t, obj[a], got[a], "%s kept", a)
			}
		})
	}
}

func TestReadable(t *testing.T) {
	cases := []struct {
		name string
		obj  Template
		a    ck.AttributeType
		want ck.RV
	}{
		{"label", aesObject(t, nil), ck.CKA_LABEL, 0},
		{"value len", aesObject(t, nil), ck.CKA_VALUE_LEN, 0},
		{"check value", aesObject(t, nil), ck.CKA_CHECK_VALUE, 0},
		{"sensitive value", aesObject(t, nil), ck.CKA_VALUE, ck.CKR_ATTRIBUTE_SENSITIVE},
		{"extractable non-sensitive value", aesObject(t, Template{ck.CKA_SENSITIVE: Bool(false)}), ck.CKA_VALUE, 0},
		{"unextractable non-sensitive value", aesObject(t, Template{ck.CKA_SENSITIVE: Bool(false), ck.CKA_EXTRACTABLE: Bool(false)}), ck.CKA_VALUE, ck.CKR_ATTRIBUTE_SENSITIVE},
		{"foreign", aesObject(t, nil), ck.CKA_MODULUS, ck.CKR_ATTRIBUTE_TYPE_INVALID},
		{"rsa modulus", rsaPrivateObject(t, nil), ck.CKA_MODULUS, 0},
		{"rsa public exponent", rsaPrivateObject(t, nil), ck.CKA_PUBLIC_EXPONENT, 0},
		{"rsa prime", rsaPrivateObject(t, nil), ck.CKA_PRIME_1, ck.CKR_ATTRIBUTE_SENSITIVE},
		{"rsa private exponent", rsaPrivateObject(t, nil), ck.CKA_PRIVATE_EXPONENT, ck.CKR_ATTRIBUTE_SENSITIVE},
		{"rsa coefficient, exportable", rsaPrivateObject(t, Template{ck.CKA_SENSITIVE: Bool(false)}), ck.CKA_COEFFICIENT, 0},
		{"rsa modulus bits on private", rsaPrivateObject(t, nil), ck.CKA_MODULUS_BITS, ck.CKR_ATTRIBUTE_TYPE_INVALID},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Readable(c.obj, c.a)
			if c.want != 0 {
				requireRV(t, err, c.want)
				return
			}
			require.NoError(t, err)
		})
	}
	requireRV(t, Readable(Template{}, ck.CKA_LABEL), ck.CKR_TEMPLATE_INCOMPLETE)
}

func TestIsSecret(t *testing.T) {
	secret := []struct {
		class ck.ObjectClass
		kt    ck.KeyType
		a     ck.AttributeType
	}{
		{ck.CKO_SECRET_KEY, ck.CKK_AES, ck.CKA_VALUE},
		{ck.CKO_SECRET_KEY, ck.CKK_GENERIC_SECRET, ck.CKA_VALUE},
		{ck.CKO_SECRET_KEY, ck.CKK_DES3, ck.CKA_VALUE},
		{ck.CKO_PRIVATE_KEY, ck.CKK_EC, ck.CKA_VALUE},
		{ck.CKO_PRIVATE_KEY, ck.CKK_EC_EDWARDS, ck.CKA_VALUE},
		{ck.CKO_PRIVATE_KEY, ck.CKK_RSA, ck.CKA_PRIVATE_EXPONENT},
		{ck.CKO_PRIVATE_KEY, ck.CKK_RSA, ck.CKA_PRIME_1},
		{ck.CKO_PRIVATE_KEY, ck.CKK_RSA, ck.CKA_PRIME_2},
		{ck.CKO_PRIVATE_KEY, ck.CKK_RSA, ck.CKA_EXPONENT_1},
		{ck.CKO_PRIVATE_KEY, ck.CKK_RSA, ck.CKA_EXPONENT_2},
		{ck.CKO_PRIVATE_KEY, ck.CKK_RSA, ck.CKA_COEFFICIENT},
	}
	for _, kt := range append(slices.Clone(hmacKeyTypes), ck.CKK_HKDF) {
		secret = append(secret, struct {
			class ck.ObjectClass
			kt    ck.KeyType
			a     ck.AttributeType
		}{ck.CKO_SECRET_KEY, kt, ck.CKA_VALUE})
	}
	secret = append(secret, extraSecrets...)
	n := 0
	for _, s := range schemas() {
		for _, row := range s.Attrs() {
			if IsSecret(s.Class, s.KeyType, row.Type) {
				n++
			}
		}
	}
	assert.Equal(t, len(secret), n, "exactly the listed attributes are secret")
	for _, c := range secret {
		assert.True(t, IsSecret(c.class, c.kt, c.a), "%s %s %s", c.class, c.kt, c.a)
	}
	assert.False(t, IsSecret(ck.CKO_PRIVATE_KEY, ck.CKK_RSA, ck.CKA_MODULUS))
	assert.False(t, IsSecret(ck.CKO_DATA, NoKeyType, ck.CKA_VALUE))
	assert.False(t, IsSecret(ck.CKO_CERTIFICATE, NoKeyType, ck.CKA_VALUE))
	assert.False(t, IsSecret(ck.CKO_PRIVATE_KEY, ck.CKK_DSA, ck.CKA_VALUE))
}

func TestKeyRoundTrip(t *testing.T) {
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	edPub, edPriv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	rk := testRSAKey(t)
	cases := []struct {
		name  string
		class ck.ObjectClass
		kt    ck.KeyType
		key   any
		equal func(a, b any) bool
	}{
		{"aes-256", ck.CKO_SECRET_KEY, ck.CKK_AES, aesKey(32), func(a, b any) bool { return bytes.Equal(a.([]byte), b.([]byte)) }},
		{"generic", ck.CKO_SECRET_KEY, ck.CKK_GENERIC_SECRET, []byte("hmac key"), func(a, b any) bool { return bytes.Equal(a.([]byte), b.([]byte)) }},
		{"rsa-2048 public", ck.CKO_PUBLIC_KEY, ck.CKK_RSA, &rk.PublicKey, func(a, b any) bool { return a.(*rsa.PublicKey).Equal(b) }},
		{"rsa-2048 private", ck.CKO_PRIVATE_KEY, ck.CKK_RSA, rk, func(a, b any) bool { return a.(*rsa.PrivateKey).Equal(b) }},
		{"p-256 public", ck.CKO_PUBLIC_KEY, ck.CKK_EC, &p256.PublicKey, func(a, b any) bool { return a.(*ecdsa.PublicKey).Equal(b) }},
		{"p-256 private", ck.CKO_PRIVATE_KEY, ck.CKK_EC, p256, func(a, b any) bool { return a.(*ecdsa.PrivateKey).Equal(b) }},
		{"p-384 public", ck.CKO_PUBLIC_KEY, ck.CKK_EC, &p384.PublicKey, func(a, b any) bool { return a.(*ecdsa.PublicKey).Equal(b) }},
		{"p-384 private", ck.CKO_PRIVATE_KEY, ck.CKK_EC, p384, func(a, b any) bool { return a.(*ecdsa.PrivateKey).Equal(b) }},
		{"ed25519 public", ck.CKO_PUBLIC_KEY, ck.CKK_EC_EDWARDS, edPub, func(a, b any) bool { return a.(ed25519.PublicKey).Equal(b) }},
		{"ed25519 private", ck.CKO_PRIVATE_KEY, ck.CKK_EC_EDWARDS, edPriv, func(a, b any) bool { return a.(ed25519.PrivateKey).Equal(b) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := mustTemplate(t, c.key)
			back, err := KeyFromTemplate(c.class, c.kt, m)
			require.NoError(t, err)
			assert.True(t, c.equal(c.key, back))
			// The material is exactly what the class allows, and Build
			// accepts it for C_CreateObject.
			s, _ := Lookup(c.class, c.kt)
			for a := range m {
				_, ok := s.Attr(a)
				if !ok {
					assert.Equal(t, ck.CKA_MODULUS_BITS, a, "only CKA_MODULUS_BITS may fall outside (RSA private)")
				}
			}
			in := Template{}
			for _, row := range s.Attrs() {
				if v, ok := m[row.Type]; ok && row.Has(MustCreate) {
					in[row.Type] = v
				}
			}
			obj, err := Build(OpCreate, c.class, c.kt, 0, in)
			require.NoError(t, err)
			for a, v := range m {
				if _, ok := s.Attr(a); ok {
					assert.Equal(t, v, obj[a], "%s", a)
				}
			}
		})
	}
	t.Run("ec point forms", func(t *testing.T) {
		m := mustTemplate(t, &p256.PublicKey)
		raw, err := p256.PublicKey.Bytes()
		require.NoError(t, err)
		var inner []byte
		_, err = asn1.Unmarshal(m[ck.CKA_EC_POINT], &inner)
		require.NoError(t, err)
		assert.Equal(t, raw, inner, "CKA_EC_POINT is a DER OCTET STRING of the uncompressed point")
		m[ck.CKA_EC_POINT] = raw
		back, err := KeyFromTemplate(ck.CKO_PUBLIC_KEY, ck.CKK_EC, m)
		require.NoError(t, err)
		assert.True(t, p256.PublicKey.Equal(back))
	})
	t.Run("ed25519 point forms and params", func(t *testing.T) {
		m := mustTemplate(t, edPub)
		assert.Equal(t, mustOID(t, 1, 3, 101, 112), m[ck.CKA_EC_PARAMS])
		assert.Equal(t, append([]byte{0x04, 0x20}, edPub...), m[ck.CKA_EC_POINT])
		m[ck.CKA_EC_POINT] = []byte(edPub)
		m[ck.CKA_EC_PARAMS], _ = asn1.MarshalWithParams("edwards25519", "printable")
		back, err := KeyFromTemplate(ck.CKO_PUBLIC_KEY, ck.CKK_EC_EDWARDS, m)
		require.NoError(t, err)
		assert.True(t, edPub.Equal(back))
		m[ck.CKA_EC_POINT] = []byte{4, 3, 1, 2, 3}
		_, err = KeyFromTemplate(ck.CKO_PUBLIC_KEY, ck.CKK_EC_EDWARDS, m)
		requireRV(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	})
	t.Run("missing material", func(t *testing.T) {
		_, err := KeyFromTemplate(ck.CKO_PRIVATE_KEY, ck.CKK_RSA, Template{ck.CKA_MODULUS: {1}})
		requireRV(t, err, ck.CKR_TEMPLATE_INCOMPLETE)
		_, err = KeyFromTemplate(ck.CKO_PRIVATE_KEY, ck.CKK_DSA, Template{})
		requireRV(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
		_, err = TemplateFromKey("not a key")
		requireRV(t, err, ck.CKR_GENERAL_ERROR)
	})
}
