package store

import (
	"database/sql"
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
func (c *stmtCache) get(q string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[q]; ok {
		return st, nil
	}
	if len(c.m) >= maxCachedStmts {
		return nil, nil
	}
	st, err := c.db.Prepare(q)
	if err != nil {
		return nil, err
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
// A transaction holds a pool connection, and preparing through the cache
// takes another; with every connection held by a transaction waiting to
// prepare, none would ever come back. So a transaction only uses statements
// already cached, runs the others directly, and the store caches those after
// the transaction has returned its connection (warm).
type txn struct {
	*sql.Tx
	s      *sqliteStore
	missed map[string]bool
}

func (t *txn) stmt(q string) *sql.Stmt {
	st := t.s.stmts.peek(q)
	if st == nil {
		if t.missed == nil {
			t.missed = map[string]bool{}
		}
		t.missed[q] = true
		return nil
	}
	// Closed by database/sql when the transaction ends.
	return t.Tx.Stmt(st)
}

// warm caches the statements t ran uncached; call it with no transaction
// open on this goroutine.
func (t *txn) warm() {
	for q := range t.missed {
		t.s.stmts.get(q) // a statement that fails to prepare stays uncached
	}
}

func (t *txn) QueryRow(q string, args ...any) *sql.Row {
	st := t.stmt(q)
	if st == nil {
		return t.Tx.QueryRow(q, args...)
	}
	return st.QueryRow(args...)
}

func (t *txn) Query(q string, args ...any) (*sql.Rows, error) {
	st := t.stmt(q)
	if st == nil {
		return t.Tx.Query(q, args...)
	}
	return st.Query(args...)
}

func (t *txn) Exec(q string, args ...any) (sql.Result, error) {
	st := t.stmt(q)
	if st == nil {
		return t.Tx.Exec(q, args...)
	}
	return st.Exec(args...)
}
