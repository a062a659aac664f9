package store

import (
	"database/sql"
	"errors"
	"fmt"
)

// formatVersion is the on-disk format this build writes. Open refuses a
// token with a higher version and upgrades a lower one through migrations.
// It is a variable only so that the migration test can pretend to be a newer
// build.
var formatVersion = 3

// applicationID marks the SQLite file as a gohsm token ("ghs1") in the
// database header, so Open refuses an unrelated SQLite database instead of
// adding tables to it.
const applicationID = 0x67687331

// migrations[n] upgrades a token from format n to n+1 inside the write
// transaction that also records the new version; Open applies them in order.
// A format change adds an entry here, a schemaV<n+1> golden file and a golden
// database under testdata/.
var migrations = map[int]func(tx execer) error{
	1: migrateV1,
	2: migrateV2,
}

// schemaV2 is what format 2 adds to format 1: per-user keys. The key
// material itself can only be made when passwords are presented, so the
// migration adds columns and the token layer fills them at logins
// (UpgradeKeys; docs/store.md).
//
//   - token.escrow_key: the escrow's public key (NULL until the upgrade);
//   - users.key_version: what wrapped_key holds (1: the format-1 token key,
//     2: the user's secret); public_key, escrow (a crypto user's secret
//     sealed to the escrow), legacy (the new secret sealed under the
//     format-1 token key until the user's next login);
//   - object_keys: an object's data key wrapped for its owner and for each
//     sharee.
var schemaV2 = []string{
	`ALTER TABLE token ADD COLUMN escrow_key BLOB`,
	`ALTER TABLE users ADD COLUMN key_version INTEGER NOT NULL DEFAULT 1`,
	`ALTER TABLE users ADD COLUMN public_key BLOB NOT NULL DEFAULT x''`,
	`ALTER TABLE users ADD COLUMN escrow BLOB NOT NULL DEFAULT x''`,
	`ALTER TABLE users ADD COLUMN legacy BLOB NOT NULL DEFAULT x''`,
	`CREATE TABLE object_keys (
	object_id INTEGER NOT NULL REFERENCES objects(id) ON DELETE CASCADE,
	user      TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	value     BLOB NOT NULL,
	PRIMARY KEY (object_id, user)
) WITHOUT ROWID`,
	`CREATE INDEX object_keys_user ON object_keys(user)`,
}

func migrateV1(tx execer) error {
	for _, stmt := range schemaV2 {
		if _, err := tx.Exec(stmt); err != nil {
			return err
		}
	}
	return nil
}

// schemaV3 is what format 3 adds to format 2: the operator's plane of
// issue 15 (docs/audit.md, docs/quorum.md).
//
//   - audit: the audit log, one gap-free sequence per stream (an emulated
//     HSM's ID); record is the event as token/audit encodes it, mac chains
//     it to the record before it (ChainMAC). Rows are appended in the
//     transaction of the change they record (Store.Audited).
//   - meta 'audit_key': the chain's HMAC key, made here with the table.
//   - quorum_keys: a user's registered quorum public key (PKIX DER).
//   - quorum_values: the M of each quorum service ("user", "quorum", ...);
//     a missing row means 1.
//   - quorum_tokens: outstanding quorum tokens: the approval data approvers
//     sign, its service and requester, expiry, and the approvals so far.
//   - key_quorum: a key's use/manage quorum values, 0 (none) to 8
//     (missing row: 0, 0, as CloudHSM CLI's key list shows a key without).
var schemaV3 = []string{
	`CREATE TABLE audit (
	stream TEXT NOT NULL,
	seq    INTEGER NOT NULL CHECK (seq >= 0),
	record BLOB NOT NULL,
	mac    BLOB NOT NULL,
	PRIMARY KEY (stream, seq)
) WITHOUT ROWID`,
	`INSERT INTO meta (key, value) VALUES ('audit_key', randomblob(32))`,
	`CREATE TABLE quorum_keys (
	user       TEXT PRIMARY KEY NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	public_key BLOB NOT NULL
)`,
	`CREATE TABLE quorum_values (
	service TEXT PRIMARY KEY NOT NULL,
	value   INTEGER NOT NULL CHECK (value >= 1)
)`,
	`CREATE TABLE quorum_tokens (
	id        INTEGER PRIMARY KEY AUTOINCREMENT,
	service   TEXT NOT NULL,
	user      TEXT NOT NULL,
	approval  BLOB NOT NULL,
	created   INTEGER NOT NULL,
	expires   INTEGER NOT NULL,
	approvals BLOB NOT NULL DEFAULT x''
)`,
	`CREATE TABLE key_quorum (
	object_id INTEGER PRIMARY KEY NOT NULL REFERENCES objects(id) ON DELETE CASCADE,
	use_value    INTEGER NOT NULL CHECK (use_value >= 0 AND use_value <= 8),
	manage_value INTEGER NOT NULL CHECK (manage_value >= 0 AND manage_value <= 8)
)`,
}

func migrateV2(tx execer) error {
	for _, stmt := range schemaV3 {
		if _, err := tx.Exec(stmt); err != nil {
			return err
		}
	}
	return nil
}

// schemaV1 creates format 1. Its text is what sqlite_master records, so it is
// compared against testdata/schema-v1.sql: edit both on purpose or neither.
//
// Owner NULL means "no owner" (objects created without a login). Attribute
// types are stored as the CK_ULONG value; values are always blobs so that the
// (type, value) index answers byte-for-byte matches.
var schemaV1 = []string{
	`CREATE TABLE meta (
	key   TEXT PRIMARY KEY NOT NULL,
	value NOT NULL
)`,
	`CREATE TABLE token (
	id      INTEGER PRIMARY KEY CHECK (id = 1),
	label   TEXT NOT NULL,
	serial  TEXT NOT NULL,
	created INTEGER NOT NULL
)`,
	`CREATE TABLE users (
	name          TEXT PRIMARY KEY NOT NULL CHECK (name <> '' AND name = lower(name)),
	role          INTEGER NOT NULL CHECK (role IN (1, 2)),
	kdf_time      INTEGER NOT NULL,
	kdf_memory    INTEGER NOT NULL,
	kdf_threads   INTEGER NOT NULL,
	salt          BLOB NOT NULL,
	wrapped_key   BLOB NOT NULL,
	failed_logins INTEGER NOT NULL DEFAULT 0,
	locked        INTEGER NOT NULL DEFAULT 0
)`,
	`CREATE TABLE objects (
	id        INTEGER PRIMARY KEY AUTOINCREMENT,
	unique_id TEXT NOT NULL UNIQUE,
	owner     TEXT REFERENCES users(name),
	private   INTEGER NOT NULL,
	version   INTEGER NOT NULL
)`,
	`CREATE INDEX objects_owner ON objects(owner)`,
	`CREATE TABLE attrs (
	object_id INTEGER NOT NULL REFERENCES objects(id) ON DELETE CASCADE,
	type      INTEGER NOT NULL,
	value     BLOB NOT NULL,
	PRIMARY KEY (object_id, type)
) WITHOUT ROWID`,
	`CREATE INDEX attrs_type_value ON attrs(type, value)`,
	`CREATE TABLE sealed (
	object_id INTEGER NOT NULL REFERENCES objects(id) ON DELETE CASCADE,
	type      INTEGER NOT NULL,
	value     BLOB NOT NULL,
	PRIMARY KEY (object_id, type)
) WITHOUT ROWID`,
	`CREATE TABLE shares (
	object_id INTEGER NOT NULL REFERENCES objects(id) ON DELETE CASCADE,
	user      TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	PRIMARY KEY (object_id, user)
) WITHOUT ROWID`,
	`CREATE INDEX shares_user ON shares(user, object_id)`,
}

// schemaState is what Open finds in the file before deciding what to do.
type schemaState struct {
	appID   int64
	tables  int64
	version int64 // 0 when there is no meta table yet
	logins  bool  // the login registry's table exists (logins.go)
	// classCounts: the class counts table and its triggers exist
	// (classcount.go).
	classCounts bool
}

func readSchemaState(q interface {
	QueryRow(string, ...any) *sql.Row
}) (schemaState, error) {
	// One statement for what sqlite_master and the header say (each
	// statement is parsed and planned on every process's first use: this
	// was five; docs/bench.md, "Start-up, second pass").
	var st schemaState
	var logins, classCounts int
	if err := q.QueryRow(`SELECT (SELECT application_id FROM pragma_application_id), count(*),
		count(*) FILTER (WHERE type = 'table' AND name = 'logins'),
		count(*) FILTER (WHERE name IN (?, ?, ?, ?))
		FROM sqlite_master`,
		classCountsNames[0], classCountsNames[1], classCountsNames[2], classCountsNames[3]).
		Scan(&st.appID, &st.tables, &logins, &classCounts); err != nil {
		return st, fmt.Errorf("store: read schema: %w", err)
	}
	if st.tables == 0 {
		return st, nil
	}
	if st.appID != applicationID {
		return st, fmt.Errorf("store: not a gohsm token (application id %#x): %w", st.appID, ErrFormat)
	}
	err := q.QueryRow(`SELECT value FROM meta WHERE key = 'format_version'`).Scan(&st.version)
	if errors.Is(err, sql.ErrNoRows) {
		return st, fmt.Errorf("store: token has no format version: %w", ErrFormat)
	}
	if err != nil {
		return st, fmt.Errorf("store: read format version: %w", err)
	}
	st.logins = logins > 0
	st.classCounts = classCounts == len(classCountsNames)
	return st, nil
}

// needsWrite tells whether the file must be created or migrated.
func (st schemaState) needsWrite() (bool, error) {
	switch {
	case st.tables == 0:
		return true, nil
	case st.version > int64(formatVersion):
		return false, fmt.Errorf("store: token format version %d is newer than this build supports (%d): %w",
			st.version, formatVersion, ErrFormat)
	case st.version < 1:
		return false, fmt.Errorf("store: token format version %d: %w", st.version, ErrFormat)
	}
	return st.version < int64(formatVersion) || !st.logins || !st.classCounts, nil
}

// createOrMigrate runs inside a BEGIN IMMEDIATE transaction, so of several
// processes opening a fresh token at once exactly one creates the schema and
// the others find it done when they re-read the state here.
func createOrMigrate(tx execer) error {
	st, err := readSchemaState(tx)
	if err != nil {
		return err
	}
	if _, err := st.needsWrite(); err != nil {
		return err
	}
	if st.tables == 0 {
		for _, stmt := range schemaV1 {
			if _, err := tx.Exec(stmt); err != nil {
				return fmt.Errorf("store: create schema: %w", err)
			}
		}
		if _, err := tx.Exec(fmt.Sprintf(`PRAGMA application_id = %d`, applicationID)); err != nil {
			return fmt.Errorf("store: set application id: %w", err)
		}
		if _, err := tx.Exec(`INSERT INTO meta (key, value) VALUES ('format_version', 1)`); err != nil {
			return fmt.Errorf("store: set format version: %w", err)
		}
		st.version = 1
	}
	for v := int(st.version); v < formatVersion; v++ {
		m, ok := migrations[v]
		if !ok {
			return fmt.Errorf("store: no migration from format version %d: %w", v, ErrFormat)
		}
		if err := m(tx); err != nil {
			return fmt.Errorf("store: migrate format %d to %d: %w", v, v+1, err)
		}
		if _, err := tx.Exec(`UPDATE meta SET value = ? WHERE key = 'format_version'`, v+1); err != nil {
			return fmt.Errorf("store: set format version: %w", err)
		}
	}
	if _, err := tx.Exec(schemaLogins); err != nil {
		return fmt.Errorf("store: create the login registry: %w", err)
	}
	if !st.classCounts {
		if err := createClassCounts(tx); err != nil {
			return fmt.Errorf("store: create the class counts: %w", err)
		}
	}
	return nil
}
