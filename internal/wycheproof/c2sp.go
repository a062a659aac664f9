package wycheproof

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
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
	c2spOnce.Do(func() {
		out, err := exec.Command("go", "mod", "download", "-json", C2SPModule+"@"+C2SPVersion).Output()
		if err != nil {
			c2spErr = fmt.Errorf("wycheproof: go mod download %s@%s: %v", C2SPModule, C2SPVersion, err)
			return
		}
		var info struct{ Dir, Error string }
		if err := json.Unmarshal(out, &info); err != nil {
			c2spErr = fmt.Errorf("wycheproof: go mod download output: %v", err)
			return
		}
		if info.Error != "" || info.Dir == "" {
			c2spErr = fmt.Errorf("wycheproof: go mod download: %s", info.Error)
			return
		}
		c2spDir = info.Dir
	})
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
	b, err := os.ReadFile(filepath.Join(d, "testvectors_v1", name))
	if err != nil {
		t.Fatalf("wycheproof: %v", err)
	}
	var f File
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("wycheproof: %s: %v", name, err)
	}
	if len(f.Groups) == 0 {
		t.Fatalf("wycheproof: %s: no test groups", name)
	}
	return &f
}
