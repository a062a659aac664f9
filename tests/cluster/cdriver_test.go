package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"gohsm/internal/testenv"
)

// buildCDriver compiles testdata/cluster_driver.c (plain C: the library
// reached through its function list, no Go runtime but the library's).
func buildCDriver(t *testing.T) string {
	t.Helper()
	return testenv.CompileC(t, filepath.Join("testdata", "cluster_driver.c"), filepath.Join(t.TempDir(), "cluster_driver"))
}

// runCDriver runs the driver on the token with args and fails the test
// on a non-zero exit, a FAIL line or no PASS line. It returns stdout.
func (tk *tok) runCDriver(bin string, args ...string) string {
	tk.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{libPath}, args...)...)
	cmd.Env = append(os.Environ(), "GOHSM_CONF="+tk.conf, "CLUSTER_PIN="+userPIN)
	cmd.WaitDelay = 5 * time.Second
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	text := out.String()
	tk.t.Logf("cluster_driver %s:\n%s%s", strings.Join(args, " "), text, errOut.String())
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		tk.t.Fatalf("cluster_driver timed out (a hang)")
	}
	require.NoError(tk.t, err, "cluster_driver %s", strings.Join(args, " "))
	passes := 0
	for _, l := range strings.Split(text, "\n") {
		require.False(tk.t, strings.HasPrefix(l, "FAIL "), "cluster_driver: %s", l)
		if strings.HasPrefix(l, "PASS ") {
			passes++
		}
	}
	require.Positive(tk.t, passes, "cluster_driver printed no PASS line")
	return text
}

// TestCDriverThrottle: TestThrottleAtConfiguredRate from a C program (one
// signer, each sign a length query and a C_Sign): over 2 x 200 signs/s it
// gets CKR_FUNCTION_FAILED and passes 400/s within 75%-125%; length
// queries are never refused.
func TestCDriverThrottle(t *testing.T) {
	tk := newCluster(t, "hsms = 2", "throttle.ec-sign = 200", "retry_mode = off")
	bin := buildCDriver(t)
	out := tk.runCDriver(bin, "throttle", "1.5", "0.3")
	var ok, failed, other int
	var window float64
	i := strings.Index(out, "RESULT ")
	require.GreaterOrEqual(t, i, 0, "no RESULT line")
	_, err := fmt.Sscanf(out[i:], "RESULT ok=%d failed=%d other=%d window=%g", &ok, &failed, &other, &window)
	require.NoError(t, err)
	require.Zero(t, other)
	require.Positive(t, failed, "calls over the budget fail with CKR_FUNCTION_FAILED")
	within(t, "OK signs per second from C (2 HSMs x 200)", float64(ok)/window, 400, 0.75, 1.25)
}

// TestCDriverKeyAvailability: TestKeyAvailabilityOneHSM's refusals from a
// C program: with one HSM and the check on, token keys cannot be made
// (CKR_FUNCTION_FAILED, nothing stored), session keys work.
func TestCDriverKeyAvailability(t *testing.T) {
	tk := newCluster(t, "hsms = 1")
	tk.runCDriver(buildCDriver(t), "availability")
	require.Contains(t, tk.logText(), availabilityMessage)
}
