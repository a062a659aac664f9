package mechanisms

import (
	"bytes"
	"crypto"
	"crypto/elliptic"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
)

// TestTablesLazy: the package's initialisation does not build the tables
// (a process that never starts an operation does not pay for them), and
// concurrent first uses all see one set of rows.
func TestTablesLazy(t *testing.T) {
	require.False(t, builtAtInit, "the mechanism tables were built during package initialisation")
	var wg sync.WaitGroup
	got := make([]*Mechanism, 8)
	for i := range got {
		wg.Go(func() { got[i], _ = Lookup(ck.CKM_ECDSA) })
	}
	wg.Wait()
	for _, m := range got {
		require.NotNil(t, m)
		require.Same(t, got[0], m)
	}
	require.Same(t, loaded(), loaded())
}

// TestZetasLazy: the package's initialisation does not compute ML-DSA's
// NTT table; the first verification does, once.
func TestZetasLazy(t *testing.T) {
	require.False(t, zetasAtInit, "the ML-DSA zetas were computed during package initialisation")
	var wg sync.WaitGroup
	got := make([]*[mln]int32, 8)
	for i := range got {
		wg.Go(func() { got[i] = mlZetas() })
	}
	wg.Wait()
	for _, z := range got {
		require.Same(t, got[0], z)
	}
	// FIPS 204 Appendix B (zetas[1..8]): 4808194, 3765607, 3761513, 5178923,
	// 5496691, 5234739, 5178987, 7778734.
	require.Equal(t, []int32{4808194, 3765607, 3761513, 5178923, 5496691, 5234739, 5178987, 7778734}, got[0][1:9])
}

// TestDERTablesLazy: the package's initialisation does not encode the
// curves' OIDs nor the DigestInfo prefixes (encoding/asn1 through
// reflection); concurrent first uses (run it with -race) all get the
// encodings the standards give.
func TestDERTablesLazy(t *testing.T) {
	require.False(t, curveDERAtInit, "the curve OIDs were encoded during package initialisation")
	require.False(t, digestInfoAtInit, "the DigestInfo prefixes were encoded during package initialisation")
	// RFC 5480 §2.1.1.1: secp256r1 is 1.2.840.10045.3.1.7.
	p256 := []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}
	// RFC 8017 §9.2, note 1: the DigestInfo of SHA-256 up to the digest.
	sha256Prefix := []byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}
	digest := bytes.Repeat([]byte{0xab}, 32)
	const n = 8
	var (
		wg     sync.WaitGroup
		params [n][]byte
		curves [n]elliptic.Curve
		ems    [n][]byte
		errs   [3 * n]error
	)
	for i := range n {
		wg.Go(func() { params[i], errs[i] = ECParams(elliptic.P256()) })
		wg.Go(func() { curves[i], errs[n+i] = CurveFromParams(p256) })
		wg.Go(func() { ems[i], _, errs[2*n+i] = emsaPKCS1(64, crypto.SHA256, digest) })
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	for i := range n {
		require.Equal(t, p256, params[i])
		require.Equal(t, elliptic.P256(), curves[i])
		// 00 01 FF..FF 00 DigestInfo: the prefix sits right before the digest.
		tail := append(bytes.Clone(sha256Prefix), digest...)
		require.Equal(t, tail, ems[i][len(ems[i])-len(tail):])
		require.Equal(t, byte(0), ems[i][len(ems[i])-len(tail)-1])
	}
	require.True(t, curveDERBuilt.Load())
	require.True(t, digestInfoBuilt.Load())
}
