package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/require"
)

// TestConfigErrorOnStandardError: docs/config.md says a bad configuration is
// reported in one line on standard error, not in log_file (the
// configuration naming it failed), and that C_Initialize answers
// CKR_GENERAL_ERROR when the configuration came from $GOHSM_CONF.
func TestConfigErrorOnStandardError(t *testing.T) {
	tk := newToken(t)
	logFile := filepath.Join(t.TempDir(), "gohsm.log")
	require.NoError(t, os.WriteFile(tk.conf, []byte("log_file = "+logFile+"\nlog_level = debug\nno_such_key = 1\n"), 0o600))
	h := tk.start("init", "")
	out := h.wait(t)
	require.Equal(t, []string{pkcs11.Error(pkcs11.CKR_GENERAL_ERROR).Error()}, out, "C_Initialize with a bad $GOHSM_CONF")
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(h.errText()), "\n") {
		if strings.HasPrefix(l, "gohsm:") {
			lines = append(lines, l)
		}
	}
	require.Len(t, lines, 1, "stderr:\n%s", h.errText())
	require.Contains(t, lines[0], "no_such_key")
	require.NoFileExists(t, logFile, "a configuration that failed opened its log_file")
}
