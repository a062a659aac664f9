package hosts

import (
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"gohsm/internal/testenv"
	"gohsm/internal/testenv/pgtest"
	"gohsm/token/store"
	"gohsm/token/store/postgres"
)

// writerUser is the crypto user the writers log in as.
const writerPIN = "bob:bob-Secret-pa55word"

// TestKillNineMidWrite: a writer host (a C program, testdata/writer.c)
// creates token objects in a loop and reports each after C_CreateObject
// returned CKR_OK (one line through a pipe); it is killed with SIGKILL at a random moment, 20 times, while
// host C, logged in all along, watches. After each kill:
//
//   - C finds every reported object under its reported handle with its
//     value; at most the one object in flight at each kill exists
//     unreported;
//   - the database holds no advisory lock beyond C's (pg_locks), within
//     lockGone of the kill: the dead process's login lock went with its
//     connection;
//   - the login registry has no entry of bob's (store.Logins, which prunes
//     entries whose lock nobody holds), where it had one while the writer
//     lived;
//   - the next writer's first create returns within firstWrite: no lock
//     of the dead one is waited for.
//
// A host started at the end finds everything too.
func TestKillNineMidWrite(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t, "kill")
	c := newHost(t, "c", dsn)
	initToken(t, c)
	pc := c.start()
	pc.must("open 1")
	pc.must("login so %s", soPIN)
	pc.must("initpin %s", writerPIN)
	pc.must("logout")
	pc.must("login user %s", userPIN)
	db := sqlConn(t, dsn)
	advisory := func() int64 {
		return queryInt(t, db, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`)
	}
	base := advisory()
	t.Logf("advisory locks with host C logged in: %d", base)
	reg, err := postgres.Open(dsn, postgres.Options{Timeout: 10 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { reg.Close() })
	bobLogins := func() []store.Login {
		ls, err := reg.Logins("bob")
		require.NoError(t, err)
		return ls
	}

	const (
		kills = 20
		// lockGone bounds how long the server takes to end a killed
		// client's backend (it reads EOF at once) and drop its locks.
		lockGone = 5 * time.Second
		// firstWrite bounds a new writer's first create: a lock left
		// behind would hold it until a timeout.
		firstWrite = 2 * time.Second
	)
	w := newHost(t, "w", dsn)
	writer := buildC(t, "writer.c")
	committed := map[string]string{} // label -> handle
	var gone, firsts []time.Duration
	var unreported int
	deadline := time.Now().Add(120 * time.Second)
	for i := range kills {
		require.False(t, time.Now().After(deadline), "only %d of %d kill cycles within 120 s", i, kills)
		p := w.spawnCmd(writer, testenv.PGLibrary(t), fmt.Sprintf("w%d", i), writerPIN)
		require.Equal(t, "READY", p.read(30*time.Second).line, "writer %d%s", i, p.diag())
		began := time.Now()
		first := p.read(30 * time.Second)
		require.Len(t, bobLogins(), 1, "the live writer's login in the registry")
		require.Greater(t, advisory(), base, "advisory locks with a live writer")
		require.True(t, strings.HasPrefix(first.line, "W "), "writer %d: %s%s", i, first, p.diag())
		firsts = append(firsts, time.Since(began))
		lines := []string{first.line}
		time.Sleep(time.Duration(rand.IntN(200)) * time.Millisecond)
		require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
		killed := time.Now()
		for l := range p.lines {
			lines = append(lines, l)
		}
		<-p.exited
		ws, _ := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
		require.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "writer %d ended by itself: %v%s", i, p.cmd.ProcessState, p.diag())
		for _, l := range lines {
			f := strings.Fields(l)
			require.True(t, len(f) == 3 && f[0] == "W", "writer %d line %q", i, l)
			committed[f[2]] = f[1]
		}

		for advisory() > base {
			require.Less(t, time.Since(killed), lockGone, "kill %d: the dead writer's advisory lock is still held", i)
			time.Sleep(5 * time.Millisecond)
		}
		gone = append(gone, time.Since(killed))
		require.Empty(t, bobLogins(), "kill %d: the dead writer's login is in the registry", i)

		found := map[string]string{}
		for _, f := range c.values(pc) {
			found[f[1]] = f[0]
			if want := hex.EncodeToString(dataValue(f[1])); f[2] != want {
				t.Fatalf("kill %d: %s (handle %s) has value %s, want %s", i, f[1], f[0], f[2], want)
			}
		}
		for label, h := range committed {
			got, ok := found[label]
			require.True(t, ok, "kill %d: %s (handle %s) was reported created but host C does not find it", i, label, h)
			require.Equal(t, h, got, "kill %d: %s reported as handle %s", i, label, h)
		}
		unreported = len(found) - len(committed)
		require.LessOrEqual(t, unreported, i+1, "kill %d: more unreported objects than kills", i)
	}
	slices.Sort(gone)
	slices.Sort(firsts)
	t.Logf("%d kills: %d objects reported and found, %d created but never reported (in flight at a kill)", kills, len(committed), unreported)
	t.Logf("kill -> advisory lock gone: median %v, max %v; a new writer's first create: median %v, max %v",
		percentile(gone, 0.5), gone[len(gone)-1], percentile(firsts, 0.5), firsts[len(firsts)-1])
	require.LessOrEqual(t, firsts[len(firsts)-1], firstWrite, "a new writer waited for its first create")

	// Everything again from a host that never saw the writers.
	d := newHost(t, "d", dsn)
	pd := d.start()
	pd.must("open 1")
	pd.must("login user %s", userPIN)
	found := map[string]string{}
	for _, f := range d.values(pd) {
		found[f[1]] = f[0]
	}
	for label, h := range committed {
		require.Equal(t, h, found[label], "host D: %s", label)
	}
	pd.quit()
	pc.quit()
	require.Equal(t, int64(0), advisory(), "advisory locks with every host gone")
}

// values is the host's "values" reply, as [handle, label, value-hex]
// triples.
func (h *host) values(p *proc) [][3]string {
	h.t.Helper()
	var out [][3]string
	for _, f := range p.must("values") {
		parts := strings.SplitN(f, ":", 3)
		require.Len(h.t, parts, 3, "values field %q", f)
		out = append(out, [3]string{parts[0], parts[1], parts[2]})
	}
	return out
}

// buildC compiles testdata/src (plain C reaching the library through its
// function list) and returns the program's path.
func buildC(t *testing.T, src string) string {
	t.Helper()
	return testenv.CompileC(t, filepath.Join("testdata", src), filepath.Join(t.TempDir(), strings.TrimSuffix(src, ".c")))
}
