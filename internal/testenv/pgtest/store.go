package pgtest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// StoreEnv chooses the token store backend of the tests that write slot
// configurations (decision D8 of issue 17): "postgres" puts each such
// test's tokens in fresh databases of the Shared server; absent (or
// "sqlite") keeps SQLite files in token_dir. tests/run.sh runs the chosen
// packages a second time with GOHSM_TEST_STORE=postgres.
const StoreEnv = "GOHSM_TEST_STORE"

// Backend is the backend StoreEnv chooses: "sqlite" or "postgres".
func Backend() (string, error) {
	switch v := os.Getenv(StoreEnv); v {
	case "", "sqlite":
		return "sqlite", nil
	case "postgres":
		return "postgres", nil
	default:
		return "", fmt.Errorf("pgtest: %s=%q: want sqlite or postgres", StoreEnv, v)
	}
}

// OnPostgres reports whether StoreEnv chooses PostgreSQL. A bad value
// fails the test.
func OnPostgres(t testing.TB) bool {
	t.Helper()
	b, err := Backend()
	if err != nil {
		t.Fatal(err)
	}
	return b == "postgres"
}

// SlotStore is the line a test adds to a slot section of its configuration:
// "" on SQLite (the default store), "store = <DSN>" of a fresh database of
// the Shared server (named after name) on PostgreSQL. The package's
// TestMain must run the tests through Main or Run (see Shared).
func SlotStore(t testing.TB, name string) string {
	t.Helper()
	if !OnPostgres(t) {
		return ""
	}
	return "store = " + Shared(t).NewDatabase(t, name)
}

// Bin is the path of one of the server's PostgreSQL programs (pg_dump,
// psql, ...), from the same directory as its postgres.
func (s *Server) Bin(name string) string { return filepath.Join(s.bin, name) }
