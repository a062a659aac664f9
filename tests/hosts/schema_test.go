package hosts

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"gohsm/internal/testenv"
	"gohsm/internal/testenv/pgtest"
)

func itoa(i int) string { return strconv.Itoa(i) }

// TestSchemaRace: four hosts call C_Initialize at the same moment on an
// empty database, three times over (a fresh database each round). Each
// round ends with one schema (each migration recorded once, every table
// once) and every host working on it: the first initialises the token,
// each one then logs in, creates an object and finds the others'.
func TestSchemaRace(t *testing.T) {
	srv := pgtest.Shared(t)
	const hosts = 4
	want := goldenTables(t)
	for round := range 3 {
		dsn := srv.NewDatabase(t, fmt.Sprintf("race%d", round))
		var ps []*proc
		for i := range hosts {
			h := newHost(t, fmt.Sprintf("r%d-%d", round, i), dsn)
			// The helper waits in front of C_Initialize for the line
			// on its stdin.
			ps = append(ps, h.spawnGated())
		}
		for _, p := range ps {
			require.Equal(t, "OK 0 LOADED", p.read(time.Minute).line)
		}
		var wg sync.WaitGroup
		replies := make([]reply, hosts)
		for i, p := range ps {
			wg.Add(1)
			go func() {
				defer wg.Done()
				replies[i] = p.read(time.Minute)
			}()
		}
		for _, p := range ps {
			p.send("go")
		}
		wg.Wait()
		var took []time.Duration
		for i, r := range replies {
			require.True(t, r.ok(), "round %d host %d: C_Initialize: %s%s", round, i, r, ps[i].diag())
			took = append(took, r.elapsed())
		}
		db := sqlConn(t, dsn)
		versions := queryInt(t, db, `SELECT count(*) FROM schema_version`)
		distinct := queryInt(t, db, `SELECT count(DISTINCT version) FROM schema_version`)
		top := queryInt(t, db, `SELECT max(version) FROM schema_version`)
		require.Equal(t, versions, distinct, "round %d: a migration recorded twice", round)
		require.Equal(t, top, versions, "round %d: versions 1..%d each once", round, top)
		require.Equal(t, want, tableNames(t, db), "round %d: the tables are those of the golden schema", round)
		t.Logf("round %d: %d hosts' C_Initialize in %v; schema version %d, %d tables", round, hosts, took, top, len(want))

		// Every host works on the one schema.
		ps[0].must("inittoken %s %s", soPIN, tokenLabel)
		ps[0].must("open 1")
		ps[0].must("login so %s", soPIN)
		ps[0].must("initpin %s", userPIN)
		ps[0].must("logout")
		for i, p := range ps {
			if i > 0 {
				p.must("open 1")
			}
			p.must("login user %s", userPIN)
			p.must("create race-%d", i)
		}
		for i, p := range ps {
			for j := range hosts {
				require.Len(t, p.must("find race-%d", j), 1, "round %d: host %d finds host %d's object", round, i, j)
			}
			p.quit()
		}
	}
}

// spawnGated starts a helper that loads the library, replies
// "OK 0 LOADED", and calls C_Initialize once it reads a line.
func (h *host) spawnGated() *proc {
	h.t.Helper()
	saved := h.env
	h.env = append(append([]string{}, h.env...), gateEnv+"=1")
	defer func() { h.env = saved }()
	return h.spawn()
}

// goldenTables are the tables of token/store/postgres's golden schema
// (testdata/schema-v3.txt: "column TABLE.COLUMN ..." lines).
func goldenTables(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "token", "store", "postgres", "testdata", "schema-v3.txt"))
	require.NoError(t, err)
	set := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "column "); ok {
			table, _, _ := strings.Cut(rest, ".")
			set[table] = true
		}
	}
	var names []string
	for n := range set {
		names = append(names, n)
	}
	slices.Sort(names)
	require.NotEmpty(t, names)
	return names
}

// tableNames are the tables of the connection's current schema, sorted.
func tableNames(t *testing.T, db *pgx.Conn) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := db.Query(ctx, `SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1`)
	require.NoError(t, err)
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	slices.Sort(names)
	return names
}
