package admin

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token"
)

func pemOf(t *testing.T, typ string, der []byte, err error) []byte {
	t.Helper()
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// signs signs a digest with key obj through the token and checks the
// signature with pub: the imported material is the key's.
func signs(t *testing.T, m *token.Module, h, obj ck.ULong, pub any) {
	t.Helper()
	digest := sha256.Sum256([]byte("imported"))
	out := make([]byte, 1024)
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		require.NoError(t, m.SignInit(h, token.Mechanism{Type: ck.CKM_ECDSA}, obj))
		n, err := m.Sign(h, digest[:], token.Out{Buf: out})
		require.NoError(t, err)
		half := n / 2
		r, s := new(big.Int).SetBytes(out[:half]), new(big.Int).SetBytes(out[half:n])
		assert.True(t, ecdsa.Verify(p, digest[:], r, s))
	case *rsa.PublicKey:
		require.NoError(t, m.SignInit(h, token.Mechanism{Type: ck.CKM_SHA256_RSA_PKCS}, obj))
		n, err := m.Sign(h, []byte("imported"), token.Out{Buf: out})
		require.NoError(t, err)
		require.NoError(t, rsa.VerifyPKCS1v15(p, 5 /* crypto.SHA256 */, digest[:], out[:n]))
	}
}

func TestImportPEM(t *testing.T) {
	k := newTok(t, "")
	m, h := k.login(alicePIN)
	ec256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ec384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	rsa2048, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)

	pkcs8 := func(key any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		return pemOf(t, "PRIVATE KEY", der, err)
	}
	sec1 := func(key *ecdsa.PrivateKey) []byte {
		der, err := x509.MarshalECPrivateKey(key)
		return pemOf(t, "EC PRIVATE KEY", der, err)
	}
	spki := func(key any) []byte {
		der, err := x509.MarshalPKIXPublicKey(key)
		return pemOf(t, "PUBLIC KEY", der, err)
	}

	for _, c := range []struct {
		name    string
		pem     []byte
		pub     any
		keyType string
		pair    bool
	}{
		{"pkcs8-ec256", pkcs8(ec256), &ec256.PublicKey, "ec", true},
		{"sec1-ec384", append([]byte("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"), sec1(ec384)...), &ec384.PublicKey, "ec", true},
		{"pkcs1-rsa", pemOf(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsa2048), nil), &rsa2048.PublicKey, "rsa", true},
		{"pkcs8-rsa", pkcs8(rsa2048), &rsa2048.PublicKey, "rsa", true},
		{"spki-ec", spki(&ec256.PublicKey), &ec256.PublicKey, "ec", false},
		{"spki-rsa", spki(&rsa2048.PublicKey), &rsa2048.PublicKey, "rsa", false},
		{"pkcs1-rsa-public", pemOf(t, "RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&rsa2048.PublicKey), nil), &rsa2048.PublicKey, "rsa", false},
	} {
		keys, err := Import(m, h, ImportSpec{Label: c.name, ID: "0a0b", PEM: c.pem})
		require.NoError(t, err, c.name)
		if !c.pair {
			require.Len(t, keys, 1, c.name)
			assert.Equal(t, "public-key", keys[0].Class)
			assert.False(t, keys[0].Private)
			continue
		}
		require.Len(t, keys, 2, c.name)
		pub, priv := keys[0], keys[1]
		assert.Equal(t, Key{Handle: pub.Handle, Class: "public-key", KeyType: c.keyType, Label: c.name, ID: "0a0b",
			Owner: "alice", SharedWith: []string{}, Token: true}, pub, c.name)
		assert.Equal(t, Key{Handle: priv.Handle, Class: "private-key", KeyType: c.keyType, Label: c.name, ID: "0a0b",
			Owner: "alice", SharedWith: []string{}, Token: true, Private: true}, priv, c.name)
		_, at, err := Attributes(m, h, priv.Handle)
		require.NoError(t, err)
		assert.Equal(t, true, at["CKA_SENSITIVE"], c.name)
		assert.Equal(t, false, at["CKA_LOCAL"], c.name)
		for _, secret := range []string{"CKA_VALUE", "CKA_PRIVATE_EXPONENT", "CKA_PRIME_1"} {
			assert.NotContains(t, at, secret, c.name)
		}
		signs(t, m, h, priv.Handle, c.pub)
	}
	// The public half is the key's: its point or modulus as the PEM's.
	keys, err := Import(m, h, ImportSpec{Label: "pt", PEM: pkcs8(ec256)})
	require.NoError(t, err)
	_, at, err := Attributes(m, h, keys[0].Handle)
	require.NoError(t, err)
	raw, _ := ec256.PublicKey.Bytes()
	assert.Equal(t, "0441"+hex.EncodeToString(raw), at["CKA_EC_POINT"])
}

func TestImportAES(t *testing.T) {
	k := newTok(t, "")
	m, h := k.login(alicePIN)
	raw := make([]byte, 24)
	rand.Read(raw)
	keys, err := Import(m, h, ImportSpec{Label: "aes", AESKey: raw})
	require.NoError(t, err)
	require.Len(t, keys, 1)
	assert.Equal(t, "secret-key", keys[0].Class)
	assert.Equal(t, "aes", keys[0].KeyType)
	assert.True(t, keys[0].Private)
	key, at, err := Attributes(m, h, keys[0].Handle)
	require.NoError(t, err)
	assert.Equal(t, keys[0], key)
	assert.Equal(t, uint64(24), at["CKA_VALUE_LEN"])
	assert.Equal(t, true, at["CKA_SENSITIVE"])
	assert.Equal(t, true, at["CKA_ENCRYPT"])
	assert.NotContains(t, at, "CKA_VALUE")

	// The token's rules apply: an officer owns no keys.
	om, oh := k.login(coPIN)
	_, err = Import(om, oh, ImportSpec{Label: "aes", AESKey: raw})
	require.Error(t, err)
	ckr, _ := ErrorCode(err)
	assert.NotEmpty(t, ckr)
	assert.Equal(t, 1, len(mustList(t, m, h)), "nothing more was made")
}

func mustList(t *testing.T, m *token.Module, h ck.ULong) []Key {
	t.Helper()
	keys, err := ListKeys(m, h, Filter{})
	require.NoError(t, err)
	return keys
}

func TestImportErrors(t *testing.T) {
	ec521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	require.NoError(t, err)
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	der521, err := x509.MarshalPKCS8PrivateKey(ec521)
	require.NoError(t, err)
	derEd, err := x509.MarshalPKCS8PrivateKey(edPriv)
	require.NoError(t, err)
	good := pemOf(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsa1024), nil)
	for _, c := range []struct {
		spec ImportSpec
		rv   ck.RV
		msg  string
	}{
		{ImportSpec{Label: "x"}, ck.CKR_ARGUMENTS_BAD, "exactly one of"},
		{ImportSpec{Label: "x", PEM: good, AESKey: make([]byte, 16)}, ck.CKR_ARGUMENTS_BAD, "exactly one of"},
		{ImportSpec{Label: "x", AESKey: make([]byte, 15)}, ck.CKR_ATTRIBUTE_VALUE_INVALID, "16, 24 or 32 bytes, not 15"},
		{ImportSpec{Label: "x", PEM: []byte("hello")}, ck.CKR_ARGUMENTS_BAD, "no PEM key found"},
		{ImportSpec{Label: "x", PEM: pemOf(t, "PRIVATE KEY", []byte{1, 2, 3}, nil)}, ck.CKR_ARGUMENTS_BAD, "cannot be read"},
		{ImportSpec{Label: "x", PEM: pemOf(t, "CERTIFICATE", []byte{1}, nil)}, ck.CKR_ARGUMENTS_BAD, `"CERTIFICATE" block`},
		{ImportSpec{Label: "x", PEM: pemOf(t, "ENCRYPTED PRIVATE KEY", []byte{1}, nil)}, ck.CKR_ARGUMENTS_BAD, "encrypted"},
		{ImportSpec{Label: "x", PEM: append(good, good...)}, ck.CKR_ARGUMENTS_BAD, "2 blocks"},
		{ImportSpec{Label: "x", PEM: []byte(strings.Repeat("A", 9000))}, ck.CKR_ARGUMENTS_BAD, "at most 8192"},
		{ImportSpec{Label: "x", PEM: good}, ck.CKR_ATTRIBUTE_VALUE_INVALID, "1024 bits: want 2048 to 4096"},
		{ImportSpec{Label: "x", PEM: pemOf(t, "PRIVATE KEY", der521, nil)}, ck.CKR_ATTRIBUTE_VALUE_INVALID, "P-521: want P-256 or P-384"},
		{ImportSpec{Label: "x", PEM: pemOf(t, "PRIVATE KEY", derEd, nil)}, ck.CKR_ATTRIBUTE_VALUE_INVALID, "ed25519"},
	} {
		err := c.spec.Check()
		require.ErrorIs(t, err, c.rv, "%v", err)
		assert.Contains(t, err.Error(), c.msg)
	}
	for _, c := range []struct {
		spec  ImportSpec
		field string
	}{
		{ImportSpec{AESKey: make([]byte, 16)}, "label"},
		{ImportSpec{Label: "x", ID: "xyz", AESKey: make([]byte, 16)}, "id"},
	} {
		var ie *InputError
		require.ErrorAs(t, c.spec.Check(), &ie)
		assert.Equal(t, c.field, ie.Field)
	}
	_, err = DecodeHex("aes_key_hex", "zz")
	assert.EqualError(t, err, `aes_key_hex "zz": not hex`)
}

// TestImportCloudHSMProfile: under the cloudhsm profile (every usage flag
// CK_FALSE by default) imported keys get their type's usage flags, as
// generated keys do, and the pair signs.
func TestImportCloudHSMProfile(t *testing.T) {
	k := newTok(t, "[slot 0]\nprofile = cloudhsm\n")
	m, h := k.login(alicePIN)
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalECPrivateKey(key)
	keys, err := Import(m, h, ImportSpec{Label: "c", PEM: pemOf(t, "EC PRIVATE KEY", der, err)})
	require.NoError(t, err)
	require.Len(t, keys, 2)
	_, at, err := Attributes(m, h, keys[1].Handle)
	require.NoError(t, err)
	assert.Equal(t, true, at["CKA_SIGN"])
	signs(t, m, h, keys[1].Handle, &key.PublicKey)
	aes, err := Import(m, h, ImportSpec{Label: "a", AESKey: make([]byte, 32)})
	require.NoError(t, err)
	_, at, err = Attributes(m, h, aes[0].Handle)
	require.NoError(t, err)
	assert.Equal(t, true, at["CKA_ENCRYPT"])
	gen, err := Generate(m, h, GenSpec{Type: "rsa", Label: "g"})
	require.NoError(t, err)
	require.Len(t, gen, 2)
}
