package hosts

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/require"

	"gohsm/internal/testenv"
	"gohsm/internal/testenv/pgtest"
)

// link is a TCP relay between one host and the database that the test can
// cut silently: while cut it forwards nothing in either direction and
// closes nothing (bytes wait in the kernel's buffers; new connections are
// accepted and wait too), as a network path that drops every packet does;
// mended, the streams go on intact.
type link struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	mended *sync.Cond
	conns  []net.Conn
	closed bool
}

func newLink(t *testing.T, target string) *link {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l := &link{ln: ln, target: target}
	l.mended = sync.NewCond(&l.mu)
	go l.accept()
	t.Cleanup(l.close)
	return l
}

func (l *link) port() int { return l.ln.Addr().(*net.TCPAddr).Port }

func (l *link) accept() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			if !l.wait() {
				c.Close()
				return
			}
			up, err := net.Dial("tcp", l.target)
			if err != nil {
				c.Close()
				return
			}
			l.mu.Lock()
			l.conns = append(l.conns, c, up)
			l.mu.Unlock()
			go l.pipe(up, c)
			go l.pipe(c, up)
		}()
	}
}

// wait blocks while the link is cut; false once it is closed.
func (l *link) wait() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.cut && !l.closed {
		l.mended.Wait()
	}
	return !l.closed
}

// pipe copies from src to dst, reading only while the link is not cut.
func (l *link) pipe(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for l.wait() {
		_ = src.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		n, err := src.Read(buf)
		if n > 0 {
			if !l.wait() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return
			}
			return
		}
	}
}

func (l *link) setCut(cut bool) {
	l.mu.Lock()
	l.cut = cut
	l.mu.Unlock()
	l.mended.Broadcast()
}

func (l *link) close() {
	l.mu.Lock()
	l.closed = true
	conns := l.conns
	l.mu.Unlock()
	l.mended.Broadcast()
	_ = l.ln.Close()
	for _, c := range conns {
		_ = c.Close()
	}
}

// partitionBound is the longest a host cut off from the database may go
// on answering from what it cached: its listening connection must notice
// the silence and fall back to asking the database (which then fails).
const partitionBound = 3 * time.Second

// TestPartitionedHost: host B reaches the database through a link the
// test cuts silently (no RST, no FIN: every packet lost) while host A
// keeps its own path. B signed with a token key; A deletes that key while
// B is cut off. B must stop using the key within partitionBound of the
// delete (CKR_DEVICE_ERROR: it cannot know; never a signature for long
// with a key deleted elsewhere), every call on B answers within
// store_timeout + outageMargin, and A is not held up at all. Once the
// link is mended B answers CKR_KEY_HANDLE_INVALID for the key by itself.
func TestPartitionedHost(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := srv.NewDatabase(t, "partition")
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	ln := newLink(t, u.Host)
	viaLink := *u
	viaLink.Host = net.JoinHostPort("127.0.0.1", strconv.Itoa(ln.port()))
	timeoutLine := "store_timeout = " + outageTimeout.String()
	a := newHost(t, "a", dsn, timeoutLine)
	b := newHost(t, "b", viaLink.String(), timeoutLine)
	initToken(t, a)
	pa, pb := a.start(), b.start()
	for _, p := range []*proc{pa, pb} {
		p.must("open 1")
		p.must("login user %s", userPIN)
	}
	key := pa.must("genec doomed")[1]
	pb.must("sign %s", key)
	pb.must("sign %s", key)

	ln.setCut(true)
	cutAt := time.Now()
	t.Cleanup(func() { ln.setCut(false) })
	// Whatever B was doing when the link went is over.
	time.Sleep(50 * time.Millisecond)
	r := pa.do("destroy %s", key)
	require.True(t, r.ok(), "host A destroys the key while B is cut off: %s", r)
	deleted, _ := strconv.ParseInt(r.fields[0], 10, 64)
	require.Less(t, r.elapsed(), 500*time.Millisecond, "host A held up by host B's cut link")

	// B signs until it stops succeeding.
	var stale int
	var lastOK, firstFail time.Time
	var failRV reply
	for {
		r := pb.do("sign %s", key)
		require.LessOrEqual(t, r.elapsed(), outageTimeout+outageMargin, "host B's C_Sign while cut off: %s", r)
		if r.ok() {
			stale++
			lastOK = time.Now()
			require.Less(t, time.Since(time.Unix(0, deleted)), 30*time.Second,
				"host B still signs with a key deleted on host A (%d signatures)", stale)
			time.Sleep(20 * time.Millisecond)
			continue
		}
		firstFail, failRV = time.Now(), r
		break
	}
	requireRV(t, failRV, pkcs11.CKR_DEVICE_ERROR, "host B's C_Sign with a deleted key while cut off")
	staleFor := time.Duration(0)
	if stale > 0 {
		staleFor = lastOK.Sub(time.Unix(0, deleted))
	}
	t.Logf("host B cut off: %d signatures with the key after host A deleted it (the last %v after the delete); first CKR_DEVICE_ERROR %v after the cut",
		stale, staleFor.Round(time.Millisecond), firstFail.Sub(cutAt).Round(time.Millisecond))
	require.LessOrEqual(t, staleFor, partitionBound, "host B used a key deleted on host A for too long")
	// The rest of B's calls fail within the timeout too.
	for _, c := range []string{"create cut-off", "find doomed"} {
		r := pb.do("%s", c)
		requireRV(t, r, pkcs11.CKR_DEVICE_ERROR, "host B's "+c+" while cut off")
		require.LessOrEqual(t, r.elapsed(), outageTimeout+outageMargin, "host B's %s while cut off", c)
	}
	pa.must("create while-b-is-cut-off")

	ln.setCut(false)
	mended := time.Now()
	for {
		r := pb.do("sign %s", key)
		if r.kind == "RV" && r.rv == pkcs11.CKR_KEY_HANDLE_INVALID {
			break
		}
		require.False(t, r.ok(), "host B signs with the deleted key after the link is back")
		requireRV(t, r, pkcs11.CKR_DEVICE_ERROR, "host B after the link is back")
		require.Less(t, time.Since(mended), recoverBound, "host B did not recover")
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("host B back %v after the link was mended", time.Since(mended).Round(time.Millisecond))
	require.Len(t, pb.must("find while-b-is-cut-off"), 1)
	pa.quit()
	pb.quit()
}

// TestPartitionMidTransaction: host B, a C writer creating objects in a
// loop, reaches the database through a relay the test cuts while B's
// backend is inside a write transaction ("idle in transaction" in
// pg_stat_activity, holding the generation row that every writer takes).
// Nothing tells the server that B is gone. Host A's creates may fail
// (CKR_DEVICE_ERROR, within store_timeout) only until the server ends B's
// abandoned transaction; they must succeed again within stallBound of the
// cut, not when TCP keepalives notice (hours by default).
func TestPartitionMidTransaction(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := srv.NewDatabase(t, "midtx")
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	ln := newLink(t, u.Host)
	viaLink := *u
	viaLink.Host = net.JoinHostPort("127.0.0.1", strconv.Itoa(ln.port()))
	timeoutLine := "store_timeout = " + outageTimeout.String()
	a := newHost(t, "a", dsn, timeoutLine)
	b := newHost(t, "b", viaLink.String(), timeoutLine)
	initToken(t, a)
	pa := a.start()
	pa.must("open 1")
	pa.must("login user %s", userPIN)
	db := sqlConn(t, dsn)
	writer := buildC(t, "writer.c")

	// Cut B's link until it catches B inside a transaction.
	var w *proc
	caught, attempts := false, 0
	for attempt := 0; attempt < 20 && !caught; attempt++ {
		attempts = attempt + 1
		w = b.spawnCmd(writer, testenv.PGLibrary(t), fmt.Sprintf("b%d", attempt), userPIN)
		require.Equal(t, "READY", w.read(30*time.Second).line, "writer%s", w.diag())
		w.read(30 * time.Second)
		time.Sleep(time.Duration(attempt%5) * 7 * time.Millisecond)
		ln.setCut(true)
		time.Sleep(20 * time.Millisecond)
		caught = queryInt(t, db, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND state = 'idle in transaction'`) > 0
		if !caught {
			ln.setCut(false)
			_ = w.cmd.Process.Kill()
			<-w.exited
		}
	}
	require.True(t, caught, "never caught host B inside a transaction in 20 cuts")
	t.Logf("host B caught inside a transaction at cut %d", attempts)
	cutAt := time.Now()
	t.Cleanup(func() { ln.setCut(false) })
	// B itself is gone for good, as a host whose network died.
	_ = w.cmd.Process.Kill()

	var failed int
	for {
		r := pa.do("create a-while-b-is-cut")
		if r.ok() {
			break
		}
		requireRV(t, r, pkcs11.CKR_DEVICE_ERROR, "host A's create while B's transaction hangs")
		require.LessOrEqual(t, r.elapsed(), outageTimeout+outageMargin, "host A's create while B's transaction hangs")
		failed++
		require.Less(t, time.Since(cutAt), 30*time.Second, "host A cannot write: host B's abandoned transaction still holds the token")
	}
	stall := time.Since(cutAt)
	t.Logf("host B cut off inside a transaction: host A's creates failed %d times, wrote again %v after the cut", failed, stall.Round(time.Millisecond))
	require.LessOrEqual(t, stall, stallBound, "host A could not write for too long")
	pa.quit()
}

// stallBound is the longest a host cut off inside a write transaction may
// keep the others from writing: the server ends a transaction idle for
// longer than store_timeout, which no live client's call can be.
const stallBound = 3*outageTimeout + outageMargin
