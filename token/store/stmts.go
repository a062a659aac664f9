package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"sync"
)

// Parsing and planning a statement costs more than running the indexed
// lookups this package does, so statements are prepared once per store and
// reused (database/sql then prepares each on a connection the first time it
// runs there). Find's SQL depends on the set of attribute types in the
// template; applications use a few shapes, and maxCachedStmts bounds the
// cache against one that does not.
const maxCachedStmts = 256

type stmtCache struct {
	db *sql.DB
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// get returns the prepared statement for q, or nil when the cache is full.
//
// The lock is not held while preparing: Prepare waits for a pool
// connection, and a read transaction holding one may be waiting in peek
// for this lock; with every connection so held, neither would ever go on
// (a CI run had TestConcurrentGoroutines stuck so for 9 minutes under
// -race). Two goroutines may then prepare the same query; the second
// closes its copy.
func (c *stmtCache) get(q string) (*sql.Stmt, error) {
	c.mu.Lock()
	st, ok := c.m[q]
	full := len(c.m) >= maxCachedStmts
	c.mu.Unlock()
	if ok {
		return st, nil
	}
	if full {
		return nil, nil
	}
	st, err := c.db.Prepare(q)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[q]; ok {
		st.Close()
		return old, nil
	}
	if len(c.m) >= maxCachedStmts {
		st.Close()
		return nil, nil
	}
	if c.m == nil {
		c.m = map[string]*sql.Stmt{}
	}
	c.m[q] = st
	return st, nil
}

// peek returns the cached statement for q, or nil.
func (c *stmtCache) peek(q string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[q]
}

func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, st := range c.m {
		errs = append(errs, st.Close())
	}
	c.m = nil
	return errors.Join(errs...)
}

func (s *sqliteStore) queryRow(q string, args ...any) *sql.Row {
	st, err := s.stmts.get(q)
	if err != nil || st == nil {
		// An error here is returned again, with context, by the row.
		return s.db.QueryRow(q, args...)
	}
	return st.QueryRow(args...)
}

func (s *sqliteStore) query(q string, args ...any) (*sql.Rows, error) {
	st, err := s.stmts.get(q)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return s.db.Query(q, args...)
	}
	return st.Query(args...)
}

// txn is a transaction whose statements come from the store's cache.
//
// A read transaction (tx set) holds a pool connection, and preparing through
// the cache takes another; with every connection held by a transaction
// waiting to prepare, none would ever come back. So a read transaction only
// uses statements already cached, runs the others directly, and the store
// caches those after the transaction has returned its connection (warm).
//
// A write transaction (tx nil) runs on the store's writer connection, which
// it holds: its statements are prepared on that connection and kept there.
type txn struct {
	tx     *sql.Tx
	s      *sqliteStore
	missed map[string]bool
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

func (t *txn) stmt(q string) *sql.Stmt {
	if t.tx == nil {
		return t.s.w.stmt(q)
	}
	st := t.s.stmts.peek(q)
	if st == nil {
		if t.missed == nil {
			t.missed = map[string]bool{}
		}
		t.missed[q] = true
		return nil
	}
	// Closed by database/sql when the transaction ends.
	return t.tx.Stmt(st)
}

// warm caches the statements t ran uncached; call it with no transaction
// open on this goroutine.
func (t *txn) warm() {
	for q := range t.missed {
		t.s.stmts.get(q) // a statement that fails to prepare stays uncached
	}
}

func (t *txn) QueryRow(q string, args ...any) *sql.Row {
	if st := t.stmt(q); st != nil {
		return st.QueryRow(args...)
	}
	if t.tx == nil {
		return t.s.w.conn.QueryRowContext(context.Background(), q, args...)
	}
	return t.tx.QueryRow(q, args...)
}

func (t *txn) Query(q string, args ...any) (*sql.Rows, error) {
	if st := t.stmt(q); st != nil {
		return st.Query(args...)
	}
	if t.tx == nil {
		return t.s.w.conn.QueryContext(context.Background(), q, args...)
	}
	return t.tx.Query(q, args...)
}

func (t *txn) Exec(q string, args ...any) (sql.Result, error) {
	if st := t.stmt(q); st != nil {
		return st.Exec(args...)
	}
	if t.tx == nil {
		return t.s.w.conn.ExecContext(context.Background(), q, args...)
	}
	return t.tx.Exec(q, args...)
}

// writer is the connection every write transaction of a store runs on
// (under writeMu), BEGIN IMMEDIATE to COMMIT, with the statements prepared
// on it. Not database/sql's Tx: that starts a goroutine per transaction
// (to roll back when a context is cancelled), and in a host process each
// of those woke another thread: a sixth of the time of a token key
// generation went to scheduling them.
type writer struct {
	conn  *sql.Conn
	stmts map[string]*sql.Stmt
}

// stmt returns q prepared on the writer connection, or nil when it cannot
// be (the caller then runs q directly) or the cache is full.
func (w *writer) stmt(q string) *sql.Stmt {
	if st, ok := w.stmts[q]; ok {
		return st
	}
	if len(w.stmts) >= maxCachedStmts {
		return nil
	}
	st, err := w.conn.PrepareContext(context.Background(), q)
	if err != nil {
		return nil
	}
	if w.stmts == nil {
		w.stmts = map[string]*sql.Stmt{}
	}
	w.stmts[q] = st
	return st
}

// discard closes the statements and the connection itself, which
// database/sql then never hands out again (it may be inside a transaction
// or broken).
func (w *writer) discard() {
	w.end(true) // errors only confirm it is gone
}

// close closes the statements and returns the connection to the pool.
func (w *writer) close() error {
	return w.end(false)
}

func (w *writer) end(bad bool) error {
	if w.conn == nil {
		return nil
	}
	// Statements first: they cannot be finalised once the connection is.
	var errs []error
	for _, st := range w.stmts {
		errs = append(errs, st.Close())
	}
	w.stmts = nil
	if bad {
		w.conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	errs = append(errs, w.conn.Close()) // after Raw's ErrBadConn: ErrConnDone
	w.conn = nil
	return errors.Join(errs...)
}
