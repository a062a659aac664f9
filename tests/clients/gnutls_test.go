package clients

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestGnuTLS drives GnuTLS's p11tool and certtool (Debian gnutls-bin). They
// reach the module through p11-kit (--provider), which passes C_Initialize
// flags CKF_OS_LOCKING_OK|CKF_LIBRARY_CANT_CREATE_OS_THREADS: a module that
// refuses the second flag fails every check here with "Thread locking error".
func TestGnuTLS(t *testing.T) {
	p11tool := needTool(t, "p11tool", "gnutls-bin")
	certtool := needTool(t, "certtool", "gnutls-bin")
	openssl := needTool(t, "openssl", "openssl")
	h := newHSM(t, "gnutls")
	// GnuTLS asks for PINs through these variables when --login/--so-login
	// is given and there is no terminal.
	env := append(append([]string{}, h.Env...), "GNUTLS_PIN="+userPIN, "GNUTLS_SO_PIN="+soPIN)
	tokenURI := "pkcs11:token=" + h.Label
	p11 := func(t *testing.T, args ...string) string {
		t.Helper()
		return mustRun(t, time.Minute, env, p11tool, append([]string{"--provider", h.Lib}, args...)...)
	}

	if !check(t, "p11tool --list-tokens", func(t *testing.T) {
		out := p11(t, "--list-tokens")
		require.Contains(t, out, "Label: "+h.Label)
		require.Contains(t, out, "token="+h.Label)
		require.Contains(t, out, "Manufacturer: gohsm")
	}) {
		return
	}

	keys := []struct {
		label, gen, algo string
		genArgs          []string
	}{
		{"ecg", "ECDSA", "ecdsa-with-SHA256", []string{"--curve", "secp256r1"}},
		{"rsag", "RSA", "sha256WithRSAEncryption", []string{"--bits", "2048"}},
	}
	for _, k := range keys {
		check(t, "p11tool --generate-privkey "+k.gen, func(t *testing.T) {
			args := append([]string{"--login", "--generate-privkey", k.gen}, k.genArgs...)
			p11(t, append(args, "--label", k.label, "--outfile", h.Path(k.label+".pub.pem"), tokenURI)...)
			pub, err := os.ReadFile(h.Path(k.label + ".pub.pem"))
			require.NoError(t, err)
			require.Contains(t, string(pub), "BEGIN PUBLIC KEY")
		})
	}

	check(t, "p11tool --list-all --login", func(t *testing.T) {
		out := p11(t, "--login", "--list-all", tokenURI)
		for _, want := range []string{
			"object=ecg;type=private", "object=ecg;type=public", "Private key (EC/ECDSA-SECP256R1)",
			"object=rsag;type=private", "object=rsag;type=public", "Private key (RSA-2048)",
		} {
			require.Contains(t, out, want)
		}
		// Without a login the private keys stay hidden (CKA_PRIVATE).
		out = p11(t, "--list-all", tokenURI)
		require.Contains(t, out, "object=ecg;type=public")
		require.NotContains(t, out, "type=private")
	})

	tmpl := h.Path("cert.tmpl")
	require.NoError(t, os.WriteFile(tmpl, []byte(
		"cn = \"gohsm gnutls test\"\nserial = 1\nexpiration_days = 30\nca\ncert_signing_key\nsigning_key\n"), 0o600))
	for _, k := range keys {
		check(t, "certtool --generate-self-signed "+k.label, func(t *testing.T) {
			cert := h.Path(k.label + ".crt")
			mustRun(t, time.Minute, env, certtool, "--generate-self-signed", "--provider", h.Lib,
				"--load-privkey", tokenURI+";object="+k.label+";type=private",
				"--template", tmpl, "--outfile", cert)
			text := mustRun(t, time.Minute, nil, openssl, "x509", "-in", cert, "-noout", "-text")
			require.Contains(t, text, "Signature Algorithm: "+k.algo)
			require.Contains(t, text, "CN = gohsm gnutls test")
			// The certificate carries the token's public key...
			certPub := mustRun(t, time.Minute, nil, openssl, "x509", "-in", cert, "-noout", "-pubkey")
			tokenPub, err := os.ReadFile(h.Path(k.label + ".pub.pem"))
			require.NoError(t, err)
			require.Equal(t, strings.TrimSpace(string(tokenPub)), strings.TrimSpace(certPub))
			// ...and its self-signature, made by the token, verifies.
			out := mustRun(t, time.Minute, nil, openssl, "verify", "-CAfile", cert, cert)
			require.Contains(t, out, cert+": OK")
		})
	}
}
