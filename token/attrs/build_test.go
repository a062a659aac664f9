package attrs

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
)

// TestBuildDefaultsIndependent: the defaults Build adds share a buffer
// (valueArena), yet each is a value of its own: changing or appending to
// one leaves the others, and the schema's defaults, as they were; an
// empty default stays present (non-nil).
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
		if len(v) == 0 {
			continue
		}
		assert.Equal(t, len(v), cap(v), "%v: capped at its length", typ)
		v[0] ^= 0xff
		_ = append(v, 0x55)
	}
	for typ, v := range a {
		if len(v) > 0 {
			v[0] ^= 0xff
		}
		assert.Equal(t, b[typ], v, "%v: changed by another value's change", typ)
	}
	c, err := Build(OpGenerate, ck.CKO_SECRET_KEY, ck.CKK_AES, ck.CKM_AES_KEY_GEN, tmpl)
	require.NoError(t, err)
	assert.Equal(t, b, c, "the schema's defaults are untouched")
}
