package token

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gohsm/internal/ck"
	"gohsm/token/store"
	"gohsm/token/store/postgres"
)

// The token store's administration for the gohsm CLI (store status, store
// migrate). Both work from the slot's configuration on a connection of
// their own, not through the slot's store: the store of a database with
// the wrong schema version is a broken one (module.go), and these are the
// commands that look at it and mend it.

// StoreStatus describes a slot's token store.
type StoreStatus struct {
	Slot    ck.ULong `json:"slot"`
	Backend string   `json:"backend"` // "sqlite" or "postgres"
	// URL is the PostgreSQL URL without its password (RedactURL); Dir
	// the slot's directory (the token's for SQLite, what is per host for
	// PostgreSQL).
	URL string `json:"url,omitempty"`
	Dir string `json:"dir"`
	// Reachable: the database answered (PostgreSQL); SQLite's token is
	// always reachable (or damaged, which Error says).
	Reachable bool `json:"reachable"`
	// SchemaVersion is the database's schema version (0: empty, the
	// schema is made at first use) or the SQLite token's format;
	// CodeVersion is this build's. Error says what is wrong, if anything
	// (unreachable, a version to migrate, not a token store).
	SchemaVersion int    `json:"schema_version"`
	CodeVersion   int    `json:"code_version"`
	Error         string `json:"error,omitempty"`
}

// storeAdminTimeout bounds a store command's work past connecting (a
// migration may wait for another host's migration lock).
const storeAdminTimeout = 5 * time.Minute

// StoreStatus reports the slot's store: backend, where, whether it
// answers, and its schema version against this build's.
func (s *Slot) StoreStatus() StoreStatus {
	st := StoreStatus{Slot: s.cfg.ID, Backend: "sqlite", Dir: s.cfg.Dir}
	if !s.cfg.Postgres() {
		st.Reachable = true
		st.CodeVersion = store.FormatVersion()
		s.mu.Lock()
		b, broken := s.st.(brokenStore)
		s.mu.Unlock()
		if broken {
			st.Error = b.err.Error()
			return st
		}
		st.SchemaVersion = st.CodeVersion // Open upgraded it, or refused it (broken)
		return st
	}
	st.Backend, st.URL, st.CodeVersion = "postgres", RedactURL(s.cfg.Store), postgres.Version
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.StoreTimeout)
	defer cancel()
	c, err := postgres.Connect(ctx, s.cfg.Store)
	if err != nil {
		st.Error = redactIn(err.Error(), s.cfg.Store)
		return st
	}
	defer c.Close(context.Background())
	st.Reachable = true
	v, err := schemaVersion(ctx, c)
	st.SchemaVersion = v
	if err != nil {
		st.Error = redactIn(err.Error(), s.cfg.Store)
	}
	return st
}

// schemaVersion is the database's schema version, with the error that
// makes it unusable by this build (nil for an empty one: Open makes the
// schema).
func schemaVersion(ctx context.Context, db postgres.DB) (int, error) {
	err := postgres.CheckVersion(ctx, db)
	var ve *postgres.VersionError
	switch {
	case err == nil:
		return postgres.Version, nil
	case errors.As(err, &ve) && ve.Database == 0:
		return 0, nil
	case errors.As(err, &ve):
		return ve.Database, err
	}
	return 0, err
}

// MigrateStore applies the migrations the slot's PostgreSQL database
// lacks, under the migration lock, and returns its schema versions before
// and after. A SQLite slot has nothing to migrate (its token's format is
// upgraded when it is opened): ErrNothingToMigrate.
func (s *Slot) MigrateStore() (before, after int, err error) {
	if !s.cfg.Postgres() {
		return 0, 0, ErrNothingToMigrate
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.StoreTimeout)
	c, err := postgres.Connect(ctx, s.cfg.Store)
	cancel()
	if err != nil {
		return 0, 0, fmt.Errorf("token: store migrate: %s: %w", redactIn(err.Error(), s.cfg.Store), ck.CKR_DEVICE_ERROR)
	}
	defer c.Close(context.Background())
	ctx, cancel = context.WithTimeout(context.Background(), storeAdminTimeout)
	defer cancel()
	before, err = schemaVersion(ctx, c)
	var ve *postgres.VersionError
	if err != nil && !(errors.As(err, &ve) && ve.Database < ve.Code) {
		return before, before, fmt.Errorf("token: store migrate: %s: %w", redactIn(err.Error(), s.cfg.Store), ck.CKR_DEVICE_ERROR)
	}
	if err := postgres.Migrate(ctx, c); err != nil {
		return before, before, fmt.Errorf("token: store migrate: %s: %w", redactIn(err.Error(), s.cfg.Store), ck.CKR_DEVICE_ERROR)
	}
	after, err = schemaVersion(ctx, c)
	if err != nil {
		return before, after, fmt.Errorf("token: store migrate: %s: %w", redactIn(err.Error(), s.cfg.Store), ck.CKR_DEVICE_ERROR)
	}
	s.m.log.Info("gohsm: store migrated", "slot", s.cfg.ID, "store", RedactURL(s.cfg.Store), "from", before, "to", after)
	// A store the module could not open for its version opens now.
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, broken := s.st.(brokenStore); broken {
		st, err := openStore(s.cfg, s.m.storeOpts)
		if err != nil {
			return before, after, storeErr(err)
		}
		s.setStore(st)
		s.dropCachesLocked()
		if err := s.m.openCluster(s); err != nil {
			return before, after, fmt.Errorf("token: slot %d: %v: %w", s.cfg.ID, err, ck.CKR_DEVICE_ERROR)
		}
		if s.mt == nil {
			s.m.openMetrics(s)
		}
	}
	return before, after, nil
}

// ErrNothingToMigrate: store migrate on a SQLite slot.
var ErrNothingToMigrate = errors.New("token: a SQLite token's format is upgraded when it is opened: nothing to migrate")
