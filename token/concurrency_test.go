package token

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token/attrs"
)

// BenchmarkSignHMAC64 is C_SignInit + C_Sign of CKM_SHA256_HMAC over 64
// bytes below the C boundary, one session per goroutine (-cpu 1,2 shows
// what the token layer itself does to 2-session scaling; -benchmem its
// allocations).
func BenchmarkSignHMAC64(b *testing.B) {
	m, _ := newToken(b)
	h := openRW(b, m)
	require.NoError(b, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	key, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_GENERIC_SECRET_KEY_GEN}, attrs.Template{
		ck.CKA_VALUE_LEN: attrs.ULong(32), ck.CKA_TOKEN: attrs.Bool(true), ck.CKA_SIGN: attrs.Bool(true)})
	require.NoError(b, err)
	benchSign(b, m, ck.CKM_SHA256_HMAC, key, make([]byte, 64), 32)
}

// benchSign runs C_SignInit + C_Sign of mech with key over in, one
// session per goroutine, into a reused buffer of outLen bytes.
func benchSign(b *testing.B, m *Module, mech ck.MechanismType, key ck.ULong, in []byte, outLen int) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		se, err := m.OpenSession(3, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION) // R/W: the cloudhsm profile refuses R/O sessions
		require.NoError(b, err)
		out := make([]byte, outLen)
		for pb.Next() {
			if err := m.SignInit(se, Mechanism{Type: mech}, key); err != nil {
				b.Fatal(err)
			}
			if _, err := m.Sign(se, in, Out{Buf: out}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestConcurrentMACs: sessions MAC and verify with one key at once; every
// MAC equals crypto/hmac's. Operations reuse their memory (the session's
// operation slots, the prepared key's pool of HMAC states), so a slot or
// state handed to two operations at once would show here (and under -race).
func TestConcurrentMACs(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	value := []byte("0123456789abcdef0123456789abcdef")
	key, err := m.CreateObject(h, attrs.Template{
		ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY)), ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_GENERIC_SECRET)),
		ck.CKA_VALUE: value, ck.CKA_TOKEN: attrs.Bool(false), ck.CKA_SIGN: attrs.Bool(true), ck.CKA_VERIFY: attrs.Bool(true)})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			se, err := m.OpenSession(3, ck.CKF_SERIAL_SESSION)
			if !assert.NoError(t, err) {
				return
			}
			out := make([]byte, 32)
			for i := 0; i < 500; i++ {
				msg := []byte(fmt.Sprintf("goroutine %d message %d", g, i))
				mac := hmac.New(sha256.New, value)
				mac.Write(msg)
				want := mac.Sum(nil)
				if !assert.NoError(t, m.SignInit(se, Mechanism{Type: ck.CKM_SHA256_HMAC}, key)) {
					return
				}
				n, err := m.Sign(se, msg, Out{Buf: out})
				if !assert.NoError(t, err) || !assert.Equal(t, want, out[:n]) {
					return
				}
				if !assert.NoError(t, m.VerifyInit(se, Mechanism{Type: ck.CKM_SHA256_HMAC}, key)) {
					return
				}
				if !assert.NoError(t, m.Verify(se, msg, want)) {
					return
				}
				// A failed verification ends its operation and returns its state too.
				require.NoError(t, m.VerifyInit(se, Mechanism{Type: ck.CKM_SHA256_HMAC}, key))
				assert.ErrorIs(t, m.Verify(se, msg, out[:n-1]), ck.CKR_SIGNATURE_LEN_RANGE)
			}
		}()
	}
	wg.Wait()
}

// TestRememberedKeyFollowsChanges: a session that used a key keeps it
// without the slot's lock (Session.fastKey) only while nothing changed:
// an attribute change, a logout, a destroy, and a change made by another
// module on the same token (another process) each end it at once.
func TestRememberedKeyFollowsChanges(t *testing.T) {
	m, dir := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	gen := func() ck.ULong {
		k, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_GENERIC_SECRET_KEY_GEN}, attrs.Template{
			ck.CKA_VALUE_LEN: attrs.ULong(32), ck.CKA_TOKEN: attrs.Bool(true), ck.CKA_SIGN: attrs.Bool(true)})
		require.NoError(t, err)
		return k
	}
	mech := Mechanism{Type: ck.CKM_SHA256_HMAC}
	use := func(k ck.ULong) error {
		err := m.SignInit(h, mech, k)
		if err == nil {
			_, err = m.Sign(h, []byte("x"), Out{Buf: make([]byte, 32)})
		}
		return err
	}

	key := gen()
	require.NoError(t, use(key)) // the slow path fills the slot's caches
	require.NoError(t, use(key)) // the fast path remembers the key in the session
	require.NoError(t, m.SetAttributeValue(h, key, attrs.Template{ck.CKA_SIGN: attrs.Bool(false)}))
	require.ErrorIs(t, use(key), ck.CKR_KEY_FUNCTION_NOT_PERMITTED, "after CKA_SIGN=false")

	key = gen()
	require.NoError(t, use(key))
	require.NoError(t, use(key))    // now remembered
	require.NoError(t, m.Logout(h)) // changes the slot, not the store
	require.ErrorIs(t, use(key), ck.CKR_KEY_HANDLE_INVALID, "after logout (a private key is invisible)")
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	require.NoError(t, use(key))
	require.NoError(t, use(key))
	require.NoError(t, m.DestroyObject(h, key))
	require.ErrorIs(t, use(key), ck.CKR_KEY_HANDLE_INVALID, "after destroy")

	// Another module on the same token directory: another process.
	key = gen()
	require.NoError(t, use(key))
	require.NoError(t, use(key))
	m2, err := Open(testConfig(t, dir))
	require.NoError(t, err)
	defer m2.Close()
	h2 := openRW(t, m2)
	require.NoError(t, m2.Login(h2, ck.CKU_USER, []byte(userPIN)))
	require.NoError(t, m2.DestroyObject(h2, key)) // changes the store, not this slot
	require.ErrorIs(t, use(key), ck.CKR_KEY_HANDLE_INVALID, "after another process destroyed it")
}

// TestSessionTableOverflow: handles whose slot a live session holds go to
// the overflow map, and every session is found, closed and gone as
// expected whichever way it was stored.
func TestSessionTableOverflow(t *testing.T) {
	var tab sessionTable
	var live []*Session
	for _, h := range []ck.ULong{7, 7 + sessionSlots, 7 + 2*sessionSlots, 8} {
		se := &Session{h: h}
		tab.store(se)
		live = append(live, se)
	}
	for _, se := range live {
		got, ok := tab.load(se.h)
		require.True(t, ok, "handle %d", se.h)
		require.Same(t, se, got)
	}
	_, ok := tab.load(7 + 3*sessionSlots)
	require.False(t, ok, "a handle never stored")
	// Deleting the slot's holder frees the slot; the overflowed ones stay found.
	tab.delete(live[0])
	_, ok = tab.load(7)
	require.False(t, ok)
	for _, se := range live[1:] {
		got, ok := tab.load(se.h)
		require.True(t, ok, "handle %d after the slot's holder closed", se.h)
		require.Same(t, se, got)
	}
	tab.delete(live[1])
	_, ok = tab.load(live[1].h)
	require.False(t, ok, "an overflowed session deleted")
	tab.clear(7 + 2*sessionSlots)
	for _, se := range live {
		_, ok := tab.load(se.h)
		require.False(t, ok, "cleared")
	}
}

// TestSessionTableClearUpToLast: clear, told the last handle handed out,
// removes every session, the one in the last used slot included, before
// and after the handles wrap around the table.
func TestSessionTableClearUpToLast(t *testing.T) {
	for _, last := range []ck.ULong{1, 2, 300, sessionSlots - 1, sessionSlots, sessionSlots + 5} {
		var tab sessionTable
		var live []*Session
		for _, h := range []ck.ULong{1, last / 2, last - 1, last} {
			if h == 0 {
				continue
			}
			se := &Session{h: h}
			tab.store(se)
			live = append(live, se)
		}
		tab.clear(last)
		for _, se := range live {
			_, ok := tab.load(se.h)
			require.False(t, ok, "handle %d of %d cleared", se.h, last)
		}
	}
}

// TestSessionsOpenAndCloseConcurrently: goroutines open and close sessions
// at once (the table's compare-and-swaps); each sees only its own.
func TestSessionsOpenAndCloseConcurrently(t *testing.T) {
	m, _ := newToken(t)
	_ = openRW(t, m) // one session stays open throughout
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				h, err := m.OpenSession(3, ck.CKF_SERIAL_SESSION)
				if !assert.NoError(t, err) {
					return
				}
				se, err := m.session(h)
				if !assert.NoError(t, err) || !assert.Equal(t, h, se.h) {
					return
				}
				if !assert.NoError(t, m.CloseSession(h)) {
					return
				}
				_, err = m.session(h)
				if !assert.ErrorIs(t, err, ck.CKR_SESSION_HANDLE_INVALID) {
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestSessionKeepsOffNeighboursCacheLines: every call writes its session
// (the lock, the operation), and sessions are allocated side by side, so a
// session's fields must not share a cache line with whatever the allocator
// put next to it: at least a cache line of padding before the first field
// and after the last (without it, 2-session HMAC missed on se.h and
// se.fastKey on every call).
func TestSessionKeepsOffNeighboursCacheLines(t *testing.T) {
	const line = 64
	typ := reflect.TypeFor[Session]()
	first, end := typ.Size(), uintptr(0)
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.Name == "_" {
			continue
		}
		first = min(first, f.Offset)
		end = max(end, f.Offset+f.Type.Size())
	}
	assert.GreaterOrEqual(t, int(first), line, "padding before the first field")
	assert.GreaterOrEqual(t, int(typ.Size()-end), line, "padding after the last field")
}

// BenchmarkSignECDSAP256 is C_SignInit + C_Sign of CKM_ECDSA (a 32-byte
// hash) with a token P-256 key below the C boundary, one session per
// goroutine: with libcrypto available, the path p11bench's ecdsa-p256
// times, without the C boundary (-benchmem: what each signature leaves
// for the collector).
func BenchmarkSignECDSAP256(b *testing.B) {
	m, _ := newToken(b)
	h := openRW(b, m)
	require.NoError(b, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	_, key, err := m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN},
		attrs.Template{ck.CKA_TOKEN: attrs.Bool(true), ck.CKA_EC_PARAMS: p256Params, ck.CKA_VERIFY: attrs.Bool(true)},
		attrs.Template{ck.CKA_TOKEN: attrs.Bool(true), ck.CKA_PRIVATE: attrs.Bool(true), ck.CKA_SENSITIVE: attrs.Bool(true), ck.CKA_SIGN: attrs.Bool(true)})
	require.NoError(b, err)
	benchSign(b, m, ck.CKM_ECDSA, key, make([]byte, 32), 64)
}
