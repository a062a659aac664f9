package store

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestUserSecrets(t *testing.T) {
	sec, pub, err := NewUserSecret()
	require.NoError(t, err)
	require.Len(t, sec, UserSecretSize)
	kr, err := NewKeyring(sec)
	require.NoError(t, err)
	assert.Equal(t, pub, kr.Public())

	salt := NewSalt()
	kek := DeriveKEK([]byte("pw"), salt, testKDF)
	w, err := WrapUserSecret(kek, sec, "alice")
	require.NoError(t, err)
	got, err := UnwrapUserSecret(kek, w, "alice")
	require.NoError(t, err)
	assert.Equal(t, sec, got)
	_, err = UnwrapUserSecret(kek, w, "bob")
	assert.ErrorIs(t, err, ErrWrongPassword, "bound to the user name")
	_, err = UnwrapUserSecret(DeriveKEK([]byte("px"), salt, testKDF), w, "alice")
	assert.ErrorIs(t, err, ErrWrongPassword)
	_, err = UnwrapTokenKey(kek, w, "alice")
	assert.ErrorIs(t, err, ErrWrongPassword, "a v2 secret is no v1 token key")

	// Escrow: sealed for one user name, opened by the escrow only.
	esec, epub, err := NewUserSecret()
	require.NoError(t, err)
	ekr, err := NewKeyring(esec)
	require.NoError(t, err)
	e, err := SealEscrow(epub, sec, "alice")
	require.NoError(t, err)
	got, err = ekr.OpenEscrow(e, "alice")
	require.NoError(t, err)
	assert.Equal(t, sec, got)
	_, err = ekr.OpenEscrow(e, "bob")
	assert.ErrorIs(t, err, ErrSealed)
	_, err = kr.OpenEscrow(e, "alice")
	assert.ErrorIs(t, err, ErrSealed)

	// Legacy copies open with the token key only.
	tk := NewTokenKey()
	l, err := SealLegacy(tk, sec, "alice")
	require.NoError(t, err)
	got, err = OpenLegacy(tk, l, "alice")
	require.NoError(t, err)
	assert.Equal(t, sec, got)
	_, err = OpenLegacy(NewTokenKey(), l, "alice")
	assert.ErrorIs(t, err, ErrSealed)
	_, err = OpenLegacy(tk, l, "bob")
	assert.ErrorIs(t, err, ErrSealed)

	_, err = NewKeyring(sec[:31])
	assert.Error(t, err)
}

func TestDataKeyCopies(t *testing.T) {
	asec, _, err := NewUserSecret()
	require.NoError(t, err)
	alice, err := NewKeyring(asec)
	require.NoError(t, err)
	bsec, bpub, err := NewUserSecret()
	require.NoError(t, err)
	bob, err := NewKeyring(bsec)
	require.NoError(t, err)
	dk := NewDataKey()

	own := alice.WrapOwnDataKey(dk, "uid-1", "alice")
	got, err := alice.OpenDataKey(own, "uid-1", "alice", true)
	require.NoError(t, err)
	assert.Equal(t, dk, got)
	for _, c := range []struct {
		kr        *Keyring
		uid, user string
		owner     bool
		why       string
	}{
		{bob, "uid-1", "alice", true, "another user's secret"},
		{alice, "uid-2", "alice", true, "another object"},
		{alice, "uid-1", "bob", true, "another holder"},
		{alice, "uid-1", "alice", false, "not an HPKE copy"},
	} {
		_, err := c.kr.OpenDataKey(own, c.uid, c.user, c.owner)
		assert.ErrorIs(t, err, ErrSealed, c.why)
	}

	shared, err := SealDataKey(bpub, dk, "uid-1", "bob")
	require.NoError(t, err)
	got, err = bob.OpenDataKey(shared, "uid-1", "bob", false)
	require.NoError(t, err)
	assert.Equal(t, dk, got)
	_, err = alice.OpenDataKey(shared, "uid-1", "bob", false)
	assert.ErrorIs(t, err, ErrSealed)
	_, err = bob.OpenDataKey(shared, "uid-2", "bob", false)
	assert.ErrorIs(t, err, ErrSealed)
	bad := append([]byte{}, shared...)
	bad[len(bad)-1] ^= 1
	_, err = bob.OpenDataKey(bad, "uid-1", "bob", false)
	assert.ErrorIs(t, err, ErrSealed)
	_, err = bob.OpenDataKey(nil, "uid-1", "bob", false)
	assert.ErrorIs(t, err, ErrSealed)
	_, err = SealDataKey([]byte("not a key"), dk, "uid-1", "bob")
	assert.Error(t, err)
}

func BenchmarkSealDataKey(b *testing.B) {
	_, pub, err := NewUserSecret()
	require.NoError(b, err)
	dk := NewDataKey()
	for b.Loop() {
		if _, err := SealDataKey(pub, dk, "uid", "bob"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenDataKey(b *testing.B) {
	sec, pub, err := NewUserSecret()
	require.NoError(b, err)
	kr, err := NewKeyring(sec)
	require.NoError(b, err)
	w, err := SealDataKey(pub, NewDataKey(), "uid", "bob")
	require.NoError(b, err)
	for b.Loop() {
		if _, err := kr.OpenDataKey(w, "uid", "bob", false); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenOwnDataKey(b *testing.B) {
	sec, _, err := NewUserSecret()
	require.NoError(b, err)
	kr, err := NewKeyring(sec)
	require.NoError(b, err)
	w := kr.WrapOwnDataKey(NewDataKey(), "uid", "alice")
	for b.Loop() {
		if _, err := kr.OpenDataKey(w, "uid", "alice", true); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNewKeyring(b *testing.B) {
	sec, _, err := NewUserSecret()
	require.NoError(b, err)
	for b.Loop() {
		if _, err := NewKeyring(sec); err != nil {
			b.Fatal(err)
		}
	}
}
