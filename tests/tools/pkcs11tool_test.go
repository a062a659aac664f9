// Package tools drives the built libgohsm.so with OpenSC's pkcs11-tool, the
// client most people try first, and cross-checks what it produces with
// openssl. Each pkcs11-tool run is a separate process (load, C_Initialize,
// work, C_Finalize, dlclose), so the checks also exercise the token's
// persistence between processes.
//
// Every check prints "PASS name" (t.Logf) or fails the test with the
// command's output. The library must be built first (`make lib`); set
// $GOHSM_LIB to test another file. pkcs11-tool comes from tests/deps.sh
// (Debian's opensc package).
package tools

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"gohsm/internal/testenv"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	soPIN   = "admin:sopassword1"
	userPIN = "userpassword1"
	// cmdTimeout bounds every subprocess: a hang in the module must fail
	// the test, not stall it.
	cmdTimeout = 60 * time.Second
)

func tokenConfig(tokenDir string) string { return testenv.TokenConfig(tokenDir, "tools") }

func inCI() bool { return testenv.InCI() }

func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	testenv.Missing(t, format, args...)
}

func library(t *testing.T) string { return testenv.Library(t) }

func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(t, "%s not found (run tests/deps.sh): %v", name, err)
	}
	return p
}

// result is one finished subprocess.
type result struct {
	args           []string
	stdout, stderr string
	err            error // exit status or start failure; nil on exit 0
}

func (r result) String() string {
	return fmt.Sprintf("$ %s\nexit: %v\n--- stdout\n%s\n--- stderr\n%s",
		strings.Join(r.args, " "), r.err, r.stdout, r.stderr)
}

// out is stdout and stderr together, for text checks.
func (r result) out() string { return r.stdout + "\n" + r.stderr }

// env is the per-test state: the tools, the library, the token's config
// and a work directory for data, signatures and keys.
type env struct {
	t       *testing.T
	p11tool string
	openssl string
	lib     string
	conf    string
	dir     string
}

func (e *env) run(name string, args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = e.dir
	// XDG_* keep the module away from the user's own configuration and
	// token should GOHSM_CONF ever be ignored.
	cmd.Env = append(os.Environ(), "GOHSM_CONF="+e.conf,
		"XDG_CONFIG_HOME="+e.dir, "XDG_DATA_HOME="+e.dir)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("timed out after %v (a hang?): %w", cmdTimeout, err)
	}
	return result{args: append([]string{filepath.Base(name)}, args...),
		stdout: stdout.String(), stderr: stderr.String(), err: err}
}

// p11 runs pkcs11-tool against the module under test.
func (e *env) p11(args ...string) result {
	e.t.Helper()
	return e.run(e.p11tool, append([]string{"--module", e.lib}, args...)...)
}

// user runs pkcs11-tool logged in as the default crypto user.
func (e *env) user(args ...string) result {
	e.t.Helper()
	return e.p11(append([]string{"--login", "--pin", userPIN}, args...)...)
}

func (e *env) ssl(args ...string) result {
	e.t.Helper()
	return e.run(e.openssl, args...)
}

func (e *env) path(name string) string { return filepath.Join(e.dir, name) }

func (e *env) write(name string, data []byte) string {
	e.t.Helper()
	p := e.path(name)
	require.NoError(e.t, os.WriteFile(p, data, 0o600))
	return p
}

// check runs one named check: PASS is logged, a failure fails the test
// (and stops it when fatal, for checks later ones depend on).
func (e *env) check(name string, fatal bool, f func() error) bool {
	e.t.Helper()
	if err := f(); err != nil {
		msg := fmt.Sprintf("FAIL %s: %v", name, err)
		if fatal {
			e.t.Fatal(msg)
		}
		e.t.Error(msg)
		return false
	}
	e.t.Logf("PASS %s", name)
	return true
}

// ok requires exit 0 and every want string in the output.
func ok(r result, want ...string) error {
	if r.err != nil {
		return fmt.Errorf("command failed\n%s", r)
	}
	for _, w := range want {
		if !strings.Contains(r.out(), w) {
			return fmt.Errorf("output lacks %q\n%s", w, r)
		}
	}
	return nil
}

// rejected requires that a command's output contain want and not contain
// notWant, whatever its exit status (pkcs11-tool --verify exits 0 on an
// invalid signature; openssl dgst -verify exits 1).
func rejected(r result, want, notWant string) error {
	if strings.Contains(r.out(), notWant) || !strings.Contains(r.out(), want) {
		return fmt.Errorf("tampered input not rejected (want %q, not %q)\n%s", want, notWant, r)
	}
	return nil
}

// pkcs11-tool -O prints one block per object: a header line ("Private Key
// Object; EC") followed by indented "name: value" lines.
type object struct {
	header string
	fields map[string]string
}

func parseObjects(out string) []object {
	var objs []object
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.Contains(line, " Object; "):
			objs = append(objs, object{header: strings.TrimSpace(line), fields: map[string]string{}})
		case len(objs) > 0 && strings.HasPrefix(line, "  "):
			if k, v, found := strings.Cut(strings.TrimSpace(line), ":"); found {
				objs[len(objs)-1].fields[k] = strings.TrimSpace(v)
			}
		}
	}
	return objs
}

func hasObject(objs []object, headerPrefix, label, id string) bool {
	for _, o := range objs {
		if strings.HasPrefix(o.header, headerPrefix) && o.fields["label"] == label && o.fields["ID"] == id {
			return true
		}
	}
	return false
}

// mechLine matches pkcs11-tool -M lines: "  NAME, keySize={..}, hw, sign, verify".
var mechLine = regexp.MustCompile(`^  ([A-Z0-9-]+|0x[0-9a-fA-F]+)(?:, (.*))?$`)

func parseMechanisms(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if sm := mechLine.FindStringSubmatch(line); sm != nil {
			m[sm[1]] = sm[2]
		}
	}
	return m
}

func TestPkcs11Tool(t *testing.T) {
	e := &env{t: t, lib: library(t), p11tool: tool(t, "pkcs11-tool"), openssl: tool(t, "openssl"), dir: t.TempDir()}
	tokenDir := e.path("token")
	require.NoError(t, os.MkdirAll(tokenDir, 0o700))
	e.conf = e.write("gohsm.conf", []byte(tokenConfig(tokenDir)))
	start := time.Now()

	// Token and user set-up: pkcs11-tool's --init-pin as SO sets the
	// password of the default crypto user ("user").
	e.check("init-token", true, func() error {
		return ok(e.p11("--init-token", "--label", "T", "--so-pin", soPIN), "Token successfully initialized")
	})
	e.check("init-pin", true, func() error {
		return ok(e.p11("--init-pin", "--login", "--login-type", "so", "--so-pin", soPIN, "--pin", userPIN),
			"User PIN successfully initialized")
	})

	e.check("show-info -I", false, func() error {
		return ok(e.p11("-I"), "Cryptoki version", "Manufacturer", "gohsm")
	})
	e.check("list-slots -L", false, func() error {
		return ok(e.p11("-L"), "token label        : T\n", "token initialized", "PIN initialized")
	})
	e.check("list-mechanisms -M", false, func() error {
		r := e.p11("-M")
		if err := ok(r); err != nil {
			return err
		}
		mechs := parseMechanisms(r.stdout)
		// pkcs11-tool names CKM_EC_KEY_PAIR_GEN by its older alias.
		want := map[string][]string{
			"ECDSA-KEY-PAIR-GEN":    {"generate_key_pair"},
			"ECDSA":                 {"sign", "verify"},
			"ECDSA-SHA256":          {"sign", "verify"},
			"RSA-PKCS-KEY-PAIR-GEN": {"generate_key_pair"},
			"RSA-PKCS":              {"sign", "verify"},
			"SHA256-RSA-PKCS":       {"sign", "verify"},
			"SHA256-RSA-PKCS-PSS":   {"sign", "verify"},
			"AES-KEY-GEN":           {"generate"},
			"AES-GCM":               {"encrypt", "decrypt"},
			"SHA256":                {"digest"},
		}
		var problems []string
		for name, flags := range want {
			desc, found := mechs[name]
			if !found {
				problems = append(problems, name+" not listed")
				continue
			}
			have := map[string]bool{}
			for _, f := range strings.Split(desc, ", ") {
				have[f] = true
			}
			for _, f := range flags {
				if !have[f] {
					problems = append(problems, fmt.Sprintf("%s lacks %s (%q)", name, f, desc))
				}
			}
		}
		if len(problems) > 0 {
			return fmt.Errorf("%s\n%s", strings.Join(problems, "; "), r)
		}
		return nil
	})

	// Keys. --id selects them later: pkcs11-tool 0.23 cannot sign with
	// --label alone.
	e.check("keypairgen EC:prime256v1", true, func() error {
		return ok(e.user("--keypairgen", "--key-type", "EC:prime256v1", "--id", "01", "--label", "ec1"),
			"Key pair generated")
	})
	e.check("keypairgen rsa:2048", true, func() error {
		return ok(e.user("--keypairgen", "--key-type", "rsa:2048", "--id", "02", "--label", "rsa1"),
			"Key pair generated")
	})
	e.check("keygen AES:32", true, func() error {
		return ok(e.user("--keygen", "--key-type", "AES:32", "--id", "03", "--label", "aes1"),
			"Key generated", "Secret Key Object; AES length 32")
	})
	e.check("list-objects -O", false, func() error {
		r := e.user("-O")
		if err := ok(r); err != nil {
			return err
		}
		objs := parseObjects(r.stdout)
		for _, w := range []struct{ header, label, id string }{
			{"Private Key Object; EC", "ec1", "01"},
			{"Public Key Object; EC", "ec1", "01"},
			{"Private Key Object; RSA", "rsa1", "02"},
			{"Public Key Object; RSA 2048 bits", "rsa1", "02"},
			{"Secret Key Object; AES length 32", "aes1", "03"},
		} {
			if !hasObject(objs, w.header, w.label, w.id) {
				return fmt.Errorf("no %q label %s id %s\n%s", w.header, w.label, w.id, r)
			}
		}
		if len(objs) != 5 {
			return fmt.Errorf("want 5 objects, listed %d\n%s", len(objs), r)
		}
		return nil
	})

	data := make([]byte, 1000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	dataFile := e.write("data", data)
	badFile := e.write("data.tampered", append(append([]byte{}, data[:999]...), data[999]^1))

	// Public keys, exported through the token and converted by openssl.
	pubPEM := map[string]string{}
	for _, id := range []string{"01", "02"} {
		e.check("read-object pubkey "+id+" + openssl pkey", false, func() error {
			der, pem := e.path("pub"+id+".der"), e.path("pub"+id+".pem")
			if err := ok(e.p11("--read-object", "--type", "pubkey", "--id", id, "-o", der)); err != nil {
				return err
			}
			if err := ok(e.ssl("pkey", "-pubin", "-inform", "DER", "-in", der, "-out", pem)); err != nil {
				return err
			}
			pubPEM[id] = pem
			return nil
		})
	}

	signs := []struct {
		name, id string
		p11      []string // mechanism and its options, for --sign and --verify
		sslOpts  []string // openssl dgst options
	}{
		// --signature-format openssl: DER, which openssl expects (the
		// default is PKCS#11's raw r||s).
		{"ECDSA-SHA256", "01", []string{"-m", "ECDSA-SHA256", "--signature-format", "openssl"}, nil},
		{"SHA256-RSA-PKCS", "02", []string{"-m", "SHA256-RSA-PKCS"}, nil},
		// 0.23 refuses --hash-algorithm with SHA256-RSA-PKCS-PSS (the
		// mechanism names the hash); the salt is the hash length.
		{"SHA256-RSA-PKCS-PSS", "02", []string{"-m", "SHA256-RSA-PKCS-PSS", "--mgf", "MGF1-SHA256", "--salt-len", "32"},
			[]string{"-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32"}},
	}
	for _, s := range signs {
		sig := e.path("sig." + s.name)
		signed := e.check("sign "+s.name, false, func() error {
			args := append([]string{"--sign", "--id", s.id, "-i", dataFile, "-o", sig}, s.p11...)
			if err := ok(e.user(args...)); err != nil {
				return err
			}
			if fi, err := os.Stat(sig); err != nil || fi.Size() == 0 {
				return fmt.Errorf("no signature written: %v", err)
			}
			return nil
		})
		if !signed {
			continue
		}
		verify := func(in string) result {
			return e.user(append([]string{"--verify", "--id", s.id, "-i", in, "--signature-file", sig}, s.p11...)...)
		}
		e.check("pkcs11-tool verify "+s.name, false, func() error {
			r := verify(dataFile)
			if strings.Contains(r.out(), "Invalid signature") {
				return fmt.Errorf("signature rejected\n%s", r)
			}
			return ok(r, "Signature is valid")
		})
		e.check("pkcs11-tool verify "+s.name+" rejects tampered input", false, func() error {
			return rejected(verify(badFile), "Invalid signature", "Signature is valid")
		})
		pem, exported := pubPEM[s.id]
		if !exported {
			e.t.Errorf("FAIL openssl verify %s: public key %s was not exported", s.name, s.id)
			continue
		}
		sslVerify := func(in string) result {
			args := append([]string{"dgst", "-sha256", "-verify", pem, "-signature", sig}, s.sslOpts...)
			return e.ssl(append(args, in)...)
		}
		e.check("openssl verify "+s.name, false, func() error {
			return ok(sslVerify(dataFile), "Verified OK")
		})
		e.check("openssl verify "+s.name+" rejects tampered input", false, func() error {
			r := sslVerify(badFile)
			if r.err == nil {
				return fmt.Errorf("openssl exited 0\n%s", r)
			}
			return rejected(r, "Verification failure", "Verified OK")
		})
	}

	// The default ECDSA format is PKCS#11's r||s: 64 bytes on P-256.
	e.check("ECDSA-SHA256 raw r||s signature", false, func() error {
		sig := e.path("sig.ecdsa.rs")
		if err := ok(e.user("--sign", "--id", "01", "-m", "ECDSA-SHA256", "-i", dataFile, "-o", sig)); err != nil {
			return err
		}
		b, err := os.ReadFile(sig)
		if err != nil {
			return err
		}
		if len(b) != 64 {
			return fmt.Errorf("signature is %d bytes, want 64 (r||s)", len(b))
		}
		return ok(e.user("--verify", "--id", "01", "-m", "ECDSA-SHA256", "-i", dataFile, "--signature-file", sig),
			"Signature is valid")
	})

	e.checkAESGCM(dataFile)

	// pkcs11-tool's own self test. It exits 0 whatever it finds, so the
	// verdict is its last line: "No errors" or "N errors".
	e.check("pkcs11-tool --test", false, func() error {
		r := e.user("--test")
		if r.err != nil || !strings.Contains(r.stdout, "No errors") {
			var errs []string
			for _, line := range strings.Split(r.out(), "\n") {
				if strings.Contains(line, "ERR:") || strings.HasPrefix(line, "error:") {
					errs = append(errs, strings.TrimSpace(line))
				}
			}
			return fmt.Errorf("self test reports errors: %s\n%s", strings.Join(errs, "; "), r)
		}
		return nil
	})

	t.Logf("pkcs11-tool checks took %v", time.Since(start).Round(time.Millisecond))
}

// checkAESGCM encrypts and decrypts with the token's AES key. pkcs11-tool
// gained AES-GCM (--aad, --tag-bits-len) in OpenSC 0.24; 0.23 (Debian 12,
// so CI) knows only AES-ECB/CBC/CBC-PAD for --encrypt. Without those
// options the check requires that OpenSC's version is one that lacks them
// (so a changed usage text or a tool that lost the feature fails, in CI
// too) and that the refusal of AES-GCM is the tool's own, not the
// module's; AES-GCM through the module is then left to tests/clients
// (Java SunPKCS11, crypto11).
func (e *env) checkAESGCM(dataFile string) {
	e.t.Helper()
	r := e.run(e.p11tool, "--help") // exits 1 after printing the usage
	if !strings.Contains(r.out(), "--aad") || !strings.Contains(r.out(), "--tag-bits-len") {
		var version string
		e.check("pkcs11-tool without --aad/--tag-bits-len is OpenSC older than 0.24", false, func() error {
			tool := filepath.Join(filepath.Dir(e.p11tool), "opensc-tool")
			info := e.run(tool, "--info")
			m := regexp.MustCompile(`OpenSC (\d+)\.(\d+)\.\S*`).FindStringSubmatch(info.out())
			if m == nil {
				return fmt.Errorf("no OpenSC version from `%s --info`\n%s", tool, info)
			}
			version = m[0]
			if major, _ := strconv.Atoi(m[1]); major > 0 {
				return fmt.Errorf("%s should have AES-GCM: `%s --help` lists no --aad/--tag-bits-len", version, e.p11tool)
			}
			if minor, _ := strconv.Atoi(m[2]); minor >= 24 {
				return fmt.Errorf("%s should have AES-GCM: `%s --help` lists no --aad/--tag-bits-len", version, e.p11tool)
			}
			return nil
		})
		iv := "000102030405060708090a0b"
		r := e.user("--encrypt", "-m", "AES-GCM", "--id", "03", "--iv", iv, "-i", dataFile, "-o", e.path("ct"))
		e.check("AES-GCM refused by this pkcs11-tool itself", false, func() error {
			if r.err == nil || !strings.Contains(r.out(), "Mechanism AES-GCM illegal or not supported") {
				return fmt.Errorf("expected pkcs11-tool's own refusal of AES-GCM\n%s", r)
			}
			return nil
		})
		e.t.Logf("AES-GCM encrypt/decrypt not run through %s (--aad/--tag-bits-len came with OpenSC 0.24); "+
			"tests/clients runs AES-GCM through the module (Java SunPKCS11, crypto11)", version)
		return
	}

	ct, back, ctBad := e.path("gcm.ct"), e.path("gcm.pt"), e.path("gcm.ct.tampered")
	gcm := []string{"-m", "AES-GCM", "--id", "03", "--iv", "000102030405060708090a0b",
		"--aad", "0123456789abcdef", "--tag-bits-len", "128"}
	encrypted := e.check("AES-GCM encrypt", false, func() error {
		if err := ok(e.user(append([]string{"--encrypt", "-i", dataFile, "-o", ct}, gcm...)...)); err != nil {
			return err
		}
		b, err := os.ReadFile(ct)
		if err != nil {
			return err
		}
		if want := 1000 + 16; len(b) != want {
			return fmt.Errorf("ciphertext is %d bytes, want %d (data + 16-byte tag)", len(b), want)
		}
		b[10] ^= 1
		return os.WriteFile(ctBad, b, 0o600)
	})
	if !encrypted {
		return
	}
	e.check("AES-GCM decrypt round trip", false, func() error {
		if err := ok(e.user(append([]string{"--decrypt", "-i", ct, "-o", back}, gcm...)...)); err != nil {
			return err
		}
		want, _ := os.ReadFile(dataFile)
		got, err := os.ReadFile(back)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("decrypted %d bytes differ from the %d-byte plaintext", len(got), len(want))
		}
		return nil
	})
	e.check("AES-GCM decrypt rejects tampered ciphertext", false, func() error {
		r := e.user(append([]string{"--decrypt", "-i", ctBad, "-o", e.path("gcm.bad.pt")}, gcm...)...)
		if r.err == nil {
			return fmt.Errorf("tampered ciphertext decrypted\n%s", r)
		}
		return nil
	})
}
