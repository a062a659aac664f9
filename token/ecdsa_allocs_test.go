package token

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/internal/ossl"
	"gohsm/internal/testenv"
	"gohsm/token/attrs"
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
	assert.Equal(t, 0.0, allocs, "the signer comes from a pool")
}

// TestSessionKeyFastPath: a session key's C_SignInit takes the fast path
// (the session's cached key, the slot's read lock) once the key is in use,
// even when the store changed after the slot last read it. Before, the
// slot's generation was only brought up to date by token-object look-ups,
// so with session keys alone every C_SignInit took the slot's exclusive
// lock.
func TestSessionKeyFastPath(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	_, priv, err := m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN},
		attrs.Template{ck.CKA_EC_PARAMS: p256, ck.CKA_TOKEN: attrs.Bool(false)},
		attrs.Template{ck.CKA_TOKEN: attrs.Bool(false), ck.CKA_SIGN: attrs.Bool(true)})
	require.NoError(t, err)
	require.GreaterOrEqual(t, uint64(priv), uint64(sessionObjectBase), "a session key")
	se, err := m.session(h)
	require.NoError(t, err)
	// The store changes behind the slot's back (another process).
	_, err = m.CreateObject(openRW(t, m), attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_DATA)),
		ck.CKA_TOKEN: attrs.Bool(true), ck.CKA_PRIVATE: attrs.Bool(false)})
	require.NoError(t, err)
	se.slot.mu.Lock()
	se.slot.gen-- // as if another process had written since
	se.slot.mu.Unlock()
	for i := range 3 {
		require.NoError(t, m.SignInit(h, Mechanism{Type: ck.CKM_ECDSA}, priv))
		_, err := m.Sign(h, make([]byte, 32), Out{Buf: make([]byte, 64)})
		require.NoError(t, err)
		if i == 0 {
			continue // the first call after the change takes the slow path and catches up
		}
		se.mu.Lock()
		fast := se.fastKey.ok && se.fastKey.h == priv
		se.mu.Unlock()
		assert.True(t, fast, "call %d: the session's cached key", i)
	}
}

// TestECDSASignersAcrossSessions: with signers going back to a pool when
// the token drops an operation, sessions that start and end CKM_ECDSA
// operations in between keep their own: a signature held back for a
// buffer too small, a C_SignInit refused and an operation cancelled by
// closing its session each leave the others' signatures right.
func TestECDSASignersAcrossSessions(t *testing.T) {
	m, _ := newToken(t)
	a, b := openRW(t, m), openRW(t, m)
	require.NoError(t, m.Login(a, ck.CKU_USER, []byte(userPIN)))
	pub, priv := ecKeyPair(t, m, a, "pool")
	mech := Mechanism{Type: ck.CKM_ECDSA}
	verify := func(data, sig []byte) error {
		require.NoError(t, m.VerifyInit(a, mech, pub))
		return m.Verify(a, data, sig)
	}
	da, db := bytes.Repeat([]byte{0xa}, 32), bytes.Repeat([]byte{0xb}, 32)

	// a's signature waits for a larger buffer while b signs twice.
	require.NoError(t, m.SignInit(a, mech, priv))
	_, err := m.Sign(a, da, Out{Buf: make([]byte, 10)})
	require.ErrorIs(t, err, ck.CKR_BUFFER_TOO_SMALL)
	for range 2 {
		require.NoError(t, m.SignInit(b, mech, priv))
		sig := make([]byte, 64)
		n, err := m.Sign(b, db, Out{Buf: sig})
		require.NoError(t, err)
		require.NoError(t, verify(db, sig[:n]))
	}
	sig := make([]byte, 64)
	n, err := m.Sign(a, da, Out{Buf: sig})
	require.NoError(t, err)
	assert.NoError(t, verify(da, sig[:n]), "a's held signature, over a's digest")

	// A C_SignInit refused, and an operation whose session closes.
	assert.Error(t, m.SignInit(a, mech, pub), "a public key cannot sign")
	c := openRW(t, m)
	require.NoError(t, m.SignInit(c, mech, priv))
	require.NoError(t, m.CloseSession(c))
	require.NoError(t, m.SignInit(a, mech, priv))
	require.NoError(t, m.SignInit(b, mech, priv))
	sa, sb := make([]byte, 64), make([]byte, 64)
	na, err := m.Sign(a, da, Out{Buf: sa})
	require.NoError(t, err)
	nb, err := m.Sign(b, db, Out{Buf: sb})
	require.NoError(t, err)
	assert.NoError(t, verify(da, sa[:na]))
	assert.NoError(t, verify(db, sb[:nb]))
	assert.Error(t, verify(da, sb[:nb]), "b's signature is not over a's digest")
}
