package abi_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gohsm/internal/ck"
	"gohsm/internal/testenv"
	"gohsm/mechanisms"
)

// The cloudhsm profile's mechanism policy through the C ABI
// (docs/cloudhsm.md, "Mechanisms" and "AES-GCM"): testdata/abi_cloudhsm_mech.c
// runs the same scenarios against a slot of each profile and checks
// CloudHSM's answers in one and PKCS#11's in the other.

const (
	mechCOPIN = "admin:Officer-pw1"
	mechCU    = "cu1"
	mechCUPW  = "Crypto-pw1"
)

// mechSlot writes a configuration whose slot 0 has the profile lines,
// initialises its token and makes a crypto user with the CLI (the way a
// cloudhsm token is set up), and returns the configuration's path.
func mechSlot(t *testing.T, dir, profileLines string) string {
	t.Helper()
	tokenDir := filepath.Join(dir, "token")
	if err := os.MkdirAll(tokenDir, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "gohsm.conf")
	if err := os.WriteFile(conf, []byte(tokenConfig(tokenDir)+profileLines+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cli := testenv.CLI(t)
	for _, args := range [][]string{
		{"token", "init", "--label", "abi", "--pin", mechCOPIN},
		{"user", "create", "--username", mechCU, "--role", "crypto-user", "--password", mechCUPW, "--pin", mechCOPIN},
	} {
		cmd := exec.Command(cli, append([]string{"--config", conf}, args...)...)
		cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+dir, "XDG_DATA_HOME="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("gohsm %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return conf
}

// mechRunDriver runs a driver built into dir with args after the library,
// like runDriver, against the configuration conf, and returns its output.
func mechRunDriver(t *testing.T, bin, dir, conf string, timeout time.Duration, args ...string) string {
	t.Helper()
	env := append(os.Environ(), "GOHSM_CONF="+conf, "XDG_CONFIG_HOME="+dir, "XDG_DATA_HOME="+dir)
	return execDriver(t, filepath.Base(bin), bin, dir, env, timeout, append([]string{library(t)}, args...)...)
}

// mechListed reads the driver's LISTED lines as mechanism names.
func mechListed(t *testing.T, out string) []string {
	var names []string
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "LISTED "); ok {
			n, err := strconv.ParseUint(strings.TrimPrefix(v, "0x"), 16, 64)
			if err != nil {
				t.Fatalf("LISTED %q: %v", v, err)
			}
			names = append(names, ck.MechanismType(n).String())
		}
	}
	return names
}

// mechPinned reads a pinned list (one name a line, # comments).
func mechPinned(t *testing.T, file string) []string {
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if name, ok := strings.CutSuffix(l, " (vendor)"); ok {
			// Listed once the table has its row (the same source tree
			// the library was built from).
			if !mechHasRow(t, name) {
				continue
			}
			l = name
		}
		want = append(want, l)
	}
	return want
}

// mechHasRow reports whether the mechanism table has a row for a name.
func mechHasRow(t *testing.T, name string) bool {
	for v := ck.MechanismType(0x80000000); v < 0x80010000; v++ {
		if v.String() == name {
			_, ok := mechanisms.Lookup(v)
			return ok
		}
	}
	t.Fatalf("pinned vendor mechanism %q: no such CKM_ name", name)
	return false
}

func mechSameSet(t *testing.T, what string, got, want []string) {
	t.Helper()
	var missing, extra []string
	for _, w := range want {
		if !slices.Contains(got, w) {
			missing = append(missing, w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			extra = append(extra, g)
		}
	}
	if len(missing) > 0 || len(extra) > 0 || len(got) != len(want) {
		t.Fatalf("C_GetMechanismList differs from %s:\npinned but not listed: %v\nlisted but not pinned: %v\n"+
			"(%d listed, %d pinned; a deliberate change updates the file)", what, missing, extra, len(got), len(want))
	}
}

// TestCloudHSMMechanismPolicy: the mechanism list, refusals outside it,
// the HSM-made AES-GCM IV written into the caller's CK_GCM_PARAMS.pIv,
// per-mechanism input caps, single-part rules, OAEP pairs and FIPS
// refusals, in a standard slot, a cloudhsm slot (fips = true, the
// default) and a cloudhsm slot with fips = false. The cloudhsm list must
// be testdata/mechanisms-cloudhsm.txt (fips = false adds the 3DES ones);
// the standard one testdata/mechanisms-standard.txt.
func TestCloudHSMMechanismPolicy(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := buildDriver(t, "abi_cloudhsm_mech", dir)
	pinned := mechPinned(t, "testdata/mechanisms-cloudhsm.txt")
	for _, c := range []struct {
		mode, lines string
		want        []string
	}{
		{"standard", "", mechPinned(t, "testdata/mechanisms-standard.txt")},
		{"cloudhsm", "profile = cloudhsm", pinned},
		{"cloudhsm-nonfips", "profile = cloudhsm\nfips = false",
			append(slices.Clone(pinned), "CKM_DES3_KEY_GEN", "CKM_DES3_ECB", "CKM_DES3_CBC", "CKM_DES3_CBC_PAD")},
	} {
		t.Run(c.mode, func(t *testing.T) {
			t.Parallel()
			d := filepath.Join(dir, c.mode)
			conf := mechSlot(t, d, c.lines)
			out := mechRunDriver(t, bin, d, conf, 2*time.Minute, c.mode, fmt.Sprintf("%s:%s", mechCU, mechCUPW))
			mechSameSet(t, c.mode+"'s pinned list", mechListed(t, out), c.want)
		})
	}
}
