package store

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// walIndexHeaderSize covers both copies of the 48-byte WAL-index header at
// the start of the -shm file.
const walIndexHeaderSize = 96

// shmRef is this process's read-only descriptor of one token's -shm file,
// shared by every Store of the process on that token.
//
// Sharing matters: closing any descriptor of a file drops all POSIX locks
// the process holds on it, including those SQLite's connections hold on the
// -shm file. So each Store takes a reference before it opens any connection
// and drops it after closing all of them, and the descriptor is closed only
// when the last reference goes, when no Store of this process has a
// connection to the token.
type shmRef struct {
	key  string
	f    *os.File // opened by the first Store that asks; nil before
	mem  []byte   // the file's first page mapped read-only, nil if mapping failed
	refs int
}

var shmRefs struct {
	sync.Mutex
	m map[string]*shmRef
}

// acquireSHM takes a reference for the token whose database file is dbPath.
// Tokens are keyed by their directory with symlinks resolved, so two paths
// to one token share the reference.
func acquireSHM(dbPath string) (*shmRef, error) {
	key, err := canonical(dbPath)
	if err != nil {
		return nil, err
	}
	shmRefs.Lock()
	defer shmRefs.Unlock()
	if shmRefs.m == nil {
		shmRefs.m = map[string]*shmRef{}
	}
	r := shmRefs.m[key]
	if r == nil {
		r = &shmRef{key: key}
		shmRefs.m[key] = r
	}
	r.refs++
	return r, nil
}

// file returns the shared descriptor, opening it on first use. Call it only
// once SQLite has created the -shm file.
func (r *shmRef) file() (*os.File, error) {
	shmRefs.Lock()
	defer shmRefs.Unlock()
	if r.f == nil {
		f, err := os.Open(r.key + "-shm")
		if err != nil {
			return nil, fmt.Errorf("store: open wal index: %w", err)
		}
		r.f = f
		// Mapping the header turns the per-call generation check into a
		// memory compare (~20 ns) instead of a pread (~1 us). SQLite never
		// shrinks or deletes the -shm file while a connection of ours holds
		// it open (its DMS lock), so the page stays valid while mapped.
		if st, err := f.Stat(); err == nil && st.Size() >= walIndexHeaderSize {
			if mem, err := syscall.Mmap(int(f.Fd()), 0, walIndexHeaderSize, syscall.PROT_READ, syscall.MAP_SHARED); err == nil {
				r.mem = mem
			}
		}
	}
	return r.f, nil
}

// header copies the WAL-index header into h from the mapping when there is
// one; ok is false when the caller must read the file instead.
func (r *shmRef) header(h *[walIndexHeaderSize]byte) bool {
	if r.mem == nil {
		return false
	}
	copy(h[:], r.mem)
	return true
}

func (r *shmRef) release() error {
	shmRefs.Lock()
	defer shmRefs.Unlock()
	r.refs--
	if r.refs > 0 {
		return nil
	}
	delete(shmRefs.m, r.key)
	if r.mem != nil {
		syscall.Munmap(r.mem)
		r.mem = nil
	}
	if r.f == nil {
		return nil
	}
	if err := r.f.Close(); err != nil {
		return fmt.Errorf("store: close wal index: %w", err)
	}
	return nil
}

func canonical(dbPath string) (string, error) {
	dir, err := filepath.EvalSymlinks(filepath.Dir(dbPath))
	if err != nil {
		return "", fmt.Errorf("store: resolve token directory: %w", err)
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("store: resolve token directory: %w", err)
	}
	return filepath.Join(dir, filepath.Base(dbPath)), nil
}
