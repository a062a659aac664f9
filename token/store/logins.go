package store

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The login registry: which processes have which user logged in, so that
// no process deletes (nor, in the cloudhsm profile, changes the password
// of) a user logged in in another one (CloudHSM refuses both;
// cloudhsm-facts §1.2, §1.5). It is maintained at login and logout only,
// never on the path of a cryptographic call.
//
// A process is named by its pid and its start time (field 22 of
// /proc/<pid>/stat, clock ticks after boot), so a pid the kernel hands out
// again is another process; and by the kernel's boot ID, so that entries
// left from before a reboot are dead. A process that ends without logging
// out (killed with SIGKILL, say) leaves its entries behind; they are dead as
// soon as its pid no longer names it (a zombie counts as dead), and every
// write of the registry drops them. SQLite's WAL mode works only between
// processes of one host, so every entry of a token is from this host; a
// process in another pid namespace (a container sharing the token) cannot
// be checked and counts as alive.

var (
	// ErrLoggedIn: the user is logged in in a live process.
	ErrLoggedIn = errors.New("store: user is logged in")
	// ErrQuota: the token holds as many users as allowed.
	ErrQuota = errors.New("store: quota reached")
)

// Login is one entry of the registry: a slot of a process with a user
// logged in. Instance tells apart two openings of the token in one
// process (each Slot has its own, random).
type Login struct {
	User     string
	Instance int64
	PID      int
	Started  uint64 // process start, clock ticks after boot
	Boot     string // /proc/sys/kernel/random/boot_id
	PIDNS    string // the pid namespace (/proc/self/ns/pid link)
	Since    int64  // Unix seconds
}

func (l Login) String() string {
	return fmt.Sprintf("%q in process %d", l.User, l.PID)
}

// schemaLogins is the registry's table, added to format 2 without a new
// format version: a token without it gets it at its next Open, and builds
// that know nothing of it ignore it.
const schemaLogins = `CREATE TABLE IF NOT EXISTS logins (
	instance INTEGER PRIMARY KEY NOT NULL,
	user     TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	pid      INTEGER NOT NULL,
	started  INTEGER NOT NULL,
	boot     TEXT NOT NULL,
	pidns    TEXT NOT NULL,
	since    INTEGER NOT NULL
)`

var self struct {
	once sync.Once
	l    Login
}

// ThisProcess is this process's identity for the registry (User and
// Instance empty).
func ThisProcess() Login {
	self.once.Do(func() {
		pid := os.Getpid()
		st, _, _ := procStat(pid)
		self.l = Login{PID: pid, Started: st, Boot: bootID(), PIDNS: pidNS("self")}
	})
	return self.l
}

// NewInstance is a random instance ID for a Slot's registry entries.
func NewInstance() int64 {
	var b [8]byte
	rand.Read(b[:])
	return int64(binary.LittleEndian.Uint64(b[:]) >> 1)
}

func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return string(bytes.TrimSpace(b))
}

func pidNS(pid string) string {
	ns, err := os.Readlink("/proc/" + pid + "/ns/pid")
	if err != nil {
		return ""
	}
	return ns
}

// procStat reads a process's start time and state from /proc/<pid>/stat;
// ok is false when there is no such process.
func procStat(pid int) (started uint64, state byte, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// "pid (comm) state ppid ...": comm may hold spaces and parentheses,
	// so the fields start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); starttime is field 22.
	if len(f) < 20 || len(f[0]) != 1 {
		return 0, 0, false
	}
	started, err = strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, 0, false
	}
	return started, f[0][0], true
}

// testOnlyAlive, when set, decides liveness instead of /proc.
var testOnlyAlive func(Login) bool

// Alive reports whether the process of an entry still runs.
func Alive(l Login) bool {
	if testOnlyAlive != nil {
		return testOnlyAlive(l)
	}
	me := ThisProcess()
	switch {
	case me.Boot == "" || me.Started == 0:
		return true // no /proc: nothing can be told
	case l.Boot != me.Boot:
		return false // from before a reboot
	case l.PIDNS != me.PIDNS:
		return true // another pid namespace: its pid means nothing here
	case l.PID == me.PID:
		return l.Started == me.Started
	}
	started, state, ok := procStat(l.PID)
	// A zombie (Z) or dead (X) process has exited; only its parent has
	// yet to reap it.
	return ok && started == l.Started && state != 'Z' && state != 'X'
}

func scanLogins(tx *txn, where string, args ...any) ([]Login, error) {
	rows, err := tx.Query(`SELECT instance, user, pid, started, boot, pidns, since FROM logins `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Login
	for rows.Next() {
		var l Login
		if err := rows.Scan(&l.Instance, &l.User, &l.PID, &l.Started, &l.Boot, &l.PIDNS, &l.Since); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// liveLoginsTx returns the live entries of user (every user when ""),
// deleting the dead ones it meets when the transaction writes.
func liveLoginsTx(tx *txn, user string, write bool) ([]Login, error) {
	where, args := "", []any(nil)
	if user != "" {
		where, args = "WHERE user = ?", []any{user}
	}
	all, err := scanLogins(tx, where, args...)
	if err != nil {
		return nil, err
	}
	var live []Login
	for _, l := range all {
		if Alive(l) {
			live = append(live, l)
			continue
		}
		if write {
			if _, err := tx.Exec(`DELETE FROM logins WHERE instance = ?`, l.Instance); err != nil {
				return nil, err
			}
		}
	}
	return live, nil
}

// AddLogin records that l.User is logged in (replacing the instance's
// previous entry), dropping dead entries on the way. ErrNotFound: the user
// no longer exists (deleted since the password was checked).
func (s *sqliteStore) AddLogin(l Login) error {
	l.User = FoldName(l.User)
	if l.Since == 0 {
		l.Since = time.Now().Unix()
	}
	err := s.write(func(tx *txn) error {
		var n int
		if err := tx.QueryRow(`SELECT count(*) FROM users WHERE name = ?`, l.User).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("store: login %q: %w", l.User, ErrNotFound)
		}
		if _, err := liveLoginsTx(tx, "", true); err != nil {
			return err
		}
		_, err := tx.Exec(`INSERT OR REPLACE INTO logins (instance, user, pid, started, boot, pidns, since)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, l.Instance, l.User, l.PID, l.Started, l.Boot, l.PIDNS, l.Since)
		return err
	})
	return wrapDB("add login", err)
}

// RemoveLogin forgets an instance's entry (none is no error).
func (s *sqliteStore) RemoveLogin(instance int64) error {
	err := s.write(func(tx *txn) error {
		_, err := tx.Exec(`DELETE FROM logins WHERE instance = ?`, instance)
		return err
	})
	return wrapDB("remove login", err)
}

// Logins returns the live entries of user (every user when "").
func (s *sqliteStore) Logins(user string) ([]Login, error) {
	var out []Login
	err := s.read(func(tx *txn) error {
		var err error
		out, err = liveLoginsTx(tx, FoldName(user), false)
		return err
	})
	return out, wrapDB("list logins", err)
}
