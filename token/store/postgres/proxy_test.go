//go:build !nopostgres

package postgres

import (
	"encoding/binary"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// wireProxy is the tests' TCP proxy between a store and the test server.
// It counts, over all its connections and per connection, the round trips
// (each time the client sends after the server last did) and the
// statements run (Execute and Query messages of the frontend protocol),
// and the bytes each way. Frozen (freeze), it forwards nothing and accepts
// nothing new, holding every connection open: a server gone silent. Armed
// (cutAt), it cuts the next connection on which the client commits,
// before or after the COMMIT reaches the server.
type wireProxy struct {
	url    string // the DSN it was made for, with the proxy's address
	ln     net.Listener
	server string
	stop   chan struct{}
	wg     sync.WaitGroup

	frozen      atomic.Bool
	cut         atomic.Int32 // the cutPoint armed; 0: none
	freezeOnCut atomic.Bool  // freeze when cutting
	cuts        atomic.Int64 // connections cut

	roundTrips, statements atomic.Int64
	bytesUp, bytesDown     atomic.Int64 // client to server, server to client

	mu    sync.Mutex
	conns []*proxyConn
}

// cutPoint is where an armed proxy cuts the connection of a commit.
type cutPoint int32

const (
	// cutBeforeCommit forwards what the client sent before the message
	// that commits (a Bind of a prepared COMMIT, a simple query with a
	// COMMIT statement), then closes both sides: nothing commits.
	cutBeforeCommit cutPoint = iota + 1
	// cutAfterCommit forwards the COMMIT and whatever the client sends
	// after it (a COPY's data), drops the server's answers up to its next
	// ReadyForQuery (sent once the COMMIT ran), then closes both sides:
	// the transaction committed and the client never hears of it.
	cutAfterCommit
)

// proxyConn is one proxied connection and its counts.
type proxyConn struct {
	client, server         net.Conn
	roundTrips, statements atomic.Int64
	serverLast             atomic.Bool  // the server sent last
	cutting                atomic.Bool  // cutAfterCommit: COMMIT forwarded, answer dropped
	singleBytes            atomic.Int32 // one-byte answers owed (SSLRequest, GSSENCRequest)
	closeOnce              sync.Once
}

func (c *proxyConn) close() {
	c.closeOnce.Do(func() { c.client.Close(); c.server.Close() })
}

// newWireProxy starts a proxy to dsn's server; its url is dsn with the
// proxy's address. It ends with the test.
func newWireProxy(tb testing.TB, dsn string) *wireProxy {
	tb.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &wireProxy{ln: ln, server: u.Host, stop: make(chan struct{})}
	u.Host = ln.Addr().String()
	p.url = u.String()
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(func() {
		close(p.stop)
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

// freeze stops (on) or resumes forwarding.
func (p *wireProxy) freeze(on bool) { p.frozen.Store(on) }

// cutAt arms the proxy: the next connection whose client commits is cut
// at point (once).
func (p *wireProxy) cutAt(point cutPoint) { p.cut.Store(int32(point)) }

// perConn returns each connection's round trips and statements so far,
// in accept order.
func (p *wireProxy) perConn() [][2]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([][2]int64, len(p.conns))
	for i, c := range p.conns {
		out[i] = [2]int64{c.roundTrips.Load(), c.statements.Load()}
	}
	return out
}

// hold waits while the proxy is frozen; false: the proxy is stopping.
func (p *wireProxy) hold() bool {
	for p.frozen.Load() {
		select {
		case <-p.stop:
			return false
		case <-time.After(5 * time.Millisecond):
		}
	}
	return true
}

func (p *wireProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			if !p.hold() { // a frozen server answers nothing, not even the handshake
				c.Close()
				return
			}
			s, err := net.Dial("tcp", p.server)
			if err != nil {
				c.Close()
				return
			}
			pc := &proxyConn{client: c, server: s}
			pc.serverLast.Store(true)
			p.mu.Lock()
			p.conns = append(p.conns, pc)
			select {
			case <-p.stop:
				pc.close() // the cleanup may have passed already
			default:
			}
			p.mu.Unlock()
			p.wg.Add(2)
			go p.up(pc)
			go p.down(pc)
		}()
	}
}

// cutConn cuts pc (freezing the proxy first when asked).
func (p *wireProxy) cutConn(pc *proxyConn) {
	if p.freezeOnCut.Load() {
		p.freeze(true)
	}
	p.cuts.Add(1)
	pc.close()
}

// up forwards client to server, reading its messages.
func (p *wireProxy) up(pc *proxyConn) {
	defer p.wg.Done()
	defer pc.close()
	r := msgReader{untyped: 1}   // the startup message has no type byte
	commits := map[string]bool{} // prepared statements: whether each is a COMMIT
	var at int64                 // the stream's offset of buf[0]
	buf := make([]byte, 64<<10)
	for {
		n, err := pc.client.Read(buf)
		if n > 0 {
			p.bytesUp.Add(int64(n))
			if pc.serverLast.Swap(false) {
				p.roundTrips.Add(1)
				pc.roundTrips.Add(1)
			}
			fwd, cut := n, false
			r.feed(buf[:n], func(typ byte, body []byte, start int64) {
				switch typ {
				case 0: // untyped: a request the server answers with one byte, then the startup
					if len(body) >= 4 {
						if code := binary.BigEndian.Uint32(body); code == 80877103 || code == 80877104 {
							r.untyped++
							pc.singleBytes.Add(1)
						}
					}
					return
				case 'E', 'Q':
					p.statements.Add(1)
					pc.statements.Add(1)
				}
				if cut || !commitsIn(typ, body, commits) {
					return
				}
				switch cutPoint(p.cut.Swap(0)) {
				case cutBeforeCommit:
					fwd, cut = int(max(0, start-at)), true
				case cutAfterCommit:
					pc.cutting.Store(true)
				}
			})
			at += int64(n)
			if !p.hold() {
				return
			}
			if _, werr := pc.server.Write(buf[:fwd]); werr != nil {
				return
			}
			if cut {
				p.cutConn(pc)
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// down forwards server to client; once the client's COMMIT went under
// cutAfterCommit, it drops what the server sends and cuts the connection
// at the server's ReadyForQuery.
func (p *wireProxy) down(pc *proxyConn) {
	defer p.wg.Done()
	defer pc.close()
	var r msgReader
	buf := make([]byte, 64<<10)
	for {
		n, err := pc.server.Read(buf)
		if n > 0 {
			p.bytesDown.Add(int64(n))
			pc.serverLast.Store(true)
			ready := false
			r.single = &pc.singleBytes
			r.feed(buf[:n], func(typ byte, _ []byte, _ int64) { ready = ready || typ == 'Z' })
			if pc.cutting.Load() {
				if ready {
					p.cutConn(pc)
					return
				}
				continue
			}
			if !p.hold() {
				return
			}
			if _, werr := pc.client.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// msgReader cuts a stream of the PostgreSQL protocol into messages.
type msgReader struct {
	untyped int           // messages without a type byte to come first
	single  *atomic.Int32 // one-byte messages owed first (server side)
	pending []byte
	at      int64 // the stream's offset of pending[0]
}

// feed reads chunk (copied: the caller's buffer is not kept), calling msg for each message it completes with its
// type (0: untyped), its body and the stream's offset of its first byte.
func (r *msgReader) feed(chunk []byte, msg func(typ byte, body []byte, start int64)) {
	r.pending = append(r.pending, chunk...)
	for {
		if r.single != nil && r.single.Load() > 0 && len(r.pending) > 0 {
			r.single.Add(-1)
			msg(1, r.pending[:1], r.at)
			r.pending, r.at = r.pending[1:], r.at+1
			continue
		}
		if r.untyped > 0 {
			if len(r.pending) < 4 {
				break
			}
			l := int(binary.BigEndian.Uint32(r.pending))
			if len(r.pending) < l {
				break
			}
			r.untyped--
			msg(0, r.pending[4:l], r.at)
			r.pending, r.at = r.pending[l:], r.at+int64(l)
			continue
		}
		if len(r.pending) < 5 {
			break
		}
		l := 1 + int(binary.BigEndian.Uint32(r.pending[1:]))
		if len(r.pending) < l {
			break
		}
		msg(r.pending[0], r.pending[5:l], r.at)
		r.pending, r.at = r.pending[l:], r.at+int64(l)
	}
}

// commitsIn tells whether a client message commits: a Bind of a statement
// prepared as COMMIT, or a simple query with a COMMIT statement. It notes
// the statements Parse messages prepare in commits.
func commitsIn(typ byte, body []byte, commits map[string]bool) bool {
	switch typ {
	case 'P': // name, query, ...
		name, rest := cstring(body)
		query, _ := cstring(rest)
		commits[name] = isCommit(query)
	case 'B': // portal, statement, ...
		_, rest := cstring(body)
		stmt, _ := cstring(rest)
		return commits[stmt]
	case 'Q':
		q, _ := cstring(body)
		return isCommit(q)
	}
	return false
}

// isCommit tells whether sql has a COMMIT statement.
func isCommit(sql string) bool {
	for st := range strings.SplitSeq(sql, ";") {
		if strings.EqualFold(strings.TrimSpace(st), "commit") {
			return true
		}
	}
	return false
}

// cstring splits a NUL-terminated string off b.
func cstring(b []byte) (string, []byte) {
	for i, c := range b {
		if c == 0 {
			return string(b[:i]), b[i+1:]
		}
	}
	return string(b), nil
}
