package abi_test

import (
	"os"
	"slices"
	"strings"
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
// the driver cannot fall behind the module silently; and the list itself
// must be testdata/mechanisms-standard.txt, so no mechanism disappears (or
// appears) unnoticed. The driver stops itself after 150 s; the timeout here
// is the hang guard.
func TestMechanisms(t *testing.T) {
	t.Parallel()
	out := runDriver(t, "abi_mechanisms", 4*time.Minute)
	var listed []string
	for _, l := range strings.Split(out, "\n") {
		if name, ok := strings.CutPrefix(l, "LISTED "); ok {
			listed = append(listed, name)
		}
	}
	b, err := os.ReadFile("testdata/mechanisms-standard.txt")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			want = append(want, l)
		}
	}
	var missing, extra []string
	for _, w := range want {
		if !slices.Contains(listed, w) {
			missing = append(missing, w)
		}
	}
	for _, l := range listed {
		if !slices.Contains(want, l) {
			extra = append(extra, l)
		}
	}
	if len(missing) > 0 || len(extra) > 0 {
		t.Fatalf("C_GetMechanismList differs from testdata/mechanisms-standard.txt:\n"+
			"pinned but not listed: %v\nlisted but not pinned: %v\n(a deliberate change updates the file)", missing, extra)
	}
	if len(listed) != len(want) {
		t.Fatalf("C_GetMechanismList lists %d mechanisms (duplicates?), the pinned list %d", len(listed), len(want))
	}
}
