package store

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
)

// waitPending waits until n writes wait for a leader.
func waitPending(t *testing.T, s *sqliteStore, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		s.gmu.Lock()
		k := len(s.pending)
		s.gmu.Unlock()
		if k >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d writes pending, want %d", k, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// auditLog is the default stream's records as strings, checked gap-free.
func auditLog(t *testing.T, st Store) []string {
	t.Helper()
	recs, err := st.AuditRecords(DefaultStream, 0, 0)
	require.NoError(t, err)
	var out []string
	for i, r := range recs {
		if i > 0 {
			require.Equal(t, recs[i-1].Seq+1, r.Seq, "gap-free")
		}
		out = append(out, string(r.Record))
	}
	return out
}

// TestGroupCommitOneTransaction: object writes that wait while another
// write holds the write mutex are written together, in one commit, in the
// order they arrived, each with its own audit record right after it; all
// of them are there after a reopen, and each caller got its own objects'
// IDs. (Before group commit: one commit per write, 8.)
func TestGroupCommitOneTransaction(t *testing.T) {
	dir := t.TempDir()
	st := openTest(t, dir)
	require.NoError(t, st.InitToken(TokenRecord{Label: "t"}, user("admin", RoleCO)))
	s := st.(*sqliteStore)
	const n = 8
	s.writeMu.Lock() // a write in progress: the ones below wait for it
	own0 := s.own.Load()
	ids := make([]int64, n)
	var wg sync.WaitGroup
	for i := range n {
		if i > 0 {
			waitPending(t, s, i) // arrival order is i's order
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, _, err := st.Audited(AuditEvent{Record: []byte("rec-" + strconv.Itoa(i))}).
				CreateObjects([]ObjectRecord{obj(fmt.Sprint("g", i), "", false, "x")})
			if assert.NoError(t, err) {
				ids[i] = out[0].ID
			}
		}()
	}
	waitPending(t, s, n)
	s.writeMu.Unlock()
	wg.Wait()
	assert.Equal(t, uint64(1), s.own.Load()-own0, "commits for %d writes", n)
	for i := 1; i < n; i++ {
		assert.Equal(t, ids[i-1]+1, ids[i], "object IDs in arrival order")
	}
	require.NoError(t, st.Close())

	re := openTest(t, dir)
	for i := range n {
		o, err := re.Object(ids[i])
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprint("g", i), o.UniqueID)
	}
	log := auditLog(t, re)
	require.Len(t, log, n)
	for i := range n {
		assert.Equal(t, "rec-"+strconv.Itoa(i), log[i])
	}
}

// TestGroupCommitOwnFailure: a write of a batch that fails for its own
// reason (its unique ID is stored already) fails alone, with its error and
// without its audit record; the others are committed.
func TestGroupCommitOwnFailure(t *testing.T) {
	dir := t.TempDir()
	st := openTest(t, dir)
	require.NoError(t, st.InitToken(TokenRecord{Label: "t"}, user("admin", RoleCO)))
	_, err := st.CreateObject(obj("taken", "", false, "x"))
	require.NoError(t, err)
	s := st.(*sqliteStore)
	uids := []string{"a", "taken", "b"}
	errs := make([]error, len(uids))
	s.writeMu.Lock()
	own0 := s.own.Load()
	var wg sync.WaitGroup
	for i, u := range uids {
		if i > 0 {
			waitPending(t, s, i)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, errs[i] = st.Audited(AuditEvent{Record: []byte("rec-" + u)}).CreateObjects([]ObjectRecord{obj(u, "", false, u)})
		}()
	}
	waitPending(t, s, len(uids))
	s.writeMu.Unlock()
	wg.Wait()
	assert.NoError(t, errs[0])
	assert.True(t, errors.Is(errs[1], ErrExists), "%v", errs[1])
	assert.NoError(t, errs[2])
	assert.Equal(t, uint64(1), s.own.Load()-own0)
	for _, u := range []string{"a", "b"} {
		ids, err := st.Find(Query{Match: map[ck.AttributeType][]byte{ck.CKA_LABEL: []byte(u)}})
		require.NoError(t, err)
		assert.Len(t, ids, 1, u)
	}
	assert.Equal(t, []string{"rec-a", "rec-b"}, auditLog(t, st))
}

// TestGroupCommitJoinsOpenTransaction: a write arriving while a batch's
// transaction is open joins it (one commit), unless AuditLater queued
// records meanwhile: then it waits for the next transaction, which writes
// those records first, so a record queued before a write is never put
// after it.
func TestGroupCommitJoinsOpenTransaction(t *testing.T) {
	for _, queued := range []bool{false, true} {
		t.Run(fmt.Sprint("queued=", queued), func(t *testing.T) {
			st := openTest(t, t.TempDir())
			require.NoError(t, st.InitToken(TokenRecord{Label: "t"}, user("admin", RoleCO)))
			s := st.Audited(AuditEvent{Record: []byte("first")}).(*sqliteStore)
			inTx, release := make(chan struct{}), make(chan struct{})
			own0 := s.own.Load()
			done := make(chan error)
			go func() {
				_, err := s.groupCommit(func(tx *txn) error {
					close(inTx)
					<-release
					return nil
				})
				done <- err
			}()
			<-inTx
			if queued {
				st.AuditLater(AuditEvent{Record: []byte("session key")})
			}
			go func() {
				_, _, err := st.Audited(AuditEvent{Record: []byte("second")}).CreateObjects([]ObjectRecord{obj("k", "", false, "x")})
				done <- err
			}()
			waitPending(t, s, 1)
			close(release)
			require.NoError(t, <-done)
			require.NoError(t, <-done)
			if queued {
				assert.Equal(t, uint64(2), s.own.Load()-own0)
				assert.Equal(t, []string{"first", "session key", "second"}, auditLog(t, st))
			} else {
				assert.Equal(t, uint64(1), s.own.Load()-own0)
				assert.Equal(t, []string{"first", "second"}, auditLog(t, st))
			}
		})
	}
}

// TestGroupCommitPanic: a write that panics in the leader's goroutine
// panics in its own caller's, and the batch's other writes commit.
func TestGroupCommitPanic(t *testing.T) {
	st := openTest(t, t.TempDir())
	require.NoError(t, st.InitToken(TokenRecord{Label: "t"}, user("admin", RoleCO)))
	s := st.(*sqliteStore)
	s.writeMu.Lock()
	res := make(chan any, 2)
	go func() {
		_, err := s.groupCommit(func(tx *txn) error { return createObjectErr(tx, "ok1") })
		res <- err
	}()
	waitPending(t, s, 1)
	go func() {
		defer func() { res <- recover() }()
		s.groupCommit(func(tx *txn) error { panic("boom") })
	}()
	waitPending(t, s, 2)
	s.writeMu.Unlock()
	got := []any{<-res, <-res}
	assert.Contains(t, got, any(nil), "the other write committed")
	assert.Contains(t, got, any("boom"), "the panic reached its own caller")
	ids, err := st.Find(Query{Match: map[ck.AttributeType][]byte{ck.CKA_LABEL: []byte("ok1")}})
	require.NoError(t, err)
	assert.Len(t, ids, 1)
}

func createObjectErr(tx *txn, uid string) error {
	_, err := createObjectTx(tx, obj(uid, "", false, uid))
	return err
}

// TestGroupCommitLeaderPanic: a panic in the leader's own batch code (here
// the test hook that runs after a COMMIT) does not leave the writes it was
// writing for, or those still waiting, asleep: every caller returns, the
// leader's with the panic, the others with their commit's result or an
// error, and the store takes writes afterwards.
func TestGroupCommitLeaderPanic(t *testing.T) {
	st := openTest(t, t.TempDir())
	require.NoError(t, st.InitToken(TokenRecord{Label: "t"}, user("admin", RoleCO)))
	s := st.(*sqliteStore)
	var once sync.Once
	s.afterCommit = func() { once.Do(func() { panic("leader boom") }) }
	s.writeMu.Lock()
	const n = 4
	res := make(chan any, n)
	for i := 0; i < n; i++ {
		go func() {
			defer func() {
				if p := recover(); p != nil {
					res <- p
				}
			}()
			_, err := s.groupCommit(func(tx *txn) error { return createObjectErr(tx, "w"+strconv.Itoa(i)) })
			res <- err
		}()
		waitPending(t, s, i+1)
	}
	s.writeMu.Unlock()
	var got []any
	for i := 0; i < n; i++ {
		select {
		case r := <-res:
			got = append(got, r)
		case <-time.After(20 * time.Second):
			t.Fatalf("%d of %d writes returned after the leader panicked: %v", i, n, got)
		}
	}
	assert.Contains(t, got, any("leader boom"), "the leader's caller got the panic")
	s.afterCommit = nil
	_, err := s.groupCommit(func(tx *txn) error { return createObjectErr(tx, "after") })
	require.NoError(t, err, "the store takes writes after the panic")
}
