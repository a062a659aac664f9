package pkcs11

import (
	"crypto/rand"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ossl"
	"gohsm/internal/testenv"
)

// TestLibcryptoCallsMarkTheThread: a call into libcrypto (internal/ossl)
// marks the calling thread in the module's yield table through the weak
// reference in ossl.go, so that the built module links the two: without
// the mark a thread signing with RSA on a busy machine would never yield
// (yield.h). The mark is per thread and lasts until the thread's yield
// interval ends.
func TestLibcryptoCallsMarkTheThread(t *testing.T) {
	if os.Getenv("GOHSM_CRYPTO") == "go" {
		t.Skip("GOHSM_CRYPTO=go: no libcrypto calls")
	}
	if err := ossl.Available(); err != nil {
		testenv.Missing(t, "libcrypto: %v", err) // a failure under CI (tests/deps.sh installs it)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	d := make([]byte, 32)
	d[31] = 7
	k, err := ossl.NewP256Key(d)
	require.NoError(t, err)
	digest := make([]byte, 32)
	_, err = rand.Read(digest)
	require.NoError(t, err)

	// Marks are per thread. Goroutines are no way to get a thread that
	// never called libcrypto (an idle runtime thread may have, e.g. at
	// package init), and slots are hashed from thread ids, so the test
	// clears every mark and asks new C threads with slots of their own.
	clearLibcryptoMarks()
	require.False(t, threadCallsLibcrypto(), "the mark survived clearing")
	require.Equal(t, 0, otherThreadCallsLibcrypto(), "a new thread is marked before any call (-1: no thread with a slot of its own)")

	out := make([]byte, 64)
	require.NoError(t, k.Sign(out, digest))
	require.True(t, threadCallsLibcrypto(), "signing in libcrypto did not mark the thread")
	require.Equal(t, 0, otherThreadCallsLibcrypto(), "signing on one thread marked another (-1: no thread with a slot of its own)")

	// The mark is cleared when the thread's interval ends: ticks until
	// then (a module call each, without a yield: this goroutine is not a
	// host thread's call, so the test calls the tick's C side only).
	deadline := time.Now().Add(5 * time.Second)
	for threadCallsLibcrypto() && time.Now().Before(deadline) {
		tickForTest()
		time.Sleep(time.Millisecond)
	}
	require.False(t, threadCallsLibcrypto(), "the interval's end did not clear the mark")
}
