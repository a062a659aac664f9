//go:build cgo

package ossl

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"math/big"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/testenv"
)

// needLibcrypto: CI installs libssl3 (tests/deps.sh), so there a missing
// libcrypto fails the test; elsewhere it is reported as a skip.
func needLibcrypto(t testing.TB) {
	t.Helper()
	if err := Available(); err != nil {
		if disabled {
			t.Skip("GOHSM_CRYPTO=go")
		}
		testenv.Missing(t, "libcrypto: %v", err)
	}
	t.Logf("libcrypto: %s", Version())
}

func TestRSAPrivateMatchesGo(t *testing.T) {
	needLibcrypto(t)
	for _, bits := range []int{1024, 2048, 3072} {
		priv, err := rsa.GenerateKey(rand.Reader, bits)
		require.NoError(t, err)
		k := priv.Size()
		pc := priv.Precomputed
		key, err := NewRSAKey(priv.N.Bytes(), big.NewInt(int64(priv.E)).Bytes(), priv.D.Bytes(),
			priv.Primes[0].Bytes(), priv.Primes[1].Bytes(), pc.Dp.Bytes(), pc.Dq.Bytes(), pc.Qinv.Bytes())
		require.NoError(t, err)

		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out := make([]byte, k)
				for i := 0; i < 10; i++ {
					m, err := rand.Int(rand.Reader, priv.N)
					if !assert.NoError(t, err) {
						return
					}
					in := m.FillBytes(make([]byte, k))
					if !assert.NoError(t, key.Private(out, in)) {
						return
					}
					want := new(big.Int).Exp(m, priv.D, priv.N).FillBytes(make([]byte, k))
					assert.Equal(t, want, out, "%d bits: m^d mod n", bits)
				}
			}()
		}
		wg.Wait()

		// Input not below the modulus, and wrong lengths, are errors.
		out := make([]byte, k)
		assert.Error(t, key.Private(out, priv.N.FillBytes(make([]byte, k))), "input = n")
		assert.Error(t, key.Private(out, make([]byte, k-1)), "short input")
		assert.Error(t, key.Private(out[:k-1], make([]byte, k)), "short output")
	}
}

func TestRSAKeyRefusesEmptyValues(t *testing.T) {
	needLibcrypto(t)
	_, err := NewRSAKey([]byte{1}, nil, []byte{1}, []byte{1}, []byte{1}, []byte{1}, []byte{1}, []byte{1})
	assert.Error(t, err, "an empty value")
	_, err = NewP256Key(nil)
	assert.Error(t, err, "an empty scalar")
}

// newP256Pair makes a P-256 key with crypto/ecdsa and the same key in
// libcrypto.
func newP256Pair(t *testing.T) (*ecdsa.PrivateKey, *P256Key) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	d, err := priv.Bytes()
	require.NoError(t, err)
	key, err := NewP256Key(d)
	require.NoError(t, err)
	return priv, key
}

func TestP256SignVerifies(t *testing.T) {
	needLibcrypto(t)
	priv, key := newP256Pair(t)

	var wg sync.WaitGroup
	seen := sync.Map{}
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				digest := sha256.Sum256([]byte{byte(g), byte(i)})
				sig := make([]byte, 64)
				if !assert.NoError(t, key.Sign(sig, digest[:])) {
					return
				}
				r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
				assert.True(t, ecdsa.Verify(&priv.PublicKey, digest[:], r, s), "signature verifies")
				_, dup := seen.LoadOrStore(string(sig), true)
				assert.False(t, dup, "fresh nonce per signature")
			}
		}()
	}
	wg.Wait()

	// Digests of other lengths are truncated or used as they are (FIPS 186-5 §6.4.1).
	for _, n := range []int{0, 1, 20, 48, 64} {
		digest := make([]byte, n)
		_, _ = rand.Read(digest)
		sig := make([]byte, 64)
		require.NoError(t, key.Sign(sig, digest), "digest of %d bytes", n)
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		if n == 0 {
			// The integer of an empty digest is 0, as is one zero byte's;
			// crypto/ecdsa from Go 1.27 refuses an empty digest.
			digest = []byte{0}
		}
		assert.True(t, ecdsa.Verify(&priv.PublicKey, digest, r, s), "digest of %d bytes verifies", n)
	}
	assert.Error(t, key.Sign(make([]byte, 63), make([]byte, 32)), "short signature buffer")
}

// TestBNProbe: the probe of the BIGNUM view passes in this libcrypto
// with the real reader and refuses readers that get the limb order or the
// byte order wrong; at load it has turned the view on.
func TestBNProbe(t *testing.T) {
	needLibcrypto(t)
	assert.True(t, bnProbe(bnReadView), "the view reads what BN_bn2binpad writes")
	assert.False(t, bnProbe(bnReadLimbsReversed), "limbs most significant first")
	assert.False(t, bnProbe(bnReadNoByteSwap), "a limb's bytes not swapped")
	assert.True(t, bnFast(), "r and s read from the view after the probe at load")
}

// TestP256SignBothPaths: signatures verify with r and s read from the
// BIGNUM view and with BN_bn2binpad, the fallback where the probe fails.
func TestP256SignBothPaths(t *testing.T) {
	needLibcrypto(t)
	priv, key := newP256Pair(t)
	was := bnFast()
	t.Cleanup(func() { setBNFast(was) })
	for _, fast := range []bool{true, false} {
		setBNFast(fast)
		require.Equal(t, fast, bnFast())
		for i := 0; i < 200; i++ {
			digest := sha256.Sum256([]byte{byte(i), byte(i >> 8)})
			sig := make([]byte, 64)
			require.NoError(t, key.Sign(sig, digest[:]))
			r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
			require.True(t, ecdsa.Verify(&priv.PublicKey, digest[:], r, s), "fast %v, signature %d verifies", fast, i)
		}
	}
}

// TestP256SignSHA256: the module's C_Sign of CKM_ECDSA_SHA256 in C
// (gohsm_ossl_p256_sign_sha256: libcrypto's SHA256_* then the signature)
// signs the SHA-256 of the data, for lengths around SHA-256's block and
// padding boundaries and an empty input.
func TestP256SignSHA256(t *testing.T) {
	needLibcrypto(t)
	priv, key := newP256Pair(t)
	for _, n := range []int{0, 1, 55, 56, 63, 64, 65, 1000, 65536} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(i*7 + n)
		}
		sig := make([]byte, 64)
		require.NoError(t, key.signSHA256(sig, data))
		digest := sha256.Sum256(data)
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		require.True(t, ecdsa.Verify(&priv.PublicKey, digest[:], r, s), "%d bytes", n)
		wrong := sha256.Sum256(append(data, 0))
		require.False(t, ecdsa.Verify(&priv.PublicKey, wrong[:], r, s), "%d bytes: not over other data", n)
	}
}

// TestP256SignAllocs: a signature allocates nothing in Go, an empty
// digest included (a local zero byte whose address went to C was one heap
// allocation per signature).
func TestP256SignAllocs(t *testing.T) {
	needLibcrypto(t)
	testenv.NoAllocCount(t)
	_, key := newP256Pair(t)
	sig := make([]byte, 64)
	for _, digest := range [][]byte{make([]byte, 32), nil} {
		assert.Zero(t, testing.AllocsPerRun(100, func() {
			if err := key.Sign(sig, digest); err != nil {
				panic(err)
			}
		}), "digest of %d bytes", len(digest))
	}
}

func liveKeys() int {
	live.Lock()
	defer live.Unlock()
	return len(live.m)
}

// TestKeysFreedOnce: dropped keys go back to libcrypto through their
// cleanups, each once; a second free of a key (a cleanup come twice, a
// value that is no key of ours) is counted and frees nothing. Without the
// live set, the second freeRSA is a double free, which glibc aborts on.
func TestKeysFreedOnce(t *testing.T) {
	needLibcrypto(t)
	priv, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	pc := priv.Precomputed
	newRSA := func() *RSAKey {
		key, err := NewRSAKey(priv.N.Bytes(), big.NewInt(int64(priv.E)).Bytes(), priv.D.Bytes(),
			priv.Primes[0].Bytes(), priv.Primes[1].Bytes(), pc.Dp.Bytes(), pc.Dq.Bytes(), pc.Qinv.Bytes())
		require.NoError(t, err)
		return key
	}
	d := make([]byte, 32)
	d[31] = 7
	newP256 := func() *P256Key {
		key, err := NewP256Key(d)
		require.NoError(t, err)
		return key
	}

	// Dropped keys are freed by their cleanups.
	base := liveKeys()
	stray := StrayFrees()
	for range 50 {
		newRSA()
		newP256()
	}
	assert.GreaterOrEqual(t, liveKeys(), base+1, "keys made are live")
	for i := 0; i < 100 && liveKeys() > base; i++ {
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
	assert.LessOrEqual(t, liveKeys(), base, "every dropped key freed")
	assert.Equal(t, stray, StrayFrees(), "each once")

	// A second free frees nothing.
	r, k := newRSA(), newP256()
	freeRSA(r.r)
	freeP256(k.k)
	freeRSA(r.r)
	freeP256(k.k)
	assert.Equal(t, stray+2, StrayFrees(), "the second frees are counted, not done")
	runtime.KeepAlive(r)
	runtime.KeepAlive(k)
}

// TestForkGuard runs the fork guard's handlers as fork() would, with four
// goroutines signing: after the prepare handler returns no thread is
// inside libcrypto and no signature completes until the parent handler
// has run; then signing goes on.
func TestForkGuard(t *testing.T) {
	needLibcrypto(t)
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	key, err := NewP256Key(priv.D.FillBytes(make([]byte, 32)))
	require.NoError(t, err)
	require.Zero(t, threadsInside(), "threads inside libcrypto at rest")

	var signed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sig := make([]byte, 64)
			digest := sha256.Sum256([]byte("fork guard"))
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := key.Sign(sig, digest[:]); err != nil {
					t.Error(err)
					return
				}
				signed.Add(1)
			}
		}()
	}
	waitFor := func(n int64) {
		deadline := time.Now().Add(10 * time.Second)
		for signed.Load() < n && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		require.GreaterOrEqual(t, signed.Load(), n, "signatures")
	}
	waitFor(100)
	for round := 0; round < 20; round++ {
		forkPrepare()
		inside := threadsInside()
		before := signed.Load()
		time.Sleep(5 * time.Millisecond)
		// A signature that had entered before the prepare handler
		// returned may still be counted after it: at most one per
		// goroutine.
		during := signed.Load() - before
		after := threadsInside()
		forkParent()
		require.Zero(t, inside, "round %d: threads inside libcrypto when prepare returned", round)
		require.Zero(t, after, "round %d: threads inside libcrypto while a fork was prepared", round)
		require.LessOrEqual(t, during, int64(4), "round %d: signatures completed while a fork was prepared", round)
		waitFor(signed.Load() + 20)
	}
	close(stop)
	wg.Wait()
	require.Zero(t, forkTimeouts(), "prepare handlers that gave up waiting")
	require.Zero(t, threadsInside(), "threads inside libcrypto at the end")
}

// BenchmarkCgoCall: one Go-to-C call that does nothing (reads a flag),
// the floor under each call into libcrypto (docs/bench.md, "ECDSA P-256
// path (2026-12-07)").
func BenchmarkCgoCall(b *testing.B) {
	needLibcrypto(b)
	for b.Loop() {
		bnFast()
	}
}
