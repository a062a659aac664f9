package token

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token/attrs"
	"gohsm/token/audit"
	"gohsm/token/store"
)

// Session objects' events are queued (auditLaterLocked): these tests read
// the store as it is (rawLog), without the flush Slot.Store makes, and
// hold the timer off (holdAuditFlush) to see what else writes the queue.

// rawLog is slot 3's verified audit log as stored, queue not flushed.
func rawLog(t *testing.T, m *Module) []audit.Record {
	t.Helper()
	s, err := m.Slot(3)
	require.NoError(t, err)
	return verifiedLog(t, s.st)
}

// verifiedLog is st's default stream, its chain verified and gap-free
// from 0.
func verifiedLog(t *testing.T, st store.Store) []audit.Record {
	t.Helper()
	c, err := audit.Load(st, store.DefaultStream)
	require.NoError(t, err)
	_, err = audit.Verify(c)
	require.NoError(t, err)
	for i, r := range c.Records {
		require.Equal(t, uint64(i), r.Seq, "gap-free from 0")
	}
	return c.Records
}

// holdAuditFlush keeps the timer from flushing during the test.
func holdAuditFlush(t *testing.T) {
	old := auditFlushDelay
	auditFlushDelay = time.Hour
	t.Cleanup(func() { auditFlushDelay = old })
}

// keyEventOf is the index in recs of op's successful record of key k (-1: none).
func keyEventOf(recs []audit.Record, op audit.Opcode, k ck.ULong) int {
	for i, r := range recs {
		if r.Event.Opcode == op && r.Event.Key == uint64(k) && r.Event.Code == audit.RespSuccess {
			return i
		}
	}
	return -1
}

// mlkemSessionKey makes a session key by C_EncapsulateKey with a new
// ML-KEM-768 token key pair's public key.
func mlkemSessionKey(t *testing.T, m *Module, h, pub ck.ULong) ck.ULong {
	t.Helper()
	ct := make([]byte, 2048)
	_, k, err := m.EncapsulateKey(h, Mechanism{Type: ck.CKM_ML_KEM}, pub, attrs.ListOf(attrs.Template{ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_AES)), ck.CKA_ENCRYPT: attrs.Bool(true)}), Out{Buf: ct})
	require.NoError(t, err)
	return k
}

func tokenAttr() attrs.Template { return attrs.Template{ck.CKA_TOKEN: attrs.Bool(true)} }

// TestAuditQueueOrder: a session key's creation is written by the next
// write of the token, before that write's own event (a token key made
// after it), then its destruction likewise; nothing is written before.
func TestAuditQueueOrder(t *testing.T) {
	holdAuditFlush(t)
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	pub, _, err := mlkemPair(t, m, h, ck.CKP_ML_KEM_768, attrs.Template{ck.CKA_TOKEN: attrs.Bool(true)}, attrs.Template{ck.CKA_TOKEN: attrs.Bool(true)})
	require.NoError(t, err)
	n := len(rawLog(t, m))
	sk := mlkemSessionKey(t, m, h, pub)
	assert.Len(t, rawLog(t, m), n, "queued, not written")
	tk, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("after", true))
	require.NoError(t, err)
	recs := rawLog(t, m)
	require.Len(t, recs, n+2)
	i, j := keyEventOf(recs, audit.CN_DERIVE_KEY, sk), keyEventOf(recs, audit.CN_GENERATE_KEY, tk)
	require.True(t, i >= 0 && j >= 0, "events %v", recs[n:])
	assert.Less(t, recs[i].Seq, recs[j].Seq, "the session key's record first")

	require.NoError(t, m.DestroyObject(h, sk))
	assert.Len(t, rawLog(t, m), n+2)
	require.NoError(t, m.DestroyObject(h, tk))
	recs = rawLog(t, m)
	require.Len(t, recs, n+4)
	assert.Equal(t, audit.CN_DESTROY_OBJECT, recs[n+2].Event.Opcode)
	assert.Equal(t, uint64(sk), recs[n+2].Event.Key)
	assert.Equal(t, audit.CN_TOMBSTONE_OBJECT, recs[n+3].Event.Opcode)
}

// TestAuditQueueFlushedOnEnd: C_CloseSession, C_CloseAllSessions,
// C_Logout and C_Finalize write the queued records before they return,
// without the timer.
func TestAuditQueueFlushedOnEnd(t *testing.T) {
	holdAuditFlush(t)
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	keep := openRW(t, m) // so that closing h does not log out (a write)
	pub, _, err := mlkemPair(t, m, h, ck.CKP_ML_KEM_768, tokenAttr(), tokenAttr())
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		end  func() ck.ULong // ends something, returns the next session to use
	}{
		{"C_CloseSession", func() ck.ULong { require.NoError(t, m.CloseSession(h)); return keep }},
		{"C_Logout", func() ck.ULong { require.NoError(t, m.Logout(keep)); return keep }},
		{"C_CloseAllSessions", func() ck.ULong { require.NoError(t, m.CloseAllSessions(3)); return 0 }},
	} {
		n := len(rawLog(t, m))
		sk := mlkemSessionKey(t, m, h, pub)
		require.Len(t, rawLog(t, m), n, "%s: queued", tc.name)
		h = tc.end()
		recs := rawLog(t, m)
		assert.GreaterOrEqual(t, keyEventOf(recs, audit.CN_DERIVE_KEY, sk), n, "%s: written before it returns", tc.name)
		if tc.name == "C_Logout" {
			require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
		}
	}

	h = openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	n := len(rawLog(t, m))
	sk := mlkemSessionKey(t, m, h, pub)
	require.Len(t, rawLog(t, m), n)
	s, err := m.Slot(3)
	require.NoError(t, err)
	require.NoError(t, m.Close())
	st, err := openStore(s.cfg, m.storeOpts) // SQLite or PostgreSQL, as the slot's
	require.NoError(t, err)
	defer st.Close()
	assert.GreaterOrEqual(t, keyEventOf(verifiedLog(t, st), audit.CN_DERIVE_KEY, sk), n, "C_Finalize wrote it")
}

// TestAuditQueueTimer: with no further call, the timer writes a queued
// record (polled for up to 5 s: no timing is asserted).
func TestAuditQueueTimer(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	pub, _, err := mlkemPair(t, m, h, ck.CKP_ML_KEM_768, nil, nil)
	require.NoError(t, err)
	sk := mlkemSessionKey(t, m, h, pub)
	deadline := time.Now().Add(5 * time.Second)
	for keyEventOf(rawLog(t, m), audit.CN_DERIVE_KEY, sk) < 0 {
		require.True(t, time.Now().Before(deadline), "the session key's record was not written within 5 s")
		time.Sleep(5 * time.Millisecond)
	}
}

// TestAuditQueueFailedBatch: a batch that cannot be written (one of its
// events fails in the transaction) is written not at all, and logged at
// error; it is not written again later.
func TestAuditQueueFailedBatch(t *testing.T) {
	holdAuditFlush(t)
	dir := t.TempDir()
	logf := filepath.Join(t.TempDir(), "log")
	m, err := Open(testConfigLines(t, dir, "log_file = "+logf, ""))
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	require.NoError(t, m.CloseSession(initTestToken(t, m)))
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	pub, _, err := mlkemPair(t, m, h, ck.CKP_ML_KEM_768, tokenAttr(), tokenAttr())
	require.NoError(t, err)
	n := len(rawLog(t, m))
	s, err := m.Slot(3)
	require.NoError(t, err)
	sk := mlkemSessionKey(t, m, h, pub)
	s.st.AuditLater(store.AuditEvent{Fill: func([]int64) ([]byte, error) { return nil, fmt.Errorf("a record that cannot be made") }})
	s.flushAudit()
	b, err := os.ReadFile(logf)
	require.NoError(t, err)
	assert.Contains(t, string(b), "queued events not recorded")
	assert.Contains(t, string(b), "2 queued events")
	assert.Contains(t, string(b), "a record that cannot be made")
	_, err = m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("after", true))
	require.NoError(t, err)
	recs := rawLog(t, m)
	assert.Len(t, recs, n+1, "only the token key's record: the batch is gone whole")
	assert.Equal(t, -1, keyEventOf(recs, audit.CN_DERIVE_KEY, sk))
}

// TestAuditLaterOneAllocation: queueing a session key's record on the
// caller's path takes one allocation, the closure that encodes it later
// with the event in it (the store's AuditLater takes one event, not a
// variadic slice that the interface call moved to the heap; the event is
// not moved to the heap apart from the closure): 3 before.
func TestAuditLaterOneAllocation(t *testing.T) {
	holdAuditFlush(t)
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	s, err := m.Slot(3)
	require.NoError(t, err)
	se, err := m.session(h)
	require.NoError(t, err)
	s.mu.Lock()
	defer s.mu.Unlock()
	allocs := testing.AllocsPerRun(200, func() {
		s.auditLaterLocked(-1, se, keyEvent(audit.CN_DERIVE_KEY, 7, 0, audit.RespSuccess))
	})
	require.LessOrEqual(t, allocs, 1.0, "allocations per queued record")
}

// TestStoreLogsToModuleLog: the stores get the module's logger, so what a
// store logs on its own (the PostgreSQL store: queued events whose
// commit's outcome it could not learn) goes to log_file, not to stderr.
func TestStoreLogsToModuleLog(t *testing.T) {
	dir := t.TempDir()
	logf := filepath.Join(t.TempDir(), "log")
	m, err := Open(testConfigLines(t, dir, "log_file = "+logf, ""))
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	require.NotNil(t, m.storeOpts.Log)
	assert.Same(t, m.Logger(), m.storeOpts.Log)
}
