package store

import (
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"gohsm/internal/ck"
)

// Moving a token between backends (issue 17, decision D6): a Snapshot is
// every record of a token in a form neither backend owns, Export reads one
// in one read transaction and Import writes one in one write transaction.
// The file a token is moved in is the backup file format (backup.go): a
// SQLite token with its header, made from a Snapshot through a temporary
// SQLite token (ExportFile), and read back the same way (ImportFile).

// Snapshot is every record of a token except the login registry (its
// entries name processes, or on PostgreSQL connections, of the token it
// was read from). Slices are in key order (users by name, objects by ID,
// shares by object then user, audit records by stream then sequence,
// quorum tokens by ID), so two snapshots of the same records are equal
// with reflect.DeepEqual once canonical (Export returns them so).
type Snapshot struct {
	// Token is nil for a token not initialised.
	Token *TokenRecord
	Users []UserRecord
	// Objects keep their IDs (the handles every process knows them by),
	// Versions, Attrs, Sealed values (still sealed), Keys and Quorum.
	Objects []ObjectRecord
	Shares  []Share
	// ObjectSeq is the highest object ID the token ever handed out (a
	// deleted object's ID is never handed out again); QuorumTokenSeq the
	// same for quorum tokens. Import makes the target hand out IDs above
	// both these and the IDs it imports.
	ObjectSeq      int64
	QuorumTokenSeq int64

	// Audit: the chain's key, every stream's records, and the marks of
	// each stream (meta 'audit_head/<stream>', 'audit_base/<stream>'),
	// and the boot counter (meta 'audit_boot', 'audit_boot_id').
	AuditKey    []byte
	Audit       []AuditRecord
	AuditHeads  map[string]AuditMark
	AuditBases  map[string]AuditMark
	AuditBoot   int64
	AuditBootID string

	QuorumKeys   map[string][]byte
	QuorumValues map[string]int
	QuorumTokens []QuorumToken
}

// Share is one share of an object with a user.
type Share struct {
	ObjectID int64
	User     string
}

// Mover is implemented by the backends whose tokens can be moved: both
// SQLite's and PostgreSQL's.
type Mover interface {
	// Export reads every record of the token in one snapshot.
	Export() (*Snapshot, error)
	// Import writes s into the token in one transaction: into a token
	// that holds nothing (no token record, user, object, audit record or
	// quorum record; ErrExists otherwise, and nothing changes), or, with
	// replace, in place of everything it holds (its login registry
	// included). Objects and quorum tokens keep their IDs. The events of
	// an Audited view are appended after the imported records, in the
	// same transaction.
	Import(s *Snapshot, replace bool) error
}

// ErrNotMover: the store cannot export or import its token.
var ErrNotMover = errors.New("store: this store cannot move its token")

// Normalize puts s in the canonical form Export returns: slices in key
// order, empty byte strings, slices and maps nil, except attribute values
// (never nil) and Attrs and Sealed (never nil). Two snapshots of the same
// records are then reflect.DeepEqual.
func (s *Snapshot) Normalize() {
	if s.Token != nil {
		s.Token.EscrowPublic = nilIfEmpty(s.Token.EscrowPublic)
	}
	for i := range s.Users {
		u := &s.Users[i]
		u.Salt, u.WrappedKey = nilIfEmpty(u.Salt), nilIfEmpty(u.WrappedKey)
		u.PublicKey, u.Escrow, u.Legacy = nilIfEmpty(u.PublicKey), nilIfEmpty(u.Escrow), nilIfEmpty(u.Legacy)
	}
	sort.Slice(s.Users, func(i, j int) bool { return s.Users[i].Name < s.Users[j].Name })
	for i := range s.Objects {
		o := &s.Objects[i]
		o.Attrs, o.Sealed = attrMap(o.Attrs), attrMap(o.Sealed)
		if len(o.Keys) == 0 {
			o.Keys = nil
		}
		for u, k := range o.Keys {
			if k == nil {
				o.Keys[u] = []byte{}
			}
		}
	}
	sort.Slice(s.Objects, func(i, j int) bool { return s.Objects[i].ID < s.Objects[j].ID })
	sort.Slice(s.Shares, func(i, j int) bool {
		a, b := s.Shares[i], s.Shares[j]
		return a.ObjectID < b.ObjectID || a.ObjectID == b.ObjectID && a.User < b.User
	})
	for i := range s.Audit {
		r := &s.Audit[i]
		r.Record, r.MAC = nilIfEmpty(r.Record), nilIfEmpty(r.MAC)
	}
	sort.Slice(s.Audit, func(i, j int) bool {
		a, b := s.Audit[i], s.Audit[j]
		return a.Stream < b.Stream || a.Stream == b.Stream && a.Seq < b.Seq
	})
	s.AuditKey = nilIfEmpty(s.AuditKey)
	for _, m := range []map[string]AuditMark{s.AuditHeads, s.AuditBases} {
		for k, v := range m {
			v.MAC = nilIfEmpty(v.MAC)
			m[k] = v
		}
	}
	for k, v := range s.QuorumKeys {
		s.QuorumKeys[k] = nilIfEmpty(v)
	}
	for i := range s.QuorumTokens {
		q := &s.QuorumTokens[i]
		q.Approval = nilIfEmpty(q.Approval)
		if len(q.Approvers) == 0 {
			q.Approvers = nil
		}
	}
	sort.Slice(s.QuorumTokens, func(i, j int) bool { return s.QuorumTokens[i].ID < s.QuorumTokens[j].ID })
	if len(s.Users) == 0 {
		s.Users = nil
	}
	if len(s.Objects) == 0 {
		s.Objects = nil
	}
	if len(s.Shares) == 0 {
		s.Shares = nil
	}
	if len(s.Audit) == 0 {
		s.Audit = nil
	}
	if len(s.AuditHeads) == 0 {
		s.AuditHeads = nil
	}
	if len(s.AuditBases) == 0 {
		s.AuditBases = nil
	}
	if len(s.QuorumKeys) == 0 {
		s.QuorumKeys = nil
	}
	if len(s.QuorumValues) == 0 {
		s.QuorumValues = nil
	}
	if len(s.QuorumTokens) == 0 {
		s.QuorumTokens = nil
	}
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

func attrMap(m map[ck.AttributeType][]byte) map[ck.AttributeType][]byte {
	if m == nil {
		return map[ck.AttributeType][]byte{}
	}
	for t, v := range m {
		if v == nil {
			m[t] = []byte{}
		}
	}
	return m
}

// Check refuses a snapshot that no token could hold: users or objects
// without a token record, an object without its unique ID or with an
// attribute both plain and sealed, an ID that is not positive, a mark
// without a MAC.
func (s *Snapshot) Check() error {
	if s.Token == nil && (len(s.Users) > 0 || len(s.Objects) > 0) {
		return fmt.Errorf("store: snapshot: users or objects without a token record: %w", ErrDamaged)
	}
	for _, o := range s.Objects {
		if o.ID <= 0 || o.UniqueID == "" {
			return fmt.Errorf("store: snapshot: object %d %q: no ID or unique ID: %w", o.ID, o.UniqueID, ErrDamaged)
		}
		if err := checkAttrs(o); err != nil {
			return err
		}
	}
	for _, q := range s.QuorumTokens {
		if q.ID <= 0 {
			return fmt.Errorf("store: snapshot: quorum token ID %d: %w", q.ID, ErrDamaged)
		}
	}
	if s.ObjectSeq < 0 || s.QuorumTokenSeq < 0 {
		return fmt.Errorf("store: snapshot: negative sequence: %w", ErrDamaged)
	}
	return nil
}

// WithAuditKey returns s, or when s has no audit key (an empty snapshot,
// which resets a token) a copy of it with a new random one: every token
// has the key its chain needs.
func (s *Snapshot) WithAuditKey() (*Snapshot, error) {
	if len(s.AuditKey) > 0 {
		return s, nil
	}
	c := *s
	c.AuditKey = make([]byte, 32)
	if _, err := rand.Read(c.AuditKey); err != nil {
		return nil, fmt.Errorf("store: import: audit key: %w", err)
	}
	return &c, nil
}

// MarkBytes and ParseMark are the encoding of an AuditMark in meta
// (8-byte big-endian seq || mac), shared by the backends.
func MarkBytes(m AuditMark) []byte { return markBytes(m.Seq, m.MAC) }

func ParseMark(key string, b []byte) (AuditMark, error) {
	if len(b) < 8 {
		return AuditMark{}, fmt.Errorf("store: audit %s: %w", key, ErrDamaged)
	}
	return AuditMark{Seq: binary.BigEndian.Uint64(b[:8]), MAC: append([]byte(nil), b[8:]...)}, nil
}

// ExportFile writes the token of s to path in the backup file format (a
// SQLite token behind its header; backup.go), by way of Export and a
// temporary SQLite token, and returns the header. path is replaced only
// when it is empty or a backup already, as Backup does. A token not
// initialised is refused (ErrNotInitialized).
func ExportFile(s Store, path string) (BackupInfo, error) {
	m, ok := s.(Mover)
	if !ok {
		return BackupInfo{}, fmt.Errorf("store: export: %T: %w", s, ErrNotMover)
	}
	if err := replaceableBackup(path); err != nil {
		return BackupInfo{}, err
	}
	snap, err := m.Export()
	if err != nil {
		return BackupInfo{}, err
	}
	return WriteSnapshot(snap, path)
}

// WriteSnapshot writes snap to path in the backup file format, through a
// temporary SQLite token beside path; a backend's Backup is
// WriteSnapshot of its Export.
func WriteSnapshot(snap *Snapshot, path string) (BackupInfo, error) {
	if snap.Token == nil {
		return BackupInfo{}, fmt.Errorf("store: export: %w", ErrNotInitialized)
	}
	if err := replaceableBackup(path); err != nil {
		return BackupInfo{}, err
	}
	stage, err := os.MkdirTemp(filepath.Dir(path), ".gohsm-export-*")
	if err != nil {
		return BackupInfo{}, fmt.Errorf("store: export: %w", err)
	}
	defer os.RemoveAll(stage)
	t, err := Open(stage, Options{})
	if err != nil {
		return BackupInfo{}, fmt.Errorf("store: export: %w", err)
	}
	err = t.(Mover).Import(snap, false)
	if cerr := t.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return BackupInfo{}, fmt.Errorf("store: export: %w", err)
	}
	db := filepath.Join(stage, DBName)
	info, err := inspectSnapshot(db)
	if err != nil {
		return BackupInfo{}, err
	}
	info.Created = time.Now().UTC().Format(time.RFC3339)
	if err := writeBackupFile(path, db, &info); err != nil {
		return BackupInfo{}, err
	}
	return info, nil
}

// ReadSnapshot reads a backup file (or a bare token.db) at path, checked
// as Restore checks it (header, size, SHA-256, integrity, a format this
// build reads) and migrated as Open would, into a Snapshot. The file is
// staged in a private temporary directory, removed before it returns.
func ReadSnapshot(path string) (*Snapshot, BackupInfo, error) {
	stage, err := os.MkdirTemp("", ".gohsm-import-*")
	if err != nil {
		return nil, BackupInfo{}, fmt.Errorf("store: import: %w", err)
	}
	defer os.RemoveAll(stage)
	info, err := stageBackup(path, filepath.Join(stage, DBName))
	if err != nil {
		return nil, info, err
	}
	t, err := Open(stage, Options{})
	if err != nil {
		return nil, info, fmt.Errorf("%w: %v", ErrBackup, err)
	}
	snap, err := t.(Mover).Export()
	if cerr := t.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, info, fmt.Errorf("%w: %v", ErrBackup, err)
	}
	return snap, info, nil
}

// ImportFile reads a backup file (or a bare token.db) at path, checks it
// as Restore does (ReadSnapshot), and imports its records into s with
// Mover.Import. s may be an Audited view: its events are appended in the
// import's transaction.
func ImportFile(s Store, path string, replace bool) (BackupInfo, error) {
	m, ok := s.(Mover)
	if !ok {
		return BackupInfo{}, fmt.Errorf("store: import: %T: %w", s, ErrNotMover)
	}
	snap, info, err := ReadSnapshot(path)
	if err != nil {
		return info, err
	}
	return info, m.Import(snap, replace)
}

// --- SQLite ---

// Export reads every record of the token in one read transaction, table
// by table (a query per table, not per object).
func (s *sqliteStore) Export() (*Snapshot, error) {
	var snap *Snapshot
	err := s.read(func(tx *txn) error {
		snap = &Snapshot{}
		return exportTx(tx, snap)
	})
	if err != nil {
		return nil, wrapDB("export", err)
	}
	snap.Normalize()
	if err := snap.Check(); err != nil {
		return nil, err
	}
	return snap, nil
}

func exportTx(tx *txn, snap *Snapshot) error {
	var t TokenRecord
	var escrow []byte
	err := tx.QueryRow(`SELECT label, serial, created, escrow_key FROM token WHERE id = 1`).
		Scan(&t.Label, &t.SerialNumber, &t.Created, &escrow)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return fmt.Errorf("store: export: token record: %v: %w", err, ErrDamaged)
	default:
		t.EscrowPublic = escrow
		snap.Token = &t
	}
	err = each(tx, `SELECT `+userCols+` FROM users ORDER BY name`, func(r *sql.Rows) error {
		u, err := scanUser(r)
		snap.Users = append(snap.Users, u)
		return err
	})
	if err != nil {
		return err
	}
	byID := map[int64]*ObjectRecord{}
	err = each(tx, `SELECT o.id, o.unique_id, o.owner, o.private, o.version, q.use_value, q.manage_value
		FROM objects o LEFT JOIN key_quorum q ON q.object_id = o.id ORDER BY o.id`, func(r *sql.Rows) error {
		var o ObjectRecord
		var owner sql.NullString
		var use, manage sql.NullInt64
		if err := r.Scan(&o.ID, &o.UniqueID, &owner, &o.Private, &o.Version, &use, &manage); err != nil {
			return err
		}
		o.Owner = owner.String
		if use.Valid {
			o.Quorum = &[2]int{int(use.Int64), int(manage.Int64)}
		}
		o.Attrs, o.Sealed = map[ck.AttributeType][]byte{}, map[ck.AttributeType][]byte{}
		snap.Objects = append(snap.Objects, o)
		return nil
	})
	if err != nil {
		return err
	}
	for i := range snap.Objects {
		byID[snap.Objects[i].ID] = &snap.Objects[i]
	}
	for _, tbl := range []string{"attrs", "sealed"} {
		err = each(tx, `SELECT object_id, type, value FROM `+tbl, func(r *sql.Rows) error {
			var id, typ int64
			var v []byte
			if err := r.Scan(&id, &typ, &v); err != nil {
				return err
			}
			o := byID[id]
			if o == nil {
				return fmt.Errorf("store: export: %s of a missing object %d: %w", tbl, id, ErrDamaged)
			}
			if tbl == "attrs" {
				o.Attrs[ck.AttributeType(typ)] = v
			} else {
				o.Sealed[ck.AttributeType(typ)] = v
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	err = each(tx, `SELECT object_id, user, value FROM object_keys`, func(r *sql.Rows) error {
		var id int64
		var u string
		var v []byte
		if err := r.Scan(&id, &u, &v); err != nil {
			return err
		}
		o := byID[id]
		if o == nil {
			return fmt.Errorf("store: export: key of a missing object %d: %w", id, ErrDamaged)
		}
		if o.Keys == nil {
			o.Keys = map[string][]byte{}
		}
		o.Keys[u] = v
		return nil
	})
	if err != nil {
		return err
	}
	err = each(tx, `SELECT object_id, user FROM shares ORDER BY object_id, user`, func(r *sql.Rows) error {
		var sh Share
		err := r.Scan(&sh.ObjectID, &sh.User)
		snap.Shares = append(snap.Shares, sh)
		return err
	})
	if err != nil {
		return err
	}
	var seq sql.NullInt64
	if err := tx.QueryRow(`SELECT max(seq) FROM sqlite_sequence WHERE name = 'objects'`).Scan(&seq); err != nil {
		return err
	}
	snap.ObjectSeq = seq.Int64
	if err := tx.QueryRow(`SELECT max(seq) FROM sqlite_sequence WHERE name = 'quorum_tokens'`).Scan(&seq); err != nil {
		return err
	}
	snap.QuorumTokenSeq = seq.Int64

	err = each(tx, `SELECT stream, seq, record, mac FROM audit ORDER BY stream, seq`, func(r *sql.Rows) error {
		var a AuditRecord
		var n int64
		err := r.Scan(&a.Stream, &n, &a.Record, &a.MAC)
		a.Seq = uint64(n)
		snap.Audit = append(snap.Audit, a)
		return err
	})
	if err != nil {
		return err
	}
	err = each(tx, `SELECT key, value FROM meta WHERE key LIKE 'audit%'`, func(r *sql.Rows) error {
		var k string
		var v any
		if err := r.Scan(&k, &v); err != nil {
			return err
		}
		return snap.setMeta(k, v)
	})
	if err != nil {
		return err
	}
	err = each(tx, `SELECT user, public_key FROM quorum_keys`, func(r *sql.Rows) error {
		var u string
		var k []byte
		if err := r.Scan(&u, &k); err != nil {
			return err
		}
		if snap.QuorumKeys == nil {
			snap.QuorumKeys = map[string][]byte{}
		}
		snap.QuorumKeys[u] = k
		return nil
	})
	if err != nil {
		return err
	}
	err = each(tx, `SELECT service, value FROM quorum_values`, func(r *sql.Rows) error {
		var svc string
		var v int
		if err := r.Scan(&svc, &v); err != nil {
			return err
		}
		if snap.QuorumValues == nil {
			snap.QuorumValues = map[string]int{}
		}
		snap.QuorumValues[svc] = v
		return nil
	})
	if err != nil {
		return err
	}
	return each(tx, `SELECT id, service, user, approval, created, expires, approvals FROM quorum_tokens ORDER BY id`, func(r *sql.Rows) error {
		var q QuorumToken
		var ap []byte
		if err := r.Scan(&q.ID, &q.Service, &q.User, &q.Approval, &q.Created, &q.Expires, &ap); err != nil {
			return err
		}
		var err error
		q.Approvers, err = ParseApprovers(q.ID, ap)
		snap.QuorumTokens = append(snap.QuorumTokens, q)
		return err
	})
}

// ParseApprovers reads a quorum token's approvals column (JSON; empty:
// none).
func ParseApprovers(id int64, b []byte) ([]string, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var out []string
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("store: quorum token %d: approvals: %v: %w", id, err, ErrDamaged)
	}
	return out, nil
}

// ApproversBytes is the approvals column of approvers (empty: none).
func ApproversBytes(approvers []string) ([]byte, error) {
	if len(approvers) == 0 {
		return []byte{}, nil
	}
	return json.Marshal(approvers)
}

// SetMeta reads one audit meta row (key, value as stored: bytes, text or
// an integer) into s; rows of other keys are ignored.
func (s *Snapshot) SetMeta(key string, v any) error { return s.setMeta(key, v) }

func (s *Snapshot) setMeta(key string, v any) error {
	asBytes := func() []byte {
		switch x := v.(type) {
		case []byte:
			return x
		case string:
			return []byte(x)
		}
		return nil
	}
	switch {
	case key == "audit_key":
		s.AuditKey = asBytes()
	case key == "audit_boot":
		switch x := v.(type) {
		case int64:
			s.AuditBoot = x
		case []byte, string:
			var n int64
			if _, err := fmt.Sscan(string(asBytes()), &n); err != nil {
				return fmt.Errorf("store: export: meta audit_boot %q: %w", asBytes(), ErrDamaged)
			}
			s.AuditBoot = n
		default:
			return fmt.Errorf("store: export: meta audit_boot %T: %w", v, ErrDamaged)
		}
	case key == "audit_boot_id":
		s.AuditBootID = string(asBytes())
	case strings.HasPrefix(key, "audit_head/"), strings.HasPrefix(key, "audit_base/"):
		m, err := ParseMark(key, asBytes())
		if err != nil {
			return err
		}
		stream := key[len("audit_head/"):]
		if strings.HasPrefix(key, "audit_head/") {
			if s.AuditHeads == nil {
				s.AuditHeads = map[string]AuditMark{}
			}
			s.AuditHeads[stream] = m
		} else {
			if s.AuditBases == nil {
				s.AuditBases = map[string]AuditMark{}
			}
			s.AuditBases[stream] = m
		}
	}
	return nil
}

// each runs fn on every row of query q.
func each(tx *txn, q string, fn func(*sql.Rows) error, args ...any) error {
	rows, err := tx.Query(q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// sqliteTokenTables are the tables Import empties with replace, children
// first (the foreign keys refuse the reverse order).
var sqliteTokenTables = []string{
	"logins", "key_quorum", "quorum_tokens", "quorum_values", "quorum_keys", "audit",
	"object_keys", "shares", "sealed", "attrs", "objects", "users", "token",
}

// Import writes snap in one write transaction (see Mover). With replace
// the token's records go first; the object and quorum token sequences
// keep the higher of theirs and the snapshot's, so no ID is handed out
// twice in either token's history.
func (s *sqliteStore) Import(snap *Snapshot, replace bool) error {
	if err := snap.Check(); err != nil {
		return err
	}
	snap, err := snap.WithAuditKey()
	if err != nil {
		return err
	}
	err = s.write(func(tx *txn) error {
		if !replace {
			var used bool
			if err := tx.QueryRow(`SELECT EXISTS (SELECT 1 FROM token) OR EXISTS (SELECT 1 FROM users)
				OR EXISTS (SELECT 1 FROM objects) OR EXISTS (SELECT 1 FROM audit)
				OR EXISTS (SELECT 1 FROM quorum_tokens) OR EXISTS (SELECT 1 FROM quorum_values)
				OR EXISTS (SELECT 1 FROM quorum_keys)
				OR EXISTS (SELECT 1 FROM meta WHERE key LIKE 'audit_head/%' OR key LIKE 'audit_base/%')`).Scan(&used); err != nil {
				return err
			}
			if used {
				return fmt.Errorf("store: import: the token is not empty (import with replace to overwrite it): %w", ErrExists)
			}
		}
		for _, tbl := range sqliteTokenTables {
			if _, err := tx.Exec(`DELETE FROM ` + tbl); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(`DELETE FROM meta WHERE key IN ('audit_key', 'audit_boot', 'audit_boot_id')
			OR key LIKE 'audit_head/%' OR key LIKE 'audit_base/%'`); err != nil {
			return err
		}
		return importTx(tx, snap)
	})
	return wrapDB("import", err)
}

func importTx(tx *txn, snap *Snapshot) error {
	if t := snap.Token; t != nil {
		if _, err := tx.Exec(`INSERT INTO token (id, label, serial, created, escrow_key) VALUES (1, ?, ?, ?, ?)`,
			t.Label, t.SerialNumber, t.Created, nullBlob(t.EscrowPublic)); err != nil {
			return err
		}
	}
	for _, u := range snap.Users {
		if _, err := tx.Exec(`INSERT INTO users (`+userCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			FoldName(u.Name), u.Role, u.KDF.Time, u.KDF.Memory, u.KDF.Threads,
			blob(u.Salt), blob(u.WrappedKey), u.FailedLogins, u.Locked,
			keyVersion(u), blob(u.PublicKey), blob(u.Escrow), blob(u.Legacy)); err != nil {
			return fmt.Errorf("store: import: user %q: %w", u.Name, err)
		}
	}
	var maxID int64
	for _, o := range snap.Objects {
		if _, err := tx.Exec(`INSERT INTO objects (id, unique_id, owner, private, version) VALUES (?, ?, ?, ?, ?)`,
			o.ID, o.UniqueID, nullOwner(FoldName(o.Owner)), o.Private, o.Version); err != nil {
			return fmt.Errorf("store: import: object %d: %w", o.ID, err)
		}
		if err := insertAttrs(tx, o.ID, o); err != nil {
			return fmt.Errorf("store: import: object %d: %w", o.ID, err)
		}
		if err := insertKeys(tx, o.ID, o.Keys); err != nil {
			return fmt.Errorf("store: import: object %d: %w", o.ID, err)
		}
		if o.Quorum != nil {
			if _, err := tx.Exec(`INSERT INTO key_quorum (object_id, use_value, manage_value) VALUES (?, ?, ?)`,
				o.ID, o.Quorum[0], o.Quorum[1]); err != nil {
				return fmt.Errorf("store: import: object %d: key quorum: %w", o.ID, err)
			}
		}
		maxID = max(maxID, o.ID)
	}
	for _, sh := range snap.Shares {
		if _, err := tx.Exec(`INSERT INTO shares (object_id, user) VALUES (?, ?)`, sh.ObjectID, FoldName(sh.User)); err != nil {
			return fmt.Errorf("store: import: share of %d with %q: %w", sh.ObjectID, sh.User, err)
		}
	}
	for _, a := range snap.Audit {
		if _, err := tx.Exec(`INSERT INTO audit (stream, seq, record, mac) VALUES (?, ?, ?, ?)`,
			a.Stream, int64(a.Seq), blob(a.Record), blob(a.MAC)); err != nil {
			return fmt.Errorf("store: import: audit %s %d: %w", a.Stream, a.Seq, err)
		}
	}
	for key, v := range snap.metaRows() {
		if _, err := tx.Exec(`INSERT INTO meta (key, value) VALUES (?, ?)`, key, v); err != nil {
			return fmt.Errorf("store: import: meta %s: %w", key, err)
		}
	}
	for u, k := range snap.QuorumKeys {
		if _, err := tx.Exec(`INSERT INTO quorum_keys (user, public_key) VALUES (?, ?)`, FoldName(u), blob(k)); err != nil {
			return fmt.Errorf("store: import: quorum key of %q: %w", u, err)
		}
	}
	for svc, v := range snap.QuorumValues {
		if _, err := tx.Exec(`INSERT INTO quorum_values (service, value) VALUES (?, ?)`, svc, v); err != nil {
			return fmt.Errorf("store: import: quorum value %s: %w", svc, err)
		}
	}
	var maxQ int64
	for _, q := range snap.QuorumTokens {
		ap, err := ApproversBytes(q.Approvers)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(`INSERT INTO quorum_tokens (id, service, user, approval, created, expires, approvals)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, q.ID, q.Service, q.User, blob(q.Approval), q.Created, q.Expires, ap); err != nil {
			return fmt.Errorf("store: import: quorum token %d: %w", q.ID, err)
		}
		maxQ = max(maxQ, q.ID)
	}
	for _, sq := range []struct {
		name string
		n    int64
	}{{"objects", max(maxID, snap.ObjectSeq)}, {"quorum_tokens", max(maxQ, snap.QuorumTokenSeq)}} {
		if sq.n == 0 {
			continue
		}
		// An INSERT with an explicit ID moved the sequence already when
		// the ID was higher; the snapshot's may be higher still.
		if _, err := tx.Exec(`UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?`, sq.n, sq.name); err != nil {
			return err
		}
		if _, err := tx.Exec(`INSERT INTO sqlite_sequence (name, seq) SELECT ?, ?
			WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = ?)`, sq.name, sq.n, sq.name); err != nil {
			return err
		}
	}
	return nil
}

// MetaRows are the audit meta rows of s as bytes (audit_boot as decimal
// text), as PostgreSQL's meta holds them.
func (s *Snapshot) MetaRows() map[string][]byte {
	out := map[string][]byte{}
	if len(s.AuditKey) > 0 {
		out["audit_key"] = s.AuditKey
	}
	for st, m := range s.AuditHeads {
		out["audit_head/"+st] = MarkBytes(m)
	}
	for st, m := range s.AuditBases {
		out["audit_base/"+st] = MarkBytes(m)
	}
	if s.AuditBootID != "" {
		out["audit_boot_id"] = []byte(s.AuditBootID)
	}
	if s.AuditBoot != 0 {
		out["audit_boot"] = []byte(strconv.FormatInt(s.AuditBoot, 10))
	}
	return out
}

// metaRows are the audit meta rows of s as SQLite stores them: bytes,
// but audit_boot an integer and audit_boot_id text (AuditBoot reads them
// so).
func (s *Snapshot) metaRows() map[string]any {
	out := map[string]any{}
	for k, v := range s.MetaRows() {
		out[k] = v
	}
	if s.AuditBootID != "" {
		out["audit_boot_id"] = s.AuditBootID
	}
	if s.AuditBoot != 0 {
		out["audit_boot"] = s.AuditBoot
	}
	return out
}
