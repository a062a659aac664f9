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
	"time"
	"unsafe"
)

// worker is one session, its C context and its thread: input, output and
// histogram live in C memory, allocated and touched once, reused by every
// operation, and the thread (bench.h) runs every measurement of the
// session.
type worker struct {
	m    *module
	ctx  *C.bench_ctx
	hist *C.uint64_t
	th   *C.bench_thread
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
	c.f32 = m.f32
	th, err := C.bench_thread_start()
	if th == nil {
		return nil, fmt.Errorf("p11bench: session thread: %w", err)
	}
	return &worker{m: m, ctx: c, hist: hist, th: th}, nil
}

// finalize ends the module's session threads and the module.
func (m *module) finalize() error {
	for _, w := range append(m.workers, m.findWorkers...) {
		C.bench_thread_stop(w.th)
	}
	m.workers, m.findWorkers = nil, nil
	return m.p11.finalize()
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

// tail describes the distribution beyond p50 for the log: p90, p99.9, the
// slowest operation, the mean, and the share of the timed time spent in
// operations slower than twice the p50 (where a mean above the p50 goes).
func (m *measurement) tail() string {
	n := m.ops()
	if n == 0 {
		return "no operations"
	}
	p50 := m.percentile(0.50)
	var total, slow float64
	slowest := 0
	for b, v := range m.hist {
		if v == 0 {
			continue
		}
		t := float64(C.bench_hist_value(C.int(b))) * float64(v)
		total += t
		if time.Duration(C.bench_hist_value(C.int(b))) > 2*p50 {
			slow += t
		}
		slowest = b
	}
	return fmt.Sprintf("p90 %.2f us, p99.9 %.1f us, max %.0f us, mean %.2f us, %.1f%% of the time in operations over 2x p50",
		float64(m.percentile(0.90))/1e3, float64(m.percentile(0.999))/1e3, float64(C.bench_hist_value(C.int(slowest)))/1e3,
		total/float64(n)/1e3, 100*slow/total)
}

// run runs op on every worker concurrently, each on its session's thread,
// for d, in batches of about 10 ms that the C loop times per operation;
// this goroutine waits in one C call meanwhile.
func run(ws []*worker, op *opDef, d time.Duration) measurement {
	n := len(ws)
	ths := make([]*C.bench_thread, n)
	ctxs := make([]*C.bench_ctx, n)
	hists := make([]*C.uint64_t, n)
	// C memory: the threads write their accounts while Go waits.
	cshares := (*C.bench_share)(C.calloc(C.size_t(n), C.sizeof_bench_share))
	if cshares == nil {
		return measurement{err: errors.New("p11bench: out of C memory")}
	}
	defer C.free(unsafe.Pointer(cshares))
	for i, w := range ws {
		release := op.prepare(w)
		defer release()
		C.memset(unsafe.Pointer(w.hist), 0, C.HIST_BUCKETS*8)
		ths[i], ctxs[i], hists[i] = w.th, w.ctx, w.hist
	}
	batchCap := uint64(1 << 20)
	if op.genTemplates != nil {
		batchCap = madeCap / 2
	}
	C.bench_threads_run(&ths[0], &ctxs[0], &hists[0], cshares, C.int(n), op.cop, C.uint64_t(d), C.uint64_t(batchCap))

	res := measurement{shares: make([]share, n), hist: make([]uint64, histBuckets)}
	for i, cs := range unsafe.Slice(cshares, n) {
		sh := &res.shares[i]
		sh.ops, sh.timed = uint64(cs.ops), time.Duration(cs.timed)
		sh.err = errors.Join(check("C_DestroyObject", cs.destroy_rv), check(op.name, cs.rv))
		res.err = errors.Join(res.err, sh.err)
		for b, v := range unsafe.Slice((*uint64)(unsafe.Pointer(hists[i])), C.HIST_BUCKETS) {
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
