// Package store keeps a token on disk: its users, its token objects and the
// key that protects secret material at rest. It is shared by many processes
// at once (the CLI, nginx workers, a JVM): a change committed by one is seen
// by the others' next call, and a process killed at any instant never leaves
// a token that fails to open nor loses a committed object.
//
// Store is the narrow interface the token layer uses; Open returns the
// SQLite implementation. Secret attribute values reach the store already
// sealed (see Seal/Open helpers); the store itself never sees plaintext
// secrets.
package store

import (
	"errors"

	"gohsm/internal/ck"
)

var (
	ErrNotFound       = errors.New("store: not found")
	ErrExists         = errors.New("store: already exists")
	ErrNotInitialized = errors.New("store: token not initialized")
	// ErrConflict: UpdateObject was given a Version that is no longer the
	// stored one (another session or process changed the object meanwhile).
	ErrConflict = errors.New("store: object changed since it was read")
	// ErrInUse: DeleteUser of a user who still owns objects.
	ErrInUse = errors.New("store: user owns objects")
	// ErrWrongPassword: the key derived from a password does not unwrap the
	// token key.
	ErrWrongPassword = errors.New("store: wrong password")
	// ErrSealed: a sealed attribute fails authentication (wrong token key,
	// tampered, or moved to another object or attribute).
	ErrSealed = errors.New("store: sealed value fails authentication")
	// ErrDamaged: the token's records are inconsistent or unreadable (the
	// token record lost while users or objects remain, say). It is never
	// taken for an uninitialised token.
	ErrDamaged = errors.New("store: token damaged")
	// ErrLocked: the user is locked after too many failed logins.
	ErrLocked = errors.New("store: user locked")
	// ErrFormat: the token's on-disk format is not one this build reads.
	ErrFormat = errors.New("store: unsupported token format")
	// ErrUnavailable: the store's database cannot be reached or used now
	// (PostgreSQL down, a lost connection, a call past its timeout); the
	// same call may succeed later. The token answers CKR_DEVICE_ERROR.
	ErrUnavailable = errors.New("store: database unreachable")
)

// TokenRecord is the token-wide state.
type TokenRecord struct {
	Label        string // CK_TOKEN_INFO.label, up to 32 bytes
	SerialNumber string // 16 characters, fixed at init
	// Created is set at initialisation (Unix seconds).
	Created int64
	// EscrowPublic is the escrow's public key (format 2): every crypto
	// user's secret is also sealed to it, for officers' password resets.
	// Empty on a token upgraded from format 1 until the first login.
	EscrowPublic []byte
}

// Role of a user: crypto officer (logs in as CKU_SO) or crypto user (CKU_USER).
type Role int

const (
	RoleCO Role = 1
	RoleCU Role = 2
)

// UserRecord is one named user. Names are stored lowercase.
type UserRecord struct {
	Name string
	Role Role
	// KDF names and parameterises the password KDF (argon2id), so the cost
	// can change without breaking existing users.
	KDF KDFParams
	// Salt for the KDF.
	Salt []byte
	// WrappedKey is sealed under the key derived from the user's password
	// (AES-256-GCM, AAD = user name): with KeyVersion KeyV2 the user's
	// secret, with KeyV1 the format-1 token key. It is empty when the user
	// has no password yet.
	WrappedKey []byte
	KeyVersion int
	// PublicKey is a crypto user's public key (empty for officers and for
	// users of a format-1 token not yet upgraded).
	PublicKey []byte
	// Escrow is a crypto user's secret sealed to the token's escrow public
	// key (empty for officers).
	Escrow []byte
	// Legacy is, between the upgrade from format 1 and the user's next
	// login, the user's new secret sealed under the format-1 token key.
	Legacy []byte
	// FailedLogins counts consecutive wrong passwords; Locked is set once the
	// threshold is reached and cleared only by a password reset.
	FailedLogins int
	Locked       bool
}

// KDFParams are argon2id parameters.
type KDFParams struct {
	Time    uint32
	Memory  uint32 // KiB
	Threads uint8
}

// ObjectRecord is one token object. Attrs holds every attribute in its
// Cryptoki encoding (CK_BBOOL 1 byte, CK_ULONG 8 bytes little-endian, byte
// strings as is); attributes that are secret (secret-key values, private-key
// components) are not in Attrs but in Sealed, each sealed with AAD binding it
// to the object's UniqueID and attribute type.
type ObjectRecord struct {
	ID       int64  // row id; the object's handle in every process
	UniqueID string // CKA_UNIQUE_ID
	Owner    string // owning crypto user ("" for objects created without login)
	Private  bool   // CKA_PRIVATE
	Attrs    map[ck.AttributeType][]byte
	Sealed   map[ck.AttributeType][]byte
	// Keys holds, per user (the owner and each sharee), the object's data
	// key wrapped for that user; empty for objects with nothing sealed.
	Keys map[string][]byte
	// Version increases on every update of the object.
	Version int64
	// Quorum is the key's key quorum values (use, manage) as Object reads
	// them, with the object's other rows; nil when it has none. Writes
	// of the object ignore it (SetKeyQuorum, CreateReplica set it).
	Quorum *[2]int
}

// Commit describes one successful write, for caches kept above the store.
// Before and After are Generation values just before and just after the
// write's commit. Alone is true when that commit was the only change
// between them (no other connection or process committed in between): a
// cache that reflected the store at Before and applies the write itself
// then reflects it at After. Alone false says only that this could not be
// shown; the cache must then be checked against the store again.
type Commit struct {
	Before, After uint64
	Alone         bool
}

// Query selects objects for C_FindObjects. Attributes in Match are compared
// byte for byte and answered from an index; Viewer filters visibility: an
// object is visible when it is not private, or Viewer owns it, or it is shared
// with Viewer. Viewer "" sees only non-private objects.
type Query struct {
	Match  map[ck.AttributeType][]byte
	Viewer string
	// ViewerClass: objects whose CKA_CLASS has this value (as stored) are
	// visible to the viewer too, private or not (the cloudhsm profile's
	// public keys); with Viewer "" (an officer), they and the non-private
	// objects.
	ViewerClass []byte
}

// Store is the token store.
type Store interface {
	Close() error
	// Backup writes a consistent snapshot of the token to a file, while
	// other processes use it (backup.go; Restore puts one back).
	Backup(path string) (BackupInfo, error)
	// ReplicaOf reads a key with its shares and key quorum values in one
	// snapshot; CreateReplica stores such a key copied from another token,
	// in one transaction (replicate.go).
	ReplicaOf(id int64) (Replica, error)
	CreateReplica(r Replica, quotas ...Quota) (ObjectRecord, Commit, error)

	// Generation changes whenever any process commits a change to the store;
	// it is cheap enough to call on every PKCS#11 call.
	Generation() (uint64, error)

	// Token is ErrNotInitialized before InitToken, and ErrDamaged when the
	// record is missing while users or objects are present, or unreadable.
	Token() (*TokenRecord, error)
	// InitToken (re)initialises the token: every user and object is removed,
	// then the token record and the first crypto officer are written, in one
	// transaction. The caller has authenticated one of the token's officers.
	InitToken(t TokenRecord, co UserRecord) error
	// CreateToken initialises a token that is empty (no record, user or
	// object), checked in the same transaction; ErrExists otherwise.
	CreateToken(t TokenRecord, co UserRecord) error
	SetTokenLabel(label string) error

	User(name string) (*UserRecord, error)
	Users() ([]UserRecord, error)
	CreateUser(u UserRecord) error // ErrExists
	// CreateUserLimit is CreateUser that fails with ErrQuota when the token
	// already holds max users (max 0: no limit), checked in the same
	// transaction.
	CreateUserLimit(u UserRecord, max int) error
	// UpdateUser replaces the password material and lockout state.
	UpdateUser(u UserRecord) error
	// DeleteUser removes a user: ErrInUse while it owns objects,
	// ErrLoggedIn while a live process has it logged in (the registry).
	DeleteUser(name string) error

	// The login registry (logins.go): AddLogin records a process's login
	// (ErrNotFound: the user is gone), RemoveLogin forgets it, Logins
	// lists the live logins of a user ("" : of everyone).
	AddLogin(l Login) error
	RemoveLogin(instance int64) error
	Logins(user string) ([]Login, error)
	// BeginLogin reserves a login attempt before the password is checked:
	// it refuses a locked user (ErrLocked) and counts the attempt as a
	// failure up front, in one transaction, so concurrent attempts never
	// exceed threshold. Each reservation ends with LoginFailed or
	// LoginSucceeded.
	BeginLogin(name string, threshold int) error
	// LoginFailed ends a reserved attempt whose password was wrong, locking
	// the user when the count has reached threshold; it returns the state.
	LoginFailed(name string, threshold int) (failures int, locked bool, err error)
	// LoginSucceeded ends a reserved attempt whose password was right: it
	// resets the failure count, or answers ErrLocked when the user was
	// locked meanwhile.
	LoginSucceeded(name string) error

	// CreateObject stores a new object and returns it with ID and Version set.
	CreateObject(o ObjectRecord) (ObjectRecord, error)
	// CreateObjects stores new objects in one transaction (all or none),
	// returning them with ID and Version set, in order. Objects that would
	// pass one of quotas, counted in that transaction, are not stored: the
	// error wraps the quota's Err.
	CreateObjects(objs []ObjectRecord, quotas ...Quota) ([]ObjectRecord, Commit, error)
	Object(id int64) (*ObjectRecord, error)
	// ObjectVersion returns the object's Version without loading it.
	ObjectVersion(id int64) (int64, error)
	// UpdateObject replaces Attrs/Sealed/Private, and Keys when o.Keys is
	// not nil, if the stored Version still equals o.Version, and returns the
	// new Version.
	UpdateObject(o ObjectRecord) (int64, Commit, error)
	DeleteObject(id int64) (Commit, error)
	Find(q Query) ([]int64, error)
	// CountOwned is the number of objects a user owns.
	CountOwned(owner string) (int, error)

	// Share shares an object with a user, storing the object's data key
	// wrapped for that user (nil: the object has nothing sealed).
	Share(id int64, user string, wrappedKey []byte) error
	// Unshare removes the share and the user's copy of the data key.
	Unshare(id int64, user string) error
	SharedWith(id int64) ([]string, error)

	// UpgradeKeys moves a format-1 token to per-user keys in one
	// transaction: it sets the escrow public key (ErrConflict when one is
	// set already), the key material of the given users (PublicKey,
	// Escrow, Legacy; not their passwords) and the Sealed values and Keys of
	// the given objects (ErrConflict when one's Version changed).
	UpgradeKeys(escrowPublic []byte, users []UserRecord, objs []ObjectRecord) error

	// Audited returns a view whose writes also append events in the same
	// transaction; Audit appends events alone (audit.go).
	Audited(events ...AuditEvent) Store
	Audit(events ...AuditEvent) error
	// AuditLater queues an event for this opening's next write, which
	// appends it before its own, and FlushAudit writes the queue alone,
	// in one transaction (AuditQueue). One event a call: a variadic
	// argument through this interface would be a heap allocation per
	// session key on the caller's path.
	AuditLater(ev AuditEvent)
	FlushAudit() error
	// Readers of the audit log and its rotation (audit.go).
	AuditKey() ([]byte, error)
	AuditStreams() ([]string, error)
	AuditRecords(stream string, from uint64, limit int) ([]AuditRecord, error)
	AuditState(stream string) (AuditState, error)
	AuditChain(stream string) (AuditChain, error)
	RotateAudit(stream string, through uint64, mac []byte) (int, error)
	AuditBoot() (uint32, error)

	// Quorum authentication's records (quorum.go).
	Quorum
}
