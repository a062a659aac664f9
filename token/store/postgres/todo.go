package postgres

// pg-core's methods not written yet (this file goes when they are).

import "gohsm/token/store"

func (s *pgStore) Token() (*store.TokenRecord, error)                         { return nil, errNotYet }
func (s *pgStore) InitToken(t store.TokenRecord, co store.UserRecord) error   { return errNotYet }
func (s *pgStore) CreateToken(t store.TokenRecord, co store.UserRecord) error { return errNotYet }
func (s *pgStore) SetTokenLabel(label string) error                           { return errNotYet }
func (s *pgStore) User(name string) (*store.UserRecord, error)                { return nil, errNotYet }
func (s *pgStore) Users() ([]store.UserRecord, error)                         { return nil, errNotYet }
func (s *pgStore) CreateUser(u store.UserRecord) error                        { return errNotYet }
func (s *pgStore) CreateUserLimit(u store.UserRecord, max int) error          { return errNotYet }
func (s *pgStore) UpdateUser(u store.UserRecord) error                        { return errNotYet }
func (s *pgStore) DeleteUser(name string) error                               { return errNotYet }
func (s *pgStore) AddLogin(l store.Login) error                               { return errNotYet }
func (s *pgStore) RemoveLogin(instance int64) error                           { return errNotYet }
func (s *pgStore) Logins(user string) ([]store.Login, error)                  { return nil, errNotYet }
func (s *pgStore) BeginLogin(name string, threshold int) error                { return errNotYet }
func (s *pgStore) LoginFailed(name string, threshold int) (int, bool, error) {
	return 0, false, errNotYet
}
func (s *pgStore) LoginSucceeded(name string) error { return errNotYet }
func (s *pgStore) CreateObject(o store.ObjectRecord) (store.ObjectRecord, error) {
	return store.ObjectRecord{}, errNotYet
}
func (s *pgStore) CreateObjects(objs []store.ObjectRecord, quotas ...store.Quota) ([]store.ObjectRecord, store.Commit, error) {
	return nil, store.Commit{}, errNotYet
}
func (s *pgStore) Object(id int64) (*store.ObjectRecord, error) { return nil, errNotYet }
func (s *pgStore) ObjectVersion(id int64) (int64, error)        { return 0, errNotYet }
func (s *pgStore) UpdateObject(o store.ObjectRecord) (int64, store.Commit, error) {
	return 0, store.Commit{}, errNotYet
}
func (s *pgStore) DeleteObject(id int64) (store.Commit, error)          { return store.Commit{}, errNotYet }
func (s *pgStore) Find(q store.Query) ([]int64, error)                  { return nil, errNotYet }
func (s *pgStore) CountOwned(owner string) (int, error)                 { return 0, errNotYet }
func (s *pgStore) Share(id int64, user string, wrappedKey []byte) error { return errNotYet }
func (s *pgStore) Unshare(id int64, user string) error                  { return errNotYet }
func (s *pgStore) SharedWith(id int64) ([]string, error)                { return nil, errNotYet }
func (s *pgStore) UpgradeKeys(escrowPublic []byte, users []store.UserRecord, objs []store.ObjectRecord) error {
	return errNotYet
}
func (s *pgStore) ReplicaOf(id int64) (store.Replica, error) { return store.Replica{}, errNotYet }
func (s *pgStore) CreateReplica(r store.Replica, quotas ...store.Quota) (store.ObjectRecord, store.Commit, error) {
	return store.ObjectRecord{}, store.Commit{}, errNotYet
}

// loginConn is the login registry's connection (logins.go).
type loginConn struct{}

func (l *loginConn) init(s *pgStore) {}
func (l *loginConn) close() error    { return nil }
