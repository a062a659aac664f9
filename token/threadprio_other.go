//go:build !linux

package token

// lowerThreadPriority does nothing where a thread's priority is not its
// own to set with setpriority (flusher).
func lowerThreadPriority() error { return nil }

// threadID is 0: no thread ID to show.
func threadID() int { return 0 }
