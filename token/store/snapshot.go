package store

import (
	"errors"
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

// ExportFile writes the token of s to path in the backup file format (a
// SQLite token behind its header; backup.go), by way of Export and a
// temporary SQLite token, and returns the header. path is replaced only
// when it is empty or a backup already, as Backup does.
func ExportFile(s Store, path string) (BackupInfo, error) {
	return BackupInfo{}, errors.New("store: export: not yet")
}

// ImportFile reads a backup file (or a bare token.db) at path, checks it
// as Restore does (header, size, SHA-256, integrity, format), and imports
// its records into s with Mover.Import. s may be an Audited view: its
// events are appended in the import's transaction.
func ImportFile(s Store, path string, replace bool) (BackupInfo, error) {
	return BackupInfo{}, errors.New("store: import: not yet")
}

// WriteSnapshot writes snap to path in the backup file format, through a
// temporary SQLite token beside path; a backend's Backup is
// WriteSnapshot of its Export.
func WriteSnapshot(snap *Snapshot, path string) (BackupInfo, error) {
	return BackupInfo{}, errors.New("store: export: not yet")
}

// ReadSnapshot reads a backup file (or a bare token.db) at path, checked
// as Restore checks it and migrated as Open would, into a Snapshot.
func ReadSnapshot(path string) (*Snapshot, BackupInfo, error) {
	return nil, BackupInfo{}, errors.New("store: import: not yet")
}

func (s *sqliteStore) Export() (*Snapshot, error) {
	return nil, errors.New("store: export: not yet")
}

func (s *sqliteStore) Import(snap *Snapshot, replace bool) error {
	return errors.New("store: import: not yet")
}
