package attrs

import (
	"runtime"
	"testing"
	"weak"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
)

// TestBuildDefaultsIndependent: the defaults Build adds are shared with
// every template built from the same schema (prototype) and are never
// written in place, yet each template is its own: appending to a value
// (each is capped at its length) or replacing one leaves the others, and
// the schema's defaults, as they were; an empty default stays present
// (non-nil).
func TestBuildDefaultsIndependent(t *testing.T) {
	tmpl := Template{ck.CKA_VALUE_LEN: ULong(32)}
	a, err := Build(OpGenerate, ck.CKO_SECRET_KEY, ck.CKK_AES, ck.CKM_AES_KEY_GEN, tmpl)
	require.NoError(t, err)
	b, err := Build(OpGenerate, ck.CKO_SECRET_KEY, ck.CKK_AES, ck.CKM_AES_KEY_GEN, tmpl)
	require.NoError(t, err)
	require.Equal(t, a, b)
	label, ok := a[ck.CKA_LABEL]
	require.True(t, ok, "CKA_LABEL has a default")
	require.NotNil(t, label, "an empty default is present")
	for typ, v := range a {
		assert.Equal(t, len(v), cap(v), "%v: capped at its length", typ)
		_ = append(v, 0x55)
		a[typ] = []byte{0x77}
	}
	for typ, v := range b {
		assert.NotEqual(t, []byte{0x77}, v, "%v: changed by another template's change", typ)
	}
	delete(a, ck.CKA_LABEL)
	c, err := Build(OpGenerate, ck.CKO_SECRET_KEY, ck.CKK_AES, ck.CKM_AES_KEY_GEN, tmpl)
	require.NoError(t, err)
	assert.Equal(t, b, c, "the schema's defaults are untouched")
}

// TestBuildKeepsNoPolicy: BuildWith keeps no reference to a policy it was
// given (a profile's, made at each C_Initialize): the prototypes of a
// policy with defaults of its own live in its Prototypes, and one
// without them builds its template afresh, with its defaults all the same.
func TestBuildKeepsNoPolicy(t *testing.T) {
	p := &Policy{Defaults: map[ck.ObjectClass]map[ck.AttributeType]bool{ck.CKO_SECRET_KEY: {ck.CKA_SIGN: false}}}
	w := weak.Make(p)
	for range 2 {
		out, err := BuildWith(p, OpGenerate, ck.CKO_SECRET_KEY, ck.CKK_AES, ck.CKM_AES_KEY_GEN, Template{ck.CKA_VALUE_LEN: ULong(32)})
		require.NoError(t, err)
		assert.Equal(t, Bool(false), out[ck.CKA_SIGN], "the policy's default")
		assert.Equal(t, Bool(true), out[ck.CKA_ENCRYPT], "the table's default")
	}
	q := &Policy{Defaults: p.Defaults, Prototypes: NewPrototypes()}
	for range 2 {
		out, err := BuildWith(q, OpGenerate, ck.CKO_SECRET_KEY, ck.CKK_AES, ck.CKM_AES_KEY_GEN, Template{ck.CKA_VALUE_LEN: ULong(32)})
		require.NoError(t, err)
		assert.Equal(t, Bool(false), out[ck.CKA_SIGN], "the policy's default, cached")
	}
	out, err := BuildWith(&Policy{}, OpGenerate, ck.CKO_SECRET_KEY, ck.CKK_AES, ck.CKM_AES_KEY_GEN, Template{ck.CKA_VALUE_LEN: ULong(32)})
	require.NoError(t, err)
	assert.Equal(t, Bool(true), out[ck.CKA_SIGN], "the table's default, under another policy")
	p = nil
	runtime.GC()
	runtime.GC()
	assert.Nil(t, w.Value(), "the policy is still referenced")
}
