//go:build !nopostgres

package postgres

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestConnectTimeout: a server that accepts the TCP connection and then
// says nothing (a hung or firewalled PostgreSQL) fails the connect at the
// URL's connect_timeout, sslmode=prefer's second try included.
func TestConnectTimeout(t *testing.T) {
	t.Setenv("PGCONNECT_TIMEOUT", "")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	url := fmt.Sprintf("postgres://gohsm@%s/token?connect_timeout=1", ln.Addr())
	t0 := time.Now()
	_, err = Connect(context.Background(), url)
	took := time.Since(t0)
	require.Error(t, err)
	require.GreaterOrEqual(t, took, 900*time.Millisecond, "the silent server was given its second: %v", err)
	require.Less(t, took, 2*time.Second, "connect outlived connect_timeout=1: %v", err)
	t.Logf("silent server: %v after %v", err, took)
}

// TestConnectClosedPort: nothing listening fails at once, well inside the
// default timeout.
func TestConnectClosedPort(t *testing.T) {
	t.Setenv("PGCONNECT_TIMEOUT", "")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	t0 := time.Now()
	_, err = Connect(context.Background(), "postgres://gohsm@"+addr+"/token")
	require.Error(t, err)
	require.Less(t, time.Since(t0), time.Second)
	require.Contains(t, err.Error(), "refused")
}

func TestParseURL(t *testing.T) {
	t.Setenv("PGCONNECT_TIMEOUT", "")
	t.Setenv("PGPASSWORD", "from-env")
	cfg, err := ParseURL("postgres://alice@db.example:6543/tokens?sslmode=require")
	require.NoError(t, err)
	require.Equal(t, DefaultConnectTimeout, cfg.ConnectTimeout, "no connect_timeout: the default")
	require.Equal(t, "db.example", cfg.Host)
	require.EqualValues(t, 6543, cfg.Port)
	require.Equal(t, "alice", cfg.User)
	require.Equal(t, "tokens", cfg.Database)
	require.Equal(t, "from-env", cfg.Password, "PGPASSWORD is honoured")
	require.NotNil(t, cfg.TLSConfig, "sslmode=require")
	require.Equal(t, "gohsm", cfg.RuntimeParams["application_name"])

	cfg, err = ParseURL("postgresql://alice@db.example/tokens?connect_timeout=2&application_name=fleet")
	require.NoError(t, err)
	require.Equal(t, 2*time.Second, cfg.ConnectTimeout)
	require.Equal(t, "fleet", cfg.RuntimeParams["application_name"])

	t.Setenv("PGPASSWORD", "")
	pass := filepath.Join(t.TempDir(), "pgpass")
	require.NoError(t, os.WriteFile(pass, []byte("db.example:5432:tokens:alice:from-file\n"), 0o600))
	t.Setenv("PGPASSFILE", pass)
	cfg, err = ParseURL("postgres://alice@db.example/tokens")
	require.NoError(t, err)
	require.Equal(t, "from-file", cfg.Password, "~/.pgpass (here PGPASSFILE) is honoured")

	for _, bad := range []string{"host=db.example password=hunter2", "sqlite", "mysql://u:hunter2@h/db"} {
		_, err := ParseURL(bad)
		require.Error(t, err, bad)
		require.NotContains(t, err.Error(), "hunter2")
	}
	_, err = ParseURL("postgres://u:hunter2@db.example:notaport/db")
	require.Error(t, err)
	require.NotContains(t, err.Error(), "hunter2")
}
