// Package testenv holds what the tests that drive the built library share:
// where the build outputs are, whether a missing prerequisite must fail (in
// CI) or may skip (elsewhere), and the configuration of a throwaway token.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// InCI reports whether a missing prerequisite must fail rather than skip:
// CI runs everything, as root, with its packages installed by tests/deps.sh.
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing fails the test in CI and skips it, saying why, elsewhere.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf(format+" (CI=true: not skipping)", args...)
	}
	t.Skipf(format, args...)
}

// RepoRoot is the directory holding go.mod, found upwards from the test's
// working directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("testenv: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Built locates a build output: $envVar when set, else build/name in the
// repository; when absent the test fails in CI and skips elsewhere.
func Built(t testing.TB, envVar, name, makeTarget string) string {
	t.Helper()
	p := os.Getenv(envVar)
	if p == "" {
		p = filepath.Join(RepoRoot(t), "build", name)
	}
	p, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		Missing(t, "%s not found (run `make %s` or set %s): %v", p, makeTarget, envVar, err)
	}
	return p
}

// CompileC compiles the C test program src (a path relative to the test's
// directory, usually testdata/NAME.c) into bin with $CC (gcc by default):
// gnu11, warnings as errors, debug symbols, the repository's include/
// and the extra include directories (relative to the repository), linked
// with libdl and libpthread. A missing compiler fails in CI and skips
// elsewhere; a compile error fails with the compiler's output.
func CompileC(t testing.TB, src, bin string, includes ...string) string {
	t.Helper()
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "gcc"
	}
	if _, err := exec.LookPath(cc); err != nil {
		Missing(t, "C compiler %q not found: %v", cc, err)
	}
	root := RepoRoot(t)
	args := []string{"-std=gnu11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-I", filepath.Join(root, "include")}
	for _, dir := range includes {
		args = append(args, "-I", filepath.Join(root, dir))
	}
	args = append(args, "-o", bin, src, "-ldl", "-lpthread")
	if out, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
		t.Fatalf("compiling %s: %v\n%s", src, err, out)
	}
	return bin
}

// Library is the built libgohsm.so ($GOHSM_LIB or build/libgohsm.so): the
// default module, built without the PostgreSQL store.
func Library(t testing.TB) string { return Built(t, "GOHSM_LIB", "libgohsm.so", "lib") }

// PGLibrary is the built libgohsm-pg.so ($GOHSM_PG_LIB or
// build/libgohsm-pg.so): the full module, the one a test loads on a
// PostgreSQL store (the default one refuses a postgres:// store).
func PGLibrary(t testing.TB) string { return Built(t, "GOHSM_PG_LIB", "libgohsm-pg.so", "pglib") }

// CLI is the built gohsm CLI ($GOHSM_CLI or build/gohsm).
func CLI(t testing.TB) string { return Built(t, "GOHSM_CLI", "gohsm", "cli") }

// TokenConfig is the configuration of a throwaway token: one slot with
// label, tokens under tokenDir, and cheap password hashing so that logins
// are fast (token/config.go documents the keys).
func TokenConfig(tokenDir, label string) string {
	return fmt.Sprintf(`# a throwaway test token (internal/testenv)
token_dir = %s
log_level = error
kdf_time = 1
kdf_memory = 64
login_cache = off
kdf_threads = 1

[slot 0]
label = %s
`, tokenDir, label)
}

// NoAllocCount skips a test that counts allocations when the race
// detector is on: its instrumentation allocates, so the count says nothing
// about the code.
func NoAllocCount(t testing.TB) {
	t.Helper()
	if Race {
		t.Skip("allocation counts are not the code's under the race detector")
	}
}
