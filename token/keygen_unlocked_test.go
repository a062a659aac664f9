package token

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token/attrs"
)

// TestKeyWriteLeavesTheSlotUnlocked: a token key's store write runs with
// the slot's lock released, so other sessions of the process go on (and
// their key writes reach the store's group commit) meanwhile; a logout
// waits for it, so the key is stored before the login that made it ends,
// and the key is usable by its handle once made. (Before: the slot's lock
// was held across the write.)
func TestKeyWriteLeavesTheSlotUnlocked(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	s, cs := countOn(t, m)

	var free []bool
	cs.beforeCreate = func() {
		ok := s.mu.TryLock()
		if ok {
			s.mu.Unlock()
		}
		free = append(free, ok)
	}
	k, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, attrs.Template{ck.CKA_TOKEN: attrs.Bool(true),
		ck.CKA_VALUE_LEN: attrs.ULong(32), ck.CKA_ENCRYPT: attrs.Bool(true)})
	require.NoError(t, err)
	_, _, err = m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN},
		attrs.Template{ck.CKA_TOKEN: attrs.Bool(true), ck.CKA_EC_PARAMS: p256Params},
		attrs.Template{ck.CKA_TOKEN: attrs.Bool(true), ck.CKA_SIGN: attrs.Bool(true)})
	require.NoError(t, err)
	assert.Equal(t, []bool{true, true}, free, "slot lock free during the store write")
	require.NoError(t, m.EncryptInit(h, Mechanism{Type: ck.CKM_AES_ECB}, k))
	_, err = m.Encrypt(h, make([]byte, 16), Out{Buf: make([]byte, 16)})
	require.NoError(t, err)
	// A token object's destroy too; the handle is gone once it returns.
	free = nil
	cs.beforeDelete = cs.beforeCreate
	require.NoError(t, m.DestroyObject(h, k))
	assert.Equal(t, []bool{true}, free, "slot lock free during the destroy's store write")
	assert.ErrorIs(t, m.EncryptInit(h, Mechanism{Type: ck.CKM_AES_ECB}, k), ck.CKR_KEY_HANDLE_INVALID)
	cs.beforeDelete = nil

	// A logout while a key write is in the store waits for it.
	entered, release := make(chan struct{}), make(chan struct{})
	cs.beforeCreate = func() {
		close(entered)
		<-release
	}
	h2 := openRW(t, m)
	var wg sync.WaitGroup
	wg.Add(1)
	var genErr error
	go func() {
		defer wg.Done()
		_, genErr = m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, attrs.Template{ck.CKA_TOKEN: attrs.Bool(true),
			ck.CKA_VALUE_LEN: attrs.ULong(32), ck.CKA_LABEL: []byte("in flight"), ck.CKA_PRIVATE: attrs.Bool(true)})
	}()
	<-entered
	loggedOut := make(chan error, 1)
	go func() { loggedOut <- m.Logout(h2) }()
	select {
	case err := <-loggedOut:
		t.Fatalf("logout returned (%v) while a key write of its login was in the store", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	wg.Wait()
	require.NoError(t, genErr)
	require.NoError(t, <-loggedOut)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	require.NoError(t, m.FindObjectsInit(h, attrs.Template{ck.CKA_LABEL: []byte("in flight")}))
	found, err := m.FindObjects(h, 10)
	require.NoError(t, err)
	assert.Len(t, found, 1)
}

// TestConcurrentTokenKeyGeneration: sessions making token keys at once
// (their writes grouped in the store) each get their own keys, usable and
// there for another opening of the token.
func TestConcurrentTokenKeyGeneration(t *testing.T) {
	m, dir := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	const sessions, each = 4, 25
	hs := make([][]ck.ULong, sessions)
	var wg sync.WaitGroup
	for i := range sessions {
		se := openRW(t, m)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				k, err := m.GenerateKey(se, Mechanism{Type: ck.CKM_AES_KEY_GEN}, attrs.Template{ck.CKA_TOKEN: attrs.Bool(true),
					ck.CKA_VALUE_LEN: attrs.ULong(32), ck.CKA_ENCRYPT: attrs.Bool(true), ck.CKA_PRIVATE: attrs.Bool(true),
					ck.CKA_LABEL: []byte("conc")})
				if !assert.NoError(t, err) {
					return
				}
				hs[i] = append(hs[i], k)
			}
		}()
	}
	wg.Wait()
	seen := map[ck.ULong]bool{}
	for _, l := range hs {
		require.Len(t, l, each)
		for _, k := range l {
			assert.False(t, seen[k], "handle %d twice", k)
			seen[k] = true
			require.NoError(t, m.EncryptInit(h, Mechanism{Type: ck.CKM_AES_ECB}, k))
			_, err := m.Encrypt(h, make([]byte, 16), Out{Buf: make([]byte, 16)})
			require.NoError(t, err)
		}
	}
	m2, err := Open(testConfig(t, dir))
	require.NoError(t, err)
	defer m2.Close()
	h2, err := m2.OpenSession(3, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	require.NoError(t, err)
	require.NoError(t, m2.Login(h2, ck.CKU_USER, []byte(userPIN)))
	require.NoError(t, m2.FindObjectsInit(h2, attrs.Template{ck.CKA_LABEL: []byte("conc")}))
	found, err := m2.FindObjects(h2, 1000)
	require.NoError(t, err)
	assert.Len(t, found, sessions*each)
}
