package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"slices"
	"sync"
)

// Parsing and planning a statement costs more than running the indexed
// lookups this package does, so statements are prepared once per
// connection and reused. Find's SQL depends on the set of attribute types
// in the template; applications use a few shapes, and maxCachedStmts
// bounds each connection's cache against one that does not.
const maxCachedStmts = 256

// At most maxConns connections of the store run reads and the write at
// once (the generation connection among them, when it may be lent), and
// at most maxIdleConns stay open between them. With a backup's connection
// that is within database/sql's cap (Open: SetMaxOpenConns(8)).
const (
	maxConns     = 6
	maxIdleConns = 4
)

// heldConn is a connection the store holds, with the statements prepared
// on it. Transactions on it are BEGIN ...
// COMMIT/ROLLBACK statements run on the connection, not database/sql's
// Tx: that starts a goroutine per transaction (to roll back when a context
// is cancelled), and in a host process each of those woke another thread
// (a sixth of the time of a token key generation went to scheduling them);
// and a Tx cannot use statements prepared on a Conn (Tx.Stmt prepares them
// again), so every read would parse its SQL anew.
type heldConn struct {
	conn  *sql.Conn
	stmts map[string]*sql.Stmt
}

// stmt returns q prepared on the connection, or nil when it cannot be (the
// caller then runs q directly, which reports the error) or the cache is
// full.
func (h *heldConn) stmt(q string) *sql.Stmt {
	if st, ok := h.stmts[q]; ok {
		return st
	}
	if len(h.stmts) >= maxCachedStmts {
		return nil
	}
	st, err := h.conn.PrepareContext(context.Background(), q)
	if err != nil {
		return nil
	}
	if h.stmts == nil {
		h.stmts = map[string]*sql.Stmt{}
	}
	h.stmts[q] = st
	return st
}

func (h *heldConn) queryRow(q string, args ...any) *sql.Row {
	if st := h.stmt(q); st != nil {
		return st.QueryRow(args...)
	}
	return h.conn.QueryRowContext(context.Background(), q, args...)
}

func (h *heldConn) query(q string, args ...any) (*sql.Rows, error) {
	if st := h.stmt(q); st != nil {
		return st.Query(args...)
	}
	return h.conn.QueryContext(context.Background(), q, args...)
}

func (h *heldConn) exec(q string, args ...any) (sql.Result, error) {
	if st := h.stmt(q); st != nil {
		return st.Exec(args...)
	}
	return h.conn.ExecContext(context.Background(), q, args...)
}

// discard closes the statements and the connection itself, which
// database/sql then never hands out again (it may be inside a transaction
// or broken).
func (h *heldConn) discard() {
	h.end(true) // errors only confirm it is gone
}

// close closes the statements and returns the connection to the pool.
func (h *heldConn) close() error {
	return h.end(false)
}

func (h *heldConn) end(bad bool) error {
	if h.conn == nil {
		return nil
	}
	// Statements first: they cannot be finalised once the connection is.
	var errs []error
	for _, st := range h.stmts {
		errs = append(errs, st.Close())
	}
	h.stmts = nil
	if bad {
		h.conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	errs = append(errs, h.conn.Close()) // after Raw's ErrBadConn: ErrConnDone
	h.conn = nil
	return errors.Join(errs...)
}

// connPool lends the store's connections to reads and to the write
// (one at a time: writeMu). A connection is opened only when none is free,
// so a process that opens a token and reads it (`pkcs11-tool -L`) opens
// one, and one that also logs in and signs (a write: the login registry)
// still one: the connection Open read the schema on. That one is also the
// generation connection (gen), lent whenever Generation does not need it
// (the WAL-index header is readable; see sqliteStore.dedicateGen).
//
// Not database/sql's own pool: statements prepared on the DB take a pool
// connection to be prepared on (which opened a second connection in every
// process), and a Tx cannot use statements prepared on a Conn.
//
// gen is never closed before the store: it keeps SQLite's -shm file alive
// (the last connection of the last process to close deletes it, and a new
// one would not be the file the store has mapped). A transaction that
// leaves gen broken takes it out of lending instead.
type connPool struct {
	db     *sql.DB
	mu     sync.Mutex
	cond   sync.Cond // L is &mu; broadcast when a connection is put back
	free   []*heldConn
	open   int // connections open, lent or free; gen included
	gen    *heldConn
	lend   bool // gen may be lent: it is in free when not lent
	genOut bool // gen is lent now
	closed bool
}

func (p *connPool) init(db *sql.DB) {
	p.db = db
	p.cond.L = &p.mu
}

// get returns a free connection, opening one if none is free and fewer than
// maxConns are open, else waiting for one to be put back. Statements are
// prepared on the connection by its user, never while waiting here, so a transaction
// never holds one connection while waiting for another.
func (p *connPool) get() (*heldConn, error) {
	p.mu.Lock()
	for {
		if p.closed {
			p.mu.Unlock()
			return nil, errors.New("store: closed")
		}
		if n := len(p.free); n > 0 {
			h := p.free[n-1]
			p.free = p.free[:n-1]
			if h == p.gen {
				p.genOut = true
			}
			p.mu.Unlock()
			return h, nil
		}
		if p.open < maxConns {
			break
		}
		p.cond.Wait()
	}
	p.open++
	p.mu.Unlock()
	c, err := p.db.Conn(context.Background())
	if err != nil {
		p.mu.Lock()
		p.open--
		p.cond.Broadcast()
		p.mu.Unlock()
		return nil, err
	}
	return &heldConn{conn: c}, nil
}

// put gives a connection back. bad: it may be inside a transaction or broken,
// so it is closed (gen: kept open, no longer lent).
func (p *connPool) put(h *heldConn, bad bool) {
	p.mu.Lock()
	isGen := h == p.gen
	p.mu.Unlock()
	if bad && isGen {
		// Kept open, so end the transaction it may be inside: a BEGIN
		// IMMEDIATE that failed inside one still took the write lock,
		// which every writer of every process would then wait for. An
		// error says there was none, or the connection is broken; either
		// way it is not lent again.
		h.conn.ExecContext(context.Background(), `ROLLBACK`)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.cond.Broadcast()
	if h == p.gen {
		p.genOut = false
		if bad {
			p.lend = false
		}
		if p.lend && !p.closed {
			p.free = append(p.free, h)
		}
		return
	}
	idle := len(p.free)
	if p.lend && p.genOut {
		idle++ // gen comes back to free
	}
	if !bad && !p.closed && idle < maxIdleConns {
		p.free = append(p.free, h)
		return
	}
	p.open--
	if bad || !p.closed {
		h.discard() // closed for good, not parked in database/sql's pool
	} else {
		h.close() // db.Close closes it
	}
}

// setGen makes h, a connection got from get, the generation connection, lent
// to reads when lend.
func (p *connPool) setGen(h *heldConn, lend bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gen, p.lend = h, lend
	if lend {
		p.free = append(p.free, h)
		p.cond.Broadcast()
	}
}

// takeGen stops lending gen and waits until no transaction holds it.
func (p *connPool) takeGen() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lend = false
	if i := slices.Index(p.free, p.gen); i >= 0 {
		p.free = slices.Delete(p.free, i, i+1)
	}
	for p.genOut {
		p.cond.Wait()
	}
}

// close closes the free connections but gen (the store closes it last);
// connections lent now are closed when put back.
func (p *connPool) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.cond.Broadcast()
	var errs []error
	for _, h := range p.free {
		if h != p.gen {
			p.open--
			errs = append(errs, h.close())
		}
	}
	p.free = nil
	return errors.Join(errs...)
}

// storeRow is a one-row query run when it is scanned, on a connection lent for
// that long.
type storeRow struct {
	s    *sqliteStore
	q    string
	args []any
}

func (r storeRow) Scan(dest ...any) error {
	h, err := r.s.conns.get()
	if err != nil {
		return err
	}
	defer r.s.conns.put(h, false)
	return h.queryRow(r.q, r.args...).Scan(dest...)
}

// queryRow runs a one-row read outside a transaction when its Scan is
// called.
func (s *sqliteStore) queryRow(q string, args ...any) rowScanner {
	return storeRow{s: s, q: q, args: args}
}

// queryEach runs a read outside a transaction and calls fn for each row.
func (s *sqliteStore) queryEach(q string, args []any, fn func(*sql.Rows) error) error {
	h, err := s.conns.get()
	if err != nil {
		return err
	}
	defer s.conns.put(h, false)
	rows, err := h.query(q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// txn is a transaction on a connection lent by the store's pool (a read:
// BEGIN ... ROLLBACK; a write: BEGIN IMMEDIATE ... COMMIT), with the
// statements prepared on it.
type txn struct {
	c *heldConn
	s *sqliteStore
	// created lists the objects this write transaction inserted, in order,
	// for audit events that name them (AuditEvent.Fill).
	created []int64
}

// execer is what schema code needs of a transaction; *txn and *sql.Tx are
// both one.
type execer interface {
	Exec(q string, args ...any) (sql.Result, error)
	Query(q string, args ...any) (*sql.Rows, error)
	QueryRow(q string, args ...any) *sql.Row
}

func (t *txn) QueryRow(q string, args ...any) *sql.Row { return t.c.queryRow(q, args...) }

func (t *txn) Query(q string, args ...any) (*sql.Rows, error) { return t.c.query(q, args...) }

func (t *txn) Exec(q string, args ...any) (sql.Result, error) { return t.c.exec(q, args...) }
