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

	// A thread that made no call into libcrypto carries no mark.
	other := make(chan bool)
	go func() {
		runtime.LockOSThread() // a thread of its own, released when it exits
		other <- threadCallsLibcrypto()
	}()
	require.False(t, <-other, "a fresh thread is marked")

	out := make([]byte, 64)
	require.NoError(t, k.Sign(out, digest))
	require.True(t, threadCallsLibcrypto(), "signing in libcrypto did not mark the thread")

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
