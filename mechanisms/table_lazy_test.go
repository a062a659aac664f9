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
