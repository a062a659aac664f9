package token

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token/audit"
)

// threadNice is the nice value of thread tid of this process
// (/proc/self/task/<tid>/stat, field 19), or false when the thread is gone.
func threadNice(t *testing.T, tid int64) (int, bool) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/task/" + strconv.FormatInt(tid, 10) + "/stat")
	if os.IsNotExist(err) {
		return 0, false
	}
	require.NoError(t, err)
	// The command name (field 2) is in parentheses and may hold spaces:
	// the fields after it start past the last ')'.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	n, err := strconv.Atoi(f[19-3])
	require.NoError(t, err)
	return n, true
}

// TestAuditFlusherThread: the queued records of session keys are written
// by a thread of the slot's own whose nice value is flushNice, which ends
// with the module (docs/bench.md, "ML-KEM-768: the tail").
func TestAuditFlusherThread(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	s, err := m.Slot(3)
	require.NoError(t, err)
	// Checked before the key pair: a session pair's records are queued
	// too, and would start the flusher.
	require.Zero(t, s.flushTID.Load(), "no flusher before a record is queued")
	pub, _, err := mlkemPair(t, m, h, ck.CKP_ML_KEM_768, nil, nil)
	require.NoError(t, err)
	sk := mlkemSessionKey(t, m, h, pub)

	var tid int64
	deadline := time.Now().Add(5 * time.Second)
	for tid = s.flushTID.Load(); tid == 0; tid = s.flushTID.Load() {
		require.True(t, time.Now().Before(deadline), "no flusher thread within 5 s")
		time.Sleep(time.Millisecond)
	}
	// The priority is set right after the thread ID is published.
	for {
		n, ok := threadNice(t, tid)
		require.True(t, ok, "the flusher's thread is there")
		if n == flushNice {
			break
		}
		require.True(t, time.Now().Before(deadline), "the flusher's thread has nice %d, want %d", n, flushNice)
		time.Sleep(time.Millisecond)
	}
	// It writes the record, as the timer did.
	for keyEventOf(rawLog(t, m), audit.CN_DERIVE_KEY, sk) < 0 {
		require.True(t, time.Now().Before(deadline), "the session key's record was not written within 5 s")
		time.Sleep(5 * time.Millisecond)
	}

	require.NoError(t, m.Close())
	require.Zero(t, s.flushTID.Load(), "the flusher ended with the module")
	if tid == int64(os.Getpid()) {
		// The goroutine ran on the process's main thread, which the
		// runtime parks for good instead of ending it (runtime.LockOSThread:
		// "the thread will be terminated" holds for every other thread).
		t.Logf("the flusher ran on the main thread %d, which the runtime parks", tid)
		return
	}
	for {
		if _, ok := threadNice(t, tid); !ok {
			break
		}
		require.True(t, time.Now().Before(deadline), "the flusher's thread outlived it")
		time.Sleep(time.Millisecond)
	}
}
