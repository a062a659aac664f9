package abi_test

import (
	"testing"
	"time"
)

// TestMechanisms: every mechanism the module lists (C_GetMechanismList) is
// exercised through the C ABI by testdata/abi_mechanisms.c with real
// parameter structures: key generation, encryption (single- and multi-part,
// AEAD tampering), signatures and MACs, digests with known answers,
// derivation with known answers, wrap/unwrap, sign/verify-recover and the
// 3.0 message-based AEAD functions. A listed mechanism (or advertised
// operation) without a procedure in the driver's table fails the test, so
// the driver cannot fall behind the module silently. The driver stops
// itself after 150 s; the timeout here is the hang guard.
func TestMechanisms(t *testing.T) {
	t.Parallel()
	runDriver(t, "abi_mechanisms", 4*time.Minute)
}
