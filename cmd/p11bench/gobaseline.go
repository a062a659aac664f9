package main

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"log"
	"runtime"
	"slices"
	"time"
)

// goBaseline times Go's own crypto, called directly in this binary, for
// the operations whose module overhead has a target: what a Go module
// cannot beat, so its cost above it is the module's own.
func goBaseline(d time.Duration) []goRow {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var rows []goRow

	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Printf("go baseline: %v", err)
		return nil
	}
	hash := sha256.Sum256([]byte("p11bench"))
	ops, p50 := timeLoop(d, func() error {
		_, _, err := ecdsa.Sign(rand.Reader, priv, hash[:])
		return err
	})
	rows = append(rows, goRow{Op: "go-ecdsa-p256", What: "ecdsa.Sign P-256, 32-byte hash", OpsPerSec: ops, P50us: p50,
		ModuleOp: "ecdsa-p256", Target: 0.10})
	// SignASN1 skips ecdsa.Sign's conversion to big.Int: shown for what a
	// module could gain, with no target.
	ops, p50 = timeLoop(d, func() error {
		_, err := ecdsa.SignASN1(rand.Reader, priv, hash[:])
		return err
	})
	rows = append(rows, goRow{Op: "go-ecdsa-p256-asn1", What: "ecdsa.SignASN1 P-256, 32-byte hash", OpsPerSec: ops, P50us: p50,
		ModuleOp: "ecdsa-p256"})

	key := make([]byte, 32)
	nonce := make([]byte, 12)
	in := make([]byte, mib)
	_, _ = rand.Read(key)
	_, _ = rand.Read(in)
	block, _ := aes.NewCipher(key)
	aead, _ := cipher.NewGCM(block)
	out := make([]byte, 0, mib+16)
	var ctr uint64
	ops, p50 = timeLoop(d, func() error {
		ctr++
		nonce[4], nonce[5], nonce[6], nonce[7] = byte(ctr), byte(ctr>>8), byte(ctr>>16), byte(ctr>>24)
		out = aead.Seal(out[:0], nonce, in, nil)
		return nil
	})
	rows = append(rows, goRow{Op: "go-aes256-gcm-1m", What: "cipher.AEAD.Seal AES-256-GCM 1 MiB, reused buffer", OpsPerSec: ops, P50us: p50,
		ModuleOp: "aes256-gcm-1m", Target: 0.20})
	for _, r := range rows {
		log.Printf("%-22s %-8s %d session(s): %12.1f ops/s  p50 %9.2f us", r.Op, "go", 1, r.OpsPerSec, r.P50us)
	}
	return rows
}

// timeLoop runs f for about d (after a tenth of d of warm-up) and returns
// operations per second and the median latency in microseconds.
func timeLoop(d time.Duration, f func() error) (float64, float64) {
	for end := time.Now().Add(d / 10); time.Now().Before(end); {
		if err := f(); err != nil {
			log.Printf("go baseline: %v", err)
			return 0, 0
		}
	}
	lat := make([]time.Duration, 0, 1<<16)
	start := time.Now()
	t0 := start
	deadline := start.Add(d)
	for t0.Before(deadline) {
		if err := f(); err != nil {
			log.Printf("go baseline: %v", err)
			return 0, 0
		}
		t1 := time.Now()
		lat = append(lat, t1.Sub(t0))
		t0 = t1
	}
	slices.Sort(lat)
	return float64(len(lat)) / t0.Sub(start).Seconds(), float64(lat[len(lat)/2]) / 1e3
}
