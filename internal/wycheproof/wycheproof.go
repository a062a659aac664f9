// Package wycheproof loads Project Wycheproof test vectors for gohsm's
// tests. The vectors come from the Go module proxy at a pinned version (the
// one golang.org/x/crypto's own Wycheproof tests pin), fetched with
// `go mod download` on first use; nothing is vendored.
//
// Every test group and case keeps its JSON as raw messages; each test
// decodes the fields its algorithm needs. Result is "valid", "invalid" or
// "acceptable"; a test must decide every "acceptable" case explicitly
// (house style: no silent acceptance).
package wycheproof

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Module and Version pin the vectors.
const (
	Module  = "github.com/google/wycheproof"
	Version = "v0.0.0-20191219022705-2196000605e4"
)

var (
	dirOnce sync.Once
	dir     string
	dirErr  error
)

// Dir returns the directory holding testvectors/, downloading the module
// into the module cache when needed.
func Dir() (string, error) {
	dirOnce.Do(func() { dir, dirErr = download(Module, Version) })
	return dir, dirErr
}

// download fetches module@version into the module cache and returns its
// directory.
func download(module, version string) (string, error) {
	out, err := exec.Command("go", "mod", "download", "-json", module+"@"+version).Output()
	if err != nil {
		return "", fmt.Errorf("wycheproof: go mod download %s@%s: %v", module, version, err)
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(out, &info); err != nil {
		return "", fmt.Errorf("wycheproof: go mod download output: %v", err)
	}
	if info.Error != "" || info.Dir == "" {
		return "", fmt.Errorf("wycheproof: go mod download: %s", info.Error)
	}
	return info.Dir, nil
}

// File is one vector file.
type File struct {
	Algorithm     string   `json:"algorithm"`
	NumberOfTests int      `json:"numberOfTests"`
	Notes         any      `json:"notes"`
	Groups        []*Group `json:"testGroups"`
}

// Group is one test group: its own fields (key sizes, keys, curves...) stay
// raw in Fields; Tests are its cases.
type Group struct {
	Fields map[string]json.RawMessage
	Tests  []*Case
}

// UnmarshalJSON keeps every field but "tests" raw.
func (g *Group) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, &g.Fields); err != nil {
		return err
	}
	if t, ok := g.Fields["tests"]; ok {
		delete(g.Fields, "tests")
		return json.Unmarshal(t, &g.Tests)
	}
	return nil
}

// Case is one test case.
type Case struct {
	ID      int      `json:"tcId"`
	Comment string   `json:"comment"`
	Result  string   `json:"result"`
	Flags   []string `json:"flags"`
	Fields  map[string]json.RawMessage
}

// UnmarshalJSON keeps the case's algorithm-specific fields raw.
func (c *Case) UnmarshalJSON(b []byte) error {
	type plain Case
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*c = Case(p)
	return json.Unmarshal(b, &c.Fields)
}

// Load reads testvectors/<name> (e.g. "aes_gcm_test.json"). It fails the
// test when the vectors cannot be had: they are pinned, so a missing file
// is an error, never a skip.
func Load(t testing.TB, name string) *File {
	t.Helper()
	d, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	return load(t, filepath.Join(d, "testvectors", name))
}

func load(t testing.TB, path string) *File {
	t.Helper()
	name := filepath.Base(path)
	b, err := os.ReadFile(path)
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

// Hex decodes a hex field of a case or group (missing -> nil).
func Hex(t testing.TB, fields map[string]json.RawMessage, name string) []byte {
	t.Helper()
	raw, ok := fields[name]
	if !ok {
		return nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("wycheproof: field %s: %v", name, err)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("wycheproof: field %s: %v", name, err)
	}
	return b
}

// Str decodes a string field.
func Str(t testing.TB, fields map[string]json.RawMessage, name string) string {
	t.Helper()
	var s string
	if raw, ok := fields[name]; ok {
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatalf("wycheproof: field %s: %v", name, err)
		}
	}
	return s
}

// Int decodes a number field.
func Int(t testing.TB, fields map[string]json.RawMessage, name string) int {
	t.Helper()
	var n int
	if raw, ok := fields[name]; ok {
		if err := json.Unmarshal(raw, &n); err != nil {
			t.Fatalf("wycheproof: field %s: %v", name, err)
		}
	}
	return n
}

// Raw decodes any field into v.
func Raw(t testing.TB, fields map[string]json.RawMessage, name string, v any) {
	t.Helper()
	if raw, ok := fields[name]; ok {
		if err := json.Unmarshal(raw, v); err != nil {
			t.Fatalf("wycheproof: field %s: %v", name, err)
		}
	}
}
