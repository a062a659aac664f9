package main

/*
#include <stdlib.h>
#include <string.h>
#include "bench.h"
*/
import "C"

import (
	"crypto/rand"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// worker is one session and its C context: input, output and histogram
// live in C memory, allocated and touched once, reused by every operation.
type worker struct {
	m    *module
	ctx  *C.bench_ctx
	hist *C.uint64_t
}

func newContext(f C.CK_FUNCTION_LIST_PTR) (*C.bench_ctx, *C.uint64_t, error) {
	c := (*C.bench_ctx)(C.calloc(1, C.sizeof_bench_ctx))
	c.f = f
	c.in = (*C.CK_BYTE)(C.malloc(maxIn))
	c.out = (*C.CK_BYTE)(C.malloc(maxOut))
	c.made = (*C.CK_OBJECT_HANDLE)(C.calloc(madeCap, C.sizeof_CK_OBJECT_HANDLE))
	hist := (*C.uint64_t)(C.calloc(C.HIST_BUCKETS, 8))
	if c.in == nil || c.out == nil || c.made == nil || hist == nil {
		return nil, nil, errors.New("p11bench: out of C memory")
	}
	// Touch every page now so no operation pays for first use.
	if _, err := rand.Read(unsafe.Slice((*byte)(unsafe.Pointer(c.in)), maxIn)); err != nil {
		return nil, nil, fmt.Errorf("p11bench: input bytes: %w", err)
	}
	C.memset(unsafe.Pointer(c.out), 0, maxOut)
	return c, hist, nil
}

func (m *module) newWorker(t token) (*worker, error) {
	s, err := m.openSession(t.slot)
	if err != nil {
		return nil, err
	}
	c, hist, err := newContext(m.f)
	if err != nil {
		return nil, err
	}
	c.slot = t.slot
	c.s = s
	return &worker{m: m, ctx: c, hist: hist}, nil
}

// share is what one worker did.
type share struct {
	ops   uint64
	timed time.Duration
	err   error
}

// measurement is what runs of an operation on some workers gave, summed
// over the runs (the slices of a round).
type measurement struct {
	shares []share // per worker
	hist   []uint64
	err    error
}

// add sums o into m.
func (m *measurement) add(o measurement) {
	for len(m.shares) < len(o.shares) {
		m.shares = append(m.shares, share{})
	}
	for i, s := range o.shares {
		m.shares[i].ops += s.ops
		m.shares[i].timed += s.timed
	}
	if m.hist == nil {
		m.hist = make([]uint64, histBuckets)
	}
	for b, v := range o.hist {
		m.hist[b] += v
	}
	m.err = errors.Join(m.err, o.err)
}

// ops is the number of operations over all workers.
func (m *measurement) ops() uint64 {
	var n uint64
	for _, s := range m.shares {
		n += s.ops
	}
	return n
}

// opsPerSec sums the workers' rates, each over its own timed operations.
func (m *measurement) opsPerSec() float64 {
	var r float64
	for _, s := range m.shares {
		if s.timed > 0 {
			r += float64(s.ops) / s.timed.Seconds()
		}
	}
	return r
}

func (m *measurement) percentile(q float64) time.Duration { return percentile(m.hist, m.ops(), q) }

// run runs op on every worker concurrently (each on its own locked OS
// thread) for d, in batches of about 10 ms that the C loop times per
// operation.
func run(ws []*worker, op *opDef, d time.Duration) measurement {
	shares := make([]share, len(ws))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, w := range ws {
		release := op.prepare(w)
		C.memset(unsafe.Pointer(w.hist), 0, C.HIST_BUCKETS*8)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer release()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			<-start
			sh := &shares[i]
			batchCap := uint64(1 << 20)
			if op.genTemplates != nil {
				batchCap = madeCap / 2
			}
			n := uint64(1)
			deadline := time.Now().Add(d)
			for time.Now().Before(deadline) {
				var done, elapsed C.uint64_t
				rv := C.bench_run(w.ctx, op.cop, C.uint64_t(n), w.hist, &done, &elapsed)
				sh.ops += uint64(done)
				sh.timed += time.Duration(elapsed)
				if w.ctx.nmade > 0 {
					sh.err = errors.Join(sh.err, check("C_DestroyObject", C.bench_destroy_made(w.ctx)))
				}
				if err := check(op.name, rv); err != nil {
					sh.err = errors.Join(sh.err, err)
				}
				if sh.err != nil {
					return
				}
				// Next batch: about 10 ms.
				per := time.Duration(elapsed) / time.Duration(max(uint64(done), 1))
				n = min(max(uint64(10*time.Millisecond/max(per, 1)), 1), batchCap)
			}
		}()
	}
	close(start)
	wg.Wait()

	res := measurement{shares: shares, hist: make([]uint64, histBuckets)}
	for i, w := range ws {
		res.err = errors.Join(res.err, shares[i].err)
		for b, v := range unsafe.Slice((*uint64)(unsafe.Pointer(w.hist)), C.HIST_BUCKETS) {
			res.hist[b] += v
		}
	}
	return res
}

// histBuckets, histBucket and histValue expose the C histogram's layout.
const histBuckets = C.HIST_BUCKETS

func histBucket(v uint64) int { return int(C.bench_hist_bucket(C.uint64_t(v))) }

func histValue(v uint64) time.Duration {
	return time.Duration(C.bench_hist_value(C.int(histBucket(v))))
}

func percentile(hist []uint64, total uint64, q float64) time.Duration {
	if total == 0 {
		return 0
	}
	want := uint64(q*float64(total) + 0.5)
	want = max(want, 1)
	var seen uint64
	for b, v := range hist {
		seen += v
		if seen >= want {
			return time.Duration(C.bench_hist_value(C.int(b)))
		}
	}
	return 0
}
