//go:build !nopostgres

package postgres

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"gohsm/token/store"
)

// fdRecorder is a ConnHook that keeps the reported descriptors.
type fdRecorder struct {
	mu     sync.Mutex
	open   map[uintptr]bool
	opened int
	errs   []string
}

func (r *fdRecorder) hook(fd uintptr, opened bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case opened && r.open[fd]:
		r.errs = append(r.errs, fmt.Sprintf("fd %d reported opened twice", fd))
	case !opened && !r.open[fd]:
		r.errs = append(r.errs, fmt.Sprintf("fd %d reported closed but not open", fd))
	case opened:
		if !isSocket(fd) {
			r.errs = append(r.errs, fmt.Sprintf("fd %d reported opened is not a socket", fd))
		}
		r.opened++
	default:
		// Reported before the close: the descriptor is still this socket.
		if !isSocket(fd) {
			r.errs = append(r.errs, fmt.Sprintf("fd %d reported closing is no longer open", fd))
		}
	}
	r.open[fd] = opened
}

func (r *fdRecorder) live() []uintptr {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []uintptr
	for fd, o := range r.open {
		if o {
			out = append(out, fd)
		}
	}
	return out
}

func isSocket(fd uintptr) bool {
	l, err := os.Readlink("/proc/self/fd/" + strconv.FormatUint(uint64(fd), 10))
	return err == nil && strings.HasPrefix(l, "socket:[")
}

// TestConnHook: with a hook set, every connection a Store makes (pool,
// listener, login registry) is reported with its socket's descriptor when
// it opens and before it closes; after Close none is left reported.
// pkcs11 closes the reported ones in a forked child (docs/fork.md).
func TestConnHook(t *testing.T) {
	dsn := freshURL(t) // before the hook: the test's own connections are not the Store's
	r := &fdRecorder{open: map[uintptr]bool{}}
	SetConnHook(r.hook)
	t.Cleanup(func() { SetConnHook(nil) })

	s, err := Open(dsn, Options{})
	require.NoError(t, err)
	require.NoError(t, s.InitToken(store.TokenRecord{Label: "t"}, testUser("admin", store.RoleCO)))
	lg := store.ThisProcess()
	lg.User, lg.Instance = "admin", 7373
	require.NoError(t, s.AddLogin(lg))
	eventually(t, 5*time.Second, "listener up", func() error { return listening(s) })

	live := r.live()
	// A pool connection, the listener and the login registry's.
	require.GreaterOrEqual(t, len(live), 3, "reported: %v", live)
	for _, fd := range live {
		require.True(t, isSocket(fd), "fd %d reported open is not a socket", fd)
	}
	require.NoError(t, s.Close())
	require.Empty(t, r.live(), "descriptors still reported open after Close")
	r.mu.Lock()
	require.Empty(t, r.errs)
	t.Logf("%d connections reported, every one closed", r.opened)
	r.mu.Unlock()
}

// TestConnHookDropped: a connection dropped without Close is reported
// closed by the time its descriptor is freed (the finalizer order).
func TestConnHookDropped(t *testing.T) {
	dsn := freshURL(t)
	r := &fdRecorder{open: map[uintptr]bool{}}
	SetConnHook(r.hook)
	t.Cleanup(func() { SetConnHook(nil) })
	cfg, err := ParseURL(dsn)
	require.NoError(t, err)
	c, err := cfg.DialFunc(t.Context(), "tcp", fmt.Sprintf("%s:%d", cfg.Host, cfg.Port))
	require.NoError(t, err)
	live := r.live()
	require.Len(t, live, 1)
	c = nil
	_ = c
	deadline := time.Now().Add(5 * time.Second)
	for len(r.live()) > 0 && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	require.Empty(t, r.live(), "a dropped connection stays reported")
	r.mu.Lock()
	defer r.mu.Unlock()
	require.Empty(t, r.errs)
}
