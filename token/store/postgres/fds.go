//go:build !nopostgres

package postgres

import (
	"context"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// Connections and fork(). A host that forks after it opened a store (an
// nginx master before its workers) gives every child a copy of each of
// this package's sockets, the login registry's among them. The child
// never uses them (its C_Initialize runs a fresh copy of the module,
// docs/fork.md), but while it holds them the server keeps the backends,
// so the parent's advisory locks (logins.go) outlive a parent killed
// with SIGKILL. Only C can act in the child before anything else runs
// there (a pthread_atfork handler), and this package stays free of cgo,
// so it reports each connection's descriptor to a hook that the layer
// with cgo sets (pkcs11: a fixed array its fork handler closes in the
// child).

// ConnHook is told the descriptor of each connection this package opens:
// opened=true right after the dial, before the connection is used;
// opened=false just before the descriptor is closed (so the number is
// never reused while still reported). It must not block.
type ConnHook func(fd uintptr, opened bool)

var connHook atomic.Pointer[ConnHook]

// SetConnHook sets the hook for the connections dialled from now on (nil:
// none). pkcs11 sets it when the library loads, before any Open.
func SetConnHook(h ConnHook) {
	if h == nil {
		connHook.Store(nil)
		return
	}
	connHook.Store(&h)
}

// watchDial wraps cfg's dialler so that each connection is reported to
// the hook set at its dial; without a hook a dial costs nothing more.
func watchDial(cfg *pgconn.Config) {
	dial := cfg.DialFunc
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return c, err
		}
		h := connHook.Load()
		if h == nil {
			return c, nil
		}
		fd, ok := connFD(c)
		if !ok {
			return c, nil
		}
		(*h)(fd, true)
		w := &watchedConn{Conn: c, fd: fd, hook: *h}
		// A connection dropped without Close is closed by its netFD's
		// finalizer; this one runs first (it points at the conn), so
		// the number is never reported after it was freed.
		runtime.SetFinalizer(w, (*watchedConn).forget)
		return w, nil
	}
}

// connFD is the descriptor under c (TCP or Unix socket).
func connFD(c net.Conn) (uintptr, bool) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0, false
	}
	var fd uintptr
	if raw.Control(func(f uintptr) { fd = f }) != nil {
		return 0, false
	}
	return fd, true
}

// watchedConn reports its descriptor's close to the hook, before it.
type watchedConn struct {
	net.Conn
	fd   uintptr
	hook ConnHook
	once sync.Once
}

func (w *watchedConn) forget() { w.once.Do(func() { w.hook(w.fd, false) }) }

func (w *watchedConn) Close() error {
	w.forget()
	runtime.SetFinalizer(w, nil)
	return w.Conn.Close()
}
