package token

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token/attrs"
)

// useAESAndHMAC leaves what key use leaves behind: an AES-GCM encryption
// and an HMAC signature on one session (parsed and prepared keys in the
// slot, an active operation and the last key in the session); it returns
// the slot's cached AES key bytes.
func useAESAndHMAC(t *testing.T, m *Module, h ck.ULong) []byte {
	t.Helper()
	aes, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("aes", true))
	require.NoError(t, err)
	mac, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_GENERIC_SECRET_KEY_GEN}, attrs.Template{
		ck.CKA_VALUE_LEN: attrs.ULong(32), ck.CKA_TOKEN: attrs.Bool(true), ck.CKA_SIGN: attrs.Bool(true)})
	require.NoError(t, err)
	require.NoError(t, m.EncryptInit(h, Mechanism{Type: ck.CKM_AES_GCM, Param: gcmParamsValue()}, aes))
	_, err = m.Encrypt(h, []byte("secret data"), Out{Buf: make([]byte, 64)})
	require.NoError(t, err)
	for range 2 {
		require.NoError(t, m.SignInit(h, Mechanism{Type: ck.CKM_SHA256_HMAC}, mac))
		_, err = m.Sign(h, []byte("data"), Out{Buf: make([]byte, 32)})
		require.NoError(t, err)
	}
	// An operation left active, as a client that logs out mid-way does.
	require.NoError(t, m.EncryptInit(h, Mechanism{Type: ck.CKM_AES_GCM, Param: gcmParamsValue()}, aes))
	s, err := m.Slot(3)
	require.NoError(t, err)
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.keys[aes].key.([]byte)
	require.True(t, ok, "the AES key is cached as bytes")
	require.Len(t, b, 32)
	return b
}

// TestLogoutForgetsKeys: after C_Logout the slot holds no parsed key,
// loaded object, kept operation or remembered key, and the cached secret
// key bytes are zero.
func TestLogoutForgetsKeys(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	key := useAESAndHMAC(t, m, h)
	s, _ := m.Slot(3)
	keys, objs, ops, fast := s.testOnlyKeyRefs()
	require.True(t, keys > 0 && objs > 0 && ops > 0 && fast > 0, "before logout: keys %d objs %d ops %d fast %d", keys, objs, ops, fast)

	require.NoError(t, m.Logout(h))
	keys, objs, ops, fast = s.testOnlyKeyRefs()
	require.Equal(t, [4]int{}, [4]int{keys, objs, ops, fast}, "after logout: keys, objects, operations, session keys")
	require.True(t, bytes.Equal(key, make([]byte, 32)), "AES key bytes after logout: %x", key)
}

// TestFinalizeForgetsKeys: C_Finalize (Module.Close) with a user logged in
// leaves the same nothing, and with nobody logged in drops the public keys
// it parsed.
func TestFinalizeForgetsKeys(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	key := useAESAndHMAC(t, m, h)
	pub, _, err := m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN},
		attrs.Template{ck.CKA_EC_PARAMS: []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07},
			ck.CKA_TOKEN: attrs.Bool(true), ck.CKA_VERIFY: attrs.Bool(true)},
		attrs.Template{ck.CKA_TOKEN: attrs.Bool(true), ck.CKA_SIGN: attrs.Bool(true)})
	require.NoError(t, err)
	require.NoError(t, m.Logout(h))
	// A public session verifies with the public key: the slot parses it.
	require.NoError(t, m.VerifyInit(h, Mechanism{Type: ck.CKM_ECDSA}, pub))
	require.Error(t, m.Verify(h, make([]byte, 32), make([]byte, 64)))
	s, _ := m.Slot(3)
	keys, _, _, _ := s.testOnlyKeyRefs()
	require.Positive(t, keys, "the public key is cached")

	require.NoError(t, m.Close())
	keys, objs, ops, fast := s.testOnlyKeyRefs()
	require.Equal(t, [4]int{}, [4]int{keys, objs, ops, fast}, "after finalize: keys, objects, operations, session keys")
	require.True(t, bytes.Equal(key, make([]byte, 32)), "AES key bytes: %x", key)
}

// TestCloseLastSessionDropsKeys: closing the last session logs out and
// drops every reference, but leaves the bytes alone: a call may still be
// running on the session just closed (another thread's), and nothing
// tells it apart once the session is gone.
func TestCloseLastSessionDropsKeys(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	key := useAESAndHMAC(t, m, h)
	want := bytes.Clone(key)
	require.NoError(t, m.CloseSession(h))
	s, _ := m.Slot(3)
	keys, objs, _, _ := s.testOnlyKeyRefs()
	require.Equal(t, [2]int{}, [2]int{keys, objs}, "after the last session closed: keys, objects")
	require.Equal(t, want, key, "the key bytes a closed session may still use")
}
