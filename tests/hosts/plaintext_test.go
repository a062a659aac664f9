package hosts

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"gohsm/internal/testenv"
	"gohsm/internal/testenv/pgtest"
)

// TestNoPlaintextInDump: host A initialises the token, logs in with known
// passwords (the officer's and alice's; bob's is set and used on host B),
// creates an AES key and a P-256 private key from values the test chose
// (C_CreateObject) and signs with the EC key; host B reads them. Debian's
// pg_dump of the whole database (data and schema, plain SQL) must hold
// none of the key values nor the passwords, in any of the forms a dump or
// a careless encoder could give them: raw bytes, hex (both cases, as
// bytea's \x form prints them), base64 (standard and URL alphabets, with
// and without padding). Not vacuous: the users' argon2id salts and the
// sealed attribute values (ciphertexts), read from the database, are in
// the dump, as are the keys' labels.
func TestNoPlaintextInDump(t *testing.T) {
	srv := pgtest.Shared(t)
	dsn := srv.NewDatabase(t, "plaintext")
	pgDump := filepath.Join("/usr/lib/postgresql", srv.Version, "bin", "pg_dump")
	if _, err := os.Stat(pgDump); err != nil {
		testenv.Missing(t, "pg_dump: %v", err)
	}
	a, b := newHost(t, "a", dsn), newHost(t, "b", dsn)
	initToken(t, a)
	const bobPIN = "bob:bob-Secret-pa55word"

	aesKey := make([]byte, 32)
	_, err := rand.Read(aesKey)
	require.NoError(t, err)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ecScalar, err := ec.Bytes()
	require.NoError(t, err)

	pa := a.start()
	pa.must("open 1")
	pa.must("login so %s", soPIN)
	pa.must("initpin %s", bobPIN)
	pa.must("logout")
	pa.must("login user %s", userPIN)
	hs := pa.must("createkeys known %x %x", aesKey, ecScalar)
	require.Len(t, hs, 2)
	pa.must("sign %s", hs[1])
	pb := b.start()
	pb.must("open 1")
	pb.must("login user %s", userPIN)
	require.Equal(t, []string{"known-aes", "known-ec"}, pb.must("labels %s %s", hs[0], hs[1]))
	pb.must("sign %s", hs[1])
	pb.must("logout")
	pb.must("login user %s", bobPIN)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db := sqlConn(t, dsn)
	dbName := dsn[strings.LastIndexByte(dsn, '/')+1:]
	dbName, _, _ = strings.Cut(dbName, "?")
	cmd := exec.CommandContext(ctx, pgDump, "--host", "127.0.0.1", "--port", itoa(srv.Port), "--username", srv.User,
		"--no-password", "--format", "plain", dbName)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	dump, err := cmd.Output()
	require.NoError(t, err, "pg_dump: %s", errOut.String())
	t.Logf("pg_dump: %d bytes", len(dump))
	pa.quit()
	pb.quit()

	secrets := map[string][]byte{
		"the AES key":           aesKey,
		"the EC private scalar": ecScalar,
		"the officer password":  []byte(soPIN[strings.IndexByte(soPIN, ':')+1:]),
		"alice's password":      []byte(userPass),
		"bob's password":        []byte(bobPIN[strings.IndexByte(bobPIN, ':')+1:]),
	}
	for what, v := range secrets {
		for form, enc := range encodings(v) {
			if bytes.Contains(dump, enc) {
				t.Errorf("%s is in the dump (%s: %q)", what, form, enc)
			}
		}
	}

	// The dump holds what the database holds: the salts, the sealed
	// values and the labels.
	rows, err := db.Query(ctx, `SELECT 'salt of ' || name, salt FROM users
		UNION ALL SELECT 'sealed attribute ' || type || ' of object ' || object_id, value FROM sealed`)
	require.NoError(t, err)
	var salts, sealed int
	for rows.Next() {
		var what string
		var v []byte
		require.NoError(t, rows.Scan(&what, &v))
		require.NotEmpty(t, v, what)
		require.True(t, bytes.Contains(dump, []byte(hex.EncodeToString(v))), "%s (%x) not in the dump", what, v)
		if strings.HasPrefix(what, "salt") {
			salts++
		} else {
			sealed++
		}
	}
	require.NoError(t, rows.Err())
	require.Equal(t, 3, salts, "users' salts (admin, alice, bob)")
	require.GreaterOrEqual(t, sealed, 2, "sealed values (the AES key's and the EC key's CKA_VALUE)")
	for _, label := range []string{"known-aes", "known-ec"} {
		require.True(t, bytes.Contains(dump, []byte(hex.EncodeToString([]byte(label)))) || bytes.Contains(dump, []byte(label)),
			"label %s not in the dump", label)
	}
	t.Logf("%d secrets absent in %d forms each; %d salts and %d sealed values present", len(secrets), len(encodings(nil)), salts, sealed)
}

// encodings are the forms a value could take in a dump.
func encodings(v []byte) map[string][]byte {
	return map[string][]byte{
		"raw":              v,
		"hex":              []byte(hex.EncodeToString(v)),
		"HEX":              []byte(strings.ToUpper(hex.EncodeToString(v))),
		"base64":           []byte(base64.StdEncoding.EncodeToString(v)),
		"base64 unpadded":  []byte(base64.RawStdEncoding.EncodeToString(v)),
		"base64url":        []byte(base64.URLEncoding.EncodeToString(v)),
		"base64url unpadd": []byte(base64.RawURLEncoding.EncodeToString(v)),
	}
}
