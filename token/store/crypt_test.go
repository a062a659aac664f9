package store

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
)

func TestTokenKeyWrap(t *testing.T) {
	tk := NewTokenKey()
	require.Len(t, tk, TokenKeySize)
	assert.NotEqual(t, tk, NewTokenKey())

	salt := NewSalt()
	kek := DeriveKEK([]byte("correct horse"), salt, testKDF)
	require.Len(t, kek, TokenKeySize)
	assert.Equal(t, kek, DeriveKEK([]byte("correct horse"), salt, testKDF), "deterministic")
	assert.NotEqual(t, kek, DeriveKEK([]byte("correct horse"), NewSalt(), testKDF), "salted")
	assert.NotEqual(t, kek, DeriveKEK([]byte("correct horse"), salt, KDFParams{Time: 2, Memory: 64, Threads: 1}), "cost is an input")

	w, err := WrapTokenKey(kek, tk, "alice")
	require.NoError(t, err)
	assert.Len(t, w, 12+TokenKeySize+16)
	w2, err := WrapTokenKey(kek, tk, "alice")
	require.NoError(t, err)
	assert.NotEqual(t, w, w2, "random nonce")

	got, err := UnwrapTokenKey(kek, w, "alice")
	require.NoError(t, err)
	assert.Equal(t, tk, got)

	_, err = UnwrapTokenKey(DeriveKEK([]byte("wrong"), salt, testKDF), w, "alice")
	assert.ErrorIs(t, err, ErrWrongPassword)
	_, err = UnwrapTokenKey(kek, w, "bob")
	assert.ErrorIs(t, err, ErrWrongPassword, "bound to the user name")
	bad := bytes.Clone(w)
	bad[len(bad)-1] ^= 1
	_, err = UnwrapTokenKey(kek, bad, "alice")
	assert.ErrorIs(t, err, ErrWrongPassword)
	_, err = UnwrapTokenKey(kek, w[:10], "alice")
	assert.ErrorIs(t, err, ErrWrongPassword)
	_, err = WrapTokenKey(kek[:16], tk, "alice")
	assert.Error(t, err, "AES-256 only")
}

func TestKDFValidate(t *testing.T) {
	assert.NoError(t, DefaultKDF.Validate())
	assert.NoError(t, testKDF.Validate())
	assert.Error(t, KDFParams{}.Validate())
	assert.Error(t, KDFParams{Time: 1, Memory: 8, Threads: 2}.Validate())
	// The bounds: the largest of each alone, the cost cap, and one past
	// each (a record with kdf_memory 2^32-1 crashed the host, one with
	// kdf_time 2^32-1 never returned).
	assert.NoError(t, KDFParams{Time: MaxKDFTime, Memory: MaxKDFCost / MaxKDFTime, Threads: 1}.Validate())
	assert.NoError(t, KDFParams{Time: 1, Memory: MaxKDFMemory, Threads: MaxKDFThreads}.Validate())
	for _, p := range []KDFParams{
		{Time: MaxKDFTime + 1, Memory: 64, Threads: 1},
		{Time: 1, Memory: MaxKDFMemory + 1, Threads: 1},
		{Time: 1, Memory: 1 << 10, Threads: MaxKDFThreads + 1},
		{Time: 2, Memory: MaxKDFMemory, Threads: 1},
		{Time: 1<<32 - 1, Memory: 64, Threads: 1},
		{Time: 1, Memory: 1<<32 - 1, Threads: 1},
		{Time: 1, Memory: 1<<32 - 1, Threads: 255},
	} {
		assert.ErrorIs(t, p.Validate(), ErrKDFParams, "%+v", p)
	}
}

func TestSealAttr(t *testing.T) {
	tk := NewTokenKey()
	secret := []byte("private exponent")
	sealed, err := SealAttr(tk, "uid-1", ck.CKA_PRIVATE_EXPONENT, secret)
	require.NoError(t, err)
	assert.NotContains(t, string(sealed), string(secret))

	got, err := OpenAttr(tk, "uid-1", ck.CKA_PRIVATE_EXPONENT, sealed)
	require.NoError(t, err)
	assert.Equal(t, secret, got)

	_, err = OpenAttr(tk, "uid-2", ck.CKA_PRIVATE_EXPONENT, sealed)
	assert.ErrorIs(t, err, ErrSealed, "moved to another object")
	_, err = OpenAttr(tk, "uid-1", ck.CKA_PRIME_1, sealed)
	assert.ErrorIs(t, err, ErrSealed, "moved to another attribute")
	_, err = OpenAttr(NewTokenKey(), "uid-1", ck.CKA_PRIVATE_EXPONENT, sealed)
	assert.ErrorIs(t, err, ErrSealed, "other token")
	bad := bytes.Clone(sealed)
	bad[15] ^= 0x80
	_, err = OpenAttr(tk, "uid-1", ck.CKA_PRIVATE_EXPONENT, bad)
	assert.ErrorIs(t, err, ErrSealed, "tampered")
	_, err = OpenAttr(tk, "uid-1", ck.CKA_PRIVATE_EXPONENT, nil)
	assert.ErrorIs(t, err, ErrSealed)

	// The unique ID cannot slide into the type: ("1", t) and ("", t') differ.
	s, err := NewSealer(tk)
	require.NoError(t, err)
	assert.NotEqual(t, attrAAD("1x", 1), attrAAD("x", 0x0100000000000000|1))
	empty := s.Seal("u", ck.CKA_VALUE, nil)
	got, err = s.Open("u", ck.CKA_VALUE, empty)
	require.NoError(t, err)
	assert.Empty(t, got)

	_, err = NewSealer(tk[:31])
	assert.Error(t, err)
}

// TestNoPlaintextAtRest writes secrets the way the token layer will (sealed
// before they reach the store) and scans every file of the token directory,
// WAL and shared memory included, for the secret bytes.
func TestNoPlaintextAtRest(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	password := []byte("alice's password")
	tk := NewTokenKey()
	salt := NewSalt()
	kek := DeriveKEK(password, salt, testKDF)
	wk, err := WrapTokenKey(kek, tk, "alice")
	require.NoError(t, err)
	admin := user("admin", RoleCO)
	require.NoError(t, s.InitToken(TokenRecord{Label: "t"}, admin))
	require.NoError(t, s.CreateUser(UserRecord{Name: "alice", Role: RoleCU, KDF: testKDF, Salt: salt, WrappedKey: wk}))

	sealer, err := NewSealer(tk)
	require.NoError(t, err)
	secrets := [][]byte{
		[]byte("SECRET-AES-KEY-VALUE-0123456789!"),
		[]byte("SECRET-RSA-PRIVATE-EXPONENT-BYTES-abcdefghijklmnop"),
	}
	var ids []int64
	for i, sec := range secrets {
		uid := "secret-" + string(rune('a'+i))
		o, err := s.CreateObject(ObjectRecord{UniqueID: uid, Owner: "alice", Private: true,
			Attrs:  map[ck.AttributeType][]byte{ck.CKA_LABEL: []byte("visible label")},
			Sealed: map[ck.AttributeType][]byte{ck.CKA_VALUE: sealer.Seal(uid, ck.CKA_VALUE, sec)}})
		require.NoError(t, err)
		ids = append(ids, o.ID)
	}

	scan := func(when string) {
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		var names []string
		sawLabel := false
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			require.NoError(t, err)
			names = append(names, e.Name())
			for _, needle := range append(secrets, tk, password, kek) {
				assert.False(t, bytes.Contains(b, needle), "%s: %s holds secret %q", when, e.Name(), needle)
			}
			sawLabel = sawLabel || bytes.Contains(b, []byte("visible label"))
		}
		// The scan must see the data it scans for, or it proves nothing.
		assert.True(t, sawLabel, "%s: plaintext label not found in %v", when, names)
	}
	// While open the data sits in token.db-wal.
	require.FileExists(t, filepath.Join(dir, DBName+"-wal"))
	scan("open")

	// Round trip through the store.
	for i, id := range ids {
		o, err := s.Object(id)
		require.NoError(t, err)
		got, err := sealer.Open(o.UniqueID, ck.CKA_VALUE, o.Sealed[ck.CKA_VALUE])
		require.NoError(t, err)
		assert.Equal(t, secrets[i], got)
	}
	require.NoError(t, s.Close())
	scan("closed")
}

func BenchmarkDeriveKEKDefault(b *testing.B) {
	salt := NewSalt()
	for b.Loop() {
		DeriveKEK([]byte("password"), salt, DefaultKDF)
	}
}

func BenchmarkSealerSeal32(b *testing.B) {
	s, err := NewSealer(NewTokenKey())
	require.NoError(b, err)
	v := make([]byte, 32)
	for b.Loop() {
		s.Seal("unique-id", ck.CKA_VALUE, v)
	}
}

func BenchmarkSealerOpen32(b *testing.B) {
	s, err := NewSealer(NewTokenKey())
	require.NoError(b, err)
	sealed := s.Seal("unique-id", ck.CKA_VALUE, make([]byte, 32))
	for b.Loop() {
		if _, err := s.Open("unique-id", ck.CKA_VALUE, sealed); err != nil {
			b.Fatal(err)
		}
	}
}
