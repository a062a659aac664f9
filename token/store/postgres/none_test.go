//go:build nopostgres

package postgres

import (
	"context"
	"errors"
	"testing"
)

// TestNotBuilt: without the PostgreSQL store every entry point says so,
// and a token configuration naming one is refused when it is read (run
// with `go test -tags nopostgres ./token/store/postgres/`).
func TestNotBuilt(t *testing.T) {
	const url = "postgres://gohsm@127.0.0.1/gohsm"
	if _, err := ParseURL(url); !errors.Is(err, ErrNotBuilt) {
		t.Errorf("ParseURL: %v, want ErrNotBuilt", err)
	}
	if st, err := Open(url, Options{}); st != nil || !errors.Is(err, ErrNotBuilt) {
		t.Errorf("Open: %v, %v, want nil, ErrNotBuilt", st, err)
	}
	if c, err := Connect(context.Background(), url); c != nil || !errors.Is(err, ErrNotBuilt) {
		t.Errorf("Connect: %v, %v, want nil, ErrNotBuilt", c, err)
	}
	if err := Migrate(context.Background(), nil); !errors.Is(err, ErrNotBuilt) {
		t.Errorf("Migrate: %v, want ErrNotBuilt", err)
	}
	if err := CheckVersion(context.Background(), nil); !errors.Is(err, ErrNotBuilt) {
		t.Errorf("CheckVersion: %v, want ErrNotBuilt", err)
	}
}
