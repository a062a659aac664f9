package store

import (
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// loginOf is the registry entry a process would write for its login.
func loginOf(t *testing.T, pid int, user string, instance int64) Login {
	t.Helper()
	started, _, ok := procStat(pid)
	if !ok {
		t.Skipf("no /proc/%d/stat: the registry cannot tell live processes here", pid)
	}
	me := ThisProcess()
	return Login{User: user, Instance: instance, PID: pid, Started: started, Boot: me.Boot, PIDNS: me.PIDNS}
}

// TestLoginRegistryProcessKilled: a user logged in in another process
// cannot be deleted while that process runs; killed with SIGKILL (no
// logout), the process leaves its entry, which is dead from the moment the
// process is (a zombie not yet reaped counts as dead) and goes with the
// user.
func TestLoginRegistryProcessKilled(t *testing.T) {
	s := initTest(t)
	cmd := exec.Command("sleep", "60")
	require.NoError(t, cmd.Start())
	defer cmd.Process.Kill()
	l := loginOf(t, cmd.Process.Pid, "Alice", 7)
	require.NoError(t, s.AddLogin(l))

	live, err := s.Logins("alice")
	require.NoError(t, err)
	require.Len(t, live, 1)
	assert.Equal(t, "alice", live[0].User)
	assert.Equal(t, cmd.Process.Pid, live[0].PID)
	assert.ErrorIs(t, s.DeleteUser("alice"), ErrLoggedIn)

	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	// Not reaped yet: the kernel keeps a zombie until Wait.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, state, ok := procStat(cmd.Process.Pid); !ok || state == 'Z' {
			break
		}
		require.True(t, time.Now().Before(deadline), "sleep not dead after SIGKILL")
		time.Sleep(5 * time.Millisecond)
	}
	live, err = s.Logins("alice")
	require.NoError(t, err)
	assert.Empty(t, live, "a killed process is logged in nowhere")
	require.NoError(t, s.DeleteUser("alice"))
	cmd.Wait()
}

// TestLoginRegistryLiveness: what makes an entry dead or alive.
func TestLoginRegistryLiveness(t *testing.T) {
	me := loginOf(t, os.Getpid(), "alice", 1)
	assert.True(t, Alive(me), "this process")
	reused := me
	reused.Started++
	assert.False(t, Alive(reused), "the same pid, another start: the pid was reused")
	rebooted := me
	rebooted.Boot = "another boot"
	assert.False(t, Alive(rebooted), "an entry from before a reboot")
	gone := me
	gone.PID = 1 << 30 // above pid_max
	assert.False(t, Alive(gone), "no such process")
	foreign := gone
	foreign.PIDNS = "pid:[1]"
	assert.True(t, Alive(foreign), "another pid namespace cannot be checked: alive")
}

// TestGoldenTokenV2GetsTheRegistry: a format-2 token written before the
// registry existed opens, gains the table at Open (format version
// unchanged) and records logins.
func TestGoldenTokenV2GetsTheRegistry(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, goldenDBV2, filepath.Join(dir, DBName))
	raw, err := sql.Open("sqlite", filepath.Join(dir, DBName))
	require.NoError(t, err)
	var n int
	require.NoError(t, raw.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name = 'logins'`).Scan(&n))
	require.NoError(t, raw.Close())
	require.Zero(t, n, "the golden file predates the registry")

	s := openTest(t, dir)
	require.NoError(t, s.AddLogin(loginOf(t, os.Getpid(), "alice", 1)))
	live, err := s.Logins("alice")
	require.NoError(t, err)
	assert.Len(t, live, 1)
}

// TestDeadLoginsDropped: dead entries of anyone are deleted at the next
// AddLogin (storetest sees only that Logins does not list them).
func TestDeadLoginsDropped(t *testing.T) {
	s := initTest(t)
	a := loginOf(t, os.Getpid(), "alice", 1)
	dead := a
	dead.Instance, dead.Started = 3, a.Started+1
	require.NoError(t, s.AddLogin(dead))
	require.NoError(t, s.AddLogin(a))
	var n int
	require.NoError(t, s.(*sqliteStore).db.QueryRow(`SELECT count(*) FROM logins`).Scan(&n))
	assert.Equal(t, 1, n, "instance 3's dead entry was dropped by the next AddLogin")
}
