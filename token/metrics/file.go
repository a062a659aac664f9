// Package metrics is the operation counters that library processes publish
// for a slot (issue 18, decision D5; docs/metrics.md): a file "metrics" in
// the slot's directory, mapped MAP_SHARED by every process of the slot,
// each process adding to a region of its own with atomics, and a reader
// (the console) that sums the regions and turns two samples into rates
// and latency percentiles.
//
// Nothing here is on a call's path unless the slot's metrics are on:
// Begin is one atomic load when they are off.
package metrics

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"gohsm/internal/mapfile"
	"gohsm/token/cluster"
)

// The file's layout. Fixed, little endian (read in place: the platforms
// we build for are all little endian), every word naturally aligned and
// read and written with atomics:
//
//	offset  size        contents
//	0       64          header: magic "GOHSMMT\x00", version, regions,
//	                    classes, buckets, file size
//	64      64          watch-until: Unix ms until which a console
//	                    watches (0: nobody; a process that finds it
//	                    expired sets it back to 0)
//	128     128*20032   regions, one per process: a line {owner pid,
//	                    start time, boot hash, pid namespace hash,
//	                    claims}, then per class (cluster.Class, "none"
//	                    included so that a class is its index) 26 lines
//	                    {calls, failed, throttled, latency sum ns,
//	                    200 latency buckets}
//	2564224             end
//
// A file too short, or of another magic, version or shape is rebuilt in
// place (zeroed) under the file's flock, with a log line; it is grown
// when short and never shrunk (a process of another build may map all of
// it). Counters only grow: a region reclaimed from a dead process keeps
// its sums and the new owner adds to them, so that the sum over regions
// of any counter never goes down (except when the file is rebuilt, which
// a reader sees as a restart).
const (
	fileName = "metrics"
	magic    = 0x00544d4d53484f47 // "GOHSMMT\x00"
	version  = 1
	line     = 64

	// Regions is how many processes can publish at once; the process
	// after that publishes nothing (logged once) until one ends.
	Regions = 128
	// NumBuckets is the latency histogram's size (bucketOf).
	NumBuckets = 200

	numClasses = int(cluster.NumClasses)

	offMagic   = 0
	offVersion = 8
	offRegions = 12
	offClasses = 16
	offBuckets = 20
	offSize    = 24

	offWatch = 64

	offRegion0  = 128
	ownPID      = 0
	ownStarted  = 8
	ownBoot     = 16
	ownNS       = 24
	ownClaims   = 32
	clsCalls    = 0
	clsFailed   = 8
	clsThrottle = 16
	clsSum      = 24
	clsBuckets  = 32
	classStride = (clsBuckets + 8*NumBuckets + line - 1) / line * line // 1664
	regionSize  = line + numClasses*classStride                        // 20032

	fileSize int64 = int64(offRegion0 + Regions*regionSize)
)

func regionOff(r int) int                 { return offRegion0 + r*regionSize }
func classOff(r int, c cluster.Class) int { return regionOff(r) + line + int(c)*classStride }

// mapping is one process's mapping of one metrics file, kept for the life
// of the process (as token/cluster's state: a call still running after a
// C_Finalize must not fault), with the region this process claimed in it.
type mapping struct {
	path   string
	f      *os.File
	mem    []byte
	fl     *mapfile.Flock // this process's turns at f's flock
	region int            // claimed region, -1 none
	logged bool
}

func (m *mapping) u64(off int) *uint64 { return (*uint64)(unsafe.Pointer(&m.mem[off])) }
func (m *mapping) i64(off int) *int64  { return (*int64)(unsafe.Pointer(&m.mem[off])) }

func (m *mapping) lock() error { return m.fl.Lock(syscall.LOCK_EX) }
func (m *mapping) unlock()     { m.fl.Unlock() }

var (
	mappingsMu sync.Mutex
	mappings   = map[[2]uint64]*mapping{}
)

// openFile maps dir/metrics, creating it with perm (0: the directory's
// mode without its execute bits), checking it and rebuilding it when it
// is not ours. The mapping is the process's one for that file.
func openFile(dir string, perm uint32, log func(string, ...any)) (*mapping, error) {
	path := filepath.Join(dir, fileName)
	if perm == 0 {
		perm = 0o600
		if fi, err := os.Stat(dir); err == nil {
			perm = uint32(fi.Mode().Perm()) &^ 0o111
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, os.FileMode(perm)&os.ModePerm)
	if err != nil {
		return nil, fmt.Errorf("metrics: open: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("metrics: open: %w", err)
	}
	var key [2]uint64
	sys, keyed := fi.Sys().(*syscall.Stat_t)
	if keyed {
		key = [2]uint64{uint64(sys.Dev), uint64(sys.Ino)}
	}
	mappingsMu.Lock()
	defer mappingsMu.Unlock()
	if m := mappings[key]; keyed && m != nil {
		f.Close()
		// Checked again: another process may have found it damaged
		// and rebuilt it since, which is fine, or it may be damaged now.
		if err := m.check(fi.Size(), log); err != nil {
			return nil, err
		}
		return m, nil
	}
	m := &mapping{path: path, f: f, fl: mapfile.NewFlock(f), region: -1}
	if err := m.lock(); err != nil {
		f.Close()
		return nil, fmt.Errorf("metrics: lock: %w", err)
	}
	size := fi.Size()
	// Every byte allocated, not a sparse truncate: a write through the
	// mapping to a page a full disk cannot back would kill the process
	// (SIGBUS); a full disk is an open error instead (no metrics).
	if err := mapfile.Grow(f, fileSize); err != nil {
		m.unlock()
		f.Close()
		return nil, fmt.Errorf("metrics: size: %w", err)
	}
	if size == 0 {
		f.Chmod(os.FileMode(perm) & os.ModePerm)
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, int(fileSize), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		m.unlock()
		f.Close()
		return nil, fmt.Errorf("metrics: map: %w", err)
	}
	m.mem = mem
	m.checkLocked(size, log)
	m.unlock()
	if keyed {
		mappings[key] = m
	}
	return m, nil
}

// check rebuilds the file when its header is not ours (another process
// may have damaged it since this process mapped it).
func (m *mapping) check(size int64, log func(string, ...any)) error {
	if m.headerProblem(size) == "" {
		return nil
	}
	if err := m.lock(); err != nil {
		return fmt.Errorf("metrics: lock: %w", err)
	}
	defer m.unlock()
	if err := mapfile.Grow(m.f, fileSize); err != nil {
		return fmt.Errorf("metrics: size: %w", err)
	}
	m.checkLocked(size, log)
	return nil
}

func (m *mapping) headerProblem(size int64) string {
	h := m.mem
	switch {
	case size == 0:
		return "new"
	case size < fileSize:
		return fmt.Sprintf("%d bytes, want %d", size, fileSize)
	case binary.LittleEndian.Uint64(h[offMagic:]) != magic:
		return "bad magic"
	case binary.LittleEndian.Uint32(h[offVersion:]) != version:
		return fmt.Sprintf("version %d, want %d", binary.LittleEndian.Uint32(h[offVersion:]), version)
	case binary.LittleEndian.Uint32(h[offRegions:]) != Regions,
		binary.LittleEndian.Uint32(h[offClasses:]) != uint32(numClasses),
		binary.LittleEndian.Uint32(h[offBuckets:]) != NumBuckets:
		return "made for another shape"
	case binary.LittleEndian.Uint64(h[offSize:]) != uint64(fileSize):
		return "bad size word"
	}
	return ""
}

// checkLocked rebuilds a file whose header is not ours (the flock held):
// zeroed, header written last.
func (m *mapping) checkLocked(size int64, log func(string, ...any)) {
	why := m.headerProblem(size)
	if why == "" {
		return
	}
	if why != "new" && log != nil {
		log("metrics: rebuilding the metrics file", "path", m.path, "reason", why)
	}
	clear(m.mem)
	binary.LittleEndian.PutUint32(m.mem[offVersion:], version)
	binary.LittleEndian.PutUint32(m.mem[offRegions:], Regions)
	binary.LittleEndian.PutUint32(m.mem[offClasses:], uint32(numClasses))
	binary.LittleEndian.PutUint32(m.mem[offBuckets:], NumBuckets)
	binary.LittleEndian.PutUint64(m.mem[offSize:], uint64(fileSize))
	atomic.StoreUint64(m.u64(offMagic), magic)
	m.region = -1
}

// identity is what a region's owner line holds for this process.
type identity struct{ pid, started, boot, ns uint64 }

func hashString(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64() | 1 // never 0: 0 is "unknown"
}
