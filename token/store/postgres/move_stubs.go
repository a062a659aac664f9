package postgres

// The methods of pgStore that pg-move owns (audit.go, quorum.go, move.go),
// stubbed so that the package compiles until they land: each fails with
// errNotYet. pg-move deletes this file.
//
// The contract with commit (store.go): when a view has events
// (s.events, set by Audited), commit calls s.appendAudit(ctx, tx) after
// fn, in the same transaction; createdIn(ctx) is the IDs of the objects
// the transaction created (noteCreated), for AuditEvent.Fill.

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"gohsm/token/store"
)

var errNotYet = errors.New("store: postgres: not yet implemented")

func (s *pgStore) appendAudit(ctx context.Context, tx pgx.Tx) error { return errNotYet }

func (s *pgStore) Audited(events ...store.AuditEvent) store.Store {
	return &pgStore{pool: s.pool, timeout: s.timeout, core: s.core,
		events: append(s.events[:len(s.events):len(s.events)], events...)}
}

func (s *pgStore) Audit(events ...store.AuditEvent) error { return errNotYet }
func (s *pgStore) AuditKey() ([]byte, error)              { return nil, errNotYet }
func (s *pgStore) AuditStreams() ([]string, error)        { return nil, errNotYet }
func (s *pgStore) AuditState(stream string) (store.AuditState, error) {
	return store.AuditState{}, errNotYet
}
func (s *pgStore) AuditChain(stream string) (store.AuditChain, error) {
	return store.AuditChain{}, errNotYet
}
func (s *pgStore) AuditBoot() (uint32, error) { return 0, errNotYet }
func (s *pgStore) AuditRecords(stream string, from uint64, limit int) ([]store.AuditRecord, error) {
	return nil, errNotYet
}
func (s *pgStore) RotateAudit(stream string, through uint64, mac []byte) (int, error) {
	return 0, errNotYet
}

func (s *pgStore) QuorumKeys() (map[string][]byte, error)         { return nil, errNotYet }
func (s *pgStore) SetQuorumKey(user string, der []byte) error     { return errNotYet }
func (s *pgStore) QuorumValues() (map[string]int, error)          { return nil, errNotYet }
func (s *pgStore) SetQuorumValue(service string, value int) error { return errNotYet }
func (s *pgStore) AddQuorumToken(t store.QuorumToken, now int64, unique bool, max int) (int64, error) {
	return 0, errNotYet
}
func (s *pgStore) QuorumTokens() ([]store.QuorumToken, error)            { return nil, errNotYet }
func (s *pgStore) ApproveQuorumToken(id int64, approvers []string) error { return errNotYet }
func (s *pgStore) ConsumeQuorumToken(id int64) error                     { return errNotYet }
func (s *pgStore) DeleteQuorumTokens(user string) (int, error)           { return 0, errNotYet }
func (s *pgStore) SetKeyQuorum(objectID int64, use, manage int) error    { return errNotYet }
func (s *pgStore) SharedKeyQuorums(user string) ([]store.KeyQuorumUsers, error) {
	return nil, errNotYet
}

func (s *pgStore) Backup(path string) (store.BackupInfo, error) { return store.BackupInfo{}, errNotYet }
