package clients

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestCloudHSMJava is Java 17's SunPKCS11 provider (the JDK's own, not
// AWS's CloudHSM JCE provider) on each profile: keytool logs in with
// "user:password" and not with a bare password, then
// testdata/java/CloudHSMClient.java runs AES/GCM/NoPadding with a zero IV,
// a random IV and SunPKCS11's own IV, and looks for RSA-OAEP. The AES key
// is generated with pkcs11-tool as a CloudHSM user would (--private: CloudHSM
// refuses CKA_PRIVATE=false).
func TestCloudHSMJava(t *testing.T) {
	java := needTool(t, "java", "openjdk-17-jre-headless")
	javac := needTool(t, "javac", "openjdk-17-jdk-headless")
	keytool := needTool(t, "keytool", "openjdk-17-jre-headless")
	p11tool := needTool(t, "pkcs11-tool", "opensc")
	classes := t.TempDir()
	ok := check(t, "java/javac", func(t *testing.T) {
		src, err := filepath.Abs(filepath.Join("testdata", "java", "CloudHSMClient.java"))
		require.NoError(t, err)
		mustRun(t, javaTimeout, nil, javac, "-Xlint:all", "-Werror", "-d", classes, src)
	})
	require.True(t, ok, "java: the driver did not compile")
	for _, profile := range profiles {
		t.Run(profile, func(t *testing.T) {
			cloud := profile == "cloudhsm"
			h := newProfileHSM(t, "java"+profile, profile)
			ok := check(t, "java/setup-aes-key", func(t *testing.T) {
				mustRun(t, time.Minute, h.Env, p11tool, "--module", h.Lib, "--login", "--pin", userPIN,
					"--keygen", "--key-type", "AES:32", "--private", "--id", "03", "--label", "jaes")
			})
			require.True(t, ok)
			cfg := h.Path("java-pkcs11.cfg")
			require.NoError(t, os.WriteFile(cfg, []byte(javaProviderConfig(h.Lib, 0)), 0o600))
			keytoolList := func(pin string) (string, error) {
				return run(t, javaTimeout, h.Env, keytool, "-v", "-list", "-storetype", "PKCS11",
					"-providerClass", "sun.security.pkcs11.SunPKCS11", "-providerArg", cfg, "-storepass", pin)
			}
			check(t, "java/keytool-name-password", func(t *testing.T) {
				out, err := keytoolList(userPIN)
				require.NoError(t, err, out)
				require.Contains(t, out, "Alias name: jaes", out)
			})
			check(t, "java/keytool-bare-password", func(t *testing.T) {
				out, err := keytoolList(userPassword)
				if cloud {
					require.Error(t, err, "keytool logged in with a bare password")
					require.Contains(t, out, "CKR_PIN_INCORRECT", out)
				} else {
					require.NoError(t, err, out)
				}
			})
			out, runErr := run(t, javaTimeout, h.Env, java, "-cp", classes, "CloudHSMClient", cfg, userPIN, "jaes", profile)
			for _, name := range []string{"java/login-name-password", "java/gcm-zero-iv", "java/gcm-random-iv",
				"java/gcm-provider-iv", "java/oaep-not-in-sunpkcs11"} {
				check(t, name, func(t *testing.T) {
					line := javaDriverLine(out, name)
					require.NotEmpty(t, line, "no result line for %s in the Java driver's output:\n%s", name, out)
					require.True(t, strings.HasPrefix(line, "PASS "), "%s\n%s", line, out)
				})
			}
			check(t, "java/driver-exit", func(t *testing.T) {
				require.NoError(t, runErr, out)
			})
		})
	}
}
