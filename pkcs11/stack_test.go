package pkcs11

import (
	"runtime"
	"testing"
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

// TestPresizeStack: after presizeStack, calls 100 KiB deep (where
// C_Initialize's SQLite calls go) run without growing the goroutine's
// stack again. The stack memory in use is the measure: a growth allocates
// a new stack of twice the size.
func TestPresizeStack(t *testing.T) {
	stackInuse := func() uint64 {
		var s runtime.MemStats
		runtime.ReadMemStats(&s)
		return s.StackInuse
	}
	for range 3 { // another goroutine's stack may move the figure once
		grew := make(chan uint64)
		go func() { // a fresh goroutine: a small stack, as a new host thread's
			presizeStack()
			before := stackInuse()
			useStack(100)
			grew <- stackInuse() - before
		}()
		if <-grew == 0 {
			return
		}
	}
	t.Fatal("a call 100 KiB deep grew the stack after presizeStack")
}
