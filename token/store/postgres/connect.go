//go:build !nopostgres

package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultConnectTimeout bounds a connection attempt when the URL sets no
// connect_timeout (nor PGCONNECT_TIMEOUT): an unreachable server fails the
// call instead of hanging it.
const DefaultConnectTimeout = 5 * time.Second

// ParseURL reads a postgres:// (or postgresql://) URL with pgx, which
// brings PostgreSQL's conventions: PGPASSWORD and the other PG* variables,
// ~/.pgpass, sslmode, sslrootcert, several hosts. The connect timeout applies
// to each host address tried, as in libpq.
func ParseURL(url string) (*pgx.ConnConfig, error) {
	if !strings.HasPrefix(url, "postgres://") && !strings.HasPrefix(url, "postgresql://") {
		return nil, fmt.Errorf("postgres: the setting is not a postgres:// URL") // it may hold a password
	}
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err) // pgx leaves the password out
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "gohsm"
	}
	watchDial(&cfg.Config)
	return cfg, nil
}

// Connect opens one connection as ParseURL describes.
func Connect(ctx context.Context, url string) (*pgx.Conn, error) {
	cfg, err := ParseURL(url)
	if err != nil {
		return nil, err
	}
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return c, nil
}
