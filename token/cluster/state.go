package cluster

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"gohsm/internal/mapfile"
)

// The shared state file ("cluster.state" in the slot's token directory),
// mapped MAP_SHARED by every process of the slot. Fixed layout, little
// endian (the mapping is read in place: the platforms we build for are
// all little endian), every word naturally aligned and read and written
// with atomics:
//
//	offset  size   contents
//	0       64     header: magic "GOHSMCL\x00", version, HSM count, file size
//	64      64     hot word: current plan generation (0: no plan)
//	128     128    plan: load time, length, hash, generation counter;
//	               store down until; key ring head; fault_plan file's hash
//	256     32*832 per HSM: a line {state+epoch word, since, up since},
//	               then a line per class {calls, throttled, retried,
//	               faults, GCRA theoretical arrival time, second, count
//	               this second, count the second before}
//	26880   64*32  plan step cursors {fired, remaining, matching calls}
//	28928   1024*32 ring of the token keys created last {seq, object ID,
//	               created, origin HSM}
//	61696   16384  the plan's JSON
//	78080          end (the file is 78,080 bytes)
//
// A file too short, or of another magic, version or HSM count is rebuilt
// in place (zeroed: every HSM up, no plan) under the file's flock, with a
// log line; it is grown when short and never shrunk (another process may
// map all of it). Every
// HSM's hot words (its state, each class's counter) sit on their own
// cache line so that HSMs do not slow each other.
const (
	stateFile    = "cluster.state"
	stateMagic   = 0x004c434d53484f47 // "GOHSMCL\x00"
	stateVersion = 2                  // 2: step cursors carry their plan's generation
	line         = 64

	offMagic   = 0
	offVersion = 8
	offHSMs    = 12
	offSize    = 16

	offPlanGen = 64 // hot: 0 when no plan is loaded

	offPlanLoaded = 128
	offPlanLen    = 136
	offPlanHash   = 144
	offPlanSeq    = 152
	offStoreDown  = 160
	offRingHead   = 168
	// offFilePlan is the hash of the fault_plan file's plan last loaded
	// at Open (0: none since the file was made or reset): the file is
	// loaded again only when its contents change, so that a plan loaded
	// or cleared with the CLI stays so when the next process opens.
	offFilePlan = 176

	offHSM0      = 256
	hsmStride    = line * (1 + int(NumClasses))
	hsmState     = 0  // uint64: state (low 32 bits), epoch (high 32 bits)
	hsmSince     = 8  // int64 ns: entered the state
	hsmUpSince   = 16 // int64 ns: became reachable after being down (0: always was)
	clsCalls     = 0
	clsThrottled = 8
	clsRetried   = 16
	clsFaults    = 24
	clsTAT       = 32
	clsSec       = 40
	clsSecCount  = 48
	clsPrevCount = 56

	offSteps      = offHSM0 + MaxHSMs*hsmStride
	stepStride    = 32
	stepFired     = 0 // plan generation << 8 | 0 pending, 1 active, 2 done
	stepRemaining = 8
	stepCalls     = 16

	offRing     = offSteps + maxSteps*stepStride
	ringSize    = 1024
	ringStride  = 32
	ringSeq     = 0 // k+1 for the k-th key created, 0 while being written
	ringID      = 8
	ringCreated = 16
	ringOrigin  = 24

	offPlan   = offRing + ringSize*ringStride
	stateSize = offPlan + planCap
)

// state is this process's mapping of the file.
type state struct {
	f   *os.File
	mem []byte
	// fl is this process's turns at f's flock (internal/mapfile). Only
	// the slow paths lock (a plan loaded or re-read, a reset).
	fl *mapfile.Flock
}

func (s *state) u64(off int) *uint64 { return (*uint64)(unsafe.Pointer(&s.mem[off])) }
func (s *state) i64(off int) *int64  { return (*int64)(unsafe.Pointer(&s.mem[off])) }

func (s *state) hsm(h, off int) int { return offHSM0 + h*hsmStride + off }
func (s *state) class(h int, cl Class, off int) int {
	return offHSM0 + h*hsmStride + line*(1+int(cl)) + off
}
func (s *state) step(i, off int) int        { return offSteps + i*stepStride + off }
func (s *state) ring(k uint64, off int) int { return offRing + int(k%ringSize)*ringStride + off }

// lock takes the file's flock (how: LOCK_SH or LOCK_EX) for this
// goroutine; unlock releases it.
func (s *state) lock(how int) error { return s.fl.Lock(how) }
func (s *state) unlock()            { s.fl.Unlock() }

// openState maps dir/cluster.state, creating it with perm, and rebuilds
// it when it was made for another layout or HSM count. It is safe to call
// from several processes at once: the check and the rebuild happen under
// an exclusive flock.
func openState(dir string, hsms int, perm uint32, log func(string, ...any)) (*state, error) {
	path := filepath.Join(dir, stateFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, os.FileMode(perm)&os.ModePerm)
	if err != nil {
		return nil, fmt.Errorf("cluster: open state: %w", err)
	}
	s := &state{f: f, fl: mapfile.NewFlock(f)}
	if err := s.lock(syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("cluster: lock state: %w", err)
	}
	defer s.unlock()
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("cluster: open state: %w", err)
	}
	size := st.Size()
	if size < int64(stateSize) {
		// A short file is grown; a file is never shrunk: other processes
		// (of another layout, for a longer one) may map all of it, and an
		// access past a truncated end faults them (SIGBUS). A longer file
		// is used in place, rebuilt when its header is not ours.
		// Allocated, not a sparse truncate: see internal/mapfile.
		if err := mapfile.Grow(f, int64(stateSize)); err != nil {
			f.Close()
			return nil, fmt.Errorf("cluster: size state: %w", err)
		}
		if size == 0 {
			// A new file: the creator makes it the token files' mode
			// whatever its umask.
			f.Chmod(os.FileMode(perm) & os.ModePerm)
		}
	}
	mem, err := mapState(f, st)
	if err != nil {
		f.Close()
		return nil, err
	}
	s.mem = mem
	var why string
	switch {
	case size == 0:
	case size < int64(stateSize):
		why = fmt.Sprintf("%d bytes, want %d", size, stateSize)
	case binary.LittleEndian.Uint64(mem[offMagic:]) != stateMagic:
		why = "bad magic"
	case binary.LittleEndian.Uint32(mem[offVersion:]) != stateVersion:
		why = fmt.Sprintf("version %d, want %d", binary.LittleEndian.Uint32(mem[offVersion:]), stateVersion)
	case binary.LittleEndian.Uint32(mem[offHSMs:]) != uint32(hsms):
		why = fmt.Sprintf("made for %d HSMs, the slot has %d", binary.LittleEndian.Uint32(mem[offHSMs:]), hsms)
	case binary.LittleEndian.Uint64(mem[offSize:]) != uint64(stateSize):
		why = "bad size word"
	default:
		return s, nil
	}
	if why != "" && log != nil {
		log("cluster: rebuilding the shared state file", "path", path, "reason", why)
	}
	s.rebuild(hsms)
	return s, nil
}

// rebuild zeroes the state (every HSM up, no plan, no counters) and
// writes the header last. The caller holds the exclusive lock.
func (s *state) rebuild(hsms int) {
	clear(s.mem)
	binary.LittleEndian.PutUint32(s.mem[offVersion:], stateVersion)
	binary.LittleEndian.PutUint32(s.mem[offHSMs:], uint32(hsms))
	binary.LittleEndian.PutUint64(s.mem[offSize:], uint64(stateSize))
	now := time.Now().UnixNano()
	for h := range MaxHSMs {
		binary.LittleEndian.PutUint64(s.mem[s.hsm(h, hsmSince):], uint64(now))
	}
	// Plan generations go on from the time (in ms, far below 2^56 so that
	// cursorWord has room) rather than from 0: a process that had compiled
	// generation g of the file before the rebuild does not take another
	// plan of generation g for its own.
	binary.LittleEndian.PutUint64(s.mem[offPlanSeq:], uint64(now/int64(time.Millisecond)))
	atomic.StoreUint64(s.u64(offMagic), stateMagic)
}

// The process's mappings of state files, by device and inode. A mapping
// is never unmapped: a call still running in a Cluster when it is closed
// (C_Finalize on one thread while another sleeps in a retry) keeps
// working instead of faulting on unmapped memory, and an Open of the same
// file again (C_Initialize after C_Finalize) reuses it, so a process holds
// at most one mapping (78 KB) per state file it ever opened.
var (
	mappingsMu sync.Mutex
	mappings   = map[[2]uint64][]byte{}
)

// mapState is the process's mapping of the open file f (fi: its stat).
func mapState(f *os.File, fi os.FileInfo) ([]byte, error) {
	var key [2]uint64
	sys, ok := fi.Sys().(*syscall.Stat_t)
	if ok {
		key = [2]uint64{uint64(sys.Dev), uint64(sys.Ino)}
	}
	mappingsMu.Lock()
	defer mappingsMu.Unlock()
	if mem := mappings[key]; ok && mem != nil {
		return mem, nil
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, stateSize, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("cluster: map state: %w", err)
	}
	if ok {
		mappings[key] = mem
	}
	return mem, nil
}

// close closes the file; the mapping stays (mappings).
func (s *state) close() error {
	return s.f.Close()
}

// planBytes copies the stored plan; the caller holds a lock.
func (s *state) planBytes() []byte {
	n := atomic.LoadUint64(s.u64(offPlanLen))
	if n > planCap {
		return nil
	}
	return bytes.Clone(s.mem[offPlan : offPlan+int(n)])
}

func planHash(b []byte) uint64 {
	h := fnv.New64a()
	h.Write(b)
	return h.Sum64()
}

// The HSM state word: state in the low 32 bits, epoch in the high.
func stateOf(w uint64) State  { return State(uint32(w)) }
func epochOf(w uint64) uint32 { return uint32(w >> 32) }
func word(s State, epoch uint32) uint64 {
	return uint64(epoch)<<32 | uint64(s)
}
