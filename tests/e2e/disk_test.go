package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/hex"
	"io/fs"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/testenv/pgtest"
)

// TestNoPlaintextKeyMaterialOnDisk: key material whose value the test knows
// (a readable AES key, and EC and RSA private keys imported from Go) must
// not appear in any file of the token directory, while the store (with its
// -wal and -shm files) is open and after C_Finalize. token's
// TestNoPlaintextAfterEveryWrite scans after every other kind of write.
//
// On PostgreSQL the token is in the database: the scan covers the token
// directory (what stays per host) and a pg_dump of the database, where a
// BYTEA value appears as hex, so each value is looked for raw and in hex.
// (tests/hosts scans the dump for more forms and for the passwords.)
func TestNoPlaintextKeyMaterialOnDisk(t *testing.T) {
	tk := newToken(t)
	tk.initToken()
	p := tk.p
	s := tk.userSession(userPIN)

	aesKey := tk.genAES(s, "disk-aes", pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, false), pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true))
	aesValue := tk.attr(s, aesKey, pkcs11.CKA_VALUE)
	require.Len(t, aesValue, 32)

	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	scalar, err := ecKey.Bytes()
	require.NoError(t, err)
	require.Len(t, scalar, 32)
	ecPriv, err := p.CreateObject(s, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, "disk-ec"),
		pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, oidP256),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, scalar),
	})
	require.NoError(t, err, "C_CreateObject EC private key")
	// The imported key is the Go key: its signature verifies.
	h := sha256.Sum256([]byte("disk"))
	r, ss := ecdsaRS(t, tk.sign(s, mech(pkcs11.CKM_ECDSA, nil), ecPriv, h[:]), 32)
	require.True(t, ecdsa.Verify(&ecKey.PublicKey, h[:], r, ss), "imported EC key signs as the Go key")

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	rsaKey.Precompute()
	be := func(i *big.Int) []byte { return i.Bytes() }
	rsaPriv, err := p.CreateObject(s, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, "disk-rsa"),
		pkcs11.NewAttribute(pkcs11.CKA_MODULUS, be(rsaKey.N)),
		pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, big.NewInt(int64(rsaKey.E)).Bytes()),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE_EXPONENT, be(rsaKey.D)),
		pkcs11.NewAttribute(pkcs11.CKA_PRIME_1, be(rsaKey.Primes[0])),
		pkcs11.NewAttribute(pkcs11.CKA_PRIME_2, be(rsaKey.Primes[1])),
		pkcs11.NewAttribute(pkcs11.CKA_EXPONENT_1, be(rsaKey.Precomputed.Dp)),
		pkcs11.NewAttribute(pkcs11.CKA_EXPONENT_2, be(rsaKey.Precomputed.Dq)),
		pkcs11.NewAttribute(pkcs11.CKA_COEFFICIENT, be(rsaKey.Precomputed.Qinv)),
	})
	require.NoError(t, err, "C_CreateObject RSA private key")
	require.NotZero(t, rsaPriv)

	secrets := map[string][]byte{
		"AES key value":          aesValue,
		"EC private scalar":      scalar,
		"RSA prime p":            be(rsaKey.Primes[0]),
		"RSA prime q":            be(rsaKey.Primes[1]),
		"RSA private exponent d": be(rsaKey.D),
		"RSA exponent 1 (dP)":    be(rsaKey.Precomputed.Dp),
		"RSA exponent 2 (dQ)":    be(rsaKey.Precomputed.Dq),
		"RSA coefficient (qInv)": be(rsaKey.Precomputed.Qinv),
	}
	// Public object data, stored in the clear: finding it proves the scan
	// reads the object store.
	public := map[string][]byte{
		"label disk-rsa": []byte("disk-rsa"),
		"RSA modulus":    be(rsaKey.N),
	}
	// The EC point of the private key is public too (computed by the token).
	var point []byte
	_, err = asn1.Unmarshal(tk.attr(s, ecPriv, pkcs11.CKA_EC_POINT), &point)
	require.NoError(t, err)
	raw, err := ecKey.PublicKey.Bytes()
	require.NoError(t, err)
	require.Equal(t, raw, point, "CKA_EC_POINT of the imported private key")

	scan := func(when string) {
		t.Helper()
		var files []string
		found := map[string]bool{}
		look := func(path string, b []byte) {
			files = append(files, filepath.Base(path))
			for name, v := range secrets {
				assert.False(t, bytes.Contains(b, v), "%s: %s found in plaintext in %s", when, name, path)
				assert.False(t, bytes.Contains(b, []byte(hex.EncodeToString(v))), "%s: %s found in hex in %s", when, name, path)
			}
			for name, v := range public {
				if bytes.Contains(b, v) || bytes.Contains(b, []byte(hex.EncodeToString(v))) {
					found[name] = true
				}
			}
		}
		err := filepath.WalkDir(tk.dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			look(path, b)
			return nil
		})
		require.NoError(t, err)
		if dsn, ok := strings.CutPrefix(tk.store, "store = "); ok {
			dump, err := exec.Command(pgtest.Shared(t).Bin("pg_dump"), "--dbname="+dsn).Output()
			require.NoError(t, err, "pg_dump")
			require.Contains(t, string(dump), "CREATE TABLE", "pg_dump wrote no schema")
			look("pg_dump", dump)
		}
		t.Logf("%s: scanned %v", when, files)
		for name := range public {
			assert.True(t, found[name], "%s: %s not found in any token file: the scan does not see object data", when, name)
		}
	}
	scan("store open")
	require.NoError(t, p.CloseSession(s))
	tk.finalize()
	scan("after C_Finalize")
	tk.initialize()
}
