package store

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"gohsm/internal/ck"
)

// DBName is the token's database file inside its directory. SQLite keeps
// DBName-wal and DBName-shm next to it while the token is open.
const DBName = "token.db"

// Options tune Open. The zero value is the default.
type Options struct {
	// Sync is SQLite's synchronous level: "normal" (default) or "full".
	// With WAL, "normal" survives any process crash (a commit is in the WAL
	// file before CreateObject returns) but a power loss or kernel crash may
	// drop the last commits; "full" fsyncs the WAL on every commit and
	// survives those too, at a cost of an fsync per write.
	Sync string
	// BusyTimeout is how long a call waits for another process's write to
	// finish before failing; 0 means 10 s.
	BusyTimeout time.Duration
	// Group, when not nil, shares the token with a group: the directory
	// becomes 0770 and the files 0660, owned by that group id, so a service
	// whose workers run as another user of the group (nginx's) can use it.
	// Without it a new token is its owner's alone (0700 / 0600).
	Group *int
	// Log is where a store logs what no caller is told (the PostgreSQL
	// store: queued audit events whose commit's outcome it could not
	// learn). nil: slog.Default().
	Log *slog.Logger
}

const defaultBusyTimeout = 10 * time.Second

// maxBusyRetries bounds the retries of a transaction that SQLite answered
// with SQLITE_BUSY without waiting (e.g. while another process recovers the
// WAL); ordinary lock waits happen inside busy_timeout.
const maxBusyRetries = 20

// sqliteStore is a view of one open token: the token's state (sqliteCore)
// and the audit events its writes append (none for the store Open
// returns; Audited makes views with some).
type sqliteStore struct {
	*sqliteCore
	events []AuditEvent
}

type sqliteCore struct {
	db      *sql.DB
	conns   connPool // connections, lent to reads and to writes
	writeMu sync.Mutex

	// Generation: the connection Open read the schema on (conns.gen).
	// PRAGMA data_version on a connection changes for commits by every
	// other connection, so it counts this process's commits too only on
	// one that never writes: when the -shm file's header cannot be read
	// (shmF nil) gen runs data_version and nothing else; otherwise
	// Generation needs no connection and gen is lent like any other.
	genMu   sync.Mutex
	genStmt *sql.Stmt
	lastDV  int64
	shm     *shmRef
	shmF    *os.File // shm's descriptor once open; nil: data_version only
	hdr     [walIndexHeaderSize]byte
	seen    uint64 // changes observed; under genMu
	// fastHdr / fastSeen publish hdr and seen for Generation's lock-free
	// path (sessions of a process call it concurrently on every call).
	fastHdr  atomic.Pointer[[walIndexHeaderSize]byte]
	fastSeen atomic.Uint64
	own      atomic.Uint64 // this store's own commits
	closed   atomic.Bool

	// queue holds the events AuditLater deferred to the next write.
	queue AuditQueue

	// Group commit (CreateObjects, groupCommit): writes waiting for a
	// leader (pending) and whether one leads now; under gmu.
	gmu     sync.Mutex
	pending []*groupReq
	leading bool
	// inBatch is the batch a leader is writing (joined writes included),
	// for leaderPanicked; under writeMu.
	inBatch []*groupReq

	// afterCommit, when set (tests only), runs between a write's COMMIT
	// and the header read that follows it.
	afterCommit func()
}

// Open opens the token in dir, creating dir (0700) and an empty token
// (no token record, no users) if missing.
func Open(dir string, opts Options) (Store, error) {
	dsn, err := buildDSN(dir, opts)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: create token directory: %w", err)
	}
	if opts.Group != nil {
		if err := shareWithGroup(dir, 0o770, *opts.Group); err != nil {
			return nil, err
		}
	}
	// The file is not opened here: closing any descriptor of a file drops
	// every POSIX lock this process holds on it, SQLite's included.
	dbPath := filepath.Join(dir, DBName)
	_, statErr := os.Stat(dbPath)
	created := errors.Is(statErr, os.ErrNotExist)
	shm, err := acquireSHM(dbPath)
	if err != nil {
		return nil, err
	}

	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		shm.release()
		return nil, fmt.Errorf("store: open: %w", err)
	}
	// Connections carry their own page cache; a handful is plenty for one
	// process, and writers serialise on the database lock anyway.
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(4)
	s := &sqliteStore{sqliteCore: &sqliteCore{db: db, shm: shm}}
	s.conns.init(db)
	if err := s.prepareSchema(); err != nil {
		s.Close()
		return nil, err
	}
	switch {
	case opts.Group != nil:
		// SQLite gives -wal and -shm files it creates later the database
		// file's mode (and, as root, its owner).
		for _, p := range []string{dbPath, dbPath + "-wal", dbPath + "-shm"} {
			if err := shareWithGroup(p, 0o660, *opts.Group); err != nil && !errors.Is(err, os.ErrNotExist) {
				s.Close()
				return nil, err
			}
		}
	case created:
		// A new token is readable by its owner only, whatever the umask;
		// SQLite gives -wal and -shm files created later the same mode. An
		// existing token keeps the mode its administrator chose.
		for _, p := range []string{dbPath, dbPath + "-wal", dbPath + "-shm"} {
			if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
				s.Close()
				return nil, fmt.Errorf("store: restrict token file mode: %w", err)
			}
		}
	}
	if err := s.openGeneration(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func buildDSN(dir string, opts Options) (string, error) {
	sync := "NORMAL"
	switch strings.ToLower(opts.Sync) {
	case "", "normal":
	case "full":
		sync = "FULL"
	default:
		return "", fmt.Errorf("store: unknown sync level %q (want normal or full)", opts.Sync)
	}
	busy := opts.BusyTimeout
	if busy <= 0 {
		busy = defaultBusyTimeout
	}
	abs, err := filepath.Abs(filepath.Join(dir, DBName))
	if err != nil {
		return "", fmt.Errorf("store: token path: %w", err)
	}
	// PRAGMAs are per connection, so they go in the DSN that database/sql
	// uses for every connection it opens. busy_timeout comes first so the
	// journal_mode switch of a fresh file already waits for other openers.
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(busy.Milliseconds(), 10)+")")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous("+sync+")")
	q.Add("_pragma", "foreign_keys(1)")
	u := url.URL{Scheme: "file", Path: abs, RawQuery: q.Encode()}
	return u.String(), nil
}

func (s *sqliteStore) prepareSchema() error {
	var st schemaState
	err := s.read(func(tx *txn) error {
		var err error
		st, err = readSchemaState(tx)
		return err
	})
	if err != nil {
		return err
	}
	need, err := st.needsWrite()
	if err != nil {
		return err
	}
	if !need {
		return nil
	}
	return s.write(func(tx *txn) error { return createOrMigrate(tx) })
}

// openGeneration makes the connection Open read the schema on (the only
// one so far, so no second connection is opened) the generation
// connection. That read made SQLite create and map the -shm file, which
// this connection keeps alive until Close. With the shared -shm file's
// header readable, Generation needs no connection and reads and writes
// borrow it; without, Generation works through data_version alone
// (dedicateGen).
func (s *sqliteStore) openGeneration() error {
	h, err := s.conns.get()
	if err != nil {
		return fmt.Errorf("store: generation connection: %w", err)
	}
	if f, err := s.shm.file(); err == nil {
		if n, err := f.ReadAt(s.hdr[:], 0); n == len(s.hdr) && err == nil {
			s.shmF = f
		}
	}
	s.conns.setGen(h, s.shmF != nil)
	if s.shmF == nil {
		return s.dedicateGen()
	}
	return nil
}

// dedicateGen stops lending the generation connection (waiting for a
// transaction that holds it) and prepares PRAGMA data_version on it:
// Generation's way when the -shm header cannot be read. The value only
// means something on a connection that never writes and runs nothing else
// between two reads of it, so the connection is Generation's alone from
// here on.
func (s *sqliteStore) dedicateGen() error {
	s.conns.takeGen()
	g := s.conns.gen
	stmt, err := g.conn.PrepareContext(context.Background(), `PRAGMA data_version`)
	if err != nil {
		return fmt.Errorf("store: generation statement: %w", err)
	}
	s.genStmt = stmt
	if err := stmt.QueryRow().Scan(&s.lastDV); err != nil {
		return fmt.Errorf("store: read data version: %w", err)
	}
	return nil
}

func (s *sqliteStore) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	var errs []error
	// After any write in progress. writeMu before genMu: a write takes
	// genMu inside writeMu.
	s.writeMu.Lock()
	s.writeMu.Unlock() //lint:ignore SA2001 only waits for the write
	// Nothing is lent from here on; the generation connection is closed
	// once a transaction that holds it has given it back (before genMu:
	// a write's mark takes genMu while it holds its connection), as
	// db.Close waits for the others.
	errs = append(errs, s.conns.close())
	s.conns.takeGen()
	s.genMu.Lock()
	defer s.genMu.Unlock()
	if s.genStmt != nil {
		errs = append(errs, s.genStmt.Close())
	}
	if g := s.conns.gen; g != nil {
		errs = append(errs, g.close())
	}
	errs = append(errs, s.db.Close())
	// Only after every connection of this store is gone (see shmRef).
	errs = append(errs, s.shm.release())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// Generation is seen + own: both only grow, so the sum changes whenever
// either does.
//
// The fast path reads the two copies of the WAL-index header at the start of
// the -shm file (https://www.sqlite.org/walformat.html): every commit by any
// process rewrites them (iChange counts transactions; mxFrame and the salts
// move), and SQLite publishes a commit to readers by writing exactly this
// header, so a commit that returned before this call is always seen. The
// bytes are only compared, never interpreted; a torn read or a recovery
// rewriting the header is at worst a spurious change, which callers
// tolerate. One pread costs ~1 us, against ~12 us for PRAGMA data_version,
// whose read transaction takes and drops two shm locks (fcntl) every call.
//
// The fallback, PRAGMA data_version on the dedicated connection, changes for
// commits by every other connection, this process's pool included, because
// that connection never writes.
func (s *sqliteStore) Generation() (uint64, error) {
	// Lock-free when nothing changed: compare the mapped header with the
	// last one published. fastSeen is stored before fastHdr, so a reader
	// that sees the new header sees the new count.
	if p := s.fastHdr.Load(); p != nil && !s.closed.Load() {
		var h [walIndexHeaderSize]byte
		if s.shm.header(&h) && h == *p {
			return s.fastSeen.Load() + s.own.Load(), nil
		}
	}
	s.genMu.Lock()
	defer s.genMu.Unlock()
	if s.closed.Load() {
		return 0, errors.New("store: closed")
	}
	if _, ok := s.observeLocked(); ok {
		return s.seen + s.own.Load(), nil
	}
	if s.genStmt == nil {
		// The header was readable at Open but not now (an I/O error on a
		// file the store holds open), and reads may hold the generation
		// connection: count a change, which callers tolerate.
		s.seen++
		return s.seen + s.own.Load(), nil
	}
	var dv int64
	if err := s.genStmt.QueryRow().Scan(&dv); err != nil {
		return 0, fmt.Errorf("store: read data version: %w", err)
	}
	if dv != s.lastDV {
		s.lastDV = dv
		s.seen++
	}
	return s.seen + s.own.Load(), nil
}

// observeLocked (genMu held) reads the WAL-index header, counts a change
// of it in seen and publishes it for Generation's fast path. ok is false
// when there is no header to read (Generation then uses data_version).
func (s *sqliteStore) observeLocked() (h [walIndexHeaderSize]byte, ok bool) {
	if s.shmF == nil {
		return h, false
	}
	// The mapped header when there is one (then also published for the
	// fast path), else the file's first bytes.
	mapped := s.shm.header(&h)
	if !mapped {
		if n, err := s.shmF.ReadAt(h[:], 0); n != len(h) || err != nil {
			return h, false
		}
	}
	if h != s.hdr {
		s.hdr = h
		s.seen++
	}
	if mapped {
		hc := h
		s.fastSeen.Store(s.seen)
		s.fastHdr.Store(&hc)
	}
	return h, true
}

// mark is Generation for the write path: the generation and the header it
// was read from (ok false: no header, or the store is closed).
func (s *sqliteStore) mark() (gen uint64, h [walIndexHeaderSize]byte, ok bool) {
	s.genMu.Lock()
	defer s.genMu.Unlock()
	if s.closed.Load() {
		return 0, h, false
	}
	h, ok = s.observeLocked()
	return s.seen + s.own.Load(), h, ok
}

// iChange is the WAL-index header's transaction counter
// (https://www.sqlite.org/walformat.html: "incremented with each
// transaction"; SQLite adds one per commit, in native byte order), read
// from a header whose two copies agree.
func iChange(h *[walIndexHeaderSize]byte) (uint32, bool) {
	const half = walIndexHeaderSize / 2
	if [half]byte(h[:half]) != [half]byte(h[half:]) {
		return 0, false
	}
	return binary.NativeEndian.Uint32(h[8:12]), true
}

func isBusy(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		c := se.Code() & 0xff
		return c == sqlite3.SQLITE_BUSY || c == sqlite3.SQLITE_LOCKED
	}
	return false
}

// retry runs one transaction attempt until it is not refused as busy. A
// refused attempt was rolled back entirely, so running fn again is safe.
func retry(attempt func() error) error {
	var err error
	for i := 0; i <= maxBusyRetries; i++ {
		if err = attempt(); err == nil || !isBusy(err) {
			return err
		}
		time.Sleep(time.Duration(i+1) * time.Millisecond)
	}
	return err
}

// write runs fn in a BEGIN IMMEDIATE transaction and counts the commit
// towards Generation. IMMEDIATE takes the write lock at BEGIN, so two
// writers queue on busy_timeout instead of one failing with SQLITE_BUSY
// when it tries to upgrade a read lock.
func (s *sqliteStore) write(fn func(tx *txn) error) error {
	_, err := s.commit(fn)
	return err
}

// commit is write, saying what the commit did to Generation (see Commit).
//
// Alone rests on two facts: between the header read before COMMIT and the
// COMMIT itself this transaction holds SQLite's write lock, so nothing else
// commits; and every commit adds exactly one to the header's iChange, so a
// header read after COMMIT whose iChange is one more was written by this
// commit and nothing after it. A header torn by another process's commit
// racing that read is at worst recorded as this one's; that commit's own
// header differs from it, so the next Generation still changes. Callers
// rely on Alone only for writes that change rows (a commit that changes
// nothing writes no frames and leaves iChange alone).
func (s *sqliteStore) commit(fn func(tx *txn) error) (Commit, error) {
	return s.commitQueued(fn, false)
}

// commitQueued is commit, appending the events AuditLater queued before
// the view's own. flush: the write is FlushAudit's, whose failed batch is
// dropped rather than queued again, and which writes nothing when there
// is nothing queued.
func (s *sqliteStore) commitQueued(fn func(tx *txn) error, flush bool) (_ Commit, err error) {
	// One writer per process at a time: SQLite's busy handler polls with
	// sleeps of up to 100 ms, so goroutines of one process competing for
	// the lock convoy (12 writing goroutines took up to 30 s without this,
	// 0.2 s with it); a Go mutex hands the turn over at once.
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	queued := s.queue.Take(flush)
	if flush && len(queued) == 0 {
		return Commit{}, nil
	}
	committed := false // set on the way out of a commit, not of a panic
	defer func() {
		s.queue.Done(queued, committed, flush)
		if flush && err != nil {
			err = fmt.Errorf("store: audit: %d queued events not recorded: %w", len(queued), wrapDB("audit", err))
		}
	}()
	events := WithQueued(queued, s.events)
	var c Commit
	var pre [walIndexHeaderSize]byte
	var preOK bool
	ctx := context.Background()
	err = retry(func() error {
		h, err := s.begin()
		if err != nil {
			return err
		}
		t := &txn{c: h, s: s}
		committed := false
		defer func() {
			// A failed fn or COMMIT (SQLite keeps a transaction open when
			// COMMIT is busy), or a panic: end the transaction, so the
			// connection is ready for the next one. If even ROLLBACK fails
			// (SQLite may have rolled back already, or the connection is
			// broken), the connection is not used again.
			bad := false
			if !committed {
				if _, err := h.conn.ExecContext(ctx, `ROLLBACK`); err != nil {
					bad = true
				}
			}
			s.conns.put(h, bad)
		}()
		if err := fn(t); err != nil {
			return err
		}
		if err := appendAudit(t, events); err != nil {
			return err
		}
		c.Before, pre, preOK = s.mark()
		if _, err := h.conn.ExecContext(ctx, `COMMIT`); err != nil {
			return err
		}
		committed = true
		return nil
	})
	if err != nil {
		return Commit{}, err
	}
	committed = true
	s.ownCommitted(&c, &pre, preOK)
	return c, nil
}

// ownCommitted follows a COMMIT of this process: it counts it, runs the
// test hook, sets c.After and, when alone may hold (one write, and the
// WAL index header read before the COMMIT, pre, is valid), c.Alone: the
// change counter moved by exactly this commit.
func (s *sqliteStore) ownCommitted(c *Commit, pre *[walIndexHeaderSize]byte, alone bool) {
	s.own.Add(1)
	if s.afterCommit != nil {
		s.afterCommit()
	}
	var post [walIndexHeaderSize]byte
	var postOK bool
	c.After, post, postOK = s.mark()
	if alone && postOK {
		a, okA := iChange(pre)
		b, okB := iChange(&post)
		c.Alone = okA && okB && b == a+1
	}
}

// read runs fn in a deferred (read-only) transaction, so a multi-statement
// read sees one snapshot without taking the write lock.
//
// It runs on a connection of the pool (BEGIN ... ROLLBACK on it, with the
// statements prepared on it). A connection whose BEGIN or ROLLBACK fails may be
// inside a transaction or broken: it is not lent again.
func (s *sqliteStore) read(fn func(tx *txn) error) error {
	ctx := context.Background()
	return retry(func() (err error) {
		h, err := s.conns.get()
		if err != nil {
			return err
		}
		bad := false
		defer func() { s.conns.put(h, bad) }()
		if _, err := h.conn.ExecContext(ctx, `BEGIN`); err != nil {
			bad = true
			return err
		}
		defer func() {
			if _, rerr := h.conn.ExecContext(ctx, `ROLLBACK`); rerr != nil {
				bad = true
			}
		}()
		return fn(&txn{c: h, s: s})
	})
}

// wrapDB adds the operation to an error from the database layer; errors
// this package made already say what failed and are returned as they are.
func wrapDB(op string, err error) error {
	if err == nil || strings.HasPrefix(err.Error(), "store: ") {
		return err
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

// --- token ---

// Token reads the token record. Without one, a store whose users and
// objects tables are empty is not initialised; one that holds users or
// objects has lost its record and is damaged, as is one whose record has
// values of the wrong type or size: such a token must not look fresh,
// because C_InitToken on a fresh token asks for no officer.
func (s *sqliteStore) Token() (*TokenRecord, error) {
	var label, serial, created, escrow any
	err := s.queryRow(`SELECT label, serial, created, escrow_key FROM token WHERE id = 1`).
		Scan(&label, &serial, &created, &escrow)
	if errors.Is(err, sql.ErrNoRows) {
		if testOnlyNoTokenRow != nil {
			testOnlyNoTokenRow()
		}
		// Again in one snapshot, so that a token another process
		// initialises meanwhile is not taken for a damaged one.
		var exists, used bool
		err := s.read(func(tx *txn) error {
			return tx.QueryRow(`SELECT EXISTS (SELECT 1 FROM token), EXISTS (SELECT 1 FROM users)
				OR EXISTS (SELECT 1 FROM objects)`).Scan(&exists, &used)
		})
		switch {
		case err != nil:
			return nil, wrapDB("read token", err)
		case exists:
			return s.Token()
		case used:
			return nil, fmt.Errorf("store: token record missing, users or objects present: %w", ErrDamaged)
		}
		return nil, ErrNotInitialized
	}
	if err != nil {
		return nil, wrapDB("read token", err)
	}
	l, ok1 := label.(string)
	sn, ok2 := serial.(string)
	c, ok3 := created.(int64)
	if !ok1 || !ok2 || !ok3 || len(l) > 32 || len(sn) > 32 {
		return nil, fmt.Errorf("store: token record: label %T (%d bytes), serial %T (%d bytes), created %T, want text of at most 32 bytes and an integer: %w",
			label, len(l), serial, len(sn), created, ErrDamaged)
	}
	e, ok := escrow.([]byte)
	if escrow != nil && (!ok || len(e) > 1024) {
		return nil, fmt.Errorf("store: token record: escrow key %T (%d bytes), want a blob: %w", escrow, len(e), ErrDamaged)
	}
	return &TokenRecord{Label: l, SerialNumber: sn, Created: c, EscrowPublic: e}, nil
}

// testOnlyNoTokenRow, when set, runs when Token found no token record,
// before it looks at the other tables.
var testOnlyNoTokenRow func()

// CreateToken initialises an empty store: in the same transaction it
// checks that no token record, user or object is there (ErrExists
// otherwise), so two processes initialising one fresh token cannot have
// the second wipe what the first made.
func (s *sqliteStore) CreateToken(t TokenRecord, co UserRecord) error {
	if co.Role != RoleCO {
		return fmt.Errorf("store: create token: first user %q must be a crypto officer", co.Name)
	}
	err := s.write(func(tx *txn) error {
		var used bool
		if err := tx.QueryRow(`SELECT EXISTS (SELECT 1 FROM token) OR EXISTS (SELECT 1 FROM users)
			OR EXISTS (SELECT 1 FROM objects)`).Scan(&used); err != nil {
			return err
		}
		if used {
			return fmt.Errorf("store: create token: not empty: %w", ErrExists)
		}
		return insertToken(tx, t, co)
	})
	return wrapDB("create token", err)
}

func (s *sqliteStore) InitToken(t TokenRecord, co UserRecord) error {
	if co.Role != RoleCO {
		return fmt.Errorf("store: init token: first user %q must be a crypto officer", co.Name)
	}
	err := s.write(func(tx *txn) error {
		// Children first; the foreign keys would refuse the reverse order.
		for _, stmt := range []string{
			`DELETE FROM object_keys`, `DELETE FROM shares`, `DELETE FROM sealed`, `DELETE FROM attrs`,
			`DELETE FROM objects`, `DELETE FROM users`, `DELETE FROM token`,
		} {
			if _, err := tx.Exec(stmt); err != nil {
				return err
			}
		}
		return insertToken(tx, t, co)
	})
	return wrapDB("init token", err)
}

// insertToken writes the token record, with its escrow key, and its first
// officer into an empty or emptied token (CreateToken, InitToken). Every way of making a token must write the
// escrow key: the token layer makes crypto users only with one.
func insertToken(tx *txn, t TokenRecord, co UserRecord) error {
	if _, err := tx.Exec(`INSERT INTO token (id, label, serial, created, escrow_key) VALUES (1, ?, ?, ?, ?)`,
		t.Label, t.SerialNumber, t.Created, nullBlob(t.EscrowPublic)); err != nil {
		return err
	}
	return insertUser(tx, co)
}

func (s *sqliteStore) SetTokenLabel(label string) error {
	err := s.write(func(tx *txn) error {
		r, err := tx.Exec(`UPDATE token SET label = ? WHERE id = 1`, label)
		if err != nil {
			return err
		}
		return mustAffect(r, ErrNotInitialized)
	})
	return wrapDB("set token label", err)
}

func mustAffect(r sql.Result, none error) error {
	n, err := r.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return none
	}
	return nil
}

// --- users ---

const userCols = `name, role, kdf_time, kdf_memory, kdf_threads, salt, wrapped_key, failed_logins, locked,
	key_version, public_key, escrow, legacy`

type rowScanner interface{ Scan(...any) error }

func scanUser(r rowScanner) (UserRecord, error) {
	var u UserRecord
	err := r.Scan(&u.Name, &u.Role, &u.KDF.Time, &u.KDF.Memory, &u.KDF.Threads,
		&u.Salt, &u.WrappedKey, &u.FailedLogins, &u.Locked,
		&u.KeyVersion, &u.PublicKey, &u.Escrow, &u.Legacy)
	return u, err
}

// nullBlob binds an empty key as NULL (the token's escrow_key before the
// upgrade).
func nullBlob(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

func keyVersion(u UserRecord) int {
	if u.KeyVersion == 0 {
		return KeyV2
	}
	return u.KeyVersion
}

func blob(b []byte) []byte {
	// A nil []byte binds as NULL; the columns are NOT NULL blobs.
	if b == nil {
		return []byte{}
	}
	return b
}

func insertUser(tx *txn, u UserRecord) error {
	u.Name = FoldName(u.Name)
	if u.Name == "" {
		return errors.New("store: empty user name")
	}
	if u.Role != RoleCO && u.Role != RoleCU {
		return fmt.Errorf("store: user %q: invalid role %d", u.Name, u.Role)
	}
	var n int
	if err := tx.QueryRow(`SELECT count(*) FROM users WHERE name = ?`, u.Name).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("store: user %q: %w", u.Name, ErrExists)
	}
	_, err := tx.Exec(`INSERT INTO users (`+userCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.Name, u.Role, u.KDF.Time, u.KDF.Memory, u.KDF.Threads,
		blob(u.Salt), blob(u.WrappedKey), u.FailedLogins, u.Locked,
		keyVersion(u), blob(u.PublicKey), blob(u.Escrow), blob(u.Legacy))
	return err
}

func (s *sqliteStore) User(name string) (*UserRecord, error) {
	u, err := scanUser(s.queryRow(`SELECT `+userCols+` FROM users WHERE name = ?`, FoldName(name)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: user %q: %w", FoldName(name), ErrNotFound)
	}
	if err != nil {
		return nil, wrapDB("read user", err)
	}
	return &u, nil
}

func (s *sqliteStore) Users() ([]UserRecord, error) {
	var out []UserRecord
	err := s.queryEach(`SELECT `+userCols+` FROM users ORDER BY name`, nil, func(rows *sql.Rows) error {
		u, err := scanUser(rows)
		out = append(out, u)
		return err
	})
	if err != nil {
		return nil, wrapDB("list users", err)
	}
	return out, nil
}

func (s *sqliteStore) CreateUser(u UserRecord) error {
	return wrapDB("create user", s.write(func(tx *txn) error { return insertUser(tx, u) }))
}

func (s *sqliteStore) CreateUserLimit(u UserRecord, max int) error {
	return wrapDB("create user", s.write(func(tx *txn) error {
		if max > 0 {
			var n int
			if err := tx.QueryRow(`SELECT count(*) FROM users`).Scan(&n); err != nil {
				return err
			}
			if n >= max {
				return fmt.Errorf("store: create user %q: %d users, at most %d: %w", u.Name, n, max, ErrQuota)
			}
		}
		return insertUser(tx, u)
	}))
}

func (s *sqliteStore) UpdateUser(u UserRecord) error {
	name := FoldName(u.Name)
	err := s.write(func(tx *txn) error {
		r, err := tx.Exec(`UPDATE users SET kdf_time = ?, kdf_memory = ?, kdf_threads = ?,
			salt = ?, wrapped_key = ?, failed_logins = ?, locked = ?,
			key_version = ?, public_key = ?, escrow = ?, legacy = ? WHERE name = ?`,
			u.KDF.Time, u.KDF.Memory, u.KDF.Threads, blob(u.Salt), blob(u.WrappedKey),
			u.FailedLogins, u.Locked, keyVersion(u), blob(u.PublicKey), blob(u.Escrow), blob(u.Legacy), name)
		if err != nil {
			return err
		}
		return mustAffect(r, fmt.Errorf("store: user %q: %w", name, ErrNotFound))
	})
	return wrapDB("update user", err)
}

func (s *sqliteStore) DeleteUser(name string) error {
	name = FoldName(name)
	err := s.write(func(tx *txn) error {
		var exists, owned int
		if err := tx.QueryRow(`SELECT count(*) FROM users WHERE name = ?`, name).Scan(&exists); err != nil {
			return err
		}
		if exists == 0 {
			return fmt.Errorf("store: user %q: %w", name, ErrNotFound)
		}
		if err := tx.QueryRow(`SELECT count(*) FROM objects WHERE owner = ?`, name).Scan(&owned); err != nil {
			return err
		}
		if owned > 0 {
			return fmt.Errorf("store: delete user %q: owns %d objects: %w", name, owned, ErrInUse)
		}
		// Checked in the deleting transaction: a login that commits
		// after it finds the user gone (AddLogin).
		live, err := liveLoginsTx(tx, name, true)
		if err != nil {
			return err
		}
		if len(live) > 0 {
			return fmt.Errorf("store: delete user %q: logged in in process %d: %w", name, live[0].PID, ErrLoggedIn)
		}
		// Its shares and dead logins go with it (ON DELETE CASCADE).
		_, err = tx.Exec(`DELETE FROM users WHERE name = ?`, name)
		return err
	})
	return wrapDB("delete user", err)
}

// loginWait bounds how long BeginLogin waits for attempts in flight to end
// when they fill the threshold; a variable so tests can shorten it.
var loginWait = 30 * time.Second

// BeginLogin reserves one login attempt: in one write transaction it refuses
// a locked user and counts the attempt as a failure before the caller
// derives anything, so no more than threshold guesses are ever evaluated
// between two successes, however many processes guess at once. Before this,
// the lock was read, argon2id ran, and only then was the failure recorded:
// twelve processes guessing at once all had their guess evaluated against a
// threshold of 5.
//
// When the failures already counted plus the attempts in flight reach
// threshold while the user is not locked, the call waits for one of those
// attempts to end (a correct password resets the count, so many processes
// logging in as one user at once still all get in). An attempt whose
// process died stays counted; once loginWait has passed with the threshold
// still full, the user is locked. threshold <= 0 never locks.
func (s *sqliteStore) BeginLogin(name string, threshold int) error {
	name = FoldName(name)
	deadline := time.Now().Add(loginWait)
	for pause := time.Millisecond; ; pause = min(2*pause, 50*time.Millisecond) {
		var state error
		err := s.write(func(tx *txn) error {
			var n int
			err := tx.QueryRow(`UPDATE users SET failed_logins = failed_logins + 1
				WHERE name = ? AND locked = 0 AND (? <= 0 OR failed_logins < ?)
				RETURNING failed_logins`, name, threshold, threshold).Scan(&n)
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			var locked bool
			err = tx.QueryRow(`SELECT locked, failed_logins FROM users WHERE name = ?`, name).Scan(&locked, &n)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				return fmt.Errorf("store: user %q: %w", name, ErrNotFound)
			case err != nil:
				return err
			case locked:
				state = ErrLocked
			case n > threshold || time.Now().After(deadline):
				// At the threshold past the wait, the attempts that fill it
				// never ended: their processes died, and each counts as the
				// failure it was recorded as. Beyond it nothing is in
				// flight (reservations stop at it): the count was made
				// against a higher threshold, or is damaged.
				if _, err := tx.Exec(`UPDATE users SET locked = 1 WHERE name = ?`, name); err != nil {
					return err
				}
				state = ErrLocked
			default:
				state = errFull
			}
			return nil
		})
		if err != nil {
			return wrapDB("begin login", err)
		}
		switch state {
		case nil:
			return nil
		case ErrLocked:
			return fmt.Errorf("store: user %q: %w", name, ErrLocked)
		}
		time.Sleep(pause)
	}
}

var errFull = errors.New("store: login attempts in flight fill the threshold")

// LoginFailed ends an attempt BeginLogin reserved with a wrong password: the
// failure is already counted, and the user is locked when the count has
// reached threshold. It returns the new state.
func (s *sqliteStore) LoginFailed(name string, threshold int) (int, bool, error) {
	name = FoldName(name)
	var failures int
	var locked bool
	err := s.write(func(tx *txn) error {
		err := tx.QueryRow(`UPDATE users
			SET locked = CASE WHEN ? > 0 AND failed_logins >= ? THEN 1 ELSE locked END
			WHERE name = ? RETURNING failed_logins, locked`, threshold, threshold, name).
			Scan(&failures, &locked)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("store: user %q: %w", name, ErrNotFound)
		}
		return err
	})
	if err != nil {
		return 0, false, wrapDB("record failed login", err)
	}
	return failures, locked, nil
}

// LoginSucceeded ends an attempt BeginLogin reserved with the right
// password: it resets the failure count, unless the user was locked
// meanwhile (by attempts that ran at the same time), in which case the
// login is refused with ErrLocked.
func (s *sqliteStore) LoginSucceeded(name string) error {
	name = FoldName(name)
	err := s.write(func(tx *txn) error {
		r, err := tx.Exec(`UPDATE users SET failed_logins = 0 WHERE name = ? AND locked = 0`, name)
		if err != nil {
			return err
		}
		if n, err := r.RowsAffected(); err != nil || n == 1 {
			return err
		}
		var locked bool
		err = tx.QueryRow(`SELECT locked FROM users WHERE name = ?`, name).Scan(&locked)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("store: user %q: %w", name, ErrNotFound)
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("store: user %q: %w", name, ErrLocked)
	})
	return wrapDB("record login", err)
}

// --- objects ---

func nullOwner(owner string) any {
	if owner == "" {
		return nil
	}
	return owner
}

func checkAttrs(o ObjectRecord) error {
	for t := range o.Sealed {
		if _, ok := o.Attrs[t]; ok {
			return fmt.Errorf("store: object %q: attribute %#x both plain and sealed", o.UniqueID, uint64(t))
		}
	}
	return nil
}

// attrRowsPerInsert bounds the rows of one INSERT. A statement per row
// cost more in database/sql and the VM than the rows themselves, so rows
// go in multi-row INSERTs in key order; but not many to one statement.
// SQLite keeps a statement journal for such an INSERT (it writes two
// trees, fires the class_counts trigger, and may fail half-way on a
// constraint), holding the original of every page the statement changes,
// and past 64 KiB (SQLITE_DEFAULT_STMTJRNL_SPILL: 16 pages) it spills the
// journal to a temporary file: open, write, close. On a token whose
// attrs_type_value index is bigger than a few leaves, each of a key's
// ~32 rows changes its own leaf, so one INSERT of all of them spilled on
// every key made (AES-256 on a 10^6-object token: 160 KiB more written,
// 48 more write calls per key, and the sys time they cost; docs/store.md
// "Big tokens"). Four rows change at most four leaves, the attrs leaf,
// the class_counts page and what a split adds: well under 16 pages.
const attrRowsPerInsert = 4

func insertAttrs(tx *txn, id int64, o ObjectRecord) error {
	for _, tbl := range []struct {
		name string
		m    map[ck.AttributeType][]byte
	}{{"attrs", o.Attrs}, {"sealed", o.Sealed}} {
		// In key order, so each row lands after the last in the B-tree.
		types := make([]ck.AttributeType, 0, len(tbl.m))
		for t := range tbl.m {
			types = append(types, t)
		}
		slices.Sort(types)
		for len(types) > 0 {
			n := min(len(types), attrRowsPerInsert)
			var q strings.Builder
			q.WriteString(`INSERT INTO ` + tbl.name + ` (object_id, type, value) VALUES (?, ?, ?)`)
			args := make([]any, 0, 3*n)
			for i, t := range types[:n] {
				if i > 0 {
					q.WriteString(`, (?, ?, ?)`)
				}
				args = append(args, id, int64(t), blob(tbl.m[t]))
			}
			if _, err := tx.Exec(q.String(), args...); err != nil {
				return err
			}
			types = types[n:]
		}
	}
	return nil
}

// deleteAttrs deletes object id's plain attribute rows attrRowsPerInsert
// at a time, in key order, for insertAttrs's reason: one DELETE of all of
// a key's ~32 rows changes ~32 leaves of attrs_type_value on a big token
// and spilled its statement journal to a temporary file, on every
// C_DestroyObject (through the ON DELETE CASCADE) and C_SetAttributeValue.
func deleteAttrs(tx *txn, id int64) error {
	rows, err := tx.Query(`SELECT type FROM attrs WHERE object_id = ? ORDER BY type`, id)
	if err != nil {
		return err
	}
	var types []int64
	for rows.Next() {
		var t int64
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return err
		}
		types = append(types, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for len(types) > 0 {
		n := min(len(types), attrRowsPerInsert)
		q := `DELETE FROM attrs WHERE object_id = ? AND type IN (?` + strings.Repeat(`, ?`, n-1) + `)`
		args := make([]any, 0, 1+n)
		args = append(args, id)
		for _, t := range types[:n] {
			args = append(args, t)
		}
		if _, err := tx.Exec(q, args...); err != nil {
			return err
		}
		types = types[n:]
	}
	return nil
}

func (s *sqliteStore) CreateObject(o ObjectRecord) (ObjectRecord, error) {
	out, _, err := s.CreateObjects([]ObjectRecord{o})
	if err != nil {
		return ObjectRecord{}, err
	}
	return out[0], nil
}

func (s *sqliteStore) CreateObjects(objs []ObjectRecord, quotas ...Quota) ([]ObjectRecord, Commit, error) {
	out := make([]ObjectRecord, len(objs))
	for i, o := range objs {
		o.Owner = FoldName(o.Owner)
		if o.UniqueID == "" {
			return nil, Commit{}, errors.New("store: create object: empty unique id")
		}
		if err := checkAttrs(o); err != nil {
			return nil, Commit{}, err
		}
		out[i] = o
	}
	c, err := s.groupCommit(func(tx *txn) error {
		if err := checkQuotasTx(tx, out, quotas); err != nil {
			return err
		}
		for i := range out {
			id, err := createObjectTx(tx, out[i])
			if err != nil {
				return err
			}
			out[i].ID = id
		}
		return nil
	})
	if err != nil {
		return nil, Commit{}, wrapDB("create object", err)
	}
	for i := range out {
		out[i].Version = 1
	}
	return out, c, nil
}

// createObjectTx inserts o. The schema checks what Cryptoki callers get
// distinct errors for: a unique ID already stored (UNIQUE) and an owner
// that is not a user (the foreign key).
func createObjectTx(tx *txn, o ObjectRecord) (int64, error) {
	var id int64
	err := tx.QueryRow(`INSERT INTO objects (unique_id, owner, private, version)
		VALUES (?, ?, ?, 1) RETURNING id`, o.UniqueID, nullOwner(o.Owner), o.Private).Scan(&id)
	switch sqliteCode(err) {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return 0, fmt.Errorf("store: object %q: %w", o.UniqueID, ErrExists)
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return 0, fmt.Errorf("store: object owner %q: %w", o.Owner, ErrNotFound)
	}
	if err != nil {
		return 0, err
	}
	if err := insertAttrs(tx, id, o); err != nil {
		return 0, err
	}
	tx.created = append(tx.created, id)
	return id, insertKeys(tx, id, o.Keys)
}

// insertKeys stores an object's wrapped data keys; a user that does not
// exist fails the foreign key (ErrNotFound).
func insertKeys(tx *txn, id int64, keys map[string][]byte) error {
	users := make([]string, 0, len(keys))
	for u := range keys {
		users = append(users, u)
	}
	slices.Sort(users)
	for _, u := range users {
		_, err := tx.Exec(`INSERT INTO object_keys (object_id, user, value) VALUES (?, ?, ?)`,
			id, FoldName(u), blob(keys[u]))
		if sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY {
			return fmt.Errorf("store: object key for %q: %w", u, ErrNotFound)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func readKeys(tx *txn, id int64) (map[string][]byte, error) {
	rows, err := tx.Query(`SELECT user, value FROM object_keys WHERE object_id = ?`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m := map[string][]byte{}
	for rows.Next() {
		var u string
		var v []byte
		if err := rows.Scan(&u, &v); err != nil {
			return nil, err
		}
		m[u] = v
	}
	if len(m) == 0 {
		m = nil
	}
	return m, rows.Err()
}

// sqliteCode is the extended result code of an SQLite error, 0 for others.
func sqliteCode(err error) int {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code()
	}
	return 0
}

func readAttrs(tx *txn, table string, id int64) (map[ck.AttributeType][]byte, error) {
	rows, err := tx.Query(`SELECT type, value FROM `+table+` WHERE object_id = ?`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m := map[ck.AttributeType][]byte{}
	for rows.Next() {
		var t int64
		var v []byte
		if err := rows.Scan(&t, &v); err != nil {
			return nil, err
		}
		if v == nil {
			v = []byte{}
		}
		m[ck.AttributeType(t)] = v
	}
	return m, rows.Err()
}

// readObject reads object o.ID's row, attributes, sealed attributes and
// keys into o; ErrNotFound when there is no such object.
func readObject(tx *txn, o *ObjectRecord) error {
	var owner sql.NullString
	var use, manage sql.NullInt64
	err := tx.QueryRow(`SELECT o.unique_id, o.owner, o.private, o.version, q.use_value, q.manage_value
		FROM objects o LEFT JOIN key_quorum q ON q.object_id = o.id WHERE o.id = ?`, o.ID).
		Scan(&o.UniqueID, &owner, &o.Private, &o.Version, &use, &manage)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("store: object %d: %w", o.ID, ErrNotFound)
	}
	if err != nil {
		return err
	}
	o.Owner = owner.String
	if use.Valid {
		o.Quorum = &[2]int{int(use.Int64), int(manage.Int64)}
	}
	if o.Attrs, err = readAttrs(tx, "attrs", o.ID); err != nil {
		return err
	}
	if o.Sealed, err = readAttrs(tx, "sealed", o.ID); err != nil {
		return err
	}
	o.Keys, err = readKeys(tx, o.ID)
	return err
}

func (s *sqliteStore) Object(id int64) (*ObjectRecord, error) {
	o := ObjectRecord{ID: id}
	err := s.read(func(tx *txn) error { return readObject(tx, &o) })
	if err != nil {
		return nil, wrapDB("read object", err)
	}
	return &o, nil
}

func (s *sqliteStore) ObjectVersion(id int64) (int64, error) {
	var v int64
	err := s.queryRow(`SELECT version FROM objects WHERE id = ?`, id).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("store: object %d: %w", id, ErrNotFound)
	}
	return v, wrapDB("read object version", err)
}

// UpdateObject keeps UniqueID and Owner: sealed values are bound to the
// UniqueID, and ownership never moves in the CloudHSM model.
func (s *sqliteStore) UpdateObject(o ObjectRecord) (int64, Commit, error) {
	if err := checkAttrs(o); err != nil {
		return 0, Commit{}, err
	}
	var next int64
	c, err := s.commit(func(tx *txn) error {
		var cur int64
		err := tx.QueryRow(`SELECT version FROM objects WHERE id = ?`, o.ID).Scan(&cur)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("store: object %d: %w", o.ID, ErrNotFound)
		}
		if err != nil {
			return err
		}
		if cur != o.Version {
			return fmt.Errorf("store: update object %d: version %d, stored %d: %w", o.ID, o.Version, cur, ErrConflict)
		}
		if err := deleteAttrs(tx, o.ID); err != nil {
			return err
		}
		if _, err := tx.Exec(`DELETE FROM sealed WHERE object_id = ?`, o.ID); err != nil {
			return err
		}
		if err := insertAttrs(tx, o.ID, o); err != nil {
			return err
		}
		if o.Keys != nil {
			if _, err := tx.Exec(`DELETE FROM object_keys WHERE object_id = ?`, o.ID); err != nil {
				return err
			}
			if err := insertKeys(tx, o.ID, o.Keys); err != nil {
				return err
			}
		}
		next = cur + 1
		_, err = tx.Exec(`UPDATE objects SET private = ?, version = ? WHERE id = ?`, o.Private, next, o.ID)
		return err
	})
	if err != nil {
		return 0, Commit{}, wrapDB("update object", err)
	}
	return next, c, nil
}

func (s *sqliteStore) DeleteObject(id int64) (Commit, error) {
	c, err := s.groupCommit(func(tx *txn) error {
		// The attribute rows first, a few at a time (deleteAttrs); the
		// cascade then has only the sealed values, keys and shares.
		if err := deleteAttrs(tx, id); err != nil {
			return err
		}
		r, err := tx.Exec(`DELETE FROM objects WHERE id = ?`, id)
		if err != nil {
			return err
		}
		return mustAffect(r, fmt.Errorf("store: object %d: %w", id, ErrNotFound))
	})
	return c, wrapDB("delete object", err)
}

// lowSelectivity are attributes that many objects share (classes, key
// types, flags): a poor place to start a search.
var lowSelectivity = map[ck.AttributeType]bool{
	ck.CKA_CLASS: true, ck.CKA_KEY_TYPE: true, ck.CKA_TOKEN: true, ck.CKA_PRIVATE: true,
	ck.CKA_CERTIFICATE_TYPE: true, ck.CKA_MODIFIABLE: true, ck.CKA_SENSITIVE: true,
	ck.CKA_EXTRACTABLE: true, ck.CKA_SIGN: true, ck.CKA_VERIFY: true, ck.CKA_ENCRYPT: true,
	ck.CKA_DECRYPT: true, ck.CKA_WRAP: true, ck.CKA_UNWRAP: true, ck.CKA_DERIVE: true,
	ck.CKA_LOCAL: true, ck.CKA_VALUE_LEN: true, ck.CKA_MODULUS_BITS: true, ck.CKA_EC_PARAMS: true,
}

// findSQL builds the query for q. One Match attribute drives the search
// through the attrs(type, value) index, chosen to be a selective one (a
// label or an ID rather than a class); each other one is checked per
// candidate through the attrs primary key; then the visibility filter.
// CROSS JOIN keeps SQLite to that order (it has no statistics to know a
// label is rarer than a class). Attribute types are sorted so equal queries
// give equal SQL.
func findSQL(q Query) (string, []any) {
	var b strings.Builder
	var args []any
	types := make([]ck.AttributeType, 0, len(q.Match))
	for t := range q.Match {
		types = append(types, t)
	}
	sort.Slice(types, func(i, j int) bool {
		if lowSelectivity[types[i]] != lowSelectivity[types[j]] {
			return !lowSelectivity[types[i]]
		}
		return types[i] < types[j]
	})
	if len(types) > 0 {
		b.WriteString(`SELECT o.id FROM attrs d CROSS JOIN objects o ON o.id = d.object_id WHERE d.type = ? AND d.value = ?`)
		args = append(args, int64(types[0]), blob(q.Match[types[0]]))
		if len(types) > 1 {
			b.WriteString(` AND `)
			args = existsTree(&b, args, q, types[1:])
		}
		b.WriteString(` AND `)
	} else {
		b.WriteString(`SELECT o.id FROM objects o WHERE `)
	}
	// What the viewer sees: public objects, its own and those shared with
	// it (a user), and objects of ViewerClass.
	b.WriteString(`(o.private = 0`)
	if viewer := FoldName(q.Viewer); viewer != "" {
		b.WriteString(` OR o.owner = ? OR EXISTS (SELECT 1 FROM shares s WHERE s.object_id = o.id AND s.user = ?)`)
		args = append(args, viewer, viewer)
	}
	if q.ViewerClass != nil {
		b.WriteString(` OR EXISTS (SELECT 1 FROM attrs c WHERE c.object_id = o.id AND c.type = ? AND c.value = ?)`)
		args = append(args, int64(ck.CKA_CLASS), blob(q.ViewerClass))
	}
	b.WriteString(`) ORDER BY o.id`)
	return b.String(), args
}

// existsTree writes the EXISTS terms of types ANDed as a balanced tree of
// parentheses, in the same order: SQLite limits an expression's depth to
// 1000, and a flat chain of terms is as deep as it is long (a template of
// 1000 attributes failed with "Expression tree is too large"); balanced,
// C_FindObjectsInit's 4096 attributes are 13 levels deep.
func existsTree(b *strings.Builder, args []any, q Query, types []ck.AttributeType) []any {
	if len(types) == 1 {
		b.WriteString(`EXISTS (SELECT 1 FROM attrs a WHERE a.object_id = o.id AND a.type = ? AND a.value = ?)`)
		return append(args, int64(types[0]), blob(q.Match[types[0]]))
	}
	h := len(types) / 2
	b.WriteString(`(`)
	args = existsTree(b, args, q, types[:h])
	b.WriteString(` AND `)
	args = existsTree(b, args, q, types[h:])
	b.WriteString(`)`)
	return args
}

func (s *sqliteStore) Find(q Query) ([]int64, error) {
	query, args := findSQL(q)
	ids := []int64{}
	err := s.queryEach(query, args, func(rows *sql.Rows) error {
		var id int64
		err := rows.Scan(&id)
		ids = append(ids, id)
		return err
	})
	if err != nil {
		return nil, wrapDB("find", err)
	}
	return ids, nil
}

func (s *sqliteStore) CountOwned(owner string) (int, error) {
	var n int
	err := s.queryRow(`SELECT count(*) FROM objects WHERE owner = ?`, FoldName(owner)).Scan(&n)
	return n, wrapDB("count owned", err)
}

// --- shares ---

func objectAndUserExist(tx *txn, id int64, user string) error {
	var n int
	if err := tx.QueryRow(`SELECT count(*) FROM objects WHERE id = ?`, id).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("store: object %d: %w", id, ErrNotFound)
	}
	if user == "" {
		return nil
	}
	return userExists(tx, user)
}

// userExists returns ErrNotFound when there is no user named user (folded).
func userExists(tx *txn, user string) error {
	var n int
	if err := tx.QueryRow(`SELECT count(*) FROM users WHERE name = ?`, user).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("store: user %q: %w", user, ErrNotFound)
	}
	return nil
}

// Share returns ErrExists when the object is already shared with user.
func (s *sqliteStore) Share(id int64, user string, wrappedKey []byte) error {
	user = FoldName(user)
	err := s.write(func(tx *txn) error {
		if err := objectAndUserExist(tx, id, user); err != nil {
			return err
		}
		r, err := tx.Exec(`INSERT OR IGNORE INTO shares (object_id, user) VALUES (?, ?)`, id, user)
		if err != nil {
			return err
		}
		if err := mustAffect(r, fmt.Errorf("store: object %d already shared with %q: %w", id, user, ErrExists)); err != nil {
			return err
		}
		if len(wrappedKey) == 0 {
			return nil
		}
		_, err = tx.Exec(`INSERT OR REPLACE INTO object_keys (object_id, user, value) VALUES (?, ?, ?)`, id, user, wrappedKey)
		return err
	})
	return wrapDB("share", err)
}

func (s *sqliteStore) Unshare(id int64, user string) error {
	user = FoldName(user)
	err := s.write(func(tx *txn) error {
		r, err := tx.Exec(`DELETE FROM shares WHERE object_id = ? AND user = ?`, id, user)
		if err != nil {
			return err
		}
		if err := mustAffect(r, fmt.Errorf("store: object %d not shared with %q: %w", id, user, ErrNotFound)); err != nil {
			return err
		}
		// The owner's copy stays: an owner is never a sharee.
		_, err = tx.Exec(`DELETE FROM object_keys WHERE object_id = ? AND user = ?
			AND user IS NOT (SELECT owner FROM objects WHERE id = ?)`, id, user, id)
		return err
	})
	return wrapDB("unshare", err)
}

// readSharees lists the users object id is shared with, by name (an empty
// list when none).
func readSharees(tx *txn, id int64) ([]string, error) {
	users := []string{}
	rows, err := tx.Query(`SELECT user FROM shares WHERE object_id = ? ORDER BY user`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return nil, err
		}
		users = append(users, u)
	}
	return users, rows.Err()
}

func (s *sqliteStore) SharedWith(id int64) ([]string, error) {
	users := []string{}
	err := s.read(func(tx *txn) error {
		if err := objectAndUserExist(tx, id, ""); err != nil {
			return err
		}
		var err error
		users, err = readSharees(tx, id)
		return err
	})
	if err != nil {
		return nil, wrapDB("list shares", err)
	}
	return users, nil
}

// shareWithGroup gives path to a group with mode. A process that does not
// own the file (a worker of the service the token is shared with) cannot
// change it and need not: the owner's process set it up.
func shareWithGroup(path string, mode os.FileMode, gid int) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Geteuid() && os.Geteuid() != 0 {
		return nil
	}
	if err := os.Chown(path, -1, gid); err != nil {
		return fmt.Errorf("store: give %s to group %d: %w", path, gid, err)
	}
	if err := os.Chmod(path, mode); err != nil {
		return fmt.Errorf("store: share %s with its group: %w", path, err)
	}
	return nil
}

// --- the upgrade to per-user keys ---

func (s *sqliteStore) UpgradeKeys(escrowPublic []byte, users []UserRecord, objs []ObjectRecord) error {
	if len(escrowPublic) == 0 {
		return errors.New("store: upgrade keys: no escrow key")
	}
	for _, o := range objs {
		if err := checkAttrs(o); err != nil {
			return err
		}
	}
	_, err := s.commit(func(tx *txn) error {
		r, err := tx.Exec(`UPDATE token SET escrow_key = ? WHERE id = 1 AND escrow_key IS NULL`, escrowPublic)
		if err != nil {
			return err
		}
		if err := mustAffect(r, fmt.Errorf("store: keys upgraded already: %w", ErrConflict)); err != nil {
			return err
		}
		for _, u := range users {
			name := FoldName(u.Name)
			r, err := tx.Exec(`UPDATE users SET public_key = ?, escrow = ?, legacy = ? WHERE name = ?`,
				blob(u.PublicKey), blob(u.Escrow), blob(u.Legacy), name)
			if err != nil {
				return err
			}
			if err := mustAffect(r, fmt.Errorf("store: user %q: %w", name, ErrConflict)); err != nil {
				return err
			}
		}
		for _, o := range objs {
			r, err := tx.Exec(`UPDATE objects SET version = version + 1 WHERE id = ? AND version = ?`, o.ID, o.Version)
			if err != nil {
				return err
			}
			if err := mustAffect(r, fmt.Errorf("store: upgrade object %d: %w", o.ID, ErrConflict)); err != nil {
				return err
			}
			if _, err := tx.Exec(`DELETE FROM sealed WHERE object_id = ?`, o.ID); err != nil {
				return err
			}
			if _, err := tx.Exec(`DELETE FROM object_keys WHERE object_id = ?`, o.ID); err != nil {
				return err
			}
			if err := insertAttrs(tx, o.ID, ObjectRecord{Sealed: o.Sealed}); err != nil {
				return err
			}
			if err := insertKeys(tx, o.ID, o.Keys); err != nil {
				return err
			}
		}
		return nil
	})
	return wrapDB("upgrade keys", err)
}
