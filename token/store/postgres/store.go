//go:build !nopostgres

package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"gohsm/token/store"
)

// DefaultTimeout bounds every store call (connecting included) when
// Options.Timeout is 0.
const DefaultTimeout = 5 * time.Second

// Options tune Open. The zero value is the default.
type Options struct {
	// Timeout bounds every store call, connecting included: past it the
	// call fails with an error wrapping store.ErrUnavailable (0:
	// DefaultTimeout).
	Timeout time.Duration

	// Log is where the store logs what no caller is told: a batch of
	// queued audit events whose commit's outcome it could not learn (nil:
	// slog.Default()).
	Log *slog.Logger
}

// defaultMaxConns is the pool's size unless the URL sets pool_max_conns:
// writers serialise on the generation row anyway, so more connections
// only help concurrent readers.
const defaultMaxConns = 8

// notifyChannel is the channel every write transaction notifies with its
// generation (D3); each Store listens on it (D4). Notifications are per
// database, and a database may hold several tokens, one per schema
// (search_path), so the payload is "<schema>:<n>" and a listener takes
// only its own schema's.
const notifyChannel = "gohsm_generation"

// genSQL is a write transaction's first statement: the bump and its
// notification.
const genSQL = `WITH g AS (UPDATE generation SET n = n + 1 RETURNING n)
	SELECT n FROM g, pg_notify('` + notifyChannel + `', current_schema() || ':' || n)`

// pgStore is a view of one token store on PostgreSQL: the shared state
// (core) and the audit events its writes append (none for the store Open
// returns; Audited makes views with some).
type pgStore struct {
	pool    *pgxpool.Pool
	timeout time.Duration
	core    *core
	events  []store.AuditEvent
}

// core is what every view of one opening shares.
type core struct {
	cfg *pgx.ConnConfig // for the dedicated connections (listener, logins)

	// schemaOK is set once the database's schema was checked (and made,
	// on an empty database); until then every call checks it first.
	schemaOK atomic.Bool
	schemaMu sync.Mutex

	// gen is the highest generation seen: notified, read, or committed by
	// this store. listening is true while the listener connection is up
	// and has read the generation after its LISTEN: only then is gen
	// current without asking the database.
	gen       atomic.Uint64
	listening atomic.Bool

	// timedOut is when (Unix nanoseconds) a call last gave up on the
	// database after the whole timeout (breaker.go).
	timedOut atomic.Int64

	closed atomic.Bool
	stop   context.CancelFunc // ends the listener
	done   chan struct{}      // closed when the listener has ended

	// logins is the login registry's connection and its advisory locks
	// (logins.go).
	logins loginConn

	// queue holds the events AuditLater deferred to the next write.
	queue store.AuditQueue

	log *slog.Logger // Options.Log
}

// Open opens the token store in the database url names. A bad URL fails,
// and so does a reachable database whose schema is not this build's
// (*VersionError, wrapping store.ErrFormat) or that is not a token store;
// an empty database gets the schema. An unreachable database is not an
// error here: the store is returned, its calls fail with
// store.ErrUnavailable until the database answers, and the first call
// that reaches it checks the schema.
func Open(url string, opts Options) (store.Store, error) {
	if opts.Timeout < 0 {
		return nil, fmt.Errorf("postgres: negative timeout %v", opts.Timeout)
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	if !strings.HasPrefix(url, "postgres://") && !strings.HasPrefix(url, "postgresql://") {
		return nil, fmt.Errorf("postgres: the setting is not a postgres:// URL") // it may hold a password
	}
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err) // pgx leaves the password out
	}
	defaults(pcfg.ConnConfig)
	abandonIdle(pcfg.ConnConfig, opts.Timeout)
	watchDial(&pcfg.ConnConfig.Config)
	if !strings.Contains(url, "pool_max_conns") {
		pcfg.MaxConns = defaultMaxConns
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), pcfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	s := &pgStore{pool: pool, timeout: opts.Timeout, core: &core{
		cfg:  pcfg.ConnConfig.Copy(),
		stop: stop,
		done: make(chan struct{}),
		log:  opts.Log,
	}}
	s.core.logins.init(s)
	cctx, cancel := s.ctx()
	err = s.ready(cctx)
	cancel()
	if err != nil && !errors.Is(err, store.ErrUnavailable) {
		stop()
		pool.Close()
		return nil, err
	}
	go s.listen(ctx)
	return s, nil
}

// idleMargin is how much longer than a call may last a transaction may sit
// idle before the server ends it (abandonIdle).
const idleMargin = 500 * time.Millisecond

// abandonIdle has the server end a transaction of this store's connections
// that sits idle longer than a store call may last (timeout + idleMargin),
// unless the URL sets idle_in_transaction_session_timeout itself. No live
// call leaves a transaction idle that long (its context ends first), so
// such a transaction was abandoned by a client that vanished without a
// word, a host whose network died: without this, its hold on the
// generation row that every write takes first kept every host from
// writing until TCP keepalives noticed, two hours and more by default
// (tests/hosts TestPartitionMidTransaction: still stuck after 30 s).
func abandonIdle(cfg *pgx.ConnConfig, timeout time.Duration) {
	const key = "idle_in_transaction_session_timeout"
	if _, ok := cfg.RuntimeParams[key]; !ok {
		cfg.RuntimeParams[key] = strconv.FormatInt((timeout + idleMargin).Milliseconds(), 10)
	}
}

// defaults are ParseURL's: a connect timeout and the application name.
func defaults(cfg *pgx.ConnConfig) {
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "gohsm"
	}
}

// ctx is a call's context: it ends after the store's timeout.
func (s *pgStore) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.timeout)
}

var errClosed = errors.New("store: closed")

var _ store.Store = (*pgStore)(nil)

// ready checks the schema once per opening: an empty database gets it
// (Migrate, under its advisory lock), a current one is used, another
// version is refused.
func (s *pgStore) ready(ctx context.Context) error {
	if s.core.closed.Load() {
		return errClosed
	}
	if s.core.schemaOK.Load() {
		return nil
	}
	s.core.schemaMu.Lock()
	defer s.core.schemaMu.Unlock()
	if s.core.schemaOK.Load() {
		return nil
	}
	v, err := version(ctx, s.pool)
	if err != nil {
		return wrapErr("open", err)
	}
	if v > 0 && v < Version {
		// Another opener may be creating the schema, one migration per
		// transaction, so that versions 1.. show on the way: once its
		// lock is ours the version is final.
		if v, err = settledVersion(ctx, s.pool); err != nil {
			return wrapErr("open", err)
		}
	}
	switch {
	case v == 0:
		if err := Migrate(ctx, s.pool); err != nil {
			return wrapErr("create schema", err)
		}
	case v != Version:
		return fmt.Errorf("store: open: %w", &VersionError{Database: v, Code: Version})
	}
	s.core.schemaOK.Store(true)
	return nil
}

// querier is what a single statement runs on: the pool or a transaction.
type querier interface {
	Exec(ctx context.Context, sql string, arguments ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// stmt runs fn, which reads with one statement, on the pool under the
// timeout: no transaction, so one round trip.
func (s *pgStore) stmt(fn func(ctx context.Context, q querier) error) (err error) {
	if err := s.core.justTimedOut(s.timeout); err != nil {
		return err
	}
	ctx, cancel := s.ctx()
	defer cancel()
	defer func() { s.core.noteTimeout(ctx, err) }()
	if err := s.ready(ctx); err != nil {
		return err
	}
	err = fn(ctx, s.pool)
	if s.again(ctx, err) {
		err = fn(ctx, s.pool)
	}
	return err
}

// again reports whether a call that failed with err should run once more:
// err says the connection was lost (the server restarted or failed over,
// or closed an idle connection) and the call's time is not up. The pool's
// other idle connections are likely dead too, so they are dropped first
// (the pool checks a connection only after a second of idleness). Only
// what is safe to run twice is: a read, or a write transaction whose
// BEGIN failed.
func (s *pgStore) again(ctx context.Context, err error) bool {
	var pe *pgconn.PgError
	if err == nil || ctx.Err() != nil || !unavailable(err) || s.core.closed.Load() ||
		(errors.As(err, &pe) && strings.HasPrefix(pe.Code, "40")) {
		return false
	}
	s.pool.Reset()
	return true
}

// read runs fn in one READ ONLY REPEATABLE READ transaction (one snapshot)
// under the timeout. fn's errors are returned as they are; callers wrap
// them (wrapErr).
func (s *pgStore) read(fn func(ctx context.Context, tx pgx.Tx) error) (err error) {
	if err := s.core.justTimedOut(s.timeout); err != nil {
		return err
	}
	ctx, cancel := s.ctx()
	defer cancel()
	defer func() { s.core.noteTimeout(ctx, err) }()
	if err := s.ready(ctx); err != nil {
		return err
	}
	err = s.readOnce(ctx, fn)
	if s.again(ctx, err) {
		err = s.readOnce(ctx, fn)
	}
	return err
}

func (s *pgStore) readOnce(ctx context.Context, fn func(ctx context.Context, tx pgx.Tx) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return wrapErr("begin", err)
	}
	defer tx.Rollback(ctx)
	if err := fn(ctx, tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// txState is what a write transaction collects for the audit events it
// appends: the IDs of the objects it created, in order (AuditEvent.Fill).
type txState struct{ created []int64 }

type txStateKey struct{}

// noteCreated records objects the write transaction of ctx created.
func noteCreated(ctx context.Context, ids ...int64) {
	if st, ok := ctx.Value(txStateKey{}).(*txState); ok {
		st.created = append(st.created, ids...)
	}
}

// createdIn is what noteCreated recorded in the transaction of ctx.
func createdIn(ctx context.Context) []int64 {
	if st, ok := ctx.Value(txStateKey{}).(*txState); ok {
		return st.created
	}
	return nil
}

// write is commit without the report.
func (s *pgStore) write(fn func(ctx context.Context, tx pgx.Tx) error) error {
	_, err := s.commitIn(context.Background(), fn)
	return err
}

// writeIn is write within parent's deadline too: for a call that spent
// part of its timeout before its transaction (AddLogin, RemoveLogin).
func (s *pgStore) writeIn(parent context.Context, fn func(ctx context.Context, tx pgx.Tx) error) error {
	_, err := s.commitIn(parent, fn)
	return err
}

// commit runs fn in a write transaction and reports the commit (D3). The
// transaction's first statement bumps the one-row generation table: its
// row lock makes writers of every host take turns, as SQLite's BEGIN
// IMMEDIATE does, so the READ COMMITTED statements after it see every
// earlier commit, and the number it returns is this commit's place in
// one sequence: Before n-1, After n, Alone (nothing else committed between
// them). The same statement notifies the listeners of every Store, which
// receive it when the transaction commits. BEGIN and the bump take one
// round trip (beginWith). Then fn, then the view's audit
// events (appendAudit, audit.go), in the same transaction: their
// statement goes with COMMIT. fn nil: a write of audit events alone,
// whose meta rows are read in the round trip of BEGIN. When the answer
// to that COMMIT is lost, lostCommitted finds out on another connection
// whether it committed, under half the timeout, and the call reports that
// (a call then takes up to one and a half times the timeout).
func (s *pgStore) commit(fn func(ctx context.Context, tx pgx.Tx) error) (_ store.Commit, err error) {
	return s.commitIn(context.Background(), fn)
}

// commitIn is commit under parent's deadline as well as the timeout.
func (s *pgStore) commitIn(parent context.Context, fn func(ctx context.Context, tx pgx.Tx) error) (_ store.Commit, err error) {
	return s.commitQueued(parent, fn, false)
}

// commitQueued is commitIn, appending the events AuditLater queued before
// the view's own (store.AuditQueue). flush: the write is FlushAudit's,
// whose failed batch is dropped rather than queued again.
func (s *pgStore) commitQueued(parent context.Context, fn func(ctx context.Context, tx pgx.Tx) error, flush bool) (_ store.Commit, err error) {
	queued := s.core.queue.Take(flush)
	if flush && len(queued) == 0 {
		return store.Commit{}, nil
	}
	committed := false // set on the way out of a commit, not of a panic
	var unknown *outcomeUnknown
	defer func() {
		s.core.queue.Done(queued, committed, flush)
		switch {
		case unknown != nil && len(queued) > 0:
			// Put back (a write's) they may be recorded twice; dropped
			// (a flush's), not at all.
			s.core.log.Error("store: audit: queued events' fate unknown: a commit's answer was lost and the check of its outcome failed",
				"events", len(queued), "put_back", !flush, "err", err)
			if flush {
				err = fmt.Errorf("store: audit: %d queued events may not be recorded: %w", len(queued), err)
			}
		case flush && err != nil:
			err = fmt.Errorf("store: audit: %d queued events not recorded: %w", len(queued), err)
		}
	}()
	if len(queued) > 0 {
		s = &pgStore{pool: s.pool, timeout: s.timeout, core: s.core, events: store.WithQueued(queued, s.events)}
	}
	c, err := s.commitOnce(parent, fn)
	committed = err == nil
	errors.As(err, &unknown)
	return c, err
}

// outcomeUnknown is the error of a commit whose answer was lost
// (lostCommit) and whose outcome lostCommitted could not read: the write
// may be committed. Its caller is told it failed, as before the check,
// and its queued events are put back (a flush's are dropped): either may
// be wrong, and commitQueued logs it.
type outcomeUnknown struct {
	lost  error // the commit's error
	check error // lostCommitted's
}

func (e *outcomeUnknown) Error() string {
	return fmt.Sprintf("%v (whether it committed is unknown: the check failed: %v)", e.lost, e.check)
}
func (e *outcomeUnknown) Unwrap() error { return e.lost }

// commitOnce is commitQueued's transaction, with the view's events.
func (s *pgStore) commitOnce(parent context.Context, fn func(ctx context.Context, tx pgx.Tx) error) (_ store.Commit, err error) {
	if err := s.core.justTimedOut(s.timeout); err != nil {
		return store.Commit{}, err
	}
	ctx, cancel := context.WithTimeout(parent, s.timeout)
	defer cancel()
	defer func() { s.core.noteTimeout(ctx, err) }()
	if err := s.ready(ctx); err != nil {
		return store.Commit{}, err
	}
	ctx = context.WithValue(ctx, txStateKey{}, &txState{})
	seen := s.core.gen.Load() // committed before the bump: below n unless the database went back
	var n int64
	// A write with audit events and no statements of its own (Audit,
	// FlushAudit) reads the meta rows appendAudit needs in the round
	// trip of BEGIN, after the bump whose lock orders the writers.
	var meta []metaRow
	readMeta := fn == nil && len(s.events) > 0
	var more func(*pgx.Batch)
	var read func(pgx.BatchResults) error
	if readMeta {
		keys := auditMetaKeys(s.events)
		more = func(b *pgx.Batch) { b.Queue(auditMetaSQL, keys) }
		read = func(br pgx.BatchResults) error {
			rows, err := br.Query()
			if err != nil {
				return err
			}
			meta, err = readAuditMeta(rows)
			return err
		}
	}
	begin := func() (pgx.Tx, error) {
		return beginBatch(ctx, s.pool, `BEGIN`, genSQL, nil, []any{&n}, more, read)
	}
	tx, err := begin()
	if s.again(ctx, err) {
		tx, err = begin()
	}
	if err != nil {
		return store.Commit{}, wrapErr("begin", err)
	}
	defer tx.Rollback(ctx)
	if fn != nil {
		if err := fn(ctx, tx); err != nil {
			return store.Commit{}, err
		}
	}
	if len(s.events) > 0 {
		if !readMeta {
			rows, err := tx.Query(ctx, auditMetaSQL, auditMetaKeys(s.events))
			if err != nil {
				return store.Commit{}, wrapErr("audit", err)
			}
			if meta, err = readAuditMeta(rows); err != nil {
				return store.Commit{}, wrapErr("audit", err)
			}
		}
		// appendAudit commits, in the round trip of its statement. A
		// commit whose answer was lost is looked for: its batch
		// committed or not, and the caller is told which, so that queued
		// events are neither recorded twice (put back when they were
		// committed) nor dropped unrecorded.
		if err := s.appendAudit(ctx, tx, meta); err != nil {
			lc, ok := err.(*lostCommit)
			if !ok {
				return store.Commit{}, err
			}
			tx.Rollback(ctx) // the connection back first: a pool of one
			done, cerr := s.lostCommitted(lc.tail)
			switch {
			case cerr != nil:
				return store.Commit{}, &outcomeUnknown{lost: lc.err, check: wrapErr("audit outcome", cerr)}
			case !done:
				return store.Commit{}, lc.err
			}
		}
	} else if err := tx.Commit(ctx); err != nil {
		return store.Commit{}, wrapErr("commit", err)
	}
	s.core.raise(uint64(n))
	// A generation that went back (readGeneration) is no sequence the
	// caller's cache can follow: not Alone, so it is dropped.
	return store.Commit{Before: uint64(n) - 1, After: uint64(n), Alone: uint64(n) > seen}, nil
}

// raise lifts the generation seen to at least n.
func (c *core) raise(n uint64) uint64 {
	for {
		g := c.gen.Load()
		if g >= n {
			return g
		}
		if c.gen.CompareAndSwap(g, n) {
			return n
		}
	}
}

// Generation is an atomic load while the listener is up (D4): its
// connection receives every commit's notification, and this store's own
// commits raise it at once. While the listener is down, each call reads
// the generation from the database, under the timeout.
func (s *pgStore) Generation() (uint64, error) {
	if s.core.listening.Load() {
		return s.core.gen.Load(), nil
	}
	var n uint64
	err := s.stmt(func(ctx context.Context, q querier) error {
		var err error
		n, err = s.core.readGeneration(ctx, q)
		return err
	})
	if err != nil {
		return 0, wrapErr("read generation", err)
	}
	return s.core.raise(n), nil
}

// listenBeat is how often the listener reads the generation on its own
// connection, notifications or not, and listenLease how long after the
// last such read Generation still trusts the listener. A connection gone
// silent (a network path that drops every packet: no reset, no error)
// thus stops being trusted within listenLease, and Generation asks the
// database, which fails within the timeout, instead of answering from
// caches that miss other hosts' commits. (With a check only after 10 s
// without a notification, tests/hosts TestPartitionedHost measured a host
// cut off from the database signing for 10.9 s with a key another host
// had deleted.) The cost: one small query per beat per opening.
const (
	listenBeat  = 250 * time.Millisecond
	listenLease = time.Second
)

// listen keeps a connection LISTENing on notifyChannel until ctx ends,
// raising the generation to each notification's payload; a lost connection
// is made again with a growing pause (at most 1 s), and while it is down
// Generation asks the database.
func (s *pgStore) listen(ctx context.Context) {
	defer close(s.core.done)
	pause := 10 * time.Millisecond
	for ctx.Err() == nil {
		if s.listenOnce(ctx) {
			pause = 10 * time.Millisecond
		}
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
		pause = min(2*pause, time.Second)
	}
}

// listenOnce runs one listener connection until it fails; ok is whether
// it got as far as listening.
func (s *pgStore) listenOnce(ctx context.Context) (ok bool) {
	cctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.ready(cctx); err != nil {
		return false
	}
	conn, err := pgx.ConnectConfig(cctx, s.core.cfg)
	if err != nil {
		return false
	}
	defer conn.Close(context.Background())
	defer s.core.listening.Store(false)
	var schema string
	if _, err := conn.Exec(cctx, `LISTEN `+notifyChannel); err != nil {
		return false
	}
	if err := conn.QueryRow(cctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return false
	}
	// Read after LISTEN: a commit before it is in n, one after it is
	// notified.
	if err := s.core.sync(cctx, conn); err != nil {
		return false
	}
	// The lease: unless a read on the connection renews it, the listener
	// is no longer trusted after listenLease.
	lease := time.AfterFunc(listenLease, func() { s.core.listening.Store(false) })
	defer lease.Stop()
	s.core.listening.Store(true)
	beat := time.Now().Add(listenBeat)
	for {
		wctx, cancel := context.WithDeadline(ctx, beat)
		nt, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			if !s.notified(ctx, conn, schema, nt.Payload) {
				return true
			}
		case ctx.Err() != nil:
			return true
		case errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err):
			// The beat: check that the connection still answers (and
			// catch up, should anything have been missed), then renew
			// the lease.
			pctx, cancel := context.WithTimeout(ctx, s.timeout)
			err := s.core.sync(pctx, conn)
			cancel()
			if err != nil {
				return true
			}
			lease.Reset(listenLease)
			s.core.listening.Store(true)
			beat = time.Now().Add(listenBeat)
		default:
			return true
		}
	}
}

// notified takes a notification: "<schema>:<n>" of this store's schema
// raises the generation to n, another schema's is ignored, and anything
// else (a bare number from a tool or an operator bumping the generation
// by hand) makes the listener read its own schema's generation. ok is
// false when that read failed (the connection is lost).
func (s *pgStore) notified(ctx context.Context, conn *pgx.Conn, schema, payload string) (ok bool) {
	if i := strings.LastIndexByte(payload, ':'); i >= 0 {
		if n, err := strconv.ParseUint(payload[i+1:], 10, 64); err == nil {
			if payload[:i] == schema {
				s.core.raise(n)
			}
			return true
		}
	}
	sctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return s.core.sync(sctx, conn) == nil
}

// sync reads the generation on conn and raises gen to it.
func (c *core) sync(ctx context.Context, conn *pgx.Conn) error {
	n, err := c.readGeneration(ctx, conn)
	if err != nil {
		return err
	}
	c.raise(n)
	return nil
}

// aheadSQL moves a generation that went back past $1, the highest this
// store saw, and notifies it as a commit does.
const aheadSQL = `WITH g AS (UPDATE generation SET n = greatest(n, $1) + 1 RETURNING n)
	SELECT n FROM g, pg_notify('` + notifyChannel + `', current_schema() || ':' || n)`

// readGeneration reads the database's generation. One below what this
// store saw before the read went back: every number seen was committed
// before the read began, and commits only raise it, unless the database
// lost commits (a failover to a standby that lacked them, a restored
// dump). Left so, every Store's Generation would stay at the higher
// number it saw while the database's commits climbed back to it, their
// caches never dropped (and the handles of the lost commits are handed
// out again, for other objects). So it is moved past what this store saw,
// with a notification: every Store's generation then changes.
func (c *core) readGeneration(ctx context.Context, q queryRower) (uint64, error) {
	seen := c.gen.Load()
	var n int64
	if err := q.QueryRow(ctx, `SELECT n FROM generation`).Scan(&n); err != nil {
		return 0, err
	}
	if uint64(n) < seen {
		if err := q.QueryRow(ctx, aheadSQL, int64(seen)).Scan(&n); err != nil {
			return 0, err
		}
	}
	return uint64(n), nil
}

// Close ends the listener and the login registry's connection (releasing
// its logins' locks) and closes the pool. Views share the opening: closing
// one closes it.
func (s *pgStore) Close() error {
	if s.core.closed.Swap(true) {
		return nil
	}
	s.core.stop()
	<-s.core.done
	err := s.core.logins.close()
	s.pool.Close()
	if err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// wrapErr adds the operation to an error and maps the database's errors
// onto the store's: a unique violation is store.ErrExists, no rows
// store.ErrNotFound, a lost or refused connection, a timeout or a server
// shutting down store.ErrUnavailable. Errors this package made (they start
// "store: ") are returned as they are.
func wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if strings.HasPrefix(err.Error(), "store: ") {
		return err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("store: %s: %w", op, store.ErrNotFound)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" { // unique_violation
		return fmt.Errorf("store: %s: %s: %w", op, pe.Message, store.ErrExists)
	}
	if unavailable(err) {
		return fmt.Errorf("store: %s: %w: %v", op, store.ErrUnavailable, err)
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

// unavailable tells the errors of a database that cannot be reached or
// used now from those of a request it refused.
func unavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || pgconn.Timeout(err) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"): // connection_exception
			return true
		case pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03": // admin, crash shutdown; cannot connect now
			return true
		case pe.Code == "53300": // too_many_connections
			return true
		case pe.Code == "40001", pe.Code == "40P01": // serialization failure, deadlock: try again later
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		pgconn.SafeToRetry(err) || strings.Contains(err.Error(), "conn closed") ||
		strings.Contains(err.Error(), "closed pool")
}
