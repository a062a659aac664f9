package token

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// A --config file that cannot be read is a configuration error whose
// text is the read's, as gohsm and cloudhsm-cli both report it.
func TestOpenToolUnreadableFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.conf")
	_, err := OpenTool(path)
	if err == nil {
		t.Fatal("opened a missing configuration file")
	}
	if !IsConfigError(err) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("want a configuration error wrapping fs.ErrNotExist, got %v", err)
	}
	if want := "config: open " + path + ": "; !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error %q, want prefix %q", err, want)
	}
}
