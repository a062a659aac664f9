package cloudhsmcli

import (
	"crypto/aes"
	"encoding/asn1"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"
)

// rfc3394Wrap is RFC 3394 §2.2.1 key wrap with the default IV, written
// from the RFC for the tests (an independent check of the token's).
func rfc3394Wrap(t *testing.T, kek, key []byte) []byte {
	t.Helper()
	b, err := aes.NewCipher(kek)
	require.NoError(t, err)
	n := len(key) / 8
	a := []byte{0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6}
	r := make([][]byte, n)
	for i := range r {
		r[i] = append([]byte{}, key[8*i:8*i+8]...)
	}
	buf := make([]byte, 16)
	for j := 0; j < 6; j++ {
		for i := 0; i < n; i++ {
			copy(buf, a)
			copy(buf[8:], r[i])
			b.Encrypt(buf, buf)
			tt := uint64(n*j + i + 1)
			binary.BigEndian.PutUint64(a, binary.BigEndian.Uint64(buf[:8])^tt)
			copy(r[i], buf[8:])
		}
	}
	out := append([]byte{}, a...)
	for _, ri := range r {
		out = append(out, ri...)
	}
	return out
}

func asn1Unmarshal(b []byte, v any) ([]byte, error) { return asn1.Unmarshal(b, v) }
