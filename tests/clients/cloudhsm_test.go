package clients

// Real clients against a slot with profile = cloudhsm, each doing what an
// AWS CloudHSM (Client SDK 5) application does, and the same run on a
// standard slot: where CloudHSM answers differently, the cloudhsm run sees
// CloudHSM's answer and the standard run the specification's. The tests
// are named TestCloudHSM<Client>; docs/cloudhsm.md "Real clients" lists
// what each proves.

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// profiles are the two runs of every scenario here.
var profiles = []string{"cloudhsm", "standard"}

// newProfileHSM is newHSM with the slot's profile set: a cloudhsm slot is
// set up as a CloudHSM cluster is, through the CLI (token init makes the
// first officer, who creates the crypto user "user").
func newProfileHSM(t *testing.T, label, profile string) *hsm {
	t.Helper()
	h := &hsm{Lib: libPath(t), CLI: cliPath(t), Label: label, Dir: t.TempDir()}
	tokenDir := filepath.Join(h.Dir, "token")
	require.NoError(t, os.Mkdir(tokenDir, 0o700))
	h.Conf = filepath.Join(h.Dir, "gohsm.conf")
	conf := fmt.Sprintf(`# written by tests/clients for %s
token_dir = %s
log_level = error
kdf_time = 1
kdf_memory = 64
kdf_threads = 1

[slot 0]
label = %s
profile = %s
`, t.Name(), tokenDir, label, profile)
	require.NoError(t, os.WriteFile(h.Conf, []byte(conf), 0o600))
	h.Env = []string{"GOHSM_CONF=" + h.Conf,
		"XDG_CONFIG_HOME=" + filepath.Join(h.Dir, "xdg-config"),
		"XDG_DATA_HOME=" + filepath.Join(h.Dir, "xdg-data")}
	h.gohsm(t, "token", "init", "--label", label, "--pin", soPIN)
	h.gohsm(t, "user", "create", "--username", "user", "--role", "crypto-user",
		"--password", userPassword, "--pin", soPIN)
	return h
}

// setenv points this process's C_Initialize at h's token.
func (h *hsm) setenv(t *testing.T) {
	for _, kv := range h.Env {
		k, v, _ := bytes.Cut([]byte(kv), []byte("="))
		t.Setenv(string(k), string(v))
	}
}
