package mechanisms

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
)

// FIPS 180-2 Appendix B.1 and B.2 ("abc", the 448-bit message) and the
// empty-message digest given in NIST's SHA examples.
func TestSHA256Vectors(t *testing.T) {
	m, ok := Lookup(ck.CKM_SHA256)
	require.True(t, ok)
	for msg, want := range map[string]string{
		"":    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"abc": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq": "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
		strings.Repeat("a", 1000000):                               "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
	} {
		d, err := m.Digest(nil)
		require.NoError(t, err)
		require.NoError(t, d.Update([]byte(msg)))
		assert.Equal(t, unhex(want), d.Sum(nil), "%.10q", msg)
		assert.Equal(t, 32, d.Size())
	}
}
