package token

import (
	"crypto/sha256"
	"crypto/sha512"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/internal/testenv"
	"gohsm/token/attrs"
)

// TestDigestAllocs: C_DigestInit + C_Digest allocates nothing once the
// session has digested with the mechanism before: the hash state comes
// back from a pool (before, a new hash state and its interface value per
// C_DigestInit: 2 allocations; docs/bench.md, "SHA-256 1 MiB
// (2026-12-07)").
func TestDigestAllocs(t *testing.T) {
	testenv.NoAllocCount(t)
	m, _ := newToken(t)
	h := openRW(t, m)
	data := make([]byte, 4096)
	out := Out{Buf: make([]byte, 64)}
	for _, mt := range []ck.MechanismType{ck.CKM_SHA256, ck.CKM_SHA_1, ck.CKM_SHA512, ck.CKM_SHA3_256} {
		mech := Mechanism{Type: mt}
		digest := func() {
			if err := m.DigestInit(h, mech); err != nil {
				panic(err)
			}
			if _, err := m.Digest(h, data, out); err != nil {
				panic(err)
			}
		}
		digest()
		assert.Zero(t, testing.AllocsPerRun(100, digest), "%v: allocations per C_DigestInit+C_Digest", mt)
	}
}

// TestDigestStateIsFresh: an operation's hash state starts empty whatever
// the operation before it on the session (or on another session) left in
// a state it handed back: finished, failed or cut short with data in it.
func TestDigestStateIsFresh(t *testing.T) {
	m, _ := newToken(t)
	a, b := openRW(t, m), openRW(t, m)
	abc := []byte("abc")
	want256, want512 := sha256.Sum256(abc), sha512.Sum512(abc)
	check := func(h ck.ULong, what string) {
		t.Helper()
		out := make([]byte, 32)
		require.NoError(t, m.DigestInit(h, Mechanism{Type: ck.CKM_SHA256}))
		n, err := m.Digest(h, abc, Out{Buf: out})
		require.NoError(t, err)
		assert.Equal(t, want256[:], out[:n], what)
		out = make([]byte, 64)
		require.NoError(t, m.DigestInit(h, Mechanism{Type: ck.CKM_SHA512}))
		require.NoError(t, m.DigestUpdate(h, abc[:1]))
		require.NoError(t, m.DigestUpdate(h, abc[1:]))
		n, err = m.DigestFinal(h, Out{Buf: out})
		require.NoError(t, err)
		assert.Equal(t, want512[:], out[:n], what+", multi-part")
	}
	check(a, "first")

	// Finished multi-part with data left in the block buffer.
	require.NoError(t, m.DigestInit(a, Mechanism{Type: ck.CKM_SHA256}))
	require.NoError(t, m.DigestUpdate(a, []byte("left over")))
	_, err := m.DigestFinal(a, Out{Buf: make([]byte, 32)})
	require.NoError(t, err)
	check(a, "after a finished multi-part digest")
	check(b, "another session after a finished multi-part digest")

	// Failed: C_Digest after C_DigestUpdate ends the operation.
	require.NoError(t, m.DigestInit(a, Mechanism{Type: ck.CKM_SHA256}))
	require.NoError(t, m.DigestUpdate(a, []byte("part")))
	_, err = m.Digest(a, abc, Out{Buf: make([]byte, 32)})
	require.ErrorIs(t, err, ck.CKR_OPERATION_ACTIVE)
	check(a, "after a failed digest")
	check(b, "another session after a failed digest")

	// A buffer too short keeps the operation (and its result) alive.
	require.NoError(t, m.DigestInit(a, Mechanism{Type: ck.CKM_SHA256}))
	require.NoError(t, m.DigestUpdate(a, abc))
	_, err = m.DigestFinal(a, Out{Buf: make([]byte, 8)})
	require.ErrorIs(t, err, ck.CKR_BUFFER_TOO_SMALL)
	check(b, "another session while one waits for a larger buffer")
	out := make([]byte, 32)
	n, err := m.DigestFinal(a, Out{Buf: out})
	require.NoError(t, err)
	assert.Equal(t, want256[:], out[:n], "the held digest")

	// Cut short: the session closes with data in its digest.
	c := openRW(t, m)
	require.NoError(t, m.DigestInit(c, Mechanism{Type: ck.CKM_SHA256}))
	require.NoError(t, m.DigestUpdate(c, []byte("abandoned")))
	require.NoError(t, m.CloseSession(c))
	check(a, "after a session closed mid-digest")
	check(b, "another session after a session closed mid-digest")
}

// TestDigestKeyStateNotPooled: a hash state that digested a key's value
// (C_DigestKey) is not pooled for the next C_DigestInit
// (mechanisms.SecretDigester), so each such digest makes a new state
// where a digest without a key allocates nothing (TestDigestAllocs).
func TestDigestKeyStateNotPooled(t *testing.T) {
	testenv.NoAllocCount(t)
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	key, err := m.CreateObject(h, attrs.Template{
		ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY)), ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_GENERIC_SECRET)),
		ck.CKA_VALUE: []byte("a key whose tail stays in the block buffer"), ck.CKA_SENSITIVE: attrs.Bool(false), ck.CKA_EXTRACTABLE: attrs.Bool(true)})
	require.NoError(t, err)
	out := Out{Buf: make([]byte, 32)}
	digestKey := func() {
		if err := m.DigestInit(h, Mechanism{Type: ck.CKM_SHA256}); err != nil {
			panic(err)
		}
		if err := m.DigestKey(h, key); err != nil {
			panic(err)
		}
		if _, err := m.DigestFinal(h, out); err != nil {
			panic(err)
		}
	}
	digestKey()
	assert.NotZero(t, testing.AllocsPerRun(50, digestKey), "the state that digested the key served the next C_DigestInit")
}
