package pkcs11

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTrackConns: fds.c's registry takes a descriptor when the PostgreSQL
// store reports it opened and gives the entry back when it reports it
// closing; past GOHSM_FDS_MAX entries it counts what it cannot take. (The
// fork handler that closes them is tested by tests/fork's
// TestForkPostgresLogin.)
func TestTrackConns(t *testing.T) {
	n0, lost0 := trackedConns()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	trackConn(r.Fd(), true)
	trackConn(w.Fd(), true)
	n, _ := trackedConns()
	require.Equal(t, n0+2, n)
	trackConn(r.Fd(), false)
	trackConn(r.Fd(), false) // not tracked any more: nothing changes
	n, _ = trackedConns()
	require.Equal(t, n0+1, n)

	const max = 256 // GOHSM_FDS_MAX
	for i := n; i < max+3; i++ {
		trackConn(w.Fd(), true)
	}
	n, lost := trackedConns()
	require.Equal(t, max, n)
	require.Equal(t, lost0+3, lost)
	for i := 0; i < max-n0; i++ {
		trackConn(w.Fd(), false)
	}
	n, _ = trackedConns()
	require.Equal(t, n0, n)
}
