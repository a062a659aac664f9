package mechanisms

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
)

// TestTablesLazy: the package's initialisation does not build the tables
// (a process that never starts an operation does not pay for them), and
// concurrent first uses all see one set of rows.
func TestTablesLazy(t *testing.T) {
	require.False(t, builtAtInit, "the mechanism tables were built during package initialisation")
	var wg sync.WaitGroup
	got := make([]*Mechanism, 8)
	for i := range got {
		wg.Go(func() { got[i], _ = Lookup(ck.CKM_ECDSA) })
	}
	wg.Wait()
	for _, m := range got {
		require.NotNil(t, m)
		require.Same(t, got[0], m)
	}
	require.Same(t, loaded(), loaded())
}

// TestZetasLazy: the package's initialisation does not compute ML-DSA's
// NTT table; the first verification does, once.
func TestZetasLazy(t *testing.T) {
	require.False(t, zetasAtInit, "the ML-DSA zetas were computed during package initialisation")
	var wg sync.WaitGroup
	got := make([]*[mln]int32, 8)
	for i := range got {
		wg.Go(func() { got[i] = mlZetas() })
	}
	wg.Wait()
	for _, z := range got {
		require.Same(t, got[0], z)
	}
	// FIPS 204 Appendix B (zetas[1..8]): 4808194, 3765607, 3761513, 5178923,
	// 5496691, 5234739, 5178987, 7778734.
	require.Equal(t, []int32{4808194, 3765607, 3761513, 5178923, 5496691, 5234739, 5178987, 7778734}, got[0][1:9])
}
