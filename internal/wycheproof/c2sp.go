package wycheproof

import (
	"path/filepath"
	"sync"
	"testing"
)

// C2SPModule and C2SPVersion pin the C2SP continuation of Wycheproof, whose
// testvectors_v1/ holds the post-quantum files (mlkem_*). Fetched like the
// original (go mod download, module cache); nothing is vendored.
const (
	C2SPModule  = "github.com/c2sp/wycheproof"
	C2SPVersion = "v0.0.0-20260902155932-3fa63dd0344a"
)

var (
	c2spOnce sync.Once
	c2spDir  string
	c2spErr  error
)

// C2SPDir returns the directory holding testvectors_v1/.
func C2SPDir() (string, error) {
	c2spOnce.Do(func() { c2spDir, c2spErr = download(C2SPModule, C2SPVersion) })
	return c2spDir, c2spErr
}

// LoadC2SP reads testvectors_v1/<name> of the C2SP module (e.g.
// "mlkem_768_test.json"); like Load, a missing file fails the test.
func LoadC2SP(t testing.TB, name string) *File {
	t.Helper()
	d, err := C2SPDir()
	if err != nil {
		t.Fatal(err)
	}
	return load(t, filepath.Join(d, "testvectors_v1", name))
}
