package cloudhsmcli

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// The package's -update flag rewrites the golden files. It is defined
// here unless another test file of the package already defined it (its
// package-level var runs before this init).
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden files under testdata/")
	}
}

func updatingGolden() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// cryptoGolden compares a command's output with testdata/name.json, or
// rewrites it under -update.
func cryptoGolden(t *testing.T, name, out string) {
	t.Helper()
	path := filepath.Join("testdata", name+".json")
	if updatingGolden() {
		require.NoError(t, os.WriteFile(path, []byte(out), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "golden file missing: go test ./internal/cloudhsmcli -run %s -update", t.Name())
	require.Equal(t, string(want), out, "output differs from %s (go test ./internal/cloudhsmcli -run %s -update)", path, t.Name())
}
