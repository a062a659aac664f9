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

// Readers: at most maxReaders connections run reads at once (the
// generation connection among them, when it may be lent), and at most
// maxIdleReaders stay open between reads. With the writer and a backup's
// connection that is the pool's cap (Open: SetMaxOpenConns(8)).
const (
	maxReaders     = 6
	maxIdleReaders = 4
)

// heldConn is a connection the store holds, with the statements prepared
// on it: the writer's, and each reader's. Transactions on it are BEGIN ...
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

// readers lends connections to reads. A connection is opened only when a
// read finds none free, so a process that only opens the token and reads
// it (`pkcs11-tool -L`) opens one: the one Open read the schema on, which
// is also the generation connection (gen), lent to reads whenever
// Generation does not need it (the WAL-index header is readable; see
// sqliteStore.dedicateGen).
//
// gen is never closed before the store: it keeps SQLite's -shm file alive
// (the last connection of the last process to close deletes it, and a new
// one would not be the file the store has mapped). A read that leaves gen
// broken takes it out of lending instead.
type readers struct {
	db     *sql.DB
	mu     sync.Mutex
	cond   sync.Cond // L is &mu; broadcast when a reader is put back
	free   []*heldConn
	open   int // readers open, lent or free; gen included
	gen    *heldConn
	lend   bool // gen may be lent: it is in free when not lent
	genOut bool // gen is lent now
	closed bool
}

func (r *readers) init(db *sql.DB) {
	r.db = db
	r.cond.L = &r.mu
}

// get returns a free reader, opening one if none is free and fewer than
// maxReaders are open, else waiting for one to be put back. Statements are
// prepared on the reader by its user, never while waiting here, so a read
// never holds one connection while waiting for another.
func (r *readers) get() (*heldConn, error) {
	r.mu.Lock()
	for {
		if r.closed {
			r.mu.Unlock()
			return nil, errors.New("store: closed")
		}
		if n := len(r.free); n > 0 {
			h := r.free[n-1]
			r.free = r.free[:n-1]
			if h == r.gen {
				r.genOut = true
			}
			r.mu.Unlock()
			return h, nil
		}
		if r.open < maxReaders {
			break
		}
		r.cond.Wait()
	}
	r.open++
	r.mu.Unlock()
	c, err := r.db.Conn(context.Background())
	if err != nil {
		r.mu.Lock()
		r.open--
		r.cond.Broadcast()
		r.mu.Unlock()
		return nil, err
	}
	return &heldConn{conn: c}, nil
}

// put gives a reader back. bad: it may be inside a transaction or broken,
// so it is closed (gen: kept open, no longer lent).
func (r *readers) put(h *heldConn, bad bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	defer r.cond.Broadcast()
	if h == r.gen {
		r.genOut = false
		if bad {
			r.lend = false
		}
		if r.lend && !r.closed {
			r.free = append(r.free, h)
		}
		return
	}
	idle := len(r.free)
	if r.lend && r.genOut {
		idle++ // gen comes back to free
	}
	if !bad && !r.closed && idle < maxIdleReaders {
		r.free = append(r.free, h)
		return
	}
	r.open--
	if bad || !r.closed {
		h.discard() // closed for good, not parked in database/sql's pool
	} else {
		h.close() // db.Close closes it
	}
}

// setGen makes h, a reader got from get, the generation connection, lent
// to reads when lend.
func (r *readers) setGen(h *heldConn, lend bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gen, r.lend = h, lend
	if lend {
		r.free = append(r.free, h)
		r.cond.Broadcast()
	}
}

// takeGen stops lending gen and waits until no read holds it.
func (r *readers) takeGen() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lend = false
	if i := slices.Index(r.free, r.gen); i >= 0 {
		r.free = slices.Delete(r.free, i, i+1)
	}
	for r.genOut {
		r.cond.Wait()
	}
}

// close closes the free readers but gen (the store closes it last);
// readers lent now are closed when put back.
func (r *readers) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	r.cond.Broadcast()
	var errs []error
	for _, h := range r.free {
		if h != r.gen {
			r.open--
			errs = append(errs, h.close())
		}
	}
	r.free = nil
	return errors.Join(errs...)
}

// storeRow is a one-row query run when it is scanned, on a reader lent for
// that long.
type storeRow struct {
	s    *sqliteStore
	q    string
	args []any
}

func (r storeRow) Scan(dest ...any) error {
	h, err := r.s.readers.get()
	if err != nil {
		return err
	}
	defer r.s.readers.put(h, false)
	return h.queryRow(r.q, r.args...).Scan(dest...)
}

// queryRow runs a one-row read outside a transaction when its Scan is
// called.
func (s *sqliteStore) queryRow(q string, args ...any) rowScanner {
	return storeRow{s: s, q: q, args: args}
}

// queryEach runs a read outside a transaction and calls fn for each row.
func (s *sqliteStore) queryEach(q string, args []any, fn func(*sql.Rows) error) error {
	h, err := s.readers.get()
	if err != nil {
		return err
	}
	defer s.readers.put(h, false)
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

// txn is a transaction on a connection the store holds: a reader's (read)
// or the writer's (write), with the statements prepared on it.
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
