package store

import (
	"bufio"
	"bytes"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
)

// startWriter starts the writer helper on dir, creating objects until
// stopped, and returns the IDs it reports committed, as they come.
func startWriter(t *testing.T, dir, prefix string) (ids <-chan int64) {
	t.Helper()
	cmd := helperCmd(t, dir, prefix, 0)
	cmd.Env = append(cmd.Env, "STORE_PAUSE_US=500")
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	ch := make(chan int64, 1<<16)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			id, _, _ := strings.Cut(sc.Text(), " ")
			n, err := strconv.ParseInt(id, 10, 64)
			if err == nil {
				ch <- n
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return ch
}

// TestBackupWhileAnotherProcessWrites: snapshots taken while another
// process keeps creating objects each hold every object committed before
// the snapshot began, every object listed is readable, and each restores
// into a token that verifies (issue 15 item 4: SQLite's online backup, not
// a file copy).
func TestBackupWhileAnotherProcessWrites(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	require.NoError(t, s.InitToken(TokenRecord{Label: "live", SerialNumber: "00000000000000aa", Created: 1}, user("admin", RoleCO)))
	ids := startWriter(t, dir, "bg")
	var committed []int64
	wait := func(n int) {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for len(committed) < n {
			select {
			case id, ok := <-ids:
				require.True(t, ok, "the writer stopped")
				committed = append(committed, id)
			case <-deadline:
				t.Fatalf("the writer committed only %d objects", len(committed))
			}
		}
	}
	out := t.TempDir()
	var snapshots [][]int64 // the writer's objects in each backup
	for round := range 3 {
		wait(20 * (round + 1))
		before := append([]int64(nil), committed...)
		file := filepath.Join(out, fmt.Sprintf("b%d.gohsm-backup", round))
		info, err := s.Backup(file)
		require.NoError(t, err)
		assert.Equal(t, "00000000000000aa", info.Serial)
		assert.Equal(t, formatVersion, info.TokenFormat)

		target := filepath.Join(t.TempDir(), "restored")
		got, err := Restore(target, file, RestoreOptions{})
		require.NoError(t, err)
		assert.Equal(t, info.SHA256, got.SHA256)
		r := openTest(t, target)
		found, err := r.Find(Query{})
		require.NoError(t, err)
		have := map[int64]bool{}
		for _, id := range found {
			o, err := r.Object(id)
			require.NoError(t, err, "object %d listed but unreadable", id)
			assert.Equal(t, []byte("sealed-"+o.UniqueID), o.Sealed[ck.CKA_VALUE])
			have[id] = true
		}
		for _, id := range before {
			assert.True(t, have[id], "object %d was committed before the backup began, but is not in it", id)
		}
		snapshots = append(snapshots, found)
		var check string
		require.NoError(t, r.(*sqliteStore).db.QueryRow(`PRAGMA integrity_check`).Scan(&check))
		assert.Equal(t, "ok", check)
	}
	longest := 0
	for _, got := range snapshots {
		longest = max(longest, len(got))
	}
	wait(max(longest, len(committed)) + 5) // the writer never waited on the backups
	// The database as of one commit: the writer commits one object at a
	// time, so each backup holds a prefix of its sequence, never a later
	// object without an earlier one.
	for i, got := range snapshots {
		require.LessOrEqual(t, len(got), len(committed))
		assert.ElementsMatch(t, committed[:len(got)], got, "backup %d is not a prefix of the writer's commits", i)
	}
}

// backupOf returns a backup file of a small token (a user, an object).
func backupOf(t *testing.T) (file string, info BackupInfo) {
	t.Helper()
	s := initTest(t)
	_, err := s.CreateObject(obj("k1", "alice", true, "one"))
	require.NoError(t, err)
	file = filepath.Join(t.TempDir(), "t.gohsm-backup")
	info, err = s.Backup(file)
	require.NoError(t, err)
	return file, info
}

func TestBackupFileHeader(t *testing.T) {
	file, info := backupOf(t)
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(b, []byte(BackupMagic)))
	got, err := ReadBackupInfo(file)
	require.NoError(t, err)
	assert.Equal(t, info, got)
	assert.Equal(t, "test", got.Label)
	assert.Equal(t, "0123456789abcdef", got.Serial)
	_, err = time.Parse(time.RFC3339, got.Created)
	assert.NoError(t, err)
	_, body, _ := bytes.Cut(b[len(BackupMagic):], []byte("\n"))
	assert.Equal(t, int64(len(body)), got.Size)
	assert.True(t, bytes.HasPrefix(body, []byte(sqliteMagic)))
	fi, err := os.Stat(file)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
}

// TestRestoreRefusals: each way a restore must not happen leaves the
// target as it was.
func TestRestoreRefusals(t *testing.T) {
	file, _ := backupOf(t)
	good, err := os.ReadFile(file)
	require.NoError(t, err)
	write := func(b []byte) string {
		p := filepath.Join(t.TempDir(), "f")
		require.NoError(t, os.WriteFile(p, b, 0o600))
		return p
	}
	hdrEnd := bytes.IndexByte(good[len(BackupMagic):], '\n') + len(BackupMagic) + 1

	// A token that holds a token: refused without Replace, kept as it was.
	full := t.TempDir()
	other := openTest(t, full)
	require.NoError(t, other.InitToken(TokenRecord{Label: "other", SerialNumber: "1111111111111111"}, user("admin", RoleCO)))
	other.Close()
	_, err = Restore(full, file, RestoreOptions{})
	require.ErrorIs(t, err, ErrExists)
	assert.Contains(t, err.Error(), `holds token "other"`)
	tk, err := openTest(t, full).Token()
	require.NoError(t, err)
	assert.Equal(t, "other", tk.Label)

	// A directory whose token another process has open: refused even with
	// Replace.
	busy := t.TempDir()
	ids := startWriter(t, busy, "busy")
	<-ids
	_, err = Restore(busy, file, RestoreOptions{Replace: true})
	require.ErrorIs(t, err, ErrTokenOpen)

	for _, notFile := range []string{t.TempDir(), "/dev/zero"} {
		_, err := Restore(t.TempDir(), notFile, RestoreOptions{})
		require.ErrorIs(t, err, ErrBackup, notFile)
		assert.Contains(t, err.Error(), "is not a regular file")
	}

	bad := map[string][]byte{
		"empty file":      {},
		"text":            []byte("hello, this is not a backup at all\n"),
		"unknown version": append([]byte("GOHSM-BACKUP 9\n"), good[len(BackupMagic):]...),
		"bad header":      append([]byte(BackupMagic+"{not json\n"), good[hdrEnd:]...),
		"truncated":       good[:len(good)-100],
		"extended":        append(append([]byte(nil), good...), 0),
		"corrupt":         flip(good, hdrEnd+3000),
		"header only":     good[:hdrEnd],
		"empty database":  emptySQLite(t),
		"not a token":     foreignSQLite(t),
		"newer format":    newerFormat(t),
		"truncated raw":   good[hdrEnd : hdrEnd+(len(good)-hdrEnd)/2],
	}
	for name, b := range bad {
		t.Run(name, func(t *testing.T) {
			target := t.TempDir()
			_, err := Restore(target, write(b), RestoreOptions{})
			require.Error(t, err)
			assert.True(t, errorsIsAny(err, ErrBackup, ErrFormat), "%v", err)
			entries, err := os.ReadDir(target)
			require.NoError(t, err)
			assert.Empty(t, entries, "nothing is left behind")
		})
	}
}

func errorsIsAny(err error, targets ...error) bool {
	for _, t := range targets {
		if strings.Contains(err.Error(), t.Error()) {
			return true
		}
	}
	return false
}

func flip(b []byte, at int) []byte {
	c := append([]byte(nil), b...)
	for i := range 64 {
		c[at+i] ^= 0xa5
	}
	return c
}

func emptySQLite(t *testing.T) []byte {
	p := filepath.Join(t.TempDir(), "e.db")
	db, err := sql.Open("sqlite", p)
	require.NoError(t, err)
	_, err = db.Exec(`PRAGMA user_version = 1`)
	require.NoError(t, err)
	db.Close()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return b
}

// newerFormat is a bare token database whose format version is one this
// build does not know.
func newerFormat(t *testing.T) []byte {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	require.NoError(t, err)
	require.NoError(t, s.InitToken(TokenRecord{Label: "future", SerialNumber: "9"}, user("admin", RoleCO)))
	_, err = s.(*sqliteStore).db.Exec(`UPDATE meta SET value = 99 WHERE key = 'format_version'`)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	b, err := os.ReadFile(filepath.Join(dir, DBName))
	require.NoError(t, err)
	return b
}

func foreignSQLite(t *testing.T) []byte {
	p := filepath.Join(t.TempDir(), "f.db")
	db, err := sql.Open("sqlite", p)
	require.NoError(t, err)
	_, err = db.Exec(`CREATE TABLE t (x)`)
	require.NoError(t, err)
	db.Close()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return b
}

// TestRestoreReplaces: with Replace a token is replaced whole, and the
// restored token's login registry is empty (its entries named processes
// of the original).
func TestRestoreReplaces(t *testing.T) {
	s := initTest(t)
	require.NoError(t, s.AddLogin(Login{User: "alice", Instance: 7, PID: os.Getpid(), Started: ThisProcess().Started, Boot: ThisProcess().Boot, PIDNS: ThisProcess().PIDNS}))
	file := filepath.Join(t.TempDir(), "b")
	_, err := s.Backup(file)
	require.NoError(t, err)

	target := t.TempDir()
	other := openTest(t, target)
	require.NoError(t, other.InitToken(TokenRecord{Label: "other", SerialNumber: "1"}, user("admin", RoleCO)))
	other.Close()
	_, err = Restore(target, file, RestoreOptions{Replace: true})
	require.NoError(t, err)
	r := openTest(t, target)
	tk, err := r.Token()
	require.NoError(t, err)
	assert.Equal(t, "test", tk.Label)
	ls, err := r.Logins("")
	require.NoError(t, err)
	assert.Empty(t, ls)
	entries, err := os.ReadDir(target)
	require.NoError(t, err)
	for _, e := range entries {
		assert.False(t, strings.HasPrefix(e.Name(), ".gohsm-"), "left behind: %s", e.Name())
	}
}

// TestRestoreMigratesOlderFormat: a bare token.db of format 1 (the golden
// database) restores and is upgraded as Open upgrades it.
func TestRestoreMigratesOlderFormat(t *testing.T) {
	target := t.TempDir()
	info, err := Restore(target, goldenDB, RestoreOptions{})
	require.NoError(t, err)
	assert.Equal(t, 1, info.TokenFormat)
	r := openTest(t, target)
	var v int
	require.NoError(t, r.(*sqliteStore).db.QueryRow(`SELECT value FROM meta WHERE key = 'format_version'`).Scan(&v))
	assert.Equal(t, formatVersion, v)
	_, err = r.Token()
	require.NoError(t, err)
}

// TestBackupReplacesOnlyBackups: --out naming a token's own database, or
// any file that is not a backup, is refused and the file kept; an older
// backup is replaced.
func TestBackupReplacesOnlyBackups(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	require.NoError(t, s.InitToken(TokenRecord{Label: "self", SerialNumber: "1"}, user("admin", RoleCO)))
	own := filepath.Join(dir, DBName)
	_, err := s.Backup(own)
	require.ErrorIs(t, err, ErrExists)
	tk, err := s.Token()
	require.NoError(t, err, "the token survives")
	assert.Equal(t, "self", tk.Label)

	other := filepath.Join(t.TempDir(), "notes.txt")
	require.NoError(t, os.WriteFile(other, []byte("keep me"), 0o600))
	_, err = s.Backup(other)
	require.ErrorIs(t, err, ErrExists)
	b, _ := os.ReadFile(other)
	assert.Equal(t, "keep me", string(b))
	_, err = s.Backup(t.TempDir())
	require.ErrorIs(t, err, ErrExists, "a directory")

	file := filepath.Join(t.TempDir(), "b")
	first, err := s.Backup(file)
	require.NoError(t, err)
	require.NoError(t, s.SetTokenLabel("renamed"))
	second, err := s.Backup(file)
	require.NoError(t, err)
	assert.Equal(t, "self", first.Label)
	assert.Equal(t, "renamed", second.Label)
	empty := filepath.Join(t.TempDir(), "empty")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	_, err = s.Backup(empty)
	require.NoError(t, err)
}

// BenchmarkBackupRestore10k: a backup and a restore of a token holding
// 10,000 objects (docs/store.md, "Measured numbers").
func BenchmarkBackupRestore10k(b *testing.B) {
	dir := b.TempDir()
	s, err := Open(dir, Options{})
	require.NoError(b, err)
	defer s.Close()
	require.NoError(b, s.InitToken(TokenRecord{Label: "bench", SerialNumber: "1"}, user("admin", RoleCO)))
	objs := make([]ObjectRecord, 1000)
	for batch := range 10 {
		for i := range objs {
			objs[i] = obj(fmt.Sprintf("o-%d-%d", batch, i), "", false, "bench")
		}
		_, _, err := s.CreateObjects(objs)
		require.NoError(b, err)
	}
	file := filepath.Join(b.TempDir(), "b")
	b.Run("backup", func(b *testing.B) {
		var info BackupInfo
		for b.Loop() {
			info, err = s.Backup(file)
			require.NoError(b, err)
		}
		b.ReportMetric(float64(info.Size), "db-bytes")
	})
	b.Run("restore", func(b *testing.B) {
		for b.Loop() {
			_, err := Restore(filepath.Join(b.TempDir(), "t"), file, RestoreOptions{})
			require.NoError(b, err)
		}
	})
}
