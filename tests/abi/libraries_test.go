package abi_test

import (
	"debug/elf"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gohsm/internal/testenv"
)

// exports lists the symbols a library defines for others to bind to.
func exports(t *testing.T, lib string) []string {
	t.Helper()
	f, err := elf.Open(lib)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.DynamicSymbols()
	if err != nil {
		t.Fatalf("%s: %v", lib, err)
	}
	var names []string
	for _, s := range syms {
		bind := elf.ST_BIND(s.Info)
		if s.Section != elf.SHN_UNDEF && (bind == elf.STB_GLOBAL || bind == elf.STB_WEAK) {
			names = append(names, s.Name)
		}
	}
	slices.Sort(names)
	return names
}

// TestLibrariesExportTheSame: build/libgohsm.so (without the PostgreSQL
// store) and build/libgohsm-pg.so (the full build) export the same
// symbols, all of them Cryptoki's C_* (pkcs11/libgohsm.map): a host can
// name either as its module.
func TestLibrariesExportTheSame(t *testing.T) {
	lib, pg := library(t), testenv.PGLibrary(t)
	a, b := exports(t, lib), exports(t, pg)
	if !slices.Contains(a, "C_GetFunctionList") || !slices.Contains(a, "C_GetInterface") {
		t.Fatalf("%s exports %d symbols, not C_GetFunctionList and C_GetInterface: %v", lib, len(a), a)
	}
	for _, s := range a {
		if !strings.HasPrefix(s, "C_") {
			t.Errorf("%s exports %q: only C_* belong to the module's interface", lib, s)
		}
	}
	if !slices.Equal(a, b) {
		var onlyA, onlyB []string
		for _, s := range a {
			if !slices.Contains(b, s) {
				onlyA = append(onlyA, s)
			}
		}
		for _, s := range b {
			if !slices.Contains(a, s) {
				onlyB = append(onlyB, s)
			}
		}
		t.Fatalf("exports differ: only in %s %v, only in %s %v", lib, onlyA, pg, onlyB)
	}
	t.Logf("%d symbols exported by both", len(a))
}

// TestDefaultLibraryRefusesPostgres: the default library, given a
// postgres:// store, fails C_Initialize as it does on any bad store line
// (CKR_GENERAL_ERROR from a file, CKR_ARGUMENTS_BAD from pReserved) and
// says in one log line per refusal that it has no PostgreSQL store and
// that libgohsm-pg.so has; the URL's password is not logged.
func TestDefaultLibraryRefusesPostgres(t *testing.T) {
	t.Parallel()
	lib := library(t)
	dir := t.TempDir()
	bin := buildDriver(t, "abi_nopostgres", dir)
	tokenDir := filepath.Join(dir, "token")
	if err := os.MkdirAll(tokenDir, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "gohsm.conf")
	text := tokenConfig(tokenDir) + "store = postgres://gohsm:s3cret@127.0.0.1:1/gohsm?sslmode=disable\n"
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "GOHSM_CONF="+conf, "XDG_CONFIG_HOME="+dir, "XDG_DATA_HOME="+dir)
	_, stderr := execDriverStderr(t, "abi_nopostgres", bin, dir, env, 30*time.Second, lib, tokenDir)

	var refusals []string
	for _, line := range strings.Split(stderr, "\n") {
		if strings.Contains(line, "s3cret") {
			t.Errorf("the store URL's password is in the log: %q", line)
		}
		if strings.Contains(line, "PostgreSQL") {
			refusals = append(refusals, line)
		}
	}
	if len(refusals) != 2 {
		t.Fatalf("%d log lines about PostgreSQL, want one per refused C_Initialize (2):\n%s", len(refusals), stderr)
	}
	for _, line := range refusals {
		for _, want := range []string{"gohsm: C_Initialize: ", "no PostgreSQL store", "libgohsm-pg.so"} {
			if !strings.Contains(line, want) {
				t.Errorf("log line %q does not say %q", line, want)
			}
		}
	}
	t.Logf("the refusals:\n%s", strings.Join(refusals, "\n"))
}
