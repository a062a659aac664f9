package token

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/internal/ossl"
	"gohsm/internal/testenv"
)

// TestECDSASignAllocs: C_SignInit + C_Sign with CKM_ECDSA on a P-256 key
// signed in libcrypto allocates the signer and nothing else (the C
// driver's path, per signature; docs/bench.md, issue 19).
func TestECDSASignAllocs(t *testing.T) {
	if testenv.Race {
		t.Skip("the race detector's instrumentation allocates, and not the same each run")
	}
	if !ossl.Cgo || ossl.Available() != nil {
		t.Skip("P-256 signs in Go without libcrypto: another path")
	}
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	_, priv := ecKeyPair(t, m, h, "allocs")
	mech := Mechanism{Type: ck.CKM_ECDSA}
	digest := make([]byte, 32)
	out := Out{Buf: make([]byte, 64)}
	sign := func() {
		if err := m.SignInit(h, mech, priv); err != nil {
			panic(err)
		}
		if _, err := m.Sign(h, digest, out); err != nil {
			panic(err)
		}
	}
	sign() // the key's libcrypto copy is made at the first use
	allocs := testing.AllocsPerRun(200, sign)
	t.Logf("allocations per SignInit+Sign: %v", allocs)
	assert.Equal(t, 1.0, allocs, "the signer only")
}
