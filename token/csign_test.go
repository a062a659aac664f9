package token

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/internal/ossl"
	"gohsm/token/attrs"
)

// fakeCSign is a C side of C_Sign for tests: it keeps the records in Go
// and lets the test end an operation as a C_Sign answered in C would.
type fakeCSign struct {
	mu        sync.Mutex
	rec       map[ck.ULong]string // "ready", "idle" (ended in C), "returned"
	key       map[ck.ULong]uintptr
	sha256    map[ck.ULong]bool
	publishes int
	drops     map[ck.ULong]int
	full      bool // Publish refuses (another session's record)
}

func newFakeCSign() *fakeCSign {
	return &fakeCSign{rec: map[ck.ULong]string{}, key: map[ck.ULong]uintptr{}, sha256: map[ck.ULong]bool{}, drops: map[ck.ULong]int{}}
}

func (f *fakeCSign) Publish(h ck.ULong, key uintptr, sha256 bool) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.full {
		return false
	}
	f.publishes++
	f.rec[h], f.key[h], f.sha256[h] = "ready", key, sha256
	return true
}

func (f *fakeCSign) Settle(h ck.ULong) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch f.rec[h] {
	case "ready", "returned":
		f.rec[h] = "idle"
		return false
	case "idle":
		return true
	}
	return false
}

func (f *fakeCSign) Drop(h ck.ULong) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.rec[h]; ok {
		f.drops[h]++
	}
	delete(f.rec, h)
	delete(f.key, h)
}

// signInC is a C_Sign answered in C: it ends a ready record.
func (f *fakeCSign) signInC(t *testing.T, h ck.ULong) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	require.Equal(t, "ready", f.rec[h], "no operation in C to sign with")
	f.rec[h] = "idle"
}

func (f *fakeCSign) state(h ck.ULong) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rec[h]
}

func needLibcryptoP256(t *testing.T) {
	if !ossl.Cgo || ossl.Available() != nil {
		t.Skip("P-256 signs in Go without libcrypto: nothing to hand to C")
	}
}

func handedOp(t *testing.T, m *Module, h ck.ULong) bool {
	se, err := m.session(h)
	require.NoError(t, err)
	se.mu.Lock()
	defer se.mu.Unlock()
	return se.ops[opSign] != nil && se.ops[opSign].handed
}

// TestCSignHandOff: C_SignInit hands a CKM_ECDSA operation on a P-256
// libcrypto key to C, and the session's Go operation follows what C did
// with it: ended by a C_Sign there (C_Sign in Go: not initialised;
// C_SignInit: works), or taken back and continued in Go (C_SignInit
// again: CKR_OPERATION_ACTIVE, then a C_Sign in Go signs).
func TestCSignHandOff(t *testing.T) {
	needLibcryptoP256(t)
	m, h := clusterToken(t, t.TempDir(), "")
	f := newFakeCSign()
	m.SetCSign(f)
	pub, priv := ecKeyPair(t, m, h, "csign")
	ecdsa := Mechanism{Type: ck.CKM_ECDSA}
	digest := make([]byte, 32)

	require.NoError(t, m.SignInit(h, ecdsa, priv))
	assert.True(t, handedOp(t, m, h), "handed to C")
	assert.Equal(t, "ready", f.state(h))
	assert.NotZero(t, f.key[h], "the libcrypto key")
	f.signInC(t, h)
	_, err := m.Sign(h, digest, Out{Buf: make([]byte, 64)})
	assert.ErrorIs(t, err, ck.CKR_OPERATION_NOT_INITIALIZED, "C_Sign ended it in C")

	require.NoError(t, m.SignInit(h, ecdsa, priv), "C_SignInit after C ended the operation")
	f.signInC(t, h)
	require.NoError(t, m.SignInit(h, ecdsa, priv), "C_SignInit after C ended the operation, without a Go call between")

	// C_SignInit while C holds it: active, and Go continues it.
	assert.ErrorIs(t, m.SignInit(h, ecdsa, priv), ck.CKR_OPERATION_ACTIVE)
	assert.False(t, handedOp(t, m, h), "taken back")
	sig := make([]byte, 64)
	n, err := m.Sign(h, digest, Out{Buf: sig})
	require.NoError(t, err)
	require.NoError(t, m.VerifyInit(h, ecdsa, pub))
	require.NoError(t, m.Verify(h, digest, sig[:n]), "Go signed after taking it back")

	// Multi-part on a handed operation: Go's answer, and the operation ends.
	require.NoError(t, m.SignInit(h, ecdsa, priv))
	assert.ErrorIs(t, m.SignUpdate(h, digest), ck.CKR_FUNCTION_NOT_SUPPORTED)
	_, err = m.Sign(h, digest, Out{Buf: sig})
	assert.ErrorIs(t, err, ck.CKR_OPERATION_NOT_INITIALIZED)

	// C_SessionCancel ends it, in C too.
	require.NoError(t, m.SignInit(h, ecdsa, priv))
	require.NoError(t, m.SessionCancel(h, ck.CKF_SIGN))
	assert.Equal(t, "idle", f.state(h), "the record holds no operation")
	_, err = m.Sign(h, digest, Out{Buf: sig})
	assert.ErrorIs(t, err, ck.CKR_OPERATION_NOT_INITIALIZED)

	// A record C has no room for: the operation stays Go's.
	f.full = true
	require.NoError(t, m.SignInit(h, ecdsa, priv))
	assert.False(t, handedOp(t, m, h))
	_, err = m.Sign(h, digest, Out{Buf: sig})
	require.NoError(t, err)
	f.full = false

	// Closing the session drops its record; logging out drops every
	// session's.
	h2 := openRW(t, m)
	require.NoError(t, m.SignInit(h2, ecdsa, priv))
	require.NoError(t, m.CloseSession(h2))
	assert.Equal(t, 1, f.drops[h2], "C_CloseSession dropped the record")
	h3 := openRW(t, m)
	require.NoError(t, m.SignInit(h, ecdsa, priv))
	require.NoError(t, m.SignInit(h3, ecdsa, priv))
	require.NoError(t, m.Logout(h))
	assert.Equal(t, 1, f.drops[h], "C_Logout dropped the record")
	assert.Equal(t, 1, f.drops[h3], "C_Logout dropped the other session's record")
	assert.Empty(t, f.rec)
}

// TestCSignStaysInGo: the hand-off is decided at C_SignInit, and only
// when nothing else needs to see the C_Sign: a slot with a cluster
// (routing, budgets, fault injection; CloudHSM's default) or with its
// metrics on, a hashing mechanism but SHA-256, a key that needs a
// context-specific login, all keep the operation in Go. CloudHSM's profile without a
// cluster hands it over like the standard one: it counts no ECDSA input.
func TestCSignStaysInGo(t *testing.T) {
	needLibcryptoP256(t)
	ecdsa := Mechanism{Type: ck.CKM_ECDSA}
	for _, c := range []struct {
		name, lines string
		handed      bool
	}{
		{"standard", "", true},
		{"cloudhsm without a cluster", "profile = cloudhsm\ncluster = off", true},
		{"cloudhsm", "profile = cloudhsm", false},
		{"a cluster", "hsms = 2", false},
		{"metrics on", "metrics = on", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, h := clusterToken(t, t.TempDir(), c.lines)
			f := newFakeCSign()
			m.SetCSign(f)
			_, priv, err := m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN},
				attrs.Template{ck.CKA_EC_PARAMS: p256, ck.CKA_TOKEN: attrs.Bool(true)},
				attrs.Template{ck.CKA_TOKEN: attrs.Bool(true), ck.CKA_SIGN: attrs.Bool(true)})
			require.NoError(t, err)
			require.NoError(t, m.SignInit(h, ecdsa, priv))
			assert.Equal(t, c.handed, handedOp(t, m, h))
			assert.Equal(t, map[bool]int{true: 1, false: 0}[c.handed], f.publishes)
			_, err = m.Sign(h, make([]byte, 32), Out{Buf: make([]byte, 64)})
			require.NoError(t, err, "the Go path signs either way (the fake takes it back)")
		})
	}

	m, h := clusterToken(t, t.TempDir(), "")
	f := newFakeCSign()
	m.SetCSign(f)
	_, priv := ecKeyPair(t, m, h, "csign")
	require.NoError(t, m.SignInit(h, Mechanism{Type: ck.CKM_ECDSA_SHA384}, priv))
	assert.False(t, handedOp(t, m, h), "CKM_ECDSA_SHA384")
	require.NoError(t, m.SessionCancel(h, ck.CKF_SIGN))
	require.NoError(t, m.SignInit(h, Mechanism{Type: ck.CKM_ECDSA_SHA256}, priv))
	assert.True(t, handedOp(t, m, h), "CKM_ECDSA_SHA256")
	assert.True(t, f.sha256[h], "hashed with SHA-256 in C")
	require.NoError(t, m.SessionCancel(h, ck.CKF_SIGN))
	publishes := f.publishes

	_, auth, err := m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN},
		attrs.Template{ck.CKA_EC_PARAMS: p256, ck.CKA_TOKEN: attrs.Bool(false)},
		attrs.Template{ck.CKA_TOKEN: attrs.Bool(false), ck.CKA_SIGN: attrs.Bool(true), ck.CKA_ALWAYS_AUTHENTICATE: attrs.Bool(true)})
	require.NoError(t, err)
	require.NoError(t, m.SignInit(h, ecdsa, auth))
	assert.False(t, handedOp(t, m, h), "a CKA_ALWAYS_AUTHENTICATE key")
	assert.Equal(t, publishes, f.publishes)
}
