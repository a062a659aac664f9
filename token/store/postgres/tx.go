//go:build !nopostgres

package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgxpool"
)

// beginWith starts a transaction on a pooled connection and runs its
// first statement in the same round trip: BEGIN and the statement go as
// one pipeline (pgx.Batch), where pool.Begin would wait for BEGIN's answer
// first. A write transaction's first statement is the generation bump, so
// this saves one round trip of four on a small write. scan reads the
// statement's row.
func beginWith(ctx context.Context, pool *pgxpool.Pool, begin, sql string, args []any, scan ...any) (pgx.Tx, error) {
	return beginBatch(ctx, pool, begin, sql, args, scan, nil, nil)
}

// beginBatch is beginWith, with more statements queued after the first
// one in the same round trip (more; nil: none), whose results read reads.
func beginBatch(ctx context.Context, pool *pgxpool.Pool, begin, sql string, args []any, scan []any,
	more func(*pgx.Batch), read func(pgx.BatchResults) error) (pgx.Tx, error) {
	c, err := pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	b := &pgx.Batch{}
	b.Queue(begin)
	b.Queue(sql, args...)
	if more != nil {
		more(b)
	}
	br := c.SendBatch(ctx, b)
	_, err = br.Exec()
	if err == nil {
		err = br.QueryRow().Scan(scan...)
	}
	if err == nil && read != nil {
		err = read(br)
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	tx := &poolTx{c: c}
	if err != nil {
		tx.Rollback(ctx)
		return nil, err
	}
	return tx, nil
}

// commitWith runs b's statements and then COMMIT in one round trip (a
// pipeline; the statements' results are not read, only their errors).
// When one fails the server skips the rest, COMMIT included: the
// transaction is left open and failed, for Rollback to end. When the
// answer is lost (a timeout, a connection cut), the error is a
// lostCommit: COMMIT may have run. tx is a transaction beginWith started.
func commitWith(ctx context.Context, tx pgx.Tx, b *pgx.Batch) error {
	t := tx.(*poolTx)
	if t.closed {
		return pgx.ErrTxClosed
	}
	n := b.Len()
	b.Queue("commit")
	br := t.c.SendBatch(ctx, b)
	var err error
	for range n {
		if _, err = br.Exec(); err != nil {
			break
		}
	}
	var tag pgconn.CommandTag
	if err == nil {
		tag, err = br.Exec()
	}
	if cerr := br.Close(); err == nil && tag.String() != "COMMIT" {
		err = cerr // (COMMIT's answer read: committed, whatever came after)
	}
	if err != nil {
		return lost(err) // Rollback ends the transaction, if it is still open
	}
	t.closed = true
	t.c.Release()
	if tag.String() == "ROLLBACK" {
		return pgx.ErrTxCommitRollback
	}
	return nil
}

// lostCommit is the error of a commit whose COMMIT may have reached the
// server and whose answer was not read: a timeout, a connection cut. The
// server may have committed; the client cannot tell from that connection
// (lostCommitted asks another). tail is the last audit record the
// transaction appends, set by appendAudit, which lostCommitted looks for.
type lostCommit struct {
	err  error
	tail auditTail
}

func (e *lostCommit) Error() string { return e.err.Error() }
func (e *lostCommit) Unwrap() error { return e.err }

// lost marks err, the error of a round trip that sent COMMIT, as a
// lostCommit unless the server answered it (refused: a statement failed,
// and the server skipped the rest, COMMIT included) or pgx knows that
// nothing was sent.
func lost(err error) error {
	if refused(err) || pgconn.SafeToRetry(err) {
		return err
	}
	return &lostCommit{err: err}
}

// refused tells whether err is the server's answer that a statement
// failed: an error it sent, not a FATAL or PANIC one, which ends the
// connection (a shutdown) whatever the transaction's fate.
func refused(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Severity != "FATAL" && pe.Severity != "PANIC"
}

// sendCommit sends msgs, the wire messages of one simple query whose last
// statement is COMMIT, with the data of the COPY it runs (auditBatch), in
// one write, and reads the answers up to the query's ReadyForQuery: one
// round trip. (pgx's CopyFrom sends the query, the data and CopyDone in
// writes of their own, and takes a query of its own for COMMIT.) When a
// statement fails the server skips the rest of the query, COMMIT
// included, and the rest of the COPY data: the transaction is left open
// and failed, for Rollback to end. A write or read that fails leaves the
// connection in no known state: it is closed, and the pool drops it; the
// error is a lostCommit unless the answer read so far settles it (an
// error, or COMMIT's own). tx is a transaction beginWith started.
func sendCommit(ctx context.Context, tx pgx.Tx, msgs []byte) error {
	t := tx.(*poolTx)
	if t.closed {
		return pgx.ErrTxClosed
	}
	pc := t.c.Conn().PgConn()
	if err := pc.SyncConn(ctx); err != nil {
		return err
	}
	nc := pc.Conn()
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetWriteDeadline(dl)
	}
	_, err := nc.Write(msgs)
	_ = nc.SetWriteDeadline(time.Time{})
	if err != nil {
		_ = pc.Close(ctx)
		return &lostCommit{err: err} // part of it may have been sent
	}
	var tag string
	var failed error
	for {
		msg, err := pc.ReceiveMessage(ctx)
		if err != nil {
			_ = pc.Close(ctx)
			switch {
			case refused(failed):
				return failed // the server said: not committed
			case tag == "COMMIT":
				t.closed = true // committed: only what came after is lost
				t.c.Release()
				return nil
			}
			return &lostCommit{err: err}
		}
		switch m := msg.(type) {
		case *pgproto3.CommandComplete:
			tag = string(m.CommandTag)
		case *pgproto3.ErrorResponse:
			if failed == nil {
				failed = pgconn.ErrorResponseToPgError(m)
			}
		}
		if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
			break
		}
	}
	if failed != nil {
		return failed // Rollback ends the transaction, if it is still open
	}
	t.closed = true
	t.c.Release()
	if tag != "COMMIT" {
		return pgx.ErrTxCommitRollback
	}
	return nil
}

// poolTx is a pgx.Tx on a pooled connection whose BEGIN beginWith sent;
// Commit and Rollback end it and give the connection back. It has no
// nested transactions nor large objects.
type poolTx struct {
	c      *pgxpool.Conn
	closed bool
}

var errNested = errors.New("store: nested transactions are not supported")

func (t *poolTx) Begin(context.Context) (pgx.Tx, error) { return nil, errNested }

// Commit is pgx's: an error leaves a connection that is not idle closed,
// and a COMMIT answered ROLLBACK (the transaction had failed) is an error.
func (t *poolTx) Commit(ctx context.Context) error {
	if t.closed {
		return pgx.ErrTxClosed
	}
	t.closed = true
	defer t.c.Release()
	tag, err := t.c.Exec(ctx, "commit")
	if err != nil {
		if t.c.Conn().PgConn().TxStatus() != 'I' {
			_ = t.c.Conn().Close(ctx)
		}
		return err
	}
	if tag.String() == "ROLLBACK" {
		return pgx.ErrTxCommitRollback
	}
	return nil
}

// Rollback ends the transaction; a connection where it fails is closed
// (the pool then drops it rather than hand out one inside a transaction).
func (t *poolTx) Rollback(ctx context.Context) error {
	if t.closed {
		return pgx.ErrTxClosed
	}
	t.closed = true
	defer t.c.Release()
	if t.c.Conn().PgConn().TxStatus() == 'I' {
		return nil
	}
	_, err := t.c.Exec(ctx, "rollback")
	if err != nil {
		_ = t.c.Conn().Close(ctx)
	}
	return err
}

func (t *poolTx) CopyFrom(ctx context.Context, table pgx.Identifier, cols []string, src pgx.CopyFromSource) (int64, error) {
	return t.c.CopyFrom(ctx, table, cols, src)
}

func (t *poolTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return t.c.SendBatch(ctx, b)
}

func (t *poolTx) LargeObjects() pgx.LargeObjects { return pgx.LargeObjects{} }

func (t *poolTx) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	return t.c.Conn().Prepare(ctx, name, sql)
}

func (t *poolTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return t.c.Exec(ctx, sql, args...)
}

func (t *poolTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return t.c.Query(ctx, sql, args...)
}

func (t *poolTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return t.c.QueryRow(ctx, sql, args...)
}

func (t *poolTx) Conn() *pgx.Conn { return t.c.Conn() }
