package main

/*
#cgo LDFLAGS: -ldl -lpthread
#include <stdlib.h>
#include "bench.h"
#include "osslbase.h"
*/
import "C"

import (
	"fmt"
	"log"
	"time"
	"unsafe"
)

// osslRow is OpenSSL's own signing rate from plain C threads in this
// process, at 1 and 2 threads: what a module signing in the same
// libcrypto can reach, and this machine's ceiling for its 2-session
// scaling. Information only: no target.
type osslRow struct {
	Op            string    `json:"op"`   // the module operation it bounds
	What          string    `json:"what"` // the OpenSSL call
	One           float64   `json:"ops_per_sec_1"`
	Two           float64   `json:"ops_per_sec_2"`
	Scaling       float64   `json:"scaling"`
	ScalingRounds []float64 `json:"scaling_rounds,omitempty"`
	IntervalLo    float64   `json:"interval_lo,omitempty"` // as for the modules' scaling
	IntervalHi    float64   `json:"interval_hi,omitempty"`
	P50One        float64   `json:"p50_us_1"` // per signature, median over rounds
	P99One        float64   `json:"p99_us_1"`
	P50Two        float64   `json:"p50_us_2"`
	P99Two        float64   `json:"p99_us_2"`
	Module        string    `json:"module,omitempty"`
	ModuleScaling float64   `json:"module_scaling,omitempty"`
}

// osslOps are the operations OpenSSL's own signing is measured for, by the
// module operation they bound.
var osslOps = map[string]struct {
	kind C.int
	what string
}{
	"ecdsa-p256":           {C.OSSL_BASE_ECDSA_P256, "ECDSA_do_sign P-256, 32-byte hash"},
	"rsa2048-sha256-pkcs1": {C.OSSL_BASE_RSA2048_PKCS1, "RSA_private_encrypt RSA-2048 PKCS#1 v1.5, SHA-256 DigestInfo"},
}

// osslBase measures libcrypto's ECDSA P-256 and RSA-2048 PKCS#1 v1.5
// signing from 1 and 2 plain C threads, inside the rounds of the module
// operation each bounds, taking turns with the modules' cells slice by
// slice: on this machine one thread's speed changes by a third from one
// second to the next, so a ceiling measured minutes, or even seconds, apart
// from the module's rows says little about them.
type osslBase struct {
	ops   map[string]*osslOp
	order []string
}

// osslOp is one OpenSSL operation's per-round results, per thread count
// (1, 2).
type osslOp struct {
	rate, p50, p99 [2][]float64 // per round; latencies in us
}

// osslCell is one thread count of one OpenSSL operation in one round: what
// its slices did so far.
type osslCell struct {
	base    *osslOp
	op      string
	kind    C.int
	i       int // index into base's arrays: threads = i+1
	ops     []uint64
	elapsed []uint64
	hist    []uint64
	err     error
}

func newOSSLBase() (*osslBase, error) {
	var why [256]C.char
	if C.ossl_base_load(&why[0], C.size_t(len(why))) == 0 {
		return nil, fmt.Errorf("openssl baseline: %s", C.GoString(&why[0]))
	}
	return &osslBase{ops: map[string]*osslOp{}}, nil
}

// cells starts a round of op (nil if op is none of osslOps): a cell for 1
// and one for 2 threads, each after an unmeasured warm-up, like a module's
// cell.
func (o *osslBase) cells(op string, warmup time.Duration) []*osslCell {
	x, ok := osslOps[op]
	if !ok {
		return nil
	}
	b := o.ops[op]
	if b == nil {
		b = new(osslOp)
		o.ops[op] = b
		o.order = append(o.order, op)
	}
	var cs []*osslCell
	for i := range 2 {
		c := &osslCell{base: b, op: op, kind: x.kind, i: i,
			ops: make([]uint64, i+1), elapsed: make([]uint64, i+1), hist: make([]uint64, histBuckets)}
		if warmup > 0 {
			c.run(warmup)
			clear(c.ops) // the warm-up is not measured
			clear(c.elapsed)
			clear(c.hist)
		}
		cs = append(cs, c)
	}
	return cs
}

func (c *osslCell) threads() int { return c.i + 1 }

// run signs with the cell's threads for d, adding to what it did so far.
func (c *osslCell) run(d time.Duration) {
	if c.err != nil {
		return
	}
	if C.ossl_base_run(c.kind, C.int(c.threads()), C.double(d.Seconds()),
		(*C.uint64_t)(unsafe.Pointer(&c.ops[0])), (*C.uint64_t)(unsafe.Pointer(&c.elapsed[0])),
		(*C.uint64_t)(unsafe.Pointer(&c.hist[0]))) == 0 {
		c.err = fmt.Errorf("openssl baseline: %s with %d threads failed", osslOps[c.op].what, c.threads())
	}
}

// end records the round: the per-thread rates summed, and the latencies.
func (c *osslCell) end() error {
	if c.err != nil {
		return c.err
	}
	var rate float64
	var total uint64
	for t := range c.ops {
		if c.elapsed[t] > 0 {
			rate += float64(c.ops[t]) * 1e9 / float64(c.elapsed[t])
		}
		total += c.ops[t]
	}
	p50, p99 := percentile(c.hist, total, 0.50), percentile(c.hist, total, 0.99)
	b := c.base
	b.rate[c.i] = append(b.rate[c.i], rate)
	b.p50[c.i] = append(b.p50[c.i], float64(p50)/1e3)
	b.p99[c.i] = append(b.p99[c.i], float64(p99)/1e3)
	log.Printf("%-22s %-8s %d thread(s):   %12.1f ops/s  p50 %9.2f us  p99 %9.2f us  mean %9.2f us",
		"openssl-"+c.op, "openssl", c.threads(), rate, float64(p50)/1e3, float64(p99)/1e3, float64(c.threads())*1e6/rate)
	return nil
}

// rows are the measured operations: the median round's rates, and the
// scaling as the median of the rounds' ratios (as for the modules).
func (o *osslBase) rows() []osslRow {
	var rows []osslRow
	for _, op := range o.order {
		b := o.ops[op]
		if len(b.rate[0]) == 0 || len(b.rate[1]) != len(b.rate[0]) {
			continue
		}
		row := osslRow{Op: op, What: osslOps[op].what,
			One: medianOf(b.rate[0]), Two: medianOf(b.rate[1]), Scaling: medianRatio(b.rate[1], b.rate[0]), ScalingRounds: roundRatios(b.rate[1], b.rate[0]),
			P50One: medianOf(b.p50[0]), P99One: medianOf(b.p99[0]), P50Two: medianOf(b.p50[1]), P99Two: medianOf(b.p99[1])}
		row.IntervalLo, row.IntervalHi, _ = medianInterval(row.ScalingRounds, intervalConf)
		rows = append(rows, row)
	}
	return rows
}
