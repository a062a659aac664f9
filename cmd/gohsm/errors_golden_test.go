package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

// TestJSONErrorsGolden: the --json error object of each kind of mistake,
// byte for byte (testdata/json-errors.golden; go test ./cmd/gohsm -run
// JSONErrorsGolden -update rewrites it). Scripts depend on error_code,
// ckr and code; a change here is a change for them.
func TestJSONErrorsGolden(t *testing.T) {
	c := newCLI(t)
	var b strings.Builder
	add := func(args ...string) {
		t.Helper()
		r := c.run(append([]string{"--json"}, args...)...)
		require.NotEqual(t, 0, r.code, "%v", args)
		b.WriteString("$ gohsm --json " + strings.Join(args, " ") + "\n" + r.stdout)
	}
	// A newcomer's first command, before token init.
	add("user", "create", "--username", "alice", "--role", "cu", "--password", "alice-pw", "--pin", coPIN)
	c.setup()
	c.ok("key", "generate", "aes", "--bits", "128", "--label", "k-aes", "--pin", alicePIN)
	c.ok("key", "share", "--label", "k-aes", "--username", "bob", "--pin", alicePIN)
	c.ok("key", "generate", "aes", "--bits", "128", "--label", "k-two", "--pin", alicePIN)
	for _, args := range [][]string{
		{"user", "create", "--username", "alice", "--role", "cu", "--password", "alice-pw2", "--pin", coPIN},
		{"user", "delete", "--username", "nobody", "--pin", coPIN},
		{"user", "delete", "--username", "admin", "--pin", coPIN},
		{"user", "delete", "--username", "alice", "--pin", coPIN},
		{"key", "share", "--label", "k-aes", "--username", "bob", "--pin", alicePIN},
		{"key", "share", "--label", "k-aes", "--username", "admin", "--pin", alicePIN},
		{"key", "share", "--label", "k-aes", "--username", "alice", "--pin", alicePIN},
		{"key", "unshare", "--label", "k-two", "--username", "bob", "--pin", alicePIN},
		{"key", "delete", "--label", "nope", "--pin", alicePIN},
		{"key", "list", "--pin", "alice:wrong"},
		{"user", "create", "--username", "x", "--role", "boss", "--password", "x-pw-1", "--pin", coPIN},
		{"token", "init", "--label", "again", "--pin", coPIN},
		{"--token", "nope", "user", "list"},
	} {
		add(args...)
	}
	checkGolden(t, "json-errors.golden", b.String())
}

// checkGolden compares got with testdata/name, which `go test -update`
// (re)writes.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "go test ./cmd/gohsm -run '^%s$' -update writes it", t.Name())
	require.Equal(t, string(want), got)
}
