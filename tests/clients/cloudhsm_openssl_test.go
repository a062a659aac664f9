package clients

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestCloudHSMOpenSSLEngine is OpenSSL 3 with libp11's pkcs11 engine on
// each profile, signing with an EC P-256 key that pkcs11-tool generated as a
// CloudHSM user does (--login with name:password, --private, --usage-sign).
// OpenSC's pkcs11-spy sits between the engine and the module, so that the
// test sees what libp11 asks for.
//
// libp11 (0.4.12, Debian 12) opens every session without CKF_RW_SESSION
// (C_OpenSession flags 0x4) and has no option to ask for R/W. The cloudhsm
// profile refuses R/O sessions with CKR_FUNCTION_FAILED (behaviour 3), as
// SDK 5.1.0 did to libp11's engine (OpenSC/libp11#412: "ReadOnly cannot be
// created by Hsm1 provider", 0x00000006). libp11 0.4.12 then waits forever
// for a free session (its pkcs11_get_session treats any C_OpenSession error
// as "no session free"; fixed upstream by OpenSC/libp11#579), so in the
// cloudhsm profile openssl hangs: the test stops it once the spy's log has
// the refusal. The standard profile signs, with name:password and
// with a bare password. docs/cloudhsm.md "Real clients" says why this may
// differ from a current SDK.
func TestCloudHSMOpenSSLEngine(t *testing.T) {
	openssl := needTool(t, "openssl", "openssl")
	needFile(t, pkcs11Engine, "libengine-pkcs11-openssl")
	spy := needFile(t, "/usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so", "opensc")
	p11tool := needTool(t, "pkcs11-tool", "opensc")
	for _, profile := range profiles {
		t.Run(profile, func(t *testing.T) {
			cloud := profile == "cloudhsm"
			h := newProfileHSM(t, "ossl"+profile, profile)
			conf := h.Path("openssl.cnf")
			require.NoError(t, os.WriteFile(conf, []byte(opensslEngineConf(spy)), 0o600))
			spyLog := h.Path("spy.log")
			env := append(append([]string{}, h.Env...), "OPENSSL_CONF="+conf,
				"PKCS11SPY="+h.Lib, "PKCS11SPY_OUTPUT="+spyLog)
			plain := []string{"OPENSSL_CONF=/dev/null"}
			ok := check(t, "pkcs11-tool keypairgen EC:prime256v1", func(t *testing.T) {
				mustRun(t, time.Minute, h.Env, p11tool, "--module", h.Lib, "--login", "--pin", userPIN,
					"--keypairgen", "--key-type", "EC:prime256v1", "--usage-sign", "--private",
					"--id", "01", "--label", "eck")
				mustRun(t, time.Minute, h.Env, p11tool, "--module", h.Lib, "--login", "--pin", userPIN,
					"--session-rw", "--read-object", "--type", "pubkey", "--id", "01", "-o", h.Path("eck.der"))
			})
			require.True(t, ok)
			hash := make([]byte, 32)
			_, _ = rand.Read(hash)
			hashFile := h.Path("hash")
			require.NoError(t, os.WriteFile(hashFile, hash, 0o600))
			signArgs := func(pin string) []string {
				uri := "pkcs11:token=" + h.Label + ";object=eck;type=private;pin-value=" + pin
				return []string{"pkeyutl", "-engine", "pkcs11", "-keyform", "engine",
					"-sign", "-inkey", uri, "-in", hashFile, "-out", h.Path("sig")}
			}
			// openSessions is every C_OpenSession of the spy's log as
			// "flags -> returned".
			openSessions := func() []string {
				b, _ := os.ReadFile(spyLog) // none yet: no sessions
				re := regexp.MustCompile(`(?m)^\d+: C_OpenSession\n(?:.*\n)*?\[in\] flags = (0x[0-9a-f]+)\n(?:.*\n)*?Returned:\s+\d+ (CKR_\w+)`)
				var got []string
				for _, m := range re.FindAllStringSubmatch(string(b), -1) {
					got = append(got, m[1]+" -> "+m[2])
				}
				return got
			}
			if cloud {
				check(t, "engine sign: R/O session refused", func(t *testing.T) {
					// libp11 does not return after the refusal: run openssl
					// until the spy's log has C_OpenSession's answer (a
					// minute at most, for a loaded machine), give it a
					// second more to go on, then stop it.
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					defer cancel()
					cmd := exec.CommandContext(ctx, openssl, signArgs(userPIN)...)
					cmd.Env = append(os.Environ(), env...)
					var out bytes.Buffer
					cmd.Stdout, cmd.Stderr = &out, &out
					require.NoError(t, cmd.Start())
					done := make(chan error, 1)
					go func() { done <- cmd.Wait() }()
					var exit error
					exited := false
					for !exited && len(openSessions()) == 0 {
						select {
						case exit = <-done:
							exited = true
						case <-time.After(100 * time.Millisecond):
						}
					}
					if !exited {
						select {
						case exit = <-done:
						case <-time.After(time.Second):
							_ = cmd.Process.Kill()
							exit = fmt.Errorf("still running a second after C_OpenSession's answer (killed): %w", <-done)
						}
					}
					t.Logf("openssl: %v\n%s", exit, out.String())
					require.Error(t, exit, "libp11 signed through a R/O session")
					sessions := openSessions()
					require.NotEmpty(t, sessions, "no C_OpenSession in the spy's log")
					require.Equal(t, "0x4 -> CKR_FUNCTION_FAILED", sessions[0])
					for _, s := range sessions {
						require.NotContains(t, s, "CKR_OK", "a session was opened")
					}
				})
				return
			}
			for _, pin := range []string{userPIN, userPassword} {
				check(t, "engine sign ECDSA P-256, PIN "+pin, func(t *testing.T) {
					_ = os.Remove(spyLog)
					out, err := run(t, time.Minute, env, openssl, signArgs(pin)...)
					require.NoError(t, err, out)
					require.Contains(t, openSessions(), "0x4 -> CKR_OK", "libp11 opens R/O sessions")
					out = mustRun(t, time.Minute, plain, openssl, "pkeyutl", "-verify", "-pubin", "-keyform", "DER",
						"-inkey", h.Path("eck.der"), "-in", hashFile, "-sigfile", h.Path("sig"))
					require.Contains(t, out, "Signature Verified Successfully")
				})
			}
		})
	}
}
