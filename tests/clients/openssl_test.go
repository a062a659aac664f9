package clients

import (
	"crypto/rand"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// libp11's OpenSSL 3.0 engine (Debian libengine-pkcs11-openssl).
const pkcs11Engine = "/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so"

// opensslEngineConf is an OPENSSL_CONF that loads libp11's engine with
// MODULE_PATH pointing at libgohsm.so itself: without MODULE_PATH libp11
// uses p11-kit-proxy.so (every module registered on the system). init = 0
// suits the openssl CLI, which initialises the engine it is given with
// -engine (nginx, which does not, needs init = 1).
func opensslEngineConf(lib string) string {
	return fmt.Sprintf(`# written by tests/clients/openssl_test.go
openssl_conf = openssl_init

[openssl_init]
engines = engine_section

[engine_section]
pkcs11 = pkcs11_section

[pkcs11_section]
engine_id = pkcs11
MODULE_PATH = %s
init = 0
`, lib)
}

// TestOpenSSLEngine signs through OpenSSL 3's pkcs11 engine (libp11) with
// keys the gohsm CLI generated, and verifies with openssl's own code.
func TestOpenSSLEngine(t *testing.T) {
	openssl := needTool(t, "openssl", "openssl")
	needFile(t, pkcs11Engine, "libengine-pkcs11-openssl")
	p11tool := needTool(t, "pkcs11-tool", "opensc")
	h := newHSM(t, "ossl")
	conf := h.Path("openssl.cnf")
	require.NoError(t, os.WriteFile(conf, []byte(opensslEngineConf(h.Lib)), 0o600))
	env := append(append([]string{}, h.Env...), "OPENSSL_CONF="+conf)
	// Verification uses no engine and no token: openssl's own code.
	plain := []string{"OPENSSL_CONF=/dev/null"}
	ssl := func(t *testing.T, args ...string) string {
		t.Helper()
		return mustRun(t, time.Minute, env, openssl, args...)
	}
	uri := func(label, typ string) string {
		u := "pkcs11:token=" + h.Label + ";object=" + label + ";type=" + typ
		if typ == "private" {
			u += ";pin-value=" + userPIN
		}
		return u
	}

	type key struct{ label, id, pub string }
	keys := []*key{{label: "eck", id: "01"}, {label: "rsak", id: "02"}}
	if !check(t, "gohsm key generate ec/rsa", func(t *testing.T) {
		h.gohsm(t, "key", "generate", "ec", "--curve", "P-256", "--label", "eck", "--id", "01", "--pin", userPIN)
		h.gohsm(t, "key", "generate", "rsa", "--bits", "2048", "--label", "rsak", "--id", "02", "--pin", userPIN)
	}) {
		return
	}

	for _, k := range keys {
		if !check(t, "engine public key export "+k.label, func(t *testing.T) {
			k.pub = h.Path(k.label + ".pub.pem")
			ssl(t, "pkey", "-engine", "pkcs11", "-inform", "engine", "-pubin",
				"-in", uri(k.label, "public"), "-pubout", "-out", k.pub)
			// The same key as pkcs11-tool reads straight from the module.
			der := h.Path(k.label + ".pub.der")
			mustRun(t, time.Minute, h.Env, p11tool, "--module", h.Lib,
				"--read-object", "--type", "pubkey", "--id", k.id, "-o", der)
			fromTool := mustRun(t, time.Minute, plain, openssl, "pkey", "-pubin", "-inform", "DER", "-in", der)
			fromEngine, err := os.ReadFile(k.pub)
			require.NoError(t, err)
			require.Equal(t, strings.TrimSpace(fromTool), strings.TrimSpace(string(fromEngine)))
		}) {
			return
		}
	}

	hash := make([]byte, 32) // a SHA-256 digest's size
	_, err := rand.Read(hash)
	require.NoError(t, err)
	hashFile := h.Path("hash")
	require.NoError(t, os.WriteFile(hashFile, hash, 0o600))
	tampered := append([]byte{}, hash...)
	tampered[0] ^= 1
	tamperedFile := h.Path("hash.tampered")
	require.NoError(t, os.WriteFile(tamperedFile, tampered, 0o600))

	pss := []string{"-pkeyopt", "rsa_padding_mode:pss", "-pkeyopt", "rsa_pss_saltlen:32", "-pkeyopt", "digest:sha256"}
	for _, c := range []struct {
		name string
		k    *key
		opts []string
	}{
		{"ECDSA P-256", keys[0], nil},
		{"RSA PKCS#1 v1.5 SHA-256", keys[1], []string{"-pkeyopt", "digest:sha256"}},
		{"RSA-PSS SHA-256 salt 32", keys[1], pss},
	} {
		check(t, "pkeyutl sign "+c.name, func(t *testing.T) {
			sig := h.Path(strings.NewReplacer(" ", "_", "#", "").Replace(c.name) + ".sig")
			ssl(t, append([]string{"pkeyutl", "-engine", "pkcs11", "-keyform", "engine", "-sign",
				"-inkey", uri(c.k.label, "private"), "-in", hashFile, "-out", sig}, c.opts...)...)
			verify := func(in string) (string, error) {
				return run(t, time.Minute, plain, openssl, append([]string{"pkeyutl", "-verify",
					"-pubin", "-inkey", c.k.pub, "-in", in, "-sigfile", sig}, c.opts...)...)
			}
			out, err := verify(hashFile)
			require.NoError(t, err)
			require.Contains(t, out, "Signature Verified Successfully")
			out, err = verify(tamperedFile)
			require.Error(t, err, "tampered input accepted")
			require.Contains(t, out, "Signature Verification Failure")
		})
	}
	// PKCS#1 v1.5 and PSS are different things: a PSS signature must not
	// pass as v1.5 (a module that ignored the padding parameter would
	// produce the same bytes for both).
	check(t, "pkeyutl PSS signature is not PKCS#1 v1.5", func(t *testing.T) {
		sig := h.Path("RSA-PSS_SHA-256_salt_32.sig")
		require.FileExists(t, sig, "the PSS signing check failed")
		out, err := run(t, time.Minute, plain, openssl, "pkeyutl", "-verify", "-pubin", "-inkey", keys[1].pub,
			"-in", hashFile, "-sigfile", sig, "-pkeyopt", "digest:sha256")
		require.Error(t, err, out)
		require.Contains(t, out, "Signature Verification Failure")
	})

	for _, k := range keys {
		check(t, "req -new -x509 "+k.label, func(t *testing.T) {
			cert := h.Path(k.label + ".crt")
			ssl(t, "req", "-new", "-x509", "-engine", "pkcs11", "-keyform", "engine",
				"-key", uri(k.label, "private"), "-subj", "/CN=test", "-days", "30", "-sha256", "-out", cert)
			text := mustRun(t, time.Minute, plain, openssl, "x509", "-in", cert, "-noout", "-text")
			require.Contains(t, text, "Subject: CN = test")
			certPub := mustRun(t, time.Minute, plain, openssl, "x509", "-in", cert, "-noout", "-pubkey")
			tokenPub, err := os.ReadFile(k.pub)
			require.NoError(t, err)
			require.Equal(t, strings.TrimSpace(string(tokenPub)), strings.TrimSpace(certPub))
			out := mustRun(t, time.Minute, plain, openssl, "verify", "-CAfile", cert, cert)
			require.Contains(t, out, cert+": OK")
		})
	}
}
