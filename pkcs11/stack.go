package pkcs11

// The stack of the goroutine a host thread's calls run on starts at a few
// KiB and doubles each time a call goes deeper than it. C_Initialize's
// first SQLite connection (open, pragmas, parsing the token's schema in
// modernc.org/sqlite's translated C) goes deeper than 64 KiB, so the stack
// used to be copied several times there, and each copy walks every
// frame on it through the function tables in .gopclntab: those reads
// faulted in about 0.5-0.8 MiB of the library's file (64 KiB at a time)
// that nothing else in a one-shot process reads (docs/bench.md, "One-shot
// memory and -L (2026-12-07)"). presizeStack grows it once, while the
// stack is shallow, to the size those calls need; the frame's pages are
// the ones SQLite then uses. The goroutine keeps the stack for the
// thread's later calls (until a collection finds it mostly unused and
// shrinks it).

// presizeBytes is presizeStack's frame: with what is already on the stack
// and the runtime's guard, the stack grows to 128 KiB in one step.
const presizeBytes = 64 << 10

var (
	presizeIndex int  // read at run time, so that the frame is kept
	presizeSink  byte // written, for the same reason
)

//go:noinline
func presizeStack() {
	var frame [presizeBytes]byte
	frame[presizeIndex] = 1
	presizeSink = frame[len(frame)-1-presizeIndex]
}
