package attrs

import (
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
)

// TestZeroPolicyIsTheTables: a zero Policy (the standard profile's)
// changes nothing: for every schema and creating operation it gives what
// no policy gives, defaults included.
func TestZeroPolicyIsTheTables(t *testing.T) {
	for k, s := range schemas() {
		for _, op := range classOps[k.class] {
			tmpl := Template{}
			for _, row := range s.Attrs() {
				if row.Kind == KindBool && !row.readOnly() && !row.Has(SOOnly) && row.Flags&creating[op].not == 0 {
					tmpl[row.Type] = Bool(true)
				}
			}
			want, wantErr := Build(op, k.class, k.keyType, 0, tmpl)
			got, gotErr := BuildWith(&Policy{}, op, k.class, k.keyType, 0, tmpl)
			require.Equal(t, rvOf(wantErr, 0), rvOf(gotErr, 0), "%s %s", s, op)
			require.Equal(t, want, got, "%s %s", s, op)
			if wantErr == nil && isKeyClass(k.class) {
				require.NoError(t, CheckSetWith(&Policy{}, want, Template{ck.CKA_LABEL: []byte("x")}))
			}
		}
	}
}

// TestPolicyRules: each kind of rule with its error.
func TestPolicyRules(t *testing.T) {
	p := &Policy{
		Defaults:            map[ck.ObjectClass]map[ck.AttributeType]bool{ck.CKO_SECRET_KEY: {ck.CKA_ENCRYPT: false}},
		Fixed:               map[ck.ObjectClass]map[ck.AttributeType]bool{ck.CKO_SECRET_KEY: {ck.CKA_PRIVATE: true}},
		Unsupported:         []ck.AttributeType{ck.CKA_START_DATE},
		ForeignInconsistent: true,
		ReadOnly:            []ck.AttributeType{ck.CKA_CHECK_VALUE},
		RequiredToGenerate:  map[ck.KeyType][]ck.AttributeType{ck.CKK_RSA: {ck.CKA_PUBLIC_EXPONENT}},
		Settable:            []ck.AttributeType{ck.CKA_LABEL, ck.CKA_TOKEN},
		RaiseOnly:           []ck.AttributeType{ck.CKA_TOKEN},
	}
	aes := func(extra Template) (Template, error) {
		return BuildWith(p, OpGenerate, ck.CKO_SECRET_KEY, ck.CKK_AES, ck.CKM_AES_KEY_GEN, merge(Template{ck.CKA_VALUE_LEN: ul(16)}, extra))
	}
	obj, err := aes(nil)
	require.NoError(t, err)
	v, _ := obj.Bool(ck.CKA_ENCRYPT)
	require.False(t, v)
	v, _ = obj.Bool(ck.CKA_DECRYPT)
	require.True(t, v, "the tables' default where the policy says nothing")
	_, err = aes(Template{ck.CKA_PRIVATE: Bool(false)})
	requireRV(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	_, err = aes(Template{ck.CKA_START_DATE: []byte{}})
	requireRV(t, err, ck.CKR_TEMPLATE_INCONSISTENT)
	_, err = aes(Template{ck.CKA_MODULUS: []byte{1}})
	requireRV(t, err, ck.CKR_TEMPLATE_INCONSISTENT)
	_, err = aes(Template{ck.CKA_VENDOR_DEFINED + 7: []byte{1}})
	requireRV(t, err, ck.CKR_ATTRIBUTE_TYPE_INVALID)
	_, err = aes(Template{ck.CKA_CHECK_VALUE: []byte{1, 2, 3}})
	requireRV(t, err, ck.CKR_ATTRIBUTE_READ_ONLY)
	_, err = BuildWith(p, OpGeneratePublic, ck.CKO_PUBLIC_KEY, ck.CKK_RSA, ck.CKM_RSA_PKCS_KEY_PAIR_GEN, Template{ck.CKA_MODULUS_BITS: ul(2048)})
	requireRV(t, err, ck.CKR_TEMPLATE_INCOMPLETE)
	requireRV(t, ReadableWith(p, obj, ck.CKA_START_DATE), ck.CKR_ATTRIBUTE_TYPE_INVALID)
	require.NoError(t, Readable(obj, ck.CKA_START_DATE))
	require.NoError(t, CheckSetWith(p, obj, Template{ck.CKA_TOKEN: Bool(true)}))
	requireRV(t, CheckSetWith(p, ApplySet(obj, Template{ck.CKA_TOKEN: Bool(true)}), Template{ck.CKA_TOKEN: Bool(false)}), ck.CKR_ATTRIBUTE_READ_ONLY)
	requireRV(t, CheckSetWith(p, obj, Template{ck.CKA_ID: []byte("x")}), ck.CKR_ATTRIBUTE_READ_ONLY)
	require.NoError(t, CheckSet(obj, Template{ck.CKA_ID: []byte("x")}))
	// Data objects and certificates keep the tables' rules.
	_, err = BuildWith(p, OpCreate, ck.CKO_DATA, NoKeyType, 0, Template{ck.CKA_PRIVATE: Bool(false), ck.CKA_MODULUS: []byte{1}})
	requireRV(t, err, ck.CKR_ATTRIBUTE_TYPE_INVALID)
}
