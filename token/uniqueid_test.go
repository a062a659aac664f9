package token

import (
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
)

// TestUniqueIDsAscend: one process's CKA_UNIQUE_IDs are 16 bytes in hex
// and ascend, so that new objects' entries in the unique-ID indexes go
// where the last object's went (uniqueIDGen); two processes' (two
// generators) never meet. Random IDs (before) ascended in 1000 draws with
// probability 1/1000!.
func TestUniqueIDsAscend(t *testing.T) {
	g := newUniqueIDGen()
	seen := map[string]bool{}
	prev := ""
	for range 1000 {
		id := g.next()
		b, err := hex.DecodeString(id)
		require.NoError(t, err)
		require.Len(t, b, 16)
		require.Greater(t, id, prev)
		prev = id
		seen[id] = true
	}
	other := newUniqueIDGen()
	for range 1000 {
		id := other.next()
		require.False(t, seen[id], id)
		seen[id] = true
	}
}

// TestGeneratedKeysUniqueIDsAscend: through the module, token keys made
// one after another get ascending unique IDs.
func TestGeneratedKeysUniqueIDsAscend(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	prev := ""
	for i := range 5 {
		k, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("k", true))
		require.NoError(t, err)
		r, err := m.GetAttributeValue(h, k, []ck.AttributeType{ck.CKA_UNIQUE_ID})
		require.NoError(t, err)
		id := string(r[0].Value)
		assert.Greater(t, id, prev, "key %d", i)
		prev = id
	}
}
