package main

/*
#cgo LDFLAGS: -ldl -lpthread
#include <stdlib.h>
#include "osslbase.h"
*/
import "C"

import (
	"fmt"
	"log"
	"slices"
	"time"
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
	Module        string  `json:"module,omitempty"`
	ModuleScaling float64 `json:"module_scaling,omitempty"`
}

// osslBaseline times libcrypto's ECDSA P-256 and RSA-2048 PKCS#1 v1.5
// signing for d at 1 and 2 threads, in interleaved rounds (the median
// round's rate is kept, and the scaling is the median of the rounds'
// ratios, as for the modules).
func osslBaseline(d time.Duration, rounds int) ([]osslRow, error) {
	var why [256]C.char
	if C.ossl_base_load(&why[0], C.size_t(len(why))) == 0 {
		return nil, fmt.Errorf("openssl baseline: %s", C.GoString(&why[0]))
	}
	ops := []struct {
		kind C.int
		op   string
		what string
	}{
		{C.OSSL_BASE_ECDSA_P256, "ecdsa-p256", "ECDSA_do_sign P-256, 32-byte hash"},
		{C.OSSL_BASE_RSA2048_PKCS1, "rsa2048-sha256-pkcs1", "RSA_private_encrypt RSA-2048 PKCS#1 v1.5, SHA-256 DigestInfo"},
	}
	var rows []osslRow
	for _, o := range ops {
		row := osslRow{Op: o.op, What: o.what}
		var rates [2][]float64
		for range rounds {
			for i, n := range []int{1, 2} {
				var rate C.double
				if C.ossl_base_run(o.kind, C.int(n), C.double(d.Seconds()), &rate) == 0 {
					return rows, fmt.Errorf("openssl baseline: %s with %d threads failed", o.what, n)
				}
				rates[i] = append(rates[i], float64(rate))
				log.Printf("%-22s %-8s %d thread(s):   %12.1f ops/s", "openssl-"+o.op, "openssl", n, float64(rate))
			}
		}
		row.Scaling = medianRatio(rates[1], rates[0]) // paired by round, as the modules'
		for i := range rates {
			slices.Sort(rates[i])
		}
		row.One, row.Two = rates[0][len(rates[0])/2], rates[1][len(rates[1])/2]
		rows = append(rows, row)
	}
	return rows, nil
}
