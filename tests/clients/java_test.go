package clients

// Java 17's SunPKCS11 provider against libgohsm.so: keytool lists the
// token's keys as KeyStore entries, and a small Java program
// (testdata/java/GohsmClient.java, compiled here with javac) signs with
// ECDSA, RSA PKCS#1 v1.5 and RSA-PSS and runs AES-GCM from 8 threads, each
// signature verified by the JDK's own providers.
//
// SunPKCS11 shows a private key only when a certificate object with the
// same CKA_ID is on the token (and a secret key only when it has a
// CKA_LABEL), so the setup generates the keys with the gohsm CLI, reads each
// public key back with pkcs11-tool, issues it a certificate from a
// throwaway software CA and writes that certificate to the token.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	// javaTimeout bounds one JVM (start ~1 s, the threaded checks a few s).
	javaTimeout = 3 * time.Minute
	// The Java driver's load: threads at once, operations per thread and
	// per algorithm.
	javaThreads    = 8
	javaIterations = 50
)

func TestJava(t *testing.T) {
	java := needTool(t, "java", "openjdk-17-jre-headless")
	javac := needTool(t, "javac", "openjdk-17-jdk-headless")
	keytool := needTool(t, "keytool", "openjdk-17-jre-headless")
	p11tool := needTool(t, "pkcs11-tool", "opensc")
	h := newHSM(t, "java")

	// The known AES key for the SunJCE cross-check.
	aesKAT := make([]byte, 32)
	_, err := rand.Read(aesKAT)
	require.NoError(t, err)

	ok := check(t, "java/setup-keys", func(t *testing.T) {
		h.gohsm(t, "--pin", userPIN, "key", "generate", "ec", "--curve", "P-256", "--label", "jec", "--id", "01")
		h.gohsm(t, "--pin", userPIN, "key", "generate", "rsa", "--bits", "2048", "--label", "jrsa", "--id", "02")
		h.gohsm(t, "--pin", userPIN, "key", "generate", "aes", "--bits", "256", "--label", "jaes", "--id", "03")
		p11toolImportAES(t, h, p11tool, aesKAT, "04", "jaeskat")
	})
	ok = ok && check(t, "java/setup-certificates", func(t *testing.T) {
		ca := newJavaTestCA(t)
		for _, k := range []struct{ id, label string }{{"01", "jec"}, {"02", "jrsa"}} {
			pub := p11toolReadPublicKey(t, h, p11tool, k.id)
			der := ca.issue(t, k.label, pub)
			certFile := h.Path(k.label + ".crt.der")
			require.NoError(t, os.WriteFile(certFile, der, 0o600))
			mustRun(t, time.Minute, h.Env, p11tool, "--module", h.Lib, "--login", "--pin", userPIN,
				"--write-object", certFile, "--type", "cert", "--id", k.id, "--label", k.label)
		}
	})
	require.True(t, ok, "java: setup failed")

	cfg := h.Path("java-pkcs11.cfg")
	require.NoError(t, os.WriteFile(cfg, []byte(javaProviderConfig(h.Lib, 0)), 0o600))

	check(t, "java/keytool-list", func(t *testing.T) {
		out := mustRun(t, javaTimeout, h.Env, keytool, "-list", "-storetype", "PKCS11",
			"-providerClass", "sun.security.pkcs11.SunPKCS11", "-providerArg", cfg, "-storepass", userPIN)
		require.Contains(t, out, "Keystore provider: SunPKCS11-gohsm", out)
		require.Contains(t, out, "Your keystore contains 4 entries", out)
		for _, want := range []string{"jec, PrivateKeyEntry", "jrsa, PrivateKeyEntry",
			"jaes, SecretKeyEntry", "jaeskat, SecretKeyEntry"} {
			require.Contains(t, out, want, out)
		}
	})
	check(t, "java/keytool-wrong-pin", func(t *testing.T) {
		// -v prints the causes: FailedLoginException <- PKCS11Exception.
		out, err := run(t, javaTimeout, h.Env, keytool, "-v", "-list", "-storetype", "PKCS11",
			"-providerClass", "sun.security.pkcs11.SunPKCS11", "-providerArg", cfg, "-storepass", "user:wrongpassword")
		require.Error(t, err, "keytool accepted a wrong PIN")
		require.Contains(t, out, "CKR_PIN_INCORRECT", out)
	})

	classes := filepath.Join(h.Dir, "classes")
	ok = check(t, "java/javac", func(t *testing.T) {
		src, err := filepath.Abs(filepath.Join("testdata", "java", "GohsmClient.java"))
		require.NoError(t, err)
		mustRun(t, javaTimeout, nil, javac, "-Xlint:all", "-Werror", "-d", classes, src)
	})
	require.True(t, ok, "java: the driver did not compile")

	// One JVM runs every JCA check; each of its "PASS name"/"FAIL name"
	// lines becomes a subtest here.
	out, runErr := run(t, javaTimeout, h.Env, java, "-cp", classes, "GohsmClient", cfg, userPIN,
		"jec", "jrsa", "jaes", fmt.Sprint(javaThreads), fmt.Sprint(javaIterations),
		"jaeskat:"+hex.EncodeToString(aesKAT))
	for _, name := range []string{
		"java/keystore-login",
		"java/keystore-entries",
		"java/sign-SHA256withECDSA",
		"java/sign-SHA256withRSA",
		"java/sign-RSASSA-PSS",
		"java/sign-SHA256withRSASSA-PSS",
		"java/aes-gcm",
		"java/aes-gcm-sunjce",
	} {
		check(t, name, func(t *testing.T) {
			line := javaDriverLine(out, name)
			require.NotEmpty(t, line, "no result line for %s in the Java driver's output:\n%s", name, out)
			require.True(t, strings.HasPrefix(line, "PASS "), "%s\n%s", line, out)
		})
	}
	check(t, "java/driver-exit", func(t *testing.T) {
		require.NoError(t, runErr, out)
		require.NotRegexp(t, `(?m)^FAIL `, out)
	})
}

// javaProviderConfig is a SunPKCS11 configuration for the module lib and
// the slot with ID slot (decimal; SunPKCS11 has no token-label selector).
func javaProviderConfig(lib string, slot uint) string {
	return fmt.Sprintf("name = gohsm\nlibrary = %s\nslot = %d\n", lib, slot)
}

// javaDriverLine is the "PASS name ..." or "FAIL name: ..." line of a driver's
// output for the check name, or "".
func javaDriverLine(out, name string) string {
	re := regexp.MustCompile(`(?m)^(PASS|FAIL) ` + regexp.QuoteMeta(name) + `(?:[ :].*)?$`)
	return re.FindString(out)
}

// p11toolImportAES writes the AES key value to the token as the user (id hex,
// label) with pkcs11-tool.
func p11toolImportAES(t *testing.T, h *hsm, p11tool string, value []byte, id, label string) {
	t.Helper()
	f := h.Path(label + ".key")
	require.NoError(t, os.WriteFile(f, value, 0o600))
	mustRun(t, time.Minute, h.Env, p11tool, "--module", h.Lib, "--login", "--pin", userPIN,
		"--write-object", f, "--type", "secrkey", "--key-type", fmt.Sprintf("AES:%d", len(value)),
		"--id", id, "--label", label)
	require.NoError(t, os.Remove(f))
}

// p11toolReadPublicKey reads the token public key with CKA_ID id (hex) through
// pkcs11-tool (SubjectPublicKeyInfo DER).
func p11toolReadPublicKey(t *testing.T, h *hsm, p11tool, id string) crypto.PublicKey {
	t.Helper()
	f := h.Path("pub-" + id + ".der")
	mustRun(t, time.Minute, h.Env, p11tool, "--module", h.Lib, "--read-object", "--type", "pubkey",
		"--id", id, "--output-file", f)
	der, err := os.ReadFile(f)
	require.NoError(t, err)
	pub, err := x509.ParsePKIXPublicKey(der)
	require.NoError(t, err, "pkcs11-tool's public key %s", id)
	return pub
}

// javaTestCA is a throwaway software CA that certifies token public keys.
type javaTestCA struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
}

func newJavaTestCA(t *testing.T) *javaTestCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "gohsm clients test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &javaTestCA{key: key, cert: cert}
}

// issue returns a DER certificate for pub with the common name cn.
func (ca *javaTestCA) issue(t *testing.T, cn string, pub crypto.PublicKey) []byte {
	t.Helper()
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	require.NoError(t, err)
	return der
}
