package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// The expression forms used by include/*.h (see the header conventions).
func TestEval(t *testing.T) {
	vals := map[string]uint64{"CKF_ARRAY_ATTRIBUTE": 0x40000000, "CKM_VENDOR_DEFINED": 0x80000000, "CKM_AES_GCM": 0x1087}
	for _, tc := range []struct {
		in   string
		want uint64
	}{
		{"(0x00000000UL)", 0},
		{"0x0000210BUL", 0x210b},
		{"(1UL)", 1},
		{"2", 2},
		{"(~0UL)", ^uint64(0)},
		{"(CKF_ARRAY_ATTRIBUTE|0x00000211UL)", 0x40000211},
		{"(CKM_VENDOR_DEFINED|CKM_AES_GCM)", 0x80001087},
		{"(CKM_VENDOR_DEFINED + 1)", 0x80000001},
		{"(CK_ULONG)5", 5},
		{"CKM_AES_GCM", 0x1087},
	} {
		got, ok := eval(tc.in, vals)
		assert.True(t, ok, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
	}
	for _, bad := range []string{"*", "", "CK_UNDEFINED_NAME", "\"string\"", "CK_CALLBACK_FUNCTION(rv, name)"} {
		_, ok := eval(bad, vals)
		assert.False(t, ok, bad)
	}
}
