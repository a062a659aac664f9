//go:build !nopostgres

package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"gohsm/token/store"
)

// The login registry across hosts (D5). A pid and a /proc start time mean
// nothing on another host, so a login's liveness is a session-level
// advisory lock: the Store that records a login holds
// pg_advisory_lock(instance) on a connection of its own until
// RemoveLogin or Close. A process that dies, however (SIGKILL, a host
// lost), closes its socket or has it closed by the server's keepalive;
// its backend ends and the lock goes with it: no lease to renew or
// expire. A row whose lock no backend holds is dead: Logins leaves it
// out and every write of the registry (AddLogin, DeleteUser) deletes it.
//
// The lock's key is the instance itself (a random 63-bit number,
// store.NewInstance): PostgreSQL shows a bigint key in pg_locks as classid
// (high 32 bits) and objid (low 32 bits), with objsubid 1.
//
// If the registry's connection is lost while the process lives, its
// logins look dead to everyone until it is back: the keeper notices
// within loginCheck, connects again, takes the locks again and writes the
// rows again (unless the user was deleted meanwhile).

// loginCheck is how often a Store with logins checks its registry
// connection; a variable so that tests can shorten it.
var loginCheck = 2 * time.Second

// testOnlyNoRetake, while set, keeps the keeper from taking lost logins
// again.
var testOnlyNoRetake atomic.Bool

// heldSQL is true for a logins row l whose lock some backend holds. The
// subquery does not depend on l, so the lock table is read once per
// statement (hashed), not once per row.
const heldSQL = `l.instance IN (SELECT (k.classid::int8 << 32) | k.objid::int8 FROM pg_locks k
	WHERE k.locktype = 'advisory' AND k.granted AND k.objsubid = 1
	AND k.database = (SELECT oid FROM pg_database WHERE datname = current_database()))`

type loginConn struct {
	s *pgStore
	// mu guards the rest: a lock of one slot, taken with a deadline
	// (acquire), because the keeper holds it while it waits on the
	// database, up to the timeout: AddLogin and RemoveLogin waiting for
	// it behind a silent server must still give up within theirs.
	mu   chan struct{}
	conn *pgx.Conn             // nil until the first login, or after a loss
	held map[int64]store.Login // the logins this Store holds, by instance

	// gone are the logins RemoveLogin could not forget itself (mu was not
	// had in time): whoever takes mu next releases them (forgetGone).
	goneMu sync.Mutex
	gone   map[int64]bool
	stop   chan struct{} // ends the keeper
	done   chan struct{} // closed when the keeper has ended; nil: none started
}

func (l *loginConn) init(s *pgStore) {
	l.s = s
	l.held = map[int64]store.Login{}
	l.gone = map[int64]bool{}
	l.stop = make(chan struct{})
	l.mu = make(chan struct{}, 1)
}

// forget (mu held) ends a login here: no longer held, so never taken
// again, and its lock released (with the connection, if that fails), so
// its row is dead for every host whether or not it was deleted.
func (l *loginConn) forget(ctx context.Context, instance int64) {
	if _, ok := l.held[instance]; ok {
		delete(l.held, instance)
		l.unlock(ctx, instance)
	}
}

// forgetGone (mu held) forgets the logins RemoveLogin left to it.
func (l *loginConn) forgetGone(ctx context.Context) {
	l.goneMu.Lock()
	gone := l.gone
	l.gone = map[int64]bool{}
	l.goneMu.Unlock()
	for inst := range gone {
		l.forget(ctx, inst)
	}
}

// acquire takes mu, or fails when ctx ends first.
func (l *loginConn) acquire(ctx context.Context) error {
	select {
	case l.mu <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *loginConn) release() { <-l.mu }

// connect (mu held) makes the registry connection if there is none.
func (l *loginConn) connect(ctx context.Context) error {
	if l.conn != nil && !l.conn.IsClosed() {
		return nil
	}
	l.drop()
	c, err := pgx.ConnectConfig(ctx, l.s.core.cfg)
	if err != nil {
		return err
	}
	l.conn = c
	if l.done == nil {
		l.done = make(chan struct{})
		go l.keep()
	}
	return nil
}

// drop (mu held) forgets a broken connection.
func (l *loginConn) drop() {
	if l.conn != nil {
		l.conn.Close(context.Background())
		l.conn = nil
	}
}

// lock (mu held) takes the instance's lock on the registry connection.
func (l *loginConn) lock(ctx context.Context, instance int64) error {
	if err := l.connect(ctx); err != nil {
		return err
	}
	if _, err := l.conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, instance); err != nil {
		l.drop()
		return err
	}
	return nil
}

// unlock (mu held) releases the instance's lock; a lost connection has
// released it already.
func (l *loginConn) unlock(ctx context.Context, instance int64) {
	if l.conn == nil {
		return
	}
	if _, err := l.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, instance); err != nil {
		l.drop()
	}
}

// keep checks the connection every loginCheck while logins are held, and
// takes them again after a loss.
func (l *loginConn) keep() {
	defer close(l.done)
	t := time.NewTicker(loginCheck)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := l.s.ctx()
		if l.acquire(ctx) == nil {
			l.forgetGone(ctx)
			if len(l.held) > 0 && !testOnlyNoRetake.Load() {
				if l.conn == nil || l.conn.Ping(ctx) != nil {
					l.retake(ctx)
				}
			}
			l.release()
		}
		cancel()
	}
}

// retake (mu held) connects again and records the held logins again.
func (l *loginConn) retake(ctx context.Context) {
	l.drop()
	if err := l.connect(ctx); err != nil {
		return
	}
	for inst, lg := range l.held {
		if err := l.lock(ctx, inst); err != nil {
			return // the next check tries again
		}
		err := l.s.writeIn(ctx, func(ctx context.Context, tx pgx.Tx) error { return putLogin(ctx, tx, lg) })
		if errors.Is(err, store.ErrNotFound) {
			delete(l.held, inst) // the user is gone
			l.unlock(ctx, inst)
		}
	}
}

func (l *loginConn) close() error {
	close(l.stop)
	l.mu <- struct{}{}
	done := l.done
	l.release()
	if done != nil {
		<-done
	}
	l.mu <- struct{}{}
	defer l.release()
	var err error
	if l.conn != nil {
		// Closing the connection releases every lock, but only once the
		// server has seen it close: until then another Store would still
		// see these logins alive. Released here, they are gone when Close
		// returns. (A connection that fails this is lost, its locks with
		// it.)
		ctx, cancel := l.s.ctx()
		_, _ = l.conn.Exec(ctx, `SELECT pg_advisory_unlock_all()`)
		cancel()
		err = l.conn.Close(context.Background())
		l.conn = nil
	}
	l.held = map[int64]store.Login{}
	return err
}

// putLogin writes the registry row of lg, dropping dead rows on the way;
// ErrNotFound when the user is gone.
func putLogin(ctx context.Context, tx pgx.Tx, lg store.Login) error {
	b := &pgx.Batch{}
	b.Queue(`DELETE FROM logins l WHERE NOT `+heldSQL+` AND l.instance <> $1`, lg.Instance)
	b.Queue(`INSERT INTO logins (instance, username, pid, started, boot, pidns, since)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (instance) DO UPDATE SET username = EXCLUDED.username, pid = EXCLUDED.pid,
			started = EXCLUDED.started, boot = EXCLUDED.boot, pidns = EXCLUDED.pidns, since = EXCLUDED.since`,
		lg.Instance, lg.User, lg.PID, int64(lg.Started), lg.Boot, lg.PIDNS, lg.Since)
	err := tx.SendBatch(ctx, b).Close()
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23503" { // foreign_key_violation: no such user
		return fmt.Errorf("store: login %q: %w", lg.User, store.ErrNotFound)
	}
	return err
}

// AddLogin takes the instance's lock on the registry connection, then
// records the login (replacing the instance's previous one).
func (s *pgStore) AddLogin(lg store.Login) error {
	lg.User = store.FoldName(lg.User)
	if lg.Since == 0 {
		lg.Since = time.Now().Unix()
	}
	l := &s.core.logins
	ctx, cancel := s.ctx()
	defer cancel()
	if err := l.acquire(ctx); err != nil {
		return wrapErr("add login", err)
	}
	defer l.release()
	if s.core.closed.Load() {
		return errClosed
	}
	l.forgetGone(ctx)
	_, had := l.held[lg.Instance]
	had = had && l.conn != nil // a lost connection lost the lock
	if !had {
		if err := l.lock(ctx, lg.Instance); err != nil {
			return wrapErr("add login", err)
		}
	}
	err := s.writeIn(ctx, func(ctx context.Context, tx pgx.Tx) error { return putLogin(ctx, tx, lg) })
	if err != nil {
		if !had {
			l.unlock(ctx, lg.Instance)
		}
		return wrapErr("add login", err)
	}
	l.held[lg.Instance] = lg
	return nil
}

// RemoveLogin forgets the instance's login (none is no error) and
// releases its lock. The login ends even when the database cannot be
// reached (the error says so): the caller logs out whatever this
// returns, and a login kept would be taken again by the keeper once the
// database is back, alive for every host until the process ends. Its
// row, if it could not be deleted, is dead once the lock is gone.
func (s *pgStore) RemoveLogin(instance int64) error {
	l := &s.core.logins
	ctx, cancel := s.ctx()
	defer cancel()
	if err := l.acquire(ctx); err != nil {
		l.goneMu.Lock()
		l.gone[instance] = true
		l.goneMu.Unlock()
		return wrapErr("remove login", err)
	}
	defer l.release()
	l.forgetGone(ctx)
	err := s.writeIn(ctx, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM logins WHERE instance = $1`, instance)
		return err
	})
	// The lock goes even so: with the call's time up, the unlock fails at
	// once and the connection is dropped, its locks with it (the keeper
	// takes any other login it held again).
	l.forget(ctx, instance)
	return wrapErr("remove login", err)
}

// Logins lists the live logins of user (every user when ""): the rows
// whose lock is held.
func (s *pgStore) Logins(user string) ([]store.Login, error) {
	var out []store.Login
	err := s.stmt(func(ctx context.Context, q querier) error {
		var err error
		out, err = queryLogins(ctx, q, store.FoldName(user))
		return err
	})
	return out, wrapErr("list logins", err)
}

func queryLogins(ctx context.Context, q querier, user string) ([]store.Login, error) {
	rows, err := q.Query(ctx, `SELECT instance, username, pid, started, boot, pidns, since FROM logins l
		WHERE ($1 = '' OR username = $1) AND `+heldSQL+` ORDER BY instance`, user)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Login, error) {
		var lg store.Login
		var started int64
		err := r.Scan(&lg.Instance, &lg.User, &lg.PID, &started, &lg.Boot, &lg.PIDNS, &lg.Since)
		lg.Started = uint64(started)
		return lg, err
	})
}

// liveLogins (in a write transaction) deletes the user's dead rows and
// returns its live ones.
func liveLogins(ctx context.Context, tx pgx.Tx, user string, write bool) ([]store.Login, error) {
	if write {
		if _, err := tx.Exec(ctx, `DELETE FROM logins l WHERE username = $1 AND NOT `+heldSQL, user); err != nil {
			return nil, err
		}
	}
	return queryLogins(ctx, tx, user)
}

// ownLogins lists the instances whose logins this Store holds.
func (s *pgStore) ownLogins() (map[int64]bool, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	l := &s.core.logins
	if err := l.acquire(ctx); err != nil {
		return nil, err
	}
	defer l.release()
	own := make(map[int64]bool, len(l.held))
	for inst := range l.held {
		own[inst] = true
	}
	return own, nil
}

// noLiveLoginsBut (in a write transaction) fails with store.ErrLoggedIn
// when a login other than own is alive.
func noLiveLoginsBut(ctx context.Context, tx pgx.Tx, own map[int64]bool) error {
	rows, err := tx.Query(ctx, `SELECT instance, username FROM logins l WHERE `+heldSQL)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var inst int64
		var user string
		if err := rows.Scan(&inst, &user); err != nil {
			return err
		}
		if !own[inst] {
			return fmt.Errorf("store: %q is logged in to the token: %w", user, store.ErrLoggedIn)
		}
	}
	return rows.Err()
}
