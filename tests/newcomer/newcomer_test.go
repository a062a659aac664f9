// Package newcomer runs the README as someone new to gohsm would: a clean
// home directory, `make demo`, the "First steps" recipes exactly as
// written, `make demo` again, a locked-out token recovered with the
// README's "Starting over" recipe, and everything once more.
package newcomer

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/testenv"
)

// firstSteps returns the shell blocks of README.md's "## First steps"
// section (its subsections included), in order.
func firstSteps(t *testing.T, root string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	s := string(b)
	start := strings.Index(s, "\n## First steps\n")
	require.GreaterOrEqual(t, start, 0, "README.md has no section \"First steps\"")
	s = s[start+1:]
	if end := strings.Index(s, "\n## "); end >= 0 {
		s = s[:end]
	}
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(s, -1) {
		blocks = append(blocks, m[1])
	}
	return blocks
}

func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		testenv.Missing(t, "%s not installed", name)
	}
	return p
}

// cleanEnv is the environment of someone who never used gohsm: home is
// an empty directory, no XDG directories, no gohsm or client settings.
func cleanEnv(home string) []string {
	env := []string{"HOME=" + home, "GOTOOLCHAIN=local"}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "HOME", k == "GOTOOLCHAIN", strings.HasPrefix(k, "XDG_"), strings.HasPrefix(k, "GOHSM_"),
			strings.HasPrefix(k, "GNUTLS_"), k == "OPENSSL_CONF", strings.HasPrefix(k, "MAKE"):
			continue
		}
		env = append(env, kv)
	}
	return env
}

func TestNewcomer(t *testing.T) {
	lib, cli := testenv.Library(t), testenv.CLI(t)
	demo := testenv.Built(t, "GOHSM_DEMO", "gohsm-demo", "build/gohsm-demo")
	bash, mk := tool(t, "bash"), tool(t, "make")
	tool(t, "pkcs11-tool")
	root := testenv.RepoRoot(t)

	tmp := t.TempDir()
	home, work, demoDir := filepath.Join(tmp, "home"), filepath.Join(tmp, "work"), filepath.Join(tmp, "demo")
	require.NoError(t, os.MkdirAll(home, 0o700))
	// The recipes run in a source tree's top directory: build/ holds what
	// this test is given (GOHSM_LIB, GOHSM_CLI).
	require.NoError(t, os.MkdirAll(filepath.Join(work, "build"), 0o755))
	require.NoError(t, os.Symlink(lib, filepath.Join(work, "build", "libgohsm.so")))
	require.NoError(t, os.Symlink(cli, filepath.Join(work, "build", "gohsm")))
	env := cleanEnv(home)

	blocks := firstSteps(t, root)
	var steps, reset []string
	for _, b := range blocks {
		if strings.Contains(b, "token reset") {
			reset = append(reset, b)
		} else {
			steps = append(steps, b)
		}
	}
	require.Len(t, reset, 1, "one \"Starting over\" block")
	require.GreaterOrEqual(t, len(steps), 3, "token and user, key, client")
	script := "set -euxo pipefail\n" + strings.Join(steps, "\n")

	runIn := func(dir, what string, name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s:\n%s", what, out)
		return string(out)
	}
	// `make demo` as the README's first command, on the binaries given
	// (-o: never rebuilt here) and a demo directory of the test's own.
	makeArgs := []string{"--no-print-directory", "-o", lib, "-o", cli, "-o", demo,
		"LIB=" + lib, "CLI=" + cli, "DEMO=" + demo, "DEMODIR=" + demoDir}
	makeDemo := func(when string) string {
		t.Helper()
		out := runIn(root, "make demo "+when, mk, append(makeArgs, "demo")...)
		require.Contains(t, out, "demo OK", "make demo %s", when)
		t.Logf("make demo %s: passed", when)
		return out
	}
	userToken := filepath.Join(home, ".local", "share", "gohsm")

	require.Contains(t, makeDemo("first"), "token not initialised", "the first run makes the demo's token")
	require.NoDirExists(t, userToken, "make demo touched the user's default token")
	require.FileExists(t, filepath.Join(demoDir, "gohsm.conf"))

	runIn(work, "the README's first steps", bash, "-c", script)
	require.DirExists(t, filepath.Join(userToken, "slot-0"), "the first steps use the default token")
	require.NotContains(t, makeDemo("after the first steps, on the token it made before"), "token not initialised")

	// Lock the only officer out, as a newcomer guessing passwords does.
	locked := false
	for i := 0; i < 20 && !locked; i++ {
		cmd := exec.Command(cli, "--pin", "admin:guess", "user", "delete", "--username", "alice")
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		require.Error(t, err, "a wrong password must fail")
		locked = strings.Contains(string(out), "CKR_PIN_LOCKED")
	}
	require.True(t, locked, "the officer is never locked")
	cmd := exec.Command(cli, "--pin", "admin:officer-pw", "user", "list")
	cmd.Env = env
	require.NoError(t, cmd.Run(), "user list needs no login")
	cmd = exec.Command(cli, "--pin", "admin:officer-pw", "user", "delete", "--username", "alice")
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "CKR_PIN_LOCKED", "the right password no longer logs in")

	runIn(work, "the README's \"Starting over\"", bash, "-euxo", "pipefail", "-c", reset[0])
	runIn(work, "the README's first steps after starting over", bash, "-c", script)
	makeDemo("after starting over")

	// make demo-reset erases the demo's token (and only that): the next
	// make demo makes it anew; the user's token is still there.
	runIn(root, "make demo-reset", mk, append(makeArgs, "demo-reset")...)
	require.Contains(t, makeDemo("after make demo-reset"), "token not initialised")
	runIn(work, "the user's token after make demo-reset", cli, "--pin", "alice:alice-pw", "key", "list")
}

// TestReadmeLinks: every docs/ file the README sends a reader to exists.
func TestReadmeLinks(t *testing.T) {
	root := testenv.RepoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	links := regexp.MustCompile("`(docs/[a-z0-9-]+\\.md)`").FindAllStringSubmatch(string(b), -1)
	require.NotEmpty(t, links)
	for _, l := range links {
		require.FileExists(t, filepath.Join(root, l[1]), "README.md names %s", l[1])
	}
}
