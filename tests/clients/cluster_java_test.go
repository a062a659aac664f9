package clients

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// javaBudget is the ec-sign budget of each emulated HSM in
// TestClusterJavaThrottling, in signatures per second. The signing key is a
// session key, which lives on one HSM (docs/cluster.md), so it is the
// budget of the whole run.
const javaBudget = 50

// javaSignWindow is how long the Java driver signs in each case.
const javaSignWindow = 2 * time.Second

// TestClusterJavaThrottling is Java 17's SunPKCS11 against a cloudhsm slot
// whose emulated HSMs sign at most javaBudget ECDSA signatures a second
// (throttle.ec-sign). testdata/java/ThrottledSigner.java generates an EC
// P-256 session key pair on the token and signs SHA256withECDSA in a loop.
//
//   - retry_mode = off, 4 threads: the HSM's budget is exceeded at once and
//     the SDK's answer reaches Java as a PKCS11Exception with
//     getErrorCode() 0x6, CKR_FUNCTION_FAILED (UG:troubleshoot-hsm-throttling:
//     HSM response 187, 0xBB, is CKR_FUNCTION_FAILED in SDK 5), the cause of
//     the provider's exception; the signatures that do succeed come at the
//     budget's rate, no faster.
//   - retry_mode = standard, 1 thread signing back to back: the emulated
//     SDK retries (UG:pkcs11-library-configs-retry: up to 3 times, backing
//     off) and every signature succeeds, still at the budget's rate.
//
// The rates are counted by the driver over its whole window; the
// tolerances are wide (a loaded 2-core machine) but a budget that is
// ignored (tens of thousands of signatures a second here) or a retry that
// is not made (failures with one thread) fails the test.
func TestClusterJavaThrottling(t *testing.T) {
	java := needTool(t, "java", "openjdk-17-jre-headless")
	javac := needTool(t, "javac", "openjdk-17-jdk-headless")
	classes := t.TempDir()
	// PKCS11Exception is in a package jdk.crypto.cryptoki does not export:
	// an application that catches it, as this one does, is compiled and
	// run with it exported.
	exports := []string{"--add-modules", "jdk.crypto.cryptoki",
		"--add-exports", "jdk.crypto.cryptoki/sun.security.pkcs11.wrapper=ALL-UNNAMED"}
	ok := check(t, "java/javac", func(t *testing.T) {
		src, err := filepath.Abs(filepath.Join("testdata", "java", "ThrottledSigner.java"))
		require.NoError(t, err)
		args := append(append([]string{"-Xlint:all", "-Werror"}, exports...), "-d", classes, src)
		mustRun(t, javaTimeout, nil, javac, args...)
	})
	require.True(t, ok, "java: the driver did not compile")

	for _, tc := range []struct {
		retry   string
		threads int
	}{
		{"off", 4},
		{"standard", 1},
	} {
		t.Run("retry_mode="+tc.retry, func(t *testing.T) {
			h := newHSMWith(t, "jthrottle"+tc.retry, fmt.Sprintf("profile = cloudhsm\nthrottle.ec-sign = %d\nretry_mode = %s\n",
				javaBudget, tc.retry))
			logFile := h.logTo(t, "warn")
			cfg := h.Path("java-pkcs11.cfg")
			require.NoError(t, os.WriteFile(cfg, []byte(javaSigningProviderConfig(h.Lib, 0)), 0o600))
			args := append(append([]string{}, exports...), "-cp", classes, "ThrottledSigner", cfg, userPIN,
				strconv.Itoa(tc.threads), strconv.FormatInt(javaSignWindow.Milliseconds(), 10))
			out, err := run(t, javaTimeout, h.Env, java, args...)
			require.NoError(t, err, out)
			r := parseThrottledSigner(t, out)
			rate := float64(r.signed) / r.elapsed.Seconds()
			t.Logf("%s: %d signatures in %v (%.1f/s, budget %d/s), %d failed: %v; first failure: %s",
				t.Name(), r.signed, r.elapsed, rate, javaBudget, r.failed, r.errors, r.first)

			// The cluster's own counters (gohsm cluster status) agree with
			// what Java saw: every refusal counted as throttled, and with
			// the retry on, retries made.
			signed, throttled, retried := clusterECSign(t, h)
			t.Logf("cluster status: ec-sign calls %d, throttled %d, retried %d", signed, throttled, retried)
			check(t, "java/cluster-status-agrees", func(t *testing.T) {
				require.Equal(t, r.failed, throttled, "throttled calls in cluster status vs refusals Java saw")
				if tc.retry == "off" {
					require.Zero(t, retried)
				} else {
					require.Positive(t, retried, "the retry was never needed: no throttling to absorb")
				}
			})
			check(t, "java/first-signature-verifies", func(t *testing.T) {
				require.Contains(t, out, "\nVERIFIED\n", out)
			})
			if tc.retry == "off" {
				check(t, "java/throttled-PKCS11Exception-CKR_FUNCTION_FAILED", func(t *testing.T) {
					require.Positive(t, r.failed, "no signature was throttled:\n%s", out)
					// Every failure is the documented one: nothing else
					// (CKR_OPERATION_ACTIVE after a failed C_SignFinal, say).
					require.Equal(t, map[string]int64{"ERROR 0x6 CKR_FUNCTION_FAILED": r.failed}, r.errors, out)
					require.Contains(t, r.first, "sun.security.pkcs11.wrapper.PKCS11Exception: CKR_FUNCTION_FAILED", out)
				})
				check(t, "java/throttled-logged-0xBB", func(t *testing.T) {
					b, err := os.ReadFile(logFile)
					require.NoError(t, err)
					require.Contains(t, string(b), "HSM response 187 (0xBB)")
				})
			} else {
				check(t, "java/retry-absorbs-throttling", func(t *testing.T) {
					require.Zero(t, r.failed, "the retry did not absorb the throttling:\n%s", out)
				})
			}
			check(t, "java/signatures-at-the-budget", func(t *testing.T) {
				// The budget over the window, plus GCRA's burst of a tenth
				// of a second; the retry's back-off (5, 10, 20 ms against
				// a token every 20 ms) may lose a little.
				lo, hi := 0.4*javaBudget, 1.4*javaBudget
				require.True(t, rate >= lo && rate <= hi,
					"%.1f signatures/s (%d in %v), want %.0f..%.0f (budget %d/s)\n%s",
					rate, r.signed, r.elapsed, lo, hi, javaBudget, out)
			})
		})
	}
}

// clusterECSign sums the ec-sign counters of h's HSMs from `gohsm cluster
// status --json`.
func clusterECSign(t *testing.T, h *hsm) (calls, throttled, retried int64) {
	t.Helper()
	out := h.gohsm(t, "cluster", "status", "--json")
	var st struct {
		Data struct {
			HSMs []struct {
				Classes []struct {
					Class     string `json:"class"`
					Calls     int64  `json:"calls"`
					Throttled int64  `json:"throttled"`
					Retried   int64  `json:"retried"`
				} `json:"classes"`
			} `json:"hsms"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &st), out)
	require.NotEmpty(t, st.Data.HSMs, out)
	for _, hs := range st.Data.HSMs {
		for _, c := range hs.Classes {
			if c.Class == "ec-sign" {
				calls += c.Calls
				throttled += c.Throttled
				retried += c.Retried
			}
		}
	}
	return calls, throttled, retried
}

// throttledSigner is what ThrottledSigner.java printed.
type throttledSigner struct {
	signed, failed int64
	elapsed        time.Duration
	errors         map[string]int64 // "ERROR 0x6 CKR_FUNCTION_FAILED" or "OTHER class" -> count
	first          string           // the first failure's cause chain
}

func parseThrottledSigner(t *testing.T, out string) throttledSigner {
	t.Helper()
	r := throttledSigner{errors: map[string]int64{}}
	num := func(key string) int64 {
		m := regexp.MustCompile(`(?m)^` + key + ` (\d+)$`).FindStringSubmatch(out)
		require.NotNil(t, m, "no %s line in the driver's output:\n%s", key, out)
		n, err := strconv.ParseInt(m[1], 10, 64)
		require.NoError(t, err)
		return n
	}
	r.signed, r.failed = num("SIGNED"), num("FAILED")
	r.elapsed = time.Duration(num("ELAPSED_MS")) * time.Millisecond
	for _, m := range regexp.MustCompile(`(?m)^((?:ERROR|OTHER) .*) (\d+)$`).FindAllStringSubmatch(out, -1) {
		n, err := strconv.ParseInt(m[2], 10, 64)
		require.NoError(t, err)
		r.errors[m[1]] = n
	}
	if m := regexp.MustCompile(`(?m)^FIRST_FAILURE (.*)$`).FindStringSubmatch(out); m != nil {
		r.first = m[1]
	}
	require.Positive(t, r.elapsed, out)
	return r
}

// javaSigningProviderConfig is javaProviderConfig with the templates
// SunPKCS11 needs to generate a signing key pair: a cloudhsm slot's EC
// private key does not sign unless CKA_SIGN says so (SunPKCS11's own
// template names no usage).
func javaSigningProviderConfig(lib string, slot uint) string {
	return javaProviderConfig(lib, slot) + `attributes(generate, CKO_PRIVATE_KEY, CKK_EC) = {
  CKA_SIGN = true
}
attributes(generate, CKO_PUBLIC_KEY, CKK_EC) = {
  CKA_VERIFY = true
}
`
}

// logTo sends the module's log for h's token to a file at level (in place
// of newHSM's "log_level = error" on standard error) and returns its path.
func (h *hsm) logTo(t *testing.T, level string) string {
	t.Helper()
	logFile := h.Path("gohsm.log")
	b, err := os.ReadFile(h.Conf)
	require.NoError(t, err)
	conf := strings.Replace(string(b), "log_level = error\n", "log_level = "+level+"\nlog_file = "+logFile+"\n", 1)
	require.NotEqual(t, string(b), conf, "no log_level line in %s", h.Conf)
	require.NoError(t, os.WriteFile(h.Conf, []byte(conf), 0o600))
	return logFile
}
