package mechanisms

import (
	"crypto/ed25519"
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
)

// TestBufferedInputBounded: multi-part operations that hold their input
// until the end refuse more than maxBuffered with CKR_DEVICE_MEMORY
// instead of growing until Go's out-of-memory kills the host.
func TestBufferedInputBounded(t *testing.T) {
	old := maxBuffered
	maxBuffered = 1000
	t.Cleanup(func() { maxBuffered = old })
	part := make([]byte, 600)

	enc, err := gcmRow(t).Encrypt(make([]byte, 32), &GCMParams{IV: make([]byte, 12), TagBits: 128})
	require.NoError(t, err)
	_, err = enc.Update(nil, part)
	require.NoError(t, err)
	_, err = enc.Update(nil, part)
	require.ErrorIs(t, err, ck.CKR_DEVICE_MEMORY, "aes-gcm: 1200 bytes")

	_, priv, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	s, err := row(t, ck.CKM_EDDSA).Sign(priv, nil)
	require.NoError(t, err)
	require.NoError(t, s.Update(part))
	require.ErrorIs(t, s.Update(part), ck.CKR_DEVICE_MEMORY, "eddsa: 1200 bytes")

	in := newInput(0)
	require.NoError(t, in.Update(part))
	require.ErrorIs(t, in.Update(part), ck.CKR_DEVICE_MEMORY, "raw input: 1200 bytes")
}
