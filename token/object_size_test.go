package token

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// TestObjectSize: an Object, one per key a C_EncapsulateKey or
// C_GenerateKey makes, fits the allocator's 208-byte size class (its
// three bools and the HSM epoch share a word; docs/bench.md, "ML-KEM-768:
// the attribute table").
func TestObjectSize(t *testing.T) {
	require.LessOrEqual(t, unsafe.Sizeof(Object{}), uintptr(208))
}
