package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestKeyImport: key import takes a PEM private key (the pair comes in),
// a PEM public key or a raw AES key, as a crypto user, into the keys key
// list shows; bad input fails before the token is touched.
func TestKeyImport(t *testing.T) {
	c := newCLI(t)
	c.setup()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	dir := t.TempDir()
	priv := filepath.Join(dir, "k.pem")
	require.NoError(t, os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600))
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	require.NoError(t, err)
	pub := filepath.Join(dir, "pub.pem")
	require.NoError(t, os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o600))

	var d struct{ Keys []keyJSON }
	c.data(&d, "key", "import", "--label", "imp", "--id", "c0de", "--pem", priv, "--pin", alicePIN)
	require.Len(t, d.Keys, 2)
	assert.Equal(t, "public-key", d.Keys[0].Class)
	assert.Equal(t, keyJSON{Handle: d.Keys[1].Handle, Class: "private-key", KeyType: "ec", Label: "imp", ID: "c0de",
		Owner: "alice", SharedWith: []string{}, Token: true, Private: true}, d.Keys[1])
	c.data(&d, "key", "import", "--label", "imp-pub", "--pem", pub, "--pin", alicePIN)
	require.Len(t, d.Keys, 1)
	text := c.ok("key", "import", "--label", "imp-aes", "--aes-key-hex", strings.Repeat("ab", 32), "--pin", alicePIN)
	assert.Regexp(t, `(?m)^\d+\s+secret-key\s+aes\s+imp-aes\s+-\s+alice\s+-$`, text)
	assert.Len(t, c.keys(alicePIN), 4)
	assert.Len(t, c.keys(bobPIN), 2, "the public keys")

	c.fails([]string{"key import: CKR_ATTRIBUTE_VALUE_INVALID", "16, 24 or 32 bytes, not 8"},
		"key", "import", "--label", "x", "--aes-key-hex", "0011223344556677", "--pin", alicePIN)
	notPEM := filepath.Join(dir, "not.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("just text\n"), 0o600))
	c.fails([]string{"key import: CKR_ARGUMENTS_BAD", "no PEM key found"},
		"key", "import", "--label", "x", "--pem", notPEM, "--pin", alicePIN)
	c.fails([]string{"key import: CKR_USER_NOT_LOGGED_IN"},
		"key", "import", "--label", "x", "--pem", priv, "--pin", coPIN)
	for _, args := range [][]string{
		{"--label", "x", "--pin", alicePIN},
		{"--label", "x", "--pem", priv, "--aes-key-hex", "00", "--pin", alicePIN},
		{"--label", "x", "--aes-key-hex", "zz", "--pin", alicePIN},
		{"--pem", priv, "--pin", alicePIN},
		{"--label", "x", "--pem", filepath.Join(dir, "nope.pem"), "--pin", alicePIN},
	} {
		r := c.run(append([]string{"key", "import"}, args...)...)
		assert.Equal(t, 2, r.code, "%v: %s", args, r.stderr)
		assert.Contains(t, r.stderr, "usage: gohsm key import", args)
	}
	assert.Len(t, c.keys(alicePIN), 4, "nothing more was made")
}
