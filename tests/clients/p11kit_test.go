package clients

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Debian's p11-kit paths (packages p11-kit and p11-kit-modules).
const (
	p11KitProxy  = "/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so"
	p11KitClient = "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so"
	p11KitRemote = "/usr/libexec/p11-kit/p11-kit-remote"
	// p11-kit reads module files from here and /usr/share/p11-kit/modules,
	// and for a user other than root also from $XDG_CONFIG_HOME/pkcs11/modules
	// (~/.config without it). It has no variable or flag naming another
	// directory for root: as root the test writes a uniquely named file here
	// and removes it; as anyone else it writes it under the test's own
	// XDG_CONFIG_HOME (p11KitModules).
	p11KitSystemModuleDir = "/etc/pkcs11/modules"
)

// TestP11Kit registers gohsm with p11-kit and signs through p11-kit's
// proxy module, through p11-kit-remote (the module in a helper process) and
// through `p11-kit server` + p11-kit-client.so.
func TestP11Kit(t *testing.T) {
	p11kit := needTool(t, "p11-kit", "p11-kit")
	needFile(t, p11KitProxy, "p11-kit-modules")
	needFile(t, p11KitClient, "p11-kit-modules")
	needFile(t, p11KitRemote, "p11-kit")
	p11tool := needTool(t, "pkcs11-tool", "opensc")
	openssl := needTool(t, "openssl", "openssl")
	h := newHSM(t, "p11kit")
	moduleDir := p11KitModules(t, h)
	h.gohsm(t, "key", "generate", "ec", "--curve", "P-256", "--label", "pk-ec", "--id", "11", "--pin", userPIN)
	h.gohsm(t, "key", "generate", "rsa", "--bits", "2048", "--label", "pk-rsa", "--id", "12", "--pin", userPIN)
	plain := []string{"OPENSSL_CONF=/dev/null"}
	pub := map[string]string{}
	for _, id := range []string{"11", "12"} {
		der := h.Path(id + ".pub.der")
		mustRun(t, time.Minute, h.Env, p11tool, "--module", h.Lib, "--read-object", "--type", "pubkey", "--id", id, "-o", der)
		pub[id] = h.Path(id + ".pub.pem")
		mustRun(t, time.Minute, plain, openssl, "pkey", "-pubin", "-inform", "DER", "-in", der, "-out", pub[id])
	}
	data := []byte("signed through p11-kit\n")
	digest := sha256.Sum256(data)
	files := map[string]string{}
	for name, b := range map[string][]byte{
		"data": data, "data.tampered": append([]byte("S"), data[1:]...),
		"hash": digest[:], "hash.tampered": append([]byte{digest[0] ^ 1}, digest[1:]...),
	} {
		files[name] = h.Path(name)
		require.NoError(t, os.WriteFile(files[name], b, 0o600))
	}
	// noConf is the environment without GOHSM_CONF, for processes that
	// must not load the module themselves (or find its configuration
	// another way); XDG_* keep the user's own gohsm files out of reach.
	var noConf []string
	for _, e := range h.Env {
		if !strings.HasPrefix(e, "GOHSM_CONF=") {
			noConf = append(noConf, e)
		}
	}

	// signs checks that pkcs11-tool, loading module with env, finds the
	// token by label and signs with both keys (selected by --id): ECDSA
	// over a SHA-256 digest and SHA256-RSA-PKCS, each verified by openssl
	// with a tampered input rejected. p11-kit 0.24's RPC (remote and
	// server) does not carry CKM_ECDSA_SHA256, so ECDSA signs a digest.
	signs := func(t *testing.T, module string, env []string) {
		t.Helper()
		for _, c := range []struct{ id, mech, in string }{
			{"11", "ECDSA", "hash"},
			{"12", "SHA256-RSA-PKCS", "data"},
		} {
			sig := h.Path(fmt.Sprintf("%s-%s.sig", filepath.Base(module), c.mech))
			out := mustRun(t, time.Minute, env, p11tool, "--module", module, "--token-label", h.Label,
				"--login", "--pin", userPIN, "--sign", "--id", c.id, "-m", c.mech,
				"--signature-format", "openssl", "-i", files[c.in], "-o", sig)
			require.Contains(t, out, "Using signature algorithm "+c.mech)
			verify := func(in string) (string, error) {
				if c.in == "hash" {
					return run(t, time.Minute, plain, openssl, "pkeyutl", "-verify", "-pubin",
						"-inkey", pub[c.id], "-in", in, "-sigfile", sig)
				}
				return run(t, time.Minute, plain, openssl, "dgst", "-sha256", "-verify", pub[c.id],
					"-signature", sig, in)
			}
			out, err := verify(files[c.in])
			require.NoError(t, err, "%s signature does not verify", c.mech)
			require.Regexp(t, `Verified (OK|Successfully)`, out)
			out, err = verify(files[c.in+".tampered"])
			require.Error(t, err, "%s: tampered input accepted", c.mech)
			require.Regexp(t, `(?i)verification failure`, out)
		}
	}
	tokenLine := regexp.MustCompile(`token label\s*:\s*` + regexp.QuoteMeta(h.Label) + `\s`)

	// In process: the module file names the library; x-init-reserved hands
	// C_Initialize the config file's path (pReserved), so the processes
	// below run without GOHSM_CONF. enable-in keeps the test module out of
	// every other p11-kit user on the machine while it is registered.
	name, unregister := registerP11KitModule(t, moduleDir, fmt.Sprintf(
		"module: %s\nx-init-reserved: %s\nenable-in: p11-kit, pkcs11-tool\n", h.Lib, h.Conf))
	check(t, "p11-kit list-modules", func(t *testing.T) {
		out := mustRun(t, time.Minute, noConf, p11kit, "list-modules")
		require.Contains(t, out, name+": "+h.Lib)
		require.Contains(t, out, "token: "+h.Label)
		require.Contains(t, out, "library-manufacturer: gohsm")
	})
	check(t, "pkcs11-tool via p11-kit-proxy.so --list-slots", func(t *testing.T) {
		out := mustRun(t, time.Minute, noConf, p11tool, "--module", p11KitProxy, "--list-slots")
		require.Regexp(t, tokenLine, out)
	})
	check(t, "pkcs11-tool via p11-kit-proxy.so signs", func(t *testing.T) {
		signs(t, p11KitProxy, noConf)
	})
	unregister()

	// Remoting through the proxy: p11-kit starts p11-kit-remote, which
	// loads the module in its own process (it inherits GOHSM_CONF).
	name, unregister = registerP11KitModule(t, moduleDir, fmt.Sprintf(
		"remote: |%s %s\nenable-in: p11-kit, pkcs11-tool\n", p11KitRemote, h.Lib))
	check(t, "p11-kit remote: list-modules", func(t *testing.T) {
		out := mustRun(t, time.Minute, h.Env, p11kit, "list-modules")
		require.Contains(t, out, name+":")
		require.Contains(t, out, "token: "+h.Label)
	})
	check(t, "p11-kit remote: pkcs11-tool via p11-kit-proxy.so signs", func(t *testing.T) {
		out := mustRun(t, time.Minute, h.Env, p11tool, "--module", p11KitProxy, "--list-slots")
		require.Regexp(t, tokenLine, out)
		signs(t, p11KitProxy, h.Env)
	})
	unregister()

	// p11-kit server runs the module in a long-lived process; clients load
	// p11-kit-client.so and find it through P11_KIT_SERVER_ADDRESS.
	check(t, "p11-kit server + p11-kit-client.so signs", func(t *testing.T) {
		addr := startP11KitServer(t, p11kit, h, filepath.Join(h.Dir, "p11kit.sock"))
		env := append(append([]string{}, noConf...), "P11_KIT_SERVER_ADDRESS="+addr)
		out := mustRun(t, time.Minute, env, p11tool, "--module", p11KitClient, "--list-slots")
		require.Regexp(t, tokenLine, out)
		signs(t, p11KitClient, env)
	})
}

// p11KitModules is the directory p11-kit reads the test's module files
// from: the system's as root (p11-kit ignores a user's files then), else
// pkcs11/modules under the XDG_CONFIG_HOME of h.Env, which every process
// the test starts gets.
func p11KitModules(t *testing.T, h *hsm) string {
	t.Helper()
	if os.Geteuid() == 0 {
		return p11KitSystemModuleDir
	}
	for _, e := range h.Env {
		if xdg, ok := strings.CutPrefix(e, "XDG_CONFIG_HOME="); ok {
			dir := filepath.Join(xdg, "pkcs11", "modules")
			require.NoError(t, os.MkdirAll(dir, 0o700))
			return dir
		}
	}
	t.Fatal("the test's environment sets no XDG_CONFIG_HOME")
	return ""
}

// registerP11KitModule writes body as a uniquely named module file in
// moduleDir; it returns the module's name and a function removing the
// file again (also run at cleanup).
func registerP11KitModule(t *testing.T, moduleDir, body string) (string, func()) {
	t.Helper()
	var created []string // directories this test made, innermost last
	for _, d := range []string{filepath.Dir(moduleDir), moduleDir} {
		if _, err := os.Stat(d); os.IsNotExist(err) {
			require.NoError(t, os.Mkdir(d, 0o755))
			created = append(created, d)
		}
	}
	rnd := make([]byte, 6)
	_, err := rand.Read(rnd)
	require.NoError(t, err)
	name := "gohsm-test-" + hex.EncodeToString(rnd)
	path := filepath.Join(moduleDir, name+".module")
	require.NoError(t, os.WriteFile(path, []byte("# written by tests/clients/p11kit_test.go; safe to delete\n"+body), 0o644))
	t.Logf("registered p11-kit module %s:\n%s", path, body)
	done := false
	remove := func() {
		if done {
			return
		}
		done = true
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			t.Errorf("removing %s: %v", path, err)
		}
		for i := len(created) - 1; i >= 0; i-- {
			_ = os.Remove(created[i]) // only when empty
		}
	}
	t.Cleanup(remove)
	return name, remove
}

// startP11KitServer runs `p11-kit server -f` on the token at socket and
// returns its P11_KIT_SERVER_ADDRESS; the server (its own process group)
// is stopped at cleanup.
func startP11KitServer(t *testing.T, p11kit string, h *hsm, socket string) string {
	t.Helper()
	cmd := exec.Command(p11kit, "server", "-f", "-s", "-n", socket,
		"--provider", h.Lib, "pkcs11:token="+h.Label)
	cmd.Env = append(os.Environ(), h.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	t.Logf("$ %s (pid %d)", strings.Join(cmd.Args, " "), cmd.Process.Pid)
	done := make(chan struct{}) // closed when the server has exited
	var waitErr error
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default: // nobody listens any more; keep draining
			}
		}
		waitErr = cmd.Wait()
		close(done)
	}()
	stop := func() {
		// The server and anything it started share its process group.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	t.Cleanup(stop)
	re := regexp.MustCompile(`^P11_KIT_SERVER_ADDRESS=([^;]+);`)
	deadline := time.After(30 * time.Second)
	for {
		select {
		case l := <-lines:
			if m := re.FindStringSubmatch(l); m != nil {
				t.Logf("server: %s", l)
				return m[1]
			}
		case <-done:
			t.Fatalf("p11-kit server exited before printing its address: %v\n%s", waitErr, stderr.String())
		case <-deadline:
			stop()
			t.Fatalf("p11-kit server printed no P11_KIT_SERVER_ADDRESS in 30s\n%s", stderr.String())
		}
	}
}
