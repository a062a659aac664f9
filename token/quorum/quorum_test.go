package quorum

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
)

func TestValues(t *testing.T) {
	for v, ok := range map[int]bool{0: false, 1: true, 2: true, 8: true, 9: false, -1: false} {
		assert.Equal(t, ok, CheckValue(v) == nil, "value %d", v)
	}
	assert.NoError(t, CheckValues(map[Service]int{User: 2, Quorum: 2}))
	assert.NoError(t, CheckValues(map[Service]int{}))
	err := CheckValues(map[Service]int{User: 3, Quorum: 2})
	assert.ErrorIs(t, err, ck.CKR_ARGUMENTS_BAD, "user above quorum")
	assert.ErrorIs(t, CheckValues(map[Service]int{User: 2}), ck.CKR_ARGUMENTS_BAD, "quorum defaults to 1")
	assert.Equal(t, 1, Value(nil, User))
}

func TestLockout(t *testing.T) {
	w, err := Lockout(2, 3)
	assert.NoError(t, err)
	assert.Empty(t, w)
	w, err = Lockout(2, 2)
	assert.NoError(t, err)
	assert.Contains(t, w, "M+1")
	_, err = Lockout(3, 2)
	assert.ErrorIs(t, err, ck.CKR_ARGUMENTS_BAD, "nobody could approve")
	w, err = Lockout(1, 0)
	assert.NoError(t, err)
	assert.Empty(t, w)
}

func TestParseService(t *testing.T) {
	s, err := ParseService("key-usage", false)
	require.NoError(t, err)
	assert.True(t, s.Key())
	_, err = ParseService("cluster", false)
	assert.Error(t, err, "cluster only where the profile has it")
	s, err = ParseService("cluster", true)
	require.NoError(t, err)
	assert.True(t, s.Admin())
	_, err = ParseService("bogus", true)
	assert.ErrorIs(t, err, ck.CKR_ARGUMENTS_BAD)
	assert.Equal(t, []Service{User, Quorum}, Services(false))
}

func newKey(t *testing.T) (*rsa.PrivateKey, []byte) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	require.NoError(t, err)
	return k, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// TestSignatureIsOpenSSLs: a signature is what `openssl pkeyutl -sign
// -pkeyopt digest:sha256 -in token.bin` makes of the token (the SHA-256 of
// the approval data): EMSA-PKCS1-v1_5 with SHA-256's DigestInfo around the
// token itself, checked here by opening the signature with the public key.
func TestSignatureIsOpenSSLs(t *testing.T) {
	k, _ := newKey(t)
	approval := NewApprovalData()
	assert.LessOrEqual(t, len(approval), MaxApprovalData)
	sig, err := Sign(k, approval)
	require.NoError(t, err)
	m := new(big.Int).Exp(new(big.Int).SetBytes(sig), big.NewInt(int64(k.E)), k.N).FillBytes(make([]byte, 256))
	prefix := []byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}
	want := append(append([]byte{}, prefix...), Digest(approval)...)
	assert.True(t, bytes.HasSuffix(m, want), "DigestInfo(SHA-256, token)")
	assert.Equal(t, []byte{0, 1}, m[:2])
	require.NoError(t, Verify(&k.PublicKey, approval, sig))
	sig[10] ^= 1
	assert.ErrorIs(t, Verify(&k.PublicKey, approval, sig), ErrBadSig)
}

func TestParsePublicKey(t *testing.T) {
	_, p := newKey(t)
	pub, der, err := ParsePublicKey(p)
	require.NoError(t, err)
	back, err := PublicKeyFromDER(der)
	require.NoError(t, err)
	assert.True(t, pub.Equal(back))
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	sd, _ := x509.MarshalPKIXPublicKey(&small.PublicKey)
	_, _, err = ParsePublicKey(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: sd}))
	assert.ErrorIs(t, err, ErrBadKey, "RSA-2048 only")
	_, _, err = ParsePublicKey([]byte("not pem"))
	assert.ErrorIs(t, err, ErrBadKey)
}

// TestTokenFileApprovers: the file round-trips; a wrong signer, an
// unregistered one, a tampered token or duplicate signer are refused.
func TestTokenFileApprovers(t *testing.T) {
	ka, pa := newKey(t)
	kb, pb := newKey(t)
	kc, _ := newKey(t)
	_, da, _ := ParsePublicKey(pa)
	_, db, _ := ParsePublicKey(pb)
	keys := map[string][]byte{"alice": da, "bob": db}
	approval := NewApprovalData()
	f := NewTokenFile(approval)
	sign := func(name string, k *rsa.PrivateKey) {
		s, err := Sign(k, approval)
		require.NoError(t, err)
		f.Signatures = append(f.Signatures, Signature{Username: name, Signature: base64.StdEncoding.EncodeToString(s)})
	}
	parse := func() ([]string, error) {
		b, err := json.Marshal(f)
		require.NoError(t, err)
		s, err := ParseTokenFile(b)
		if err != nil {
			return nil, err
		}
		return Approvers(s, keys)
	}
	sign("Bob", kb)
	sign("alice", ka)
	got, err := parse()
	require.NoError(t, err)
	assert.Equal(t, []string{"alice", "bob"}, got)
	assert.Equal(t, 1, Count(got, []string{"bob", "carol"}))

	f.Signatures = f.Signatures[:1]
	sign("alice", kc) // alice's name, another key
	_, err = parse()
	assert.ErrorIs(t, err, ErrBadSig)

	f.Signatures = f.Signatures[:1]
	sign("carol", kc)
	_, err = parse()
	assert.ErrorIs(t, err, ErrUnregistered)

	f.Signatures = f.Signatures[:1]
	sign("bob", kb)
	_, err = parse()
	assert.ErrorIs(t, err, ErrBadToken, "one signature per approver")

	f.Signatures = f.Signatures[:1]
	f.Token = base64.StdEncoding.EncodeToString(make([]byte, 32))
	_, err = parse()
	assert.ErrorIs(t, err, ErrBadToken, "token must be the approval data's digest")
	_, err = ParseTokenFile([]byte("{"))
	assert.ErrorIs(t, err, ck.CKR_ARGUMENTS_BAD)
}

func TestRegistrationFile(t *testing.T) {
	k, _ := newKey(t)
	approval := NewApprovalData()
	f := NewRegistrationFile(approval)
	b, _ := json.Marshal(f)
	_, _, err := ParseRegistrationFile(b)
	assert.ErrorIs(t, err, ErrBadToken, "unsigned")
	s, _ := Sign(k, approval)
	f.Tokens[0].Signed = base64.StdEncoding.EncodeToString(s)
	b, _ = json.Marshal(f)
	a, sig, err := ParseRegistrationFile(b)
	require.NoError(t, err)
	assert.Equal(t, approval, a)
	require.NoError(t, Verify(&k.PublicKey, a, sig))
}
