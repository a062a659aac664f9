package pkcs11

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSpareProcsAtSecondSession: C_Initialize leaves GOMAXPROCS as the
// runtime set it; the second session since C_Initialize raises it to
// spareProcs (a later one does not touch it again), and not at all when
// the host set GOMAXPROCS.
func TestSpareProcsAtSecondSession(t *testing.T) {
	orig := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(orig) })
	low := min(runtime.NumCPU(), spareProcs()-1) // below spareProcs, whatever the machine

	runtime.GOMAXPROCS(low)
	procsAtInitialize(false)
	require.Equal(t, low, runtime.GOMAXPROCS(0), "C_Initialize changed GOMAXPROCS")
	procsAtOpenSession()
	require.Equal(t, low, runtime.GOMAXPROCS(0), "the first session changed GOMAXPROCS")
	procsAtOpenSession()
	require.Equal(t, spareProcs(), runtime.GOMAXPROCS(0), "the second session did not raise GOMAXPROCS")
	runtime.GOMAXPROCS(low)
	procsAtOpenSession()
	require.Equal(t, low, runtime.GOMAXPROCS(0), "the third session raised GOMAXPROCS again")

	// A new C_Initialize counts sessions from zero.
	procsAtInitialize(false)
	procsAtOpenSession()
	require.Equal(t, low, runtime.GOMAXPROCS(0))
	procsAtOpenSession()
	require.Equal(t, spareProcs(), runtime.GOMAXPROCS(0))

	// The host's GOMAXPROCS wins.
	runtime.GOMAXPROCS(low)
	procsAtInitialize(true)
	procsAtOpenSession()
	procsAtOpenSession()
	require.Equal(t, low, runtime.GOMAXPROCS(0), "GOMAXPROCS raised though the host set it")
}
