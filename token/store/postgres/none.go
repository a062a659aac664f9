//go:build nopostgres

// A build without the PostgreSQL store (-tags nopostgres): the same names,
// none of pgx. build/libgohsm.so, the module users load by default, is
// this build; build/libgohsm-pg.so is the full one (Makefile). Every
// entry point fails with ErrNotBuilt, so a configuration
// naming a postgres:// store is refused when it is read (token's
// checkStore calls ParseURL), and nothing else can reach a database. The
// PostgreSQL code and its dependencies (pgx, pgtype, x/text) are a third
// of the library and their inits and relocations run in every process
// that loads it: docs/bench.md, "Login and sign: where the memory goes".

package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"gohsm/token/store"
)

// ErrNotBuilt: this build has no PostgreSQL store. Its one reader is
// whoever configured a postgres:// store for the default module (the
// CLIs are built with the store), so it names the module to load instead.
var ErrNotBuilt = errors.New("this gohsm library has no PostgreSQL store: load libgohsm-pg.so as the PKCS#11 module to keep tokens in PostgreSQL")

const (
	DefaultConnectTimeout = 5 * time.Second
	DefaultTimeout        = 5 * time.Second
)

// ErrNotStore as in the full build; never returned here.
var ErrNotStore = errors.New("not a gohsm token store")

// Version is 0: this build writes no PostgreSQL schema.
var Version = 0

// Options as in the full build.
type Options struct {
	Timeout time.Duration
	Log     *slog.Logger
}

// ConnConfig holds what callers read of a parsed URL; never made here.
type ConnConfig struct {
	Host      string
	Port      uint16
	Database  string
	Fallbacks []*FallbackConfig
}

// FallbackConfig is one of ConnConfig's fallbacks.
type FallbackConfig struct {
	Host string
	Port uint16
}

// Conn is a connection; never made here.
type Conn struct{}

// Close does nothing.
func (*Conn) Close(context.Context) error { return nil }

// DB is what Migrate and CheckVersion take.
type DB interface{}

// VersionError as in the full build; never returned here.
type VersionError struct {
	Database, Code int
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("token store schema version %d, this gohsm's %d", e.Database, e.Code)
}

// Unwrap makes a VersionError a store.ErrFormat (errors.Is).
func (e *VersionError) Unwrap() error { return store.ErrFormat }

// ConnHook as in the full build; never called here.
type ConnHook func(fd uintptr, opened bool)

// SetConnHook does nothing: no connection is ever dialled.
func SetConnHook(ConnHook) {}

// ParseURL fails with ErrNotBuilt.
func ParseURL(string) (*ConnConfig, error) { return nil, ErrNotBuilt }

// Connect fails with ErrNotBuilt.
func Connect(context.Context, string) (*Conn, error) { return nil, ErrNotBuilt }

// Open fails with ErrNotBuilt.
func Open(string, Options) (store.Store, error) { return nil, ErrNotBuilt }

// CheckVersion fails with ErrNotBuilt.
func CheckVersion(context.Context, DB) error { return ErrNotBuilt }

// Migrate fails with ErrNotBuilt.
func Migrate(context.Context, DB) error { return ErrNotBuilt }

// MigrateTo fails with ErrNotBuilt.
func MigrateTo(context.Context, DB, int) error { return ErrNotBuilt }
