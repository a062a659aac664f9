package nginx

import (
	"context"
	"crypto/tls"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"gohsm/internal/testenv/pgtest"
)

// TestMain runs the tests under pgtest.Main, which stops the PostgreSQL
// server TestNginxTLSOffloadPostgres starts.
func TestMain(m *testing.M) { pgtest.Main(m) }

// The PostgreSQL run is shorter than TestNginxTLSOffload's: it proves the
// backend under nginx's forked workers, not the handshake path again.
const (
	pgHandshakes       = 1000 // per key, before the reload
	pgReloadHandshakes = 500  // per key, after it
)

// TestNginxTLSOffloadPostgres: TestNginxTLSOffload's setup with the slot's
// token in a PostgreSQL database (`store = <DSN>`): the gohsm CLI makes
// the token, user and keys there, nginx's master loads the keys, its two
// forked workers (each C_Initialize in a fresh copy of the module) sign
// every handshake with them. Each worker must reach the database over
// connections of its own: a forked child inherits its master's sockets,
// and a protocol stream shared by two processes would interleave.
func TestNginxTLSOffloadPostgres(t *testing.T) {
	testStart := time.Now()
	srv := pgtest.Shared(t)
	dsn := srv.NewDatabase(t, "nginx")
	s, ca, _ := startNginx(t, "store = "+dsn+"\n")
	c := &client{cfg: &tls.Config{RootCAs: ca.pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}}
	ctx, cancel := context.WithTimeout(context.Background(), testBudget)
	defer cancel()

	check(t, "the token is in PostgreSQL, not in token_dir", func() error {
		if m, _ := filepath.Glob(filepath.Join(s.dir, "token", "*", "token.db*")); len(m) > 0 {
			return fmt.Errorf("SQLite token files in token_dir: %v", m)
		}
		n, err := pgCount(ctx, dsn, `SELECT count(*) FROM objects`)
		if err != nil {
			return err
		}
		// Two key pairs: 4 objects at least.
		if n < 4 {
			return fmt.Errorf("%d objects in the database, want the 2 key pairs", n)
		}
		return nil
	})

	load := func(phase string, n int) {
		t.Helper()
		for _, k := range s.keys {
			name := fmt.Sprintf("%s: %d full handshakes, %s key, %d concurrent clients", phase, n, k.name, concurrency)
			check(t, name, func() error {
				rate, err := c.load(ctx, k, s.gen, n)
				if err != nil {
					return fmt.Errorf("%w\n%s", err, s.errorLog())
				}
				t.Logf("%s: %.0f handshakes/s", name, rate)
				return nil
			})
		}
	}
	ownConns := func(when string) {
		t.Helper()
		check(t, when+": each worker reaches PostgreSQL on connections of its own", func() error {
			return s.checkOwnConnections(srv.Port)
		})
	}

	load("before reload", pgHandshakes)
	ownConns("before reload")
	check(t, "nginx -s reload: new workers serve", func() error {
		old := s.workers()
		s.writeConf(1)
		if _, err := s.nginxCmd("-s", "reload"); err != nil {
			return fmt.Errorf("%w\n%s", err, s.errorLog())
		}
		if err := s.waitServing(ctx, ca, old); err != nil {
			return err
		}
		return s.checkWorkers()
	})
	load("after reload", pgReloadHandshakes)
	ownConns("after reload")
	check(t, "nginx -s quit: the master and its workers exit", s.stop)
	check(t, "error.log has no alert, emerg, crit or module error", s.checkErrorLog)
	t.Logf("nginx PostgreSQL test took %v", time.Since(testStart).Round(time.Millisecond))
}

// pgCount runs one count query on dsn.
func pgCount(ctx context.Context, dsn, q string) (int, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	var n int
	err = conn.QueryRow(ctx, q).Scan(&n)
	return n, err
}

// checkOwnConnections: every worker holds at least one TCP connection to
// the PostgreSQL server's port that neither the master nor another worker
// holds, and none of its master's (a socket inherited through fork() is
// the same inode in both).
func (s *server) checkOwnConnections(pgPort int) error {
	conns, err := pgtest.TCPConnsTo(pgPort)
	if err != nil {
		return err
	}
	master, err := pgtest.SocketsOf(s.cmd.Process.Pid, conns)
	if err != nil {
		return err
	}
	workers := s.workers()
	if len(workers) != 2 {
		return fmt.Errorf("%d workers, want 2", len(workers))
	}
	seen := map[uint64]int{}
	var report []string
	for _, pid := range workers {
		socks, err := pgtest.SocketsOf(pid, conns)
		if err != nil {
			return err
		}
		var own, inherited []uint64
		for _, ino := range socks {
			if slices.Contains(master, ino) {
				inherited = append(inherited, ino)
			} else {
				own = append(own, ino)
			}
		}
		// pkcs11/fds.c closes the master copy's sockets in every forked
		// child: a worker holding one would keep the master's backend,
		// and its login lock, alive after the master died.
		if len(inherited) > 0 {
			return fmt.Errorf("worker %d holds %d of its master's sockets to PostgreSQL %v", pid, len(inherited), inherited)
		}
		if len(own) == 0 {
			return fmt.Errorf("worker %d has no connection to PostgreSQL of its own (%d sockets to port %d, all its master's)", pid, len(socks), pgPort)
		}
		for _, ino := range own {
			if other, ok := seen[ino]; ok {
				return fmt.Errorf("workers %d and %d share the PostgreSQL socket %d", other, pid, ino)
			}
			seen[ino] = pid
		}
		report = append(report, fmt.Sprintf("worker %d: %d own, none of its master's", pid, len(own)))
	}
	s.t.Logf("connections to PostgreSQL: master %d: %d; %s", s.cmd.Process.Pid, len(master), strings.Join(report, "; "))
	return nil
}
