package token

import "syscall"

// flushNice is the nice value of the audit flusher's thread (flusher):
// against a caller's thread at 0, the kernel's scheduler weights are
// 1024 to 110, so a caller sharing a core with a flush keeps about nine
// tenths of it.
const flushNice = 10

// lowerThreadPriority sets the calling OS thread's nice value to
// flushNice. On Linux, setpriority on a thread ID changes that thread
// alone (setpriority(2), "BUGS"). The caller holds its thread
// (runtime.LockOSThread).
func lowerThreadPriority() error {
	return syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), flushNice)
}

// threadID is the calling OS thread's ID.
func threadID() int { return syscall.Gettid() }
