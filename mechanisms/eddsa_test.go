package mechanisms

import (
	"crypto/ed25519"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
)

func eddsaSignVerify(t *testing.T, priv ed25519.PrivateKey, param any, msg []byte) []byte {
	t.Helper()
	m := row(t, ck.CKM_EDDSA)
	s, err := m.Sign(priv, param)
	require.NoError(t, err)
	for _, p := range chunks(msg) {
		require.NoError(t, s.Update(p))
	}
	sig, err := s.Sign(nil)
	require.NoError(t, err)
	v, err := m.Verify(priv.Public(), param)
	require.NoError(t, err)
	require.NoError(t, v.Update(msg))
	require.NoError(t, v.Verify(sig))
	return sig
}

// RFC 8032 §7.2 (Ed25519ctx, context "foo") and §7.3 (Ed25519ph, "abc").
func TestEdDSAVariants(t *testing.T) {
	ctxKey := ed25519.NewKeyFromSeed(unhex("0305334e381af78f141cb666f6199f57bc3495335a256a95bd2a55bf546663f6"))
	assert.Equal(t, unhex("dfc9425e4f968f7f0c29f0259cf5f9aed6851c2bb4ad8bfb860cfee0ab248292"), []byte(ctxKey.Public().(ed25519.PublicKey)))
	sig := eddsaSignVerify(t, ctxKey, &EdDSAParams{Context: []byte("foo")}, unhex("f726936d19c800494e3fdaff20b276a8"))
	assert.Equal(t, unhex("55a4cc2f70a54e04288c5f4cd1e45a7bb520b36292911876cada7323198dd87a"+
		"8b36950b95130022907a7fb7c4e9b2d5f6cca685a587b4b21f4b888e4e7edb0d"), sig)

	phKey := ed25519.NewKeyFromSeed(unhex("833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42"))
	assert.Equal(t, unhex("ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf"), []byte(phKey.Public().(ed25519.PublicKey)))
	sig = eddsaSignVerify(t, phKey, &EdDSAParams{PreHash: true}, []byte("abc"))
	assert.Equal(t, unhex("98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae41"+
		"31f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406"), sig)

	// No parameter, a nil *EdDSAParams and an empty one are all Ed25519.
	msg := []byte("gohsm")
	want := ed25519.Sign(phKey, msg)
	for _, p := range []any{nil, (*EdDSAParams)(nil), &EdDSAParams{}} {
		assert.Equal(t, want, eddsaSignVerify(t, phKey, p, msg), "%#v", p)
	}

	m := row(t, ck.CKM_EDDSA)
	for name, p := range map[string]any{
		"long context": &EdDSAParams{Context: []byte(strings.Repeat("x", 256))},
		"wrong type":   &GCMParams{},
		"bytes":        []byte{1},
	} {
		_, err := m.Sign(phKey, p)
		assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID, name)
		_, err = m.Verify(phKey.Public(), p)
		assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID, name)
	}
	_, err := m.Sign(phKey, &EdDSAParams{Context: []byte(strings.Repeat("x", 255))})
	assert.NoError(t, err)
}
