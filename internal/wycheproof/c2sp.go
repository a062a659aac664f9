package wycheproof

import (
	"path/filepath"
	"sync"
	"testing"
)

// C2SPModule and C2SPVersion pin the Wycheproof repository's current home,
// github.com/C2SP/wycheproof (served by the module proxy under its
// lower-case path), for the vector files the 2019 snapshot above lacks:
// testvectors_v1/mldsa_{44,65,87}_{sign_seed,sign_noseed,verify}_test.json.
const (
	C2SPModule  = "github.com/c2sp/wycheproof"
	C2SPVersion = "v0.0.0-20260902155932-3fa63dd0344a"
)

var (
	c2spOnce sync.Once
	c2spDir  string
	c2spErr  error
)

// C2SPDir returns the directory of the pinned C2SP module, downloading it
// into the module cache when needed.
func C2SPDir() (string, error) {
	c2spOnce.Do(func() { c2spDir, c2spErr = download(C2SPModule, C2SPVersion) })
	return c2spDir, c2spErr
}

// LoadV1 reads testvectors_v1/<name> from the pinned C2SP module; like
// Load, a missing file fails the test.
func LoadV1(t testing.TB, name string) *File {
	t.Helper()
	d, err := C2SPDir()
	if err != nil {
		t.Fatal(err)
	}
	return load(t, filepath.Join(d, "testvectors_v1", name))
}
