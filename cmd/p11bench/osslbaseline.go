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
	Op            string  `json:"op"`   // the module operation it bounds
	What          string  `json:"what"` // the OpenSSL call
	One           float64 `json:"ops_per_sec_1"`
	Two           float64 `json:"ops_per_sec_2"`
	Scaling       float64 `json:"scaling"`
	P50One        float64 `json:"p50_us_1"` // per signature, median over rounds
	P99One        float64 `json:"p99_us_1"`
	P50Two        float64 `json:"p50_us_2"`
	P99Two        float64 `json:"p99_us_2"`
	Module        string  `json:"module,omitempty"`
	ModuleScaling float64 `json:"module_scaling,omitempty"`
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
// operation each bounds: on this machine one thread's speed changes by a
// third from one second to the next, so a ceiling measured minutes apart
// from the module's rows says little about them.
type osslBase struct {
	rates map[string]*[2][]float64 // op -> per thread count (1, 2) -> rate per round
	p50   map[string]*[2][]float64 // likewise, the round's median signature time in us
	p99   map[string]*[2][]float64
	order []string
}

func newOSSLBase() (*osslBase, error) {
	var why [256]C.char
	if C.ossl_base_load(&why[0], C.size_t(len(why))) == 0 {
		return nil, fmt.Errorf("openssl baseline: %s", C.GoString(&why[0]))
	}
	return &osslBase{rates: map[string]*[2][]float64{}, p50: map[string]*[2][]float64{}, p99: map[string]*[2][]float64{}}, nil
}

// round measures op (if it is one of osslOps) once at 1 and once at 2
// threads, each after an unmeasured warm-up, like a module's cell.
func (o *osslBase) round(op string, warmup, d time.Duration) error {
	x, ok := osslOps[op]
	if !ok {
		return nil
	}
	r := o.rates[op]
	if r == nil {
		r = new([2][]float64)
		o.rates[op], o.p50[op], o.p99[op] = r, new([2][]float64), new([2][]float64)
		o.order = append(o.order, op)
	}
	hist := make([]uint64, histBuckets)
	h := (*C.uint64_t)(unsafe.Pointer(&hist[0]))
	for i, n := range []int{1, 2} {
		var rate C.double
		if warmup > 0 && C.ossl_base_run(x.kind, C.int(n), C.double(warmup.Seconds()), &rate, h) == 0 {
			return fmt.Errorf("openssl baseline: %s with %d threads failed", x.what, n)
		}
		if C.ossl_base_run(x.kind, C.int(n), C.double(d.Seconds()), &rate, h) == 0 {
			return fmt.Errorf("openssl baseline: %s with %d threads failed", x.what, n)
		}
		var total uint64
		for _, v := range hist {
			total += v
		}
		p50, p99 := percentile(hist, total, 0.50), percentile(hist, total, 0.99)
		r[i] = append(r[i], float64(rate))
		o.p50[op][i] = append(o.p50[op][i], float64(p50)/1e3)
		o.p99[op][i] = append(o.p99[op][i], float64(p99)/1e3)
		log.Printf("%-22s %-8s %d thread(s):   %12.1f ops/s  p50 %9.2f us  p99 %9.2f us  mean %9.2f us",
			"openssl-"+op, "openssl", n, float64(rate), float64(p50)/1e3, float64(p99)/1e3, float64(n)*1e6/float64(rate))
	}
	return nil
}

// rows are the measured operations: the median round's rates, and the
// scaling as the median of the rounds' ratios (as for the modules).
func (o *osslBase) rows() []osslRow {
	var rows []osslRow
	for _, op := range o.order {
		r := o.rates[op]
		p50, p99 := o.p50[op], o.p99[op]
		rows = append(rows, osslRow{Op: op, What: osslOps[op].what,
			One: medianOf(r[0]), Two: medianOf(r[1]), Scaling: medianRatio(r[1], r[0]),
			P50One: medianOf(p50[0]), P99One: medianOf(p99[0]), P50Two: medianOf(p50[1]), P99Two: medianOf(p99[1])})
	}
	return rows
}
