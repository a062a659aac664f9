package token

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token/attrs"
)

// DER OIDs of the curves: Ed25519 (1.3.101.112) and X25519 (1.3.101.110).
var (
	oidEd25519 = []byte{0x06, 0x03, 0x2b, 0x65, 0x70}
	oidX25519  = []byte{0x06, 0x03, 0x2b, 0x65, 0x6e}
)

// TestNoPlaintextAfterEveryWrite: every kind of write a token object can
// have (create, set attribute, share, unshare, copy, derive, unwrap,
// generate) keeps every secret attribute of every key type off the disk.
// The test knows the secret values (imported, or read back from keys made
// non-sensitive), and after each write scans the raw bytes of every file in
// the token directory, token.db, -wal and -shm, while the store is open and
// again after it is closed. The scan is about bytes on disk, so it holds
// whatever key hierarchy seals the values.
func TestNoPlaintextAfterEveryWrite(t *testing.T) {
	skipOnPostgres(t, "it scans the SQLite token files (tests/hosts scans a pg_dump)")
	m, dir := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_SO, []byte(soPIN)))
	require.NoError(t, m.CreateUser(h, "bob", 2, []byte("bob-pw")))
	require.NoError(t, m.Logout(h))
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))

	type secret struct {
		what string
		v    []byte
	}
	var secrets []secret
	know := func(what string, v []byte) {
		require.GreaterOrEqual(t, len(v), 16, "%s: too short to scan for", what)
		secrets = append(secrets, secret{what, bytes.Clone(v)})
	}
	scanFiles := func(when, marker string) {
		t.Helper()
		var files []string
		sawMarker := false
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			files = append(files, strings.TrimPrefix(p, dir))
			for _, s := range secrets {
				if bytes.Contains(b, s.v) {
					t.Errorf("after %s: %s in plaintext in %s", when, s.what, p)
				}
			}
			sawMarker = sawMarker || bytes.Contains(b, []byte(marker))
			return nil
		})
		require.NoError(t, err)
		// The write's own public data must be there, or the scan proves
		// nothing about it.
		require.True(t, sawMarker, "after %s: %q not in %v: the scan does not see the write", when, marker, files)
		t.Logf("after %s: %d secrets absent from %v", when, len(secrets), files)
	}
	// scan scans the files while the store is open (the write in -wal),
	// then closes the module, scans again (checkpointed into token.db) and
	// opens it again, logged in: a secret written in the clear and later
	// overwritten would escape a single scan at the end.
	scan := func(when, marker string) {
		t.Helper()
		scanFiles(when+" (open)", marker)
		require.NoError(t, m.Close())
		scanFiles(when+" (closed)", marker)
		var err error
		m, err = Open(testConfig(t, dir))
		require.NoError(t, err)
		t.Cleanup(func() { m.Close() })
		h = openRW(t, m)
		require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	}
	random := func(n int) []byte {
		b := make([]byte, n)
		rand.Read(b)
		return b
	}
	ul := func(v ck.ULong) []byte { return attrs.ULong(v) }
	private := func(class ck.ObjectClass, kt ck.KeyType, label string, more attrs.Template) attrs.Template {
		tm := attrs.Template{ck.CKA_CLASS: ul(ck.ULong(class)), ck.CKA_KEY_TYPE: ul(ck.ULong(kt)),
			ck.CKA_TOKEN: attrs.Bool(true), ck.CKA_PRIVATE: attrs.Bool(true), ck.CKA_EXTRACTABLE: attrs.Bool(true),
			ck.CKA_LABEL: []byte(label)}
		for k, v := range more {
			tm[k] = v
		}
		return tm
	}

	// Keys of every type, with values the test chose.
	aesValue, genericValue := random(32), random(40)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ecScalar, err := ecKey.Bytes()
	require.NoError(t, err)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	rsaKey.Precompute()
	edSeed := random(ed25519.SeedSize)
	xKey, err := ecdh.X25519().GenerateKey(rand.Reader)
	require.NoError(t, err)
	be := func(i *big.Int) []byte { return i.Bytes() }
	rsaSecrets := attrs.Template{
		ck.CKA_PRIVATE_EXPONENT: be(rsaKey.D), ck.CKA_PRIME_1: be(rsaKey.Primes[0]), ck.CKA_PRIME_2: be(rsaKey.Primes[1]),
		ck.CKA_EXPONENT_1: be(rsaKey.Precomputed.Dp), ck.CKA_EXPONENT_2: be(rsaKey.Precomputed.Dq),
		ck.CKA_COEFFICIENT: be(rsaKey.Precomputed.Qinv),
	}
	rsaTmpl := attrs.Template{ck.CKA_MODULUS: be(rsaKey.N), ck.CKA_PUBLIC_EXPONENT: big.NewInt(int64(rsaKey.E)).Bytes()}
	for k, v := range rsaSecrets {
		rsaTmpl[k] = v
		know(fmt.Sprintf("imported RSA %v", k), v)
	}
	know("imported AES CKA_VALUE", aesValue)
	know("imported generic secret CKA_VALUE", genericValue)
	know("imported EC CKA_VALUE", ecScalar)
	know("imported Ed25519 CKA_VALUE", edSeed)
	know("imported X25519 CKA_VALUE", xKey.Bytes())
	imports := []struct {
		kt    ck.KeyType
		class ck.ObjectClass
		tmpl  attrs.Template
	}{
		{ck.CKK_AES, ck.CKO_SECRET_KEY, attrs.Template{ck.CKA_VALUE: aesValue, ck.CKA_DERIVE: attrs.Bool(true)}},
		{ck.CKK_GENERIC_SECRET, ck.CKO_SECRET_KEY, attrs.Template{ck.CKA_VALUE: genericValue}},
		{ck.CKK_EC, ck.CKO_PRIVATE_KEY, attrs.Template{ck.CKA_EC_PARAMS: p256, ck.CKA_VALUE: ecScalar}},
		{ck.CKK_RSA, ck.CKO_PRIVATE_KEY, rsaTmpl},
		{ck.CKK_EC_EDWARDS, ck.CKO_PRIVATE_KEY, attrs.Template{ck.CKA_EC_PARAMS: oidEd25519, ck.CKA_VALUE: edSeed}},
		{ck.CKK_EC_MONTGOMERY, ck.CKO_PRIVATE_KEY, attrs.Template{ck.CKA_EC_PARAMS: oidX25519, ck.CKA_VALUE: xKey.Bytes()}},
	}
	var objs []ck.ULong
	for i, k := range imports {
		o, err := m.CreateObject(h, private(k.class, k.kt, fmt.Sprintf("created-%d", i), k.tmpl))
		require.NoError(t, err, "C_CreateObject %v", k.kt)
		objs = append(objs, o)
	}
	scan("create", "created-5")

	for i, o := range objs {
		require.NoError(t, m.SetAttributeValue(h, o, attrs.Template{ck.CKA_LABEL: []byte(fmt.Sprintf("relabelled-%d", i))}))
	}
	scan("set attribute", "relabelled-5")

	for _, o := range objs {
		require.NoError(t, m.Share(h, o, "bob", true))
	}
	scan("share", "relabelled-5")
	for _, o := range objs {
		require.NoError(t, m.Share(h, o, "bob", false))
	}
	scan("unshare", "relabelled-5")

	for i, o := range objs {
		_, err := m.CopyObject(h, o, attrs.Template{ck.CKA_LABEL: []byte(fmt.Sprintf("copied-%d", i))})
		require.NoError(t, err, "C_CopyObject %d", i)
	}
	scan("copy", "copied-5")

	d, err := m.DeriveKey(h, Mechanism{Type: ck.CKM_AES_ECB_ENCRYPT_DATA, Param: random(32)}, objs[0],
		private(ck.CKO_SECRET_KEY, ck.CKK_AES, "derived", attrs.Template{ck.CKA_VALUE_LEN: ul(32), ck.CKA_SENSITIVE: attrs.Bool(false)}))
	require.NoError(t, err, "C_DeriveKey")
	know("derived AES CKA_VALUE", value(t, m, h, d))
	scan("derive", "derived")

	// Unwrap: each imported key wrapped under a session KEK and unwrapped
	// into a token object with the same (known) secret values.
	kek, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("kek", false))
	require.NoError(t, err)
	kwp := Mechanism{Type: ck.CKM_AES_KEY_WRAP_KWP}
	for i, o := range objs {
		wrapped := make([]byte, 4096)
		n, err := m.WrapKey(h, kwp, kek, o, Out{Buf: wrapped})
		require.NoError(t, err, "C_WrapKey %v", imports[i].kt)
		_, err = m.UnwrapKey(h, kwp, kek, wrapped[:n], private(imports[i].class, imports[i].kt, fmt.Sprintf("unwrapped-%d", i), nil))
		require.NoError(t, err, "C_UnwrapKey %v", imports[i].kt)
	}
	scan("unwrap", "unwrapped-5")

	// Generate: keys made non-sensitive, so the test can read what to
	// look for.
	readable := attrs.Template{ck.CKA_SENSITIVE: attrs.Bool(false)}
	g, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, private(ck.CKO_SECRET_KEY, ck.CKK_AES, "generated-aes", attrs.Template{ck.CKA_VALUE_LEN: ul(32), ck.CKA_SENSITIVE: attrs.Bool(false)}))
	require.NoError(t, err)
	know("generated AES CKA_VALUE", value(t, m, h, g))
	pairs := []struct {
		mech ck.MechanismType
		kt   ck.KeyType
		pub  attrs.Template
		read []ck.AttributeType
	}{
		{ck.CKM_RSA_PKCS_KEY_PAIR_GEN, ck.CKK_RSA, attrs.Template{ck.CKA_MODULUS_BITS: ul(2048)},
			[]ck.AttributeType{ck.CKA_PRIVATE_EXPONENT, ck.CKA_PRIME_1, ck.CKA_PRIME_2, ck.CKA_EXPONENT_1, ck.CKA_EXPONENT_2, ck.CKA_COEFFICIENT}},
		{ck.CKM_EC_KEY_PAIR_GEN, ck.CKK_EC, attrs.Template{ck.CKA_EC_PARAMS: p256}, []ck.AttributeType{ck.CKA_VALUE}},
		{ck.CKM_EC_EDWARDS_KEY_PAIR_GEN, ck.CKK_EC_EDWARDS, attrs.Template{ck.CKA_EC_PARAMS: oidEd25519}, []ck.AttributeType{ck.CKA_VALUE}},
		{ck.CKM_EC_MONTGOMERY_KEY_PAIR_GEN, ck.CKK_EC_MONTGOMERY, attrs.Template{ck.CKA_EC_PARAMS: oidX25519}, []ck.AttributeType{ck.CKA_VALUE}},
	}
	for i, pr := range pairs {
		pub := attrs.Template{ck.CKA_TOKEN: attrs.Bool(true)}
		for k, v := range pr.pub {
			pub[k] = v
		}
		_, priv, err := m.GenerateKeyPair(h, Mechanism{Type: pr.mech}, pub,
			private(ck.CKO_PRIVATE_KEY, pr.kt, fmt.Sprintf("generated-%d", i), readable))
		require.NoError(t, err, "C_GenerateKeyPair %v", pr.mech)
		res, err := m.GetAttributeValue(h, priv, pr.read)
		require.NoError(t, err)
		for j, r := range res {
			require.NoError(t, r.Err, "%v %v", pr.kt, pr.read[j])
			know(fmt.Sprintf("generated %v %v", pr.kt, pr.read[j]), r.Value)
		}
	}
	scan("generate", "generated-3")
}
