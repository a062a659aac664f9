package pkcs11

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

//go:noinline
func useStack(depth int) byte {
	var frame [1 << 10]byte
	frame[depth%len(frame)] = byte(depth)
	if depth == 0 {
		return frame[0]
	}
	return useStack(depth-1) + frame[(depth*7)%len(frame)]
}

// TestPresizeStack: after presizeStack, calls 50 KiB deep (C_Initialize's
// SQLite calls go deeper still) run without growing the goroutine's
// stack again. The stack memory in use is the measure: a growth allocates
// a new stack of twice the size. No collection may run in between (it
// would shrink the stack the call has not used yet), and each goroutine
// is gone, its stack freed, before the next measures.
func TestPresizeStack(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	stackInuse := func() int64 {
		var s runtime.MemStats
		runtime.ReadMemStats(&s)
		return int64(s.StackInuse)
	}
	base := runtime.NumGoroutine()
	var grew int64
	for range 5 { // another goroutine's stack (the last test's runner) may move the figure
		out := make(chan int64)
		go func() { // a fresh goroutine: a small stack, as a new host thread's
			presizeStack()
			before := stackInuse()
			useStack(50)
			out <- stackInuse() - before
		}()
		grew = <-out
		for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > base && time.Now().Before(deadline); {
			runtime.Gosched()
		}
		if grew == 0 {
			return
		}
	}
	t.Fatalf("a call 50 KiB deep changed the stack memory in use by %d bytes after presizeStack", grew)
}
