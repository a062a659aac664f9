package token

import (
	"fmt"

	"gohsm/internal/ck"
	"gohsm/token/store"
)

// brokenStore stands in for a slot's store that could not be opened (a
// corrupt token.db, say): every call fails with store.ErrDamaged, which the
// token layer answers with CKR_TOKEN_NOT_RECOGNIZED. So one bad token no
// longer makes C_Initialize fail for every slot: the other slots work, and
// the bad one lists its token as present but not recognised (the slot is
// not removable, so its token is always present, PKCS#11 2.40 section
// 3.2, CKF_REMOVABLE_DEVICE; C_GetTokenInfo, C_OpenSession and C_InitToken
// may all return CKR_TOKEN_NOT_RECOGNIZED, which pkcs11-tool -L shows as
// "(token not recognized)").
//
// The embedded Store is nil: a method added to the interface and not
// answered here panics, which the C boundary turns into CKR_GENERAL_ERROR.
type brokenStore struct {
	store.Store
	err error
}

func newBrokenStore(id ck.ULong, cause error) brokenStore {
	return brokenStore{err: fmt.Errorf("token: slot %d: cannot open the token: %v: %w", id, cause, store.ErrDamaged)}
}

func (b brokenStore) Close() error                                { return nil }
func (b brokenStore) Generation() (uint64, error)                 { return 0, b.err }
func (b brokenStore) Token() (*store.TokenRecord, error)          { return nil, b.err }
func (b brokenStore) SetTokenLabel(string) error                  { return b.err }
func (b brokenStore) User(string) (*store.UserRecord, error)      { return nil, b.err }
func (b brokenStore) Users() ([]store.UserRecord, error)          { return nil, b.err }
func (b brokenStore) CreateUser(store.UserRecord) error           { return b.err }
func (b brokenStore) UpdateUser(store.UserRecord) error           { return b.err }
func (b brokenStore) DeleteUser(string) error                     { return b.err }
func (b brokenStore) CreateUserLimit(store.UserRecord, int) error { return b.err }
func (b brokenStore) AddLogin(store.Login) error                  { return b.err }
func (b brokenStore) RemoveLogin(int64) error                     { return b.err }
func (b brokenStore) Logins(string) ([]store.Login, error)        { return nil, b.err }
func (b brokenStore) BeginLogin(string, int) error                { return b.err }
func (b brokenStore) LoginSucceeded(string) error                 { return b.err }
func (b brokenStore) CountOwned(string) (int, error)              { return 0, b.err }
func (b brokenStore) Find(store.Query) ([]int64, error)           { return nil, b.err }
func (b brokenStore) Object(int64) (*store.ObjectRecord, error)   { return nil, b.err }
func (b brokenStore) ObjectVersion(int64) (int64, error)          { return 0, b.err }
func (b brokenStore) Share(int64, string, []byte) error           { return b.err }
func (b brokenStore) Unshare(int64, string) error                 { return b.err }
func (b brokenStore) SharedWith(int64) ([]string, error)          { return nil, b.err }

func (b brokenStore) InitToken(store.TokenRecord, store.UserRecord) error   { return b.err }
func (b brokenStore) CreateToken(store.TokenRecord, store.UserRecord) error { return b.err }
func (b brokenStore) LoginFailed(string, int) (int, bool, error)            { return 0, false, b.err }
func (b brokenStore) CreateObject(store.ObjectRecord) (store.ObjectRecord, error) {
	return store.ObjectRecord{}, b.err
}
func (b brokenStore) CreateObjects([]store.ObjectRecord, ...store.Quota) ([]store.ObjectRecord, store.Commit, error) {
	return nil, store.Commit{}, b.err
}
func (b brokenStore) UpdateObject(store.ObjectRecord) (int64, store.Commit, error) {
	return 0, store.Commit{}, b.err
}
func (b brokenStore) DeleteObject(int64) (store.Commit, error) { return store.Commit{}, b.err }
func (b brokenStore) UpgradeKeys([]byte, []store.UserRecord, []store.ObjectRecord) error {
	return b.err
}

func (b brokenStore) Audited(...store.AuditEvent) store.Store { return b }
func (b brokenStore) Audit(...store.AuditEvent) error         { return b.err }
func (b brokenStore) AuditLater(store.AuditEvent)             {}
func (b brokenStore) FlushAudit() error                       { return nil }
func (b brokenStore) AuditKey() ([]byte, error)               { return nil, b.err }
func (b brokenStore) AuditStreams() ([]string, error)         { return nil, b.err }
func (b brokenStore) AuditRecords(string, uint64, int) ([]store.AuditRecord, error) {
	return nil, b.err
}
func (b brokenStore) AuditState(string) (store.AuditState, error)     { return store.AuditState{}, b.err }
func (b brokenStore) AuditChain(string) (store.AuditChain, error)     { return store.AuditChain{}, b.err }
func (b brokenStore) RotateAudit(string, uint64, []byte) (int, error) { return 0, b.err }
func (b brokenStore) AuditBoot() (uint32, error)                      { return 0, b.err }
