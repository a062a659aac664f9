// Package mapfile grows the files that processes share through mmap
// (token/cluster's cluster.state, token/metrics' metrics file).
//
// A shared mapping of a sparse file faults (SIGBUS) when a write reaches a
// page the file system cannot back: on a full disk, a store to the mapping
// kills the process hosting the module instead of failing a call. Growing
// the file with every byte allocated moves that failure to open time, as
// an error the caller can log and live without.
package mapfile

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Grow makes f at least size bytes long with storage allocated for its
// first size bytes: fallocate(2) where the file system has it, else zeros
// written over the missing tail. It never shrinks f (other processes may
// map all of a longer file). A full file system is an error wrapping
// unix.ENOSPC.
func Grow(f *os.File, size int64) error {
	err := unix.Fallocate(int(f.Fd()), 0, 0, size)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.ENOSYS) {
		return fmt.Errorf("allocate %d bytes: %w", size, err)
	}
	// No fallocate here (some network and FUSE file systems): write the
	// zeros, which allocates as the write goes. A sparse hole inside a
	// full-length file stays possible on such a file system; none of the
	// files mapped this way are made sparse by us.
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	zeros := make([]byte, 64<<10)
	for off := fi.Size(); off < size; {
		n := min(int64(len(zeros)), size-off)
		if _, err := f.WriteAt(zeros[:n], off); err != nil {
			return fmt.Errorf("allocate %d bytes: %w", size, err)
		}
		off += n
	}
	return nil
}

// Flock is the flock(2) of a shared file, taken by one goroutine of the
// process at a time. A flock belongs to the open file, not to a thread:
// a second goroutine's LOCK_EX would convert the first one's lock instead
// of waiting for it, so a mutex makes them take turns.
type Flock struct {
	mu sync.Mutex
	f  *os.File
}

// NewFlock is the flock of f.
func NewFlock(f *os.File) *Flock { return &Flock{f: f} }

// Lock takes the flock (how: syscall.LOCK_SH or LOCK_EX), retrying an
// interrupted wait. On error nothing is held.
func (l *Flock) Lock(how int) error {
	l.mu.Lock()
	for {
		err := syscall.Flock(int(l.f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			if err != nil {
				l.mu.Unlock()
			}
			return err
		}
	}
}

// Unlock releases what Lock took.
func (l *Flock) Unlock() {
	syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	l.mu.Unlock()
}
