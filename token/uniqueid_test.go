package token

import (
	"encoding/binary"
	"encoding/hex"
	"slices"
	"sync"
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
		id := string(g.next())
		b, err := hex.DecodeString(id)
		require.NoError(t, err)
		require.Len(t, b, 16)
		require.Equal(t, hex.EncodeToString(b), id, "lower-case hex")
		require.Greater(t, id, prev)
		prev = id
		seen[id] = true
	}
	other := newUniqueIDGen()
	for range 1000 {
		id := string(other.next())
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

// TestUniqueIDsLazy: the package's initialisation does not start the
// generator (it reads the random source, which a process that makes no
// object does not need); concurrent first uses (run it with -race) share
// one generator, so their sequence numbers are consecutive.
func TestUniqueIDsLazy(t *testing.T) {
	require.False(t, uniqueIDsAtInit, "the CKA_UNIQUE_ID generator started during package initialisation")
	const n = 8
	var wg sync.WaitGroup
	ids := make([]string, n)
	for i := range ids {
		wg.Go(func() { ids[i] = string(newUniqueID()) })
	}
	wg.Wait()
	seqs := make([]uint64, n)
	for i, id := range ids {
		require.Len(t, id, 32)
		b, err := hex.DecodeString(id)
		require.NoError(t, err)
		seqs[i] = binary.BigEndian.Uint64(b[:8])
	}
	slices.Sort(seqs)
	for i := 1; i < n; i++ {
		require.Equal(t, seqs[0]+uint64(i), seqs[i], "IDs from more than one generator: %v", ids)
	}
}
