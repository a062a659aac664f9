//go:build nopostgres

package postgres_test

import (
	"strings"
	"testing"

	"gohsm/token"
	"gohsm/token/store/postgres"
)

// TestConfigNotBuilt: a build without the PostgreSQL store refuses a
// configuration naming one when it reads it, saying why, and still reads
// a SQLite one.
func TestConfigNotBuilt(t *testing.T) {
	_, err := token.ParseConfig("[slot 0]\nlabel = x\nstore = postgres://gohsm@127.0.0.1/gohsm\n", "test")
	if err == nil || !strings.Contains(err.Error(), postgres.ErrNotBuilt.Error()) {
		t.Fatalf("postgres store in a nopostgres build: %v, want an error saying %q", err, postgres.ErrNotBuilt)
	}
	if _, err := token.ParseConfig("[slot 0]\nlabel = x\nstore = sqlite\n", "test"); err != nil {
		t.Errorf("sqlite store: %v", err)
	}
}
