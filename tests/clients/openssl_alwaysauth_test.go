package clients

import (
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestOpenSSLEngineAlwaysAuthenticate: libp11's engine signs with a key
// that has CKA_ALWAYS_AUTHENTICATE (made by pkcs11-tool --always-auth): it
// reads the attribute and, after C_SignInit, asks for the PIN ("Enter
// PKCS#11 key PIN for aak:", through OpenSSL's UI: the terminal, or here
// standard input, not the URI's pin-value) and answers with
// C_Login(CKU_CONTEXT_SPECIFIC). Against a module that refuses that login
// (CKR_OPERATION_NOT_INITIALIZED) the signature fails.
func TestOpenSSLEngineAlwaysAuthenticate(t *testing.T) {
	openssl := needTool(t, "openssl", "openssl")
	needFile(t, pkcs11Engine, "libengine-pkcs11-openssl")
	p11tool := needTool(t, "pkcs11-tool", "opensc")
	h := newHSM(t, "osslaa")
	conf := h.Path("openssl.cnf")
	require.NoError(t, os.WriteFile(conf, []byte(opensslEngineConf(h.Lib)), 0o600))
	env := append(append([]string{}, h.Env...), "OPENSSL_CONF="+conf)
	plain := []string{"OPENSSL_CONF=/dev/null"}

	if !check(t, "pkcs11-tool --keypairgen --always-auth", func(t *testing.T) {
		mustRun(t, time.Minute, h.Env, p11tool, "--module", h.Lib, "--login", "--pin", userPIN,
			"--keypairgen", "--key-type", "EC:prime256v1", "--label", "aak", "--id", "07", "--always-auth")
		der := h.Path("aak.pub.der")
		mustRun(t, time.Minute, h.Env, p11tool, "--module", h.Lib,
			"--read-object", "--type", "pubkey", "--id", "07", "-o", der)
		mustRun(t, time.Minute, plain, openssl, "pkey", "-pubin", "-inform", "DER", "-in", der, "-out", h.Path("aak.pub.pem"))
	}) {
		return
	}
	hash := make([]byte, 32)
	_, err := rand.Read(hash)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(h.Path("hash"), hash, 0o600))
	check(t, "pkeyutl sign with an always-authenticate key", func(t *testing.T) {
		uri := "pkcs11:token=" + h.Label + ";object=aak;type=private;pin-value=" + userPIN
		// A new session has no terminal, so OpenSSL's UI reads the PIN
		// from standard input.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, openssl, "pkeyutl", "-engine", "pkcs11", "-keyform", "engine", "-sign",
			"-inkey", uri, "-in", h.Path("hash"), "-out", h.Path("sig"))
		cmd.Env = append(os.Environ(), env...)
		cmd.Stdin = strings.NewReader(userPIN + "\n")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		cmd.WaitDelay = 5 * time.Second
		out, err := cmd.CombinedOutput()
		t.Logf("$ openssl pkeyutl -sign -inkey %s (PIN on stdin)\n%s", uri, out)
		require.NoError(t, err, string(out))
		verified := mustRun(t, time.Minute, plain, openssl, "pkeyutl", "-verify", "-pubin", "-inkey", h.Path("aak.pub.pem"),
			"-in", h.Path("hash"), "-sigfile", h.Path("sig"))
		require.Contains(t, verified, "Signature Verified Successfully")
	})
	// pkcs11-tool logs in context-specific with its --pin (OpenSC's
	// "respect CKA_ALWAYS_AUTHENTICATE").
	check(t, "pkcs11-tool --sign with an always-authenticate key", func(t *testing.T) {
		mustRun(t, time.Minute, h.Env, p11tool, "--module", h.Lib, "--login", "--pin", userPIN, "--sign",
			"--id", "07", "-m", "ECDSA", "--signature-format", "openssl",
			"--input-file", h.Path("hash"), "--output-file", h.Path("sig2"))
		verified := mustRun(t, time.Minute, plain, openssl, "pkeyutl", "-verify", "-pubin", "-inkey", h.Path("aak.pub.pem"),
			"-in", h.Path("hash"), "-sigfile", h.Path("sig2"))
		require.Contains(t, verified, "Signature Verified Successfully")
	})
}
