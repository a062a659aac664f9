//go:build !nopostgres

package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gohsm/token/store"
)

// fastFail is how long after a store call gave up on a silent database
// (the whole timeout spent) new calls fail at once with
// store.ErrUnavailable instead of each waiting the timeout again.
//
// Without it a Cryptoki call could take several timeouts: token holds a
// slot's lock across its store calls, so the sessions of a process queue
// behind a call that waits on a database that does not answer, and each
// then spends its own timeout (tests/hosts TestDatabaseOutage measured 2 s
// for a store_timeout of 1 s with two sessions; eight would have taken
// 8 s). With it, the calls queued behind one that timed out fail as soon
// as they get the lock, so no call takes much longer than the timeout.
// It costs a call made within fastFail of the database's return a failure
// it would not have had; refused connections fail fast anyway and do not
// trip it.
const fastFail = 100 * time.Millisecond

// justTimedOut returns an error wrapping store.ErrUnavailable when a call
// timed out less than fastFail (at most half of timeout) ago.
func (c *core) justTimedOut(timeout time.Duration) error {
	at := c.timedOut.Load()
	if at == 0 {
		return nil
	}
	ago := time.Since(time.Unix(0, at))
	if ago >= 0 && ago < min(fastFail, timeout/2) {
		return fmt.Errorf("store: %w: a call %v ago got no answer within the timeout", store.ErrUnavailable, ago.Round(time.Millisecond))
	}
	return nil
}

// noteTimeout records a call that failed with its context ctx past its
// deadline: the database did not answer in time.
func (c *core) noteTimeout(ctx context.Context, err error) {
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		c.timedOut.Store(time.Now().UnixNano())
	}
}
