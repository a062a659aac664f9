package abi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gohsm/internal/ck"
	"gohsm/internal/testenv"
	"gohsm/mechanisms"
)

// TestCloudHSMAttributes runs abi_cloudhsm_attrs once per profile: the
// attribute defaults, read-only and unsupported attributes, mandatory
// attributes, CKA_PRIVATE/CKA_MODIFIABLE, private components, attribute
// changes, key sizes and C_GetMechanismInfo's, the wrap rules and the
// quotas (docs/cloudhsm.md, "Attributes" and "Key limits and quotas").
// The driver expects each profile's own answers: a check that differs
// between the two fails when run under the other profile.
func TestCloudHSMAttributes(t *testing.T) {
	for _, prof := range []string{"standard", "cloudhsm"} {
		t.Run(prof, func(t *testing.T) {
			t.Parallel()
			runProfileDriver(t, "abi_cloudhsm_attrs", prof, 3*time.Minute)
		})
	}
}

// TestCloudHSMQuotaAcrossProcesses: two processes creating token keys at
// once stop together at the key quota (40 with the configuration's test
// key, 2 of them the setup's pair): the store counts in the creating
// transaction.
func TestCloudHSMQuotaAcrossProcesses(t *testing.T) {
	t.Parallel()
	lib := library(t)
	dir, conf, bin := setupProfileToken(t, "abi_cloudhsm_attrs", "cloudhsm", "test_max_keys = 40\n")
	var outs [2]bytes.Buffer
	var cmds [2]*exec.Cmd
	for i := range cmds {
		cmds[i] = exec.Command(bin, lib, "cloudhsm", "fill")
		cmds[i].Dir = dir
		cmds[i].Env = append(os.Environ(), "GOHSM_CONF="+conf, "XDG_CONFIG_HOME="+dir, "XDG_DATA_HOME="+dir)
		cmds[i].Stdout, cmds[i].Stderr = &outs[i], &outs[i]
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	total := 0
	for i, c := range cmds {
		err := c.Wait()
		var n int
		var rv string
		for _, l := range strings.Split(outs[i].String(), "\n") {
			if strings.HasPrefix(l, "MADE ") {
				fmt.Sscanf(l, "MADE %d %s", &n, &rv)
			}
		}
		if err != nil || rv != "CKR_FUNCTION_FAILED" {
			t.Fatalf("process %d: %v, ended with %q:\n%s", i, err, rv, outs[i].String())
		}
		t.Logf("process %d made %d keys", i, n)
		total += n
	}
	if total != 38 {
		t.Fatalf("the two processes made %d token keys, want 38 (40 less the setup's pair)", total)
	}
}

// setupProfileToken writes a configuration with one slot under profile
// prof (plus extra slot lines) and sets its token up through the gohsm
// CLI: an officer, crypto user "user", and an RSA pair "trusted-kek"
// whose public key the officer marks trusted. It builds the driver and
// returns the directory, the configuration file and the driver.
func setupProfileToken(t *testing.T, name, prof, extra string) (dir, conf, bin string) {
	cli := testenv.CLI(t)
	dir = t.TempDir()
	bin = buildDriver(t, name, dir)
	conf = filepath.Join(dir, "gohsm.conf")
	text := fmt.Sprintf(`token_dir = %s
log_level = error
kdf_time = 1
kdf_memory = 64
login_cache = off
kdf_threads = 1

[slot 0]
label = abi
profile = %s
%s`, filepath.Join(dir, "token"), prof, extra)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	gohsm := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(cli, append([]string{"--config", conf}, args...)...)
		cmd.Env = append(os.Environ(), "GOHSM_PIN=")
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("gohsm %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
		}
		return out
	}
	const co = "admin:officer-pw"
	gohsm("token", "init", "--label", "abi", "--pin", co)
	gohsm("user", "create", "--username", "user", "--role", "crypto-user", "--password", "user-pw-1", "--pin", co)
	var pair struct {
		Data struct {
			Pub struct {
				Handle uint64 `json:"handle"`
			} `json:"public_key"`
		} `json:"data"`
	}
	if err := json.Unmarshal(gohsm("--json", "key", "generate", "rsa", "--bits", "2048", "--label", "trusted-kek", "--pin", "user:user-pw-1"), &pair); err != nil {
		t.Fatal(err)
	}
	gohsm("key", "set-trusted", "--handle", fmt.Sprint(pair.Data.Pub.Handle), "--pin", co)
	return dir, conf, bin
}

// runProfileDriver sets a token up under profile prof (setupProfileToken,
// with small quotas: standard has none and ignores them), then runs the
// driver with the library and the profile's name as arguments.
func runProfileDriver(t *testing.T, name, prof string, timeout time.Duration) {
	lib := library(t)
	dir, conf, bin := setupProfileToken(t, name, prof, `# for tests: small quotas (standard has none, and ignores these)
test_max_keys = 6
test_max_asymmetric_keys = 4
test_max_certificates = 2
`)
	// Generic secrets of 800 and 801 bytes wrapped (RFC 5649) under the
	// driver's unwrapping key, 32 bytes of 0x11.
	kw, ok := mechanisms.Lookup(ck.CKM_CLOUDHSM_AES_KEY_WRAP_ZERO_PAD)
	if !ok {
		t.Fatal("no CKM_CLOUDHSM_AES_KEY_WRAP_ZERO_PAD")
	}
	for _, n := range []int{800, 801} {
		w, err := kw.Wrap(bytes.Repeat([]byte{0x11}, 32), nil, make([]byte, n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("wrapped%d.bin", n)), w, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := append(os.Environ(), "GOHSM_CONF="+conf, "XDG_CONFIG_HOME="+dir, "XDG_DATA_HOME="+dir)
	execDriver(t, name, bin, dir, env, timeout, lib, prof)
}
