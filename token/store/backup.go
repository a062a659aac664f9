package store

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"modernc.org/sqlite"
)

// Backup and restore (docs/backup.md).
//
// A backup is a consistent snapshot of the token's database taken with
// SQLite's online backup API (sqlite3_backup_*, which modernc.org/sqlite
// exposes on its driver connection): one step over every page inside one
// read transaction, so it sees exactly the commits made before it began,
// while other processes keep reading and writing (a WAL reader blocks no
// writer). The snapshot is the same database, so secret attributes stay
// sealed as at rest. It is written behind a short header:
//
//	GOHSM-BACKUP 1\n
//	{"version":1,"created":...,"serial":...,"sha256":...,"size":N,...}\n
//	<N bytes: the SQLite database, in rollback-journal mode>
//
// Restore takes that file, or a bare token.db copied from a closed token,
// checks it, migrates an older format as Open does, and moves it into place
// with one rename: a token directory holds the old token or the restored
// one, never a part of either.

// BackupMagic is the first line of a backup file.
const BackupMagic = "GOHSM-BACKUP 1\n"

// sqliteMagic starts every SQLite database file.
const sqliteMagic = "SQLite format 3\x00"

// maxBackupHeader bounds the JSON header line a restore reads.
const maxBackupHeader = 64 << 10

var (
	// ErrBackup: the file is not a usable backup (not one at all,
	// truncated, corrupt, or holding no initialised gohsm token).
	ErrBackup = errors.New("store: not a valid gohsm backup")
	// ErrTokenOpen: another process has the token open.
	ErrTokenOpen = errors.New("store: token is open in another process")
)

// BackupInfo is a backup file's header: what it holds and how to check it.
type BackupInfo struct {
	Version     int    `json:"version"`      // of the backup file format: 1
	Created     string `json:"created"`      // when the snapshot was taken, RFC 3339 UTC
	Serial      string `json:"serial"`       // the token's serial number
	Label       string `json:"label"`        // the token's label
	TokenFormat int    `json:"token_format"` // the database's format version
	Size        int64  `json:"size"`         // bytes of database after the header
	SHA256      string `json:"sha256"`       // of those bytes, hex
}

// rawBackup is what a raw connection of modernc.org/sqlite offers for the
// online backup API.
type rawBackup interface {
	NewBackup(dstURI string) (*sqlite.Backup, error)
}

// Backup writes a consistent snapshot of the token to path (mode 0600)
// and returns its header. An existing file at path is replaced atomically
// only when it is empty or a backup itself: anything else (a token's
// token.db, a configuration file) is refused with ErrExists, never lost.
func (s *sqliteStore) Backup(path string) (BackupInfo, error) {
	if err := replaceableBackup(path); err != nil {
		return BackupInfo{}, err
	}
	dir := filepath.Dir(path)
	snap, err := os.CreateTemp(dir, ".gohsm-snapshot-*")
	if err != nil {
		return BackupInfo{}, fmt.Errorf("store: backup: %w", err)
	}
	snap.Close()
	defer os.Remove(snap.Name())
	if err := s.snapshot(snap.Name()); err != nil {
		return BackupInfo{}, err
	}
	info, err := inspectSnapshot(snap.Name())
	if err != nil {
		return BackupInfo{}, err
	}
	info.Created = time.Now().UTC().Format(time.RFC3339)
	if err := writeBackupFile(path, snap.Name(), &info); err != nil {
		return BackupInfo{}, err
	}
	return info, nil
}

// replaceableBackup refuses a path holding a file that is not empty and
// not a backup file.
func replaceableBackup(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: backup: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("store: backup: %w", err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("store: backup: %s is not a regular file: %w", path, ErrExists)
	}
	head := make([]byte, len(BackupMagic))
	n, _ := io.ReadFull(f, head)
	if n == 0 || string(head[:n]) == BackupMagic {
		return nil
	}
	return fmt.Errorf("store: backup: %s exists and is not a gohsm backup; refusing to replace it: %w", path, ErrExists)
}

// snapshot copies every page of the database to dst in one backup step.
// One step is one read transaction on the source: the copy is the database
// as of one commit. (Stepping a few pages at a time would let other
// processes' commits in between, and SQLite would restart the copy.)
func (s *sqliteStore) snapshot(dst string) error {
	ctx := context.Background()
	err := retry(func() error {
		conn, err := s.db.Conn(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		return conn.Raw(func(dc any) error {
			rb, ok := dc.(rawBackup)
			if !ok {
				return fmt.Errorf("store: backup: the sqlite driver (%T) has no backup API", dc)
			}
			b, err := rb.NewBackup(dst)
			if err != nil {
				return err
			}
			_, stepErr := b.Step(-1)
			if err := b.Finish(); stepErr == nil {
				stepErr = err
			}
			return stepErr
		})
	})
	return wrapDB("backup", err)
}

// openFile opens a database file with one connection of its own, in
// rollback-journal mode: a snapshot is a single file, with no -wal or -shm
// beside it once closed.
func openFile(path string) (*sql.DB, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(DELETE)")
	u := url.URL{Scheme: "file", Path: abs, RawQuery: q.Encode()}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// inspectSnapshot checks a database file (integrity, a gohsm token of a
// format this build reads) and returns what a header says of it, without
// Created, Size and SHA256. It leaves the file in rollback-journal mode.
func inspectSnapshot(path string) (BackupInfo, error) {
	db, err := openFile(path)
	if err != nil {
		return BackupInfo{}, fmt.Errorf("store: backup: %w", err)
	}
	defer db.Close()
	info := BackupInfo{Version: 1}
	var check string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil {
		return info, fmt.Errorf("%w: %v", ErrBackup, err)
	}
	if check != "ok" {
		return info, fmt.Errorf("%w: integrity check: %s", ErrBackup, check)
	}
	st, err := readSchemaState(db)
	if err != nil {
		return info, fmt.Errorf("%w: %v", ErrBackup, err)
	}
	if st.tables == 0 {
		return info, fmt.Errorf("%w: an empty database", ErrBackup)
	}
	if _, err := st.needsWrite(); err != nil {
		return info, err
	}
	info.TokenFormat = int(st.version)
	err = db.QueryRow(`SELECT label, serial FROM token WHERE id = 1`).Scan(&info.Label, &info.Serial)
	if errors.Is(err, sql.ErrNoRows) {
		return info, fmt.Errorf("%w: the token is not initialised", ErrBackup)
	}
	if err != nil {
		return info, fmt.Errorf("%w: token record: %v", ErrBackup, err)
	}
	return info, nil
}

// writeBackupFile writes header and database to a temporary file beside
// path, syncs it and renames it to path.
func writeBackupFile(path, db string, info *BackupInfo) error {
	body, err := os.Open(db)
	if err != nil {
		return fmt.Errorf("store: backup: %w", err)
	}
	defer body.Close()
	h := sha256.New()
	n, err := io.Copy(h, body)
	if err != nil {
		return fmt.Errorf("store: backup: %w", err)
	}
	info.Size, info.SHA256 = n, hex.EncodeToString(h.Sum(nil))
	hdr, err := json.Marshal(info)
	if err != nil {
		return fmt.Errorf("store: backup: %w", err)
	}
	if _, err := body.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("store: backup: %w", err)
	}
	out, err := os.CreateTemp(filepath.Dir(path), ".gohsm-backup-*")
	if err != nil {
		return fmt.Errorf("store: backup: %w", err)
	}
	defer os.Remove(out.Name()) // after the rename: nothing to remove
	w := bufio.NewWriter(out)
	w.WriteString(BackupMagic)
	w.Write(hdr)
	w.WriteByte('\n')
	_, err = io.Copy(w, body)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(out.Name(), path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		return fmt.Errorf("store: backup: write %s: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// ReadBackupInfo reads a backup file's header (a bare database file has
// none: its info comes from the database, with Size and SHA256 empty).
func ReadBackupInfo(path string) (BackupInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return BackupInfo{}, fmt.Errorf("store: %w", err)
	}
	defer f.Close()
	info, _, err := readBackupHeader(bufio.NewReader(f))
	return info, err
}

// readBackupHeader reads the magic and header of r; raw is true when r
// holds a bare SQLite database instead (nothing consumed from it).
func readBackupHeader(r *bufio.Reader) (info BackupInfo, raw bool, err error) {
	start, err := r.Peek(len(sqliteMagic))
	if err != nil {
		return info, false, fmt.Errorf("%w: too short (%v)", ErrBackup, err)
	}
	if string(start) == sqliteMagic {
		return info, true, nil
	}
	if !bytes.HasPrefix(start, []byte(BackupMagic)) {
		return info, false, fmt.Errorf("%w: neither a gohsm backup nor a token database", ErrBackup)
	}
	line, err := r.ReadString('\n')
	if err != nil || line != BackupMagic {
		return info, false, fmt.Errorf("%w: unknown backup format %q", ErrBackup, line)
	}
	var hdr []byte
	for {
		chunk, err := r.ReadSlice('\n')
		hdr = append(hdr, chunk...)
		if err == nil {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) || len(hdr) > maxBackupHeader {
			return info, false, fmt.Errorf("%w: header: %v", ErrBackup, err)
		}
	}
	if err := json.Unmarshal(hdr, &info); err != nil {
		return info, false, fmt.Errorf("%w: header: %v", ErrBackup, err)
	}
	if info.Version != 1 || info.Size <= 0 || len(info.SHA256) != 64 {
		return info, false, fmt.Errorf("%w: header: version %d, size %d, sha256 %q", ErrBackup, info.Version, info.Size, info.SHA256)
	}
	return info, false, nil
}

// RestoreOptions tune Restore.
type RestoreOptions struct {
	// Replace allows replacing a token that holds users or objects (or a
	// file that is not a token); without it such a directory is refused
	// with ErrExists.
	Replace bool
	// Sync is the target's synchronous level, and Group its group
	// sharing, as in Options: the restored file gets the group's mode
	// before it is moved into place.
	Sync  string
	Group *int
	// Events are appended to the restored token's audit log before it is
	// moved into place, in the transaction that also empties its login
	// registry (CN_RESTORE_BEGIN).
	Events []AuditEvent
}

// Restore puts the backup file from into the token directory dir (made if
// missing). It refuses while any other process has dir's token open
// (ErrTokenOpen), and a directory holding a token unless opts.Replace
// (ErrExists). The backup is checked (header, size, SHA-256, SQLite
// integrity, a gohsm token of a format this build reads), migrated as Open
// would, and moved into place by rename after an fsync. The caller must
// have closed every Store of its own on dir: an open Store of this process
// would keep the replaced file.
func Restore(dir, from string, opts RestoreOptions) (BackupInfo, error) {
	dbPath := filepath.Join(dir, DBName)
	if err := checkTarget(dir, opts); err != nil {
		return BackupInfo{}, err
	}
	stage, err := os.MkdirTemp(dir, ".gohsm-restore-*")
	if err != nil {
		return BackupInfo{}, fmt.Errorf("store: restore: %w", err)
	}
	defer os.RemoveAll(stage)
	info, err := stageBackup(from, filepath.Join(stage, DBName))
	if err != nil {
		return info, err
	}
	if err := prepareRestored(stage, opts); err != nil {
		return info, err
	}
	// Again, now that the work is done: someone may have opened the token
	// meanwhile.
	if err := checkTarget(dir, opts); err != nil {
		return info, err
	}
	// A -wal left beside the old file by a crash would be replayed into
	// the new one: both go first (SQLite makes new ones at the next open).
	for _, p := range []string{dbPath + "-wal", dbPath + "-shm", dbPath + "-journal"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return info, fmt.Errorf("store: restore: %w", err)
		}
	}
	if err := os.Rename(filepath.Join(stage, DBName), dbPath); err != nil {
		return info, fmt.Errorf("store: restore: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return info, fmt.Errorf("store: restore: %w", err)
	}
	return info, nil
}

// checkTarget refuses a token directory whose token another process has
// open, or, without opts.Replace, that holds a token or an unknown file.
func checkTarget(dir string, opts RestoreOptions) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	dbPath := filepath.Join(dir, DBName)
	if pid, err := HeldBy(dbPath); err != nil {
		return fmt.Errorf("store: restore: %w", err)
	} else if pid != 0 {
		return fmt.Errorf("store: restore: the token in %s is open in process %d: %w", dir, pid, ErrTokenOpen)
	}
	if opts.Replace {
		return nil
	}
	st, err := os.Stat(dbPath)
	if errors.Is(err, os.ErrNotExist) || err == nil && st.Size() == 0 {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	s, err := Open(dir, Options{Sync: opts.Sync})
	if err != nil {
		return fmt.Errorf("store: restore: %s holds a file that is not a usable token (%v); replace it explicitly: %w", dir, err, ErrExists)
	}
	defer s.Close()
	t, err := s.Token()
	switch {
	case errors.Is(err, ErrNotInitialized):
		return nil
	case err != nil:
		return fmt.Errorf("store: restore: %s holds a damaged token (%v); replace it explicitly: %w", dir, err, ErrExists)
	}
	return fmt.Errorf("store: restore: %s holds token %q (serial %s); replace it explicitly: %w", dir, t.Label, t.SerialNumber, ErrExists)
}

// stageBackup copies the database of backup file from to dst, checking the
// header's size and SHA-256, and then the database itself.
func stageBackup(from, dst string) (BackupInfo, error) {
	f, err := os.Open(from)
	if err != nil {
		return BackupInfo{}, fmt.Errorf("store: restore: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil {
		return BackupInfo{}, fmt.Errorf("store: restore: %w", err)
	} else if !st.Mode().IsRegular() {
		// A directory, a device, a pipe: nothing a backup is written as,
		// and a pipe or device could feed the copy without end.
		return BackupInfo{}, fmt.Errorf("%w: %s is not a regular file", ErrBackup, from)
	}
	r := bufio.NewReader(f)
	info, raw, err := readBackupHeader(r)
	if err != nil {
		return info, err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return info, fmt.Errorf("store: restore: %w", err)
	}
	h := sha256.New()
	var n int64
	if raw {
		n, err = io.Copy(io.MultiWriter(out, h), r)
	} else {
		// One byte more than announced tells a file with trailing bytes.
		n, err = io.Copy(io.MultiWriter(out, h), io.LimitReader(r, info.Size+1))
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return info, fmt.Errorf("store: restore: %w", err)
	}
	if !raw {
		if n != info.Size {
			return info, fmt.Errorf("%w: %d bytes of database, the header says %d (truncated or extended)", ErrBackup, n, info.Size)
		}
		if sum := hex.EncodeToString(h.Sum(nil)); sum != info.SHA256 {
			return info, fmt.Errorf("%w: SHA-256 %s, the header says %s (corrupt)", ErrBackup, sum, info.SHA256)
		}
	}
	got, err := inspectSnapshot(dst)
	if err != nil {
		return info, err
	}
	if raw {
		info = got
		info.Size, info.SHA256 = n, hex.EncodeToString(h.Sum(nil))
	} else if got.Serial != info.Serial {
		return info, fmt.Errorf("%w: the database holds token %s, the header says %s", ErrBackup, got.Serial, info.Serial)
	}
	return info, nil
}

// prepareRestored opens the staged token as Open does (migrating an older
// format), empties its login registry (its entries name processes of the
// token it was taken from), appends opts.Events, and closes it, so that
// the file is complete on its own, synced to disk.
func prepareRestored(stage string, opts RestoreOptions) error {
	st, err := Open(stage, Options{Sync: opts.Sync, Group: opts.Group})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBackup, err)
	}
	s := st.(*sqliteStore)
	if _, err := s.Token(); err != nil {
		s.Close()
		return fmt.Errorf("%w: %v", ErrBackup, err)
	}
	err = s.Audited(opts.Events...).(*sqliteStore).write(func(tx *txn) error {
		_, err := tx.Exec(`DELETE FROM logins`)
		return err
	})
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("store: restore: %w", wrapDB("prepare", err))
	}
	// The last connection's close checkpointed the WAL into the file and
	// removed it; a -wal still there would hold commits the rename leaves
	// behind.
	if _, err := os.Stat(filepath.Join(stage, DBName+"-wal")); err == nil {
		return fmt.Errorf("store: restore: the staged token kept its write-ahead log")
	}
	f, err := os.Open(filepath.Join(stage, DBName))
	if err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	return nil
}

// HeldBy returns the ID of another process holding a lock on the wal-index
// file of the database dbPath (every connection to a WAL database keeps a
// shared lock on it while open), or 0 when none does or the file is
// missing. Locks of the calling process are not seen (F_GETLK ignores
// them).
func HeldBy(dbPath string) (int, error) {
	f, err := os.Open(dbPath + "-shm")
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	lk := syscall.Flock_t{Type: syscall.F_WRLCK}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_GETLK, &lk); err != nil {
		return 0, fmt.Errorf("probe %s-shm: %w", filepath.Base(dbPath), err)
	}
	if lk.Type == syscall.F_UNLCK {
		return 0, nil
	}
	return int(lk.Pid), nil
}
