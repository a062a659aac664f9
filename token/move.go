package token

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"gohsm/internal/ck"
	"gohsm/token/audit"
	"gohsm/token/store"
)

// Moving a slot's token between backends (docs/store-postgres.md, "Moving
// a token"): Export writes every record of the token to a file in the
// backup format, whatever the backend; Import reads such a file (or a
// backup, or a bare token.db) into the slot's token. The login rules are
// backup's and restore's (backup.go): an export needs an officer's PIN and
// is recorded under the officer's name, an import needs none, refuses an
// initialised token unless told to replace it, and refuses a token that
// another process (or host) is logged in to.

// Export writes the slot's token to path in the backup file format by
// way of store.ExportFile. pin logs in one of the token's crypto officers
// as Backup does; the audit log gets CN_BACKUP_BEGIN (inside the file) and
// CN_BACKUP_END, their detail saying "export".
func (s *Slot) Export(pin []byte, path string) (store.BackupInfo, error) {
	return s.writeTokenFile(pin, path, "export", "export ", "gohsm: token exported", func(abs string) (store.BackupInfo, error) {
		return store.ExportFile(s.st, abs)
	})
}

// Import puts the token in file from (written by Export or Backup, or a
// token.db copied from a closed token) into the slot's token, keeping
// object IDs (the handles), users, shares, quorum records and every audit
// stream, in one transaction of the slot's store (store.ImportFile). The
// slot's token must hold nothing unless replace is set (CKR_ACTION_PROHIBITED
// otherwise, as restore); this process must have no session on the slot
// and no other process or host a login (CKR_SESSION_EXISTS). A file that is
// not a usable backup is CKR_DATA_INVALID, the token left as it was. The
// audit log continues the imported chain with CN_RESTORE_BEGIN and
// CN_RESTORE_END.
func (s *Slot) Import(from string, replace bool) (store.BackupInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sessions) > 0 {
		return store.BackupInfo{}, fmt.Errorf("token: import: %w", ck.CKR_SESSION_EXISTS)
	}
	abs, err := filepath.Abs(from)
	if err != nil {
		return store.BackupInfo{}, fmt.Errorf("token: import: %v: %w", err, ck.CKR_ARGUMENTS_BAD)
	}
	return s.importLocked(abs, replace, "import")
}

// importLocked is Import (and Restore on a PostgreSQL slot) with s.mu held.
func (s *Slot) importLocked(abs string, replace bool, what string) (store.BackupInfo, error) {
	if _, broken := s.st.(brokenStore); broken { // (a broken slot has no cluster)
		// A store that could not be opened: nothing to import into (a
		// SQLite restore replaces its files instead; store migrate mends
		// a database of another schema version).
		_, err := s.st.Token()
		return store.BackupInfo{}, storeErr(err)
	}
	if err := s.noOtherLoginLocked(what); err != nil {
		return store.BackupInfo{}, err
	}
	if _, err := s.st.Token(); errors.Is(err, store.ErrNotInitialized) {
		// An uninitialised token holds nothing of value (at most the
		// audit records of its slot's openings): as a restore into it,
		// the import needs no --replace.
		replace = true
	}
	who := fmt.Sprintf("uid %d", os.Getuid())
	begin := s.backupEventLocked(nil, audit.CN_RESTORE_BEGIN, "", nil, fmt.Sprintf("%s from %s by %s", what, abs, who))
	info, err := store.ImportFile(s.st.Audited(begin), abs, replace)
	if err != nil {
		return info, restoreErr(err)
	}
	s.dropCachesLocked()
	end := s.backupEventLocked(nil, audit.CN_RESTORE_END, "", nil, fmt.Sprintf("%s of token %q serial %s, taken %s, sha256 %s", what, info.Label, info.Serial, info.Created, info.SHA256))
	if err := s.st.Audit(end); err != nil {
		return info, storeErr(err)
	}
	s.m.log.Info("gohsm: token imported", "slot", s.cfg.ID, "file", abs, "serial", info.Serial, "how", what)
	return info, nil
}

// noOtherLoginLocked refuses while another process or host is logged in to
// the token (its login registry): replacing the token under a logged-in
// user would leave it holding keys of a token that is gone.
func (s *Slot) noOtherLoginLocked(what string) error {
	ls, err := s.st.Logins("")
	if err != nil && !errors.Is(err, store.ErrNotInitialized) {
		return storeErr(err)
	}
	for _, l := range ls {
		if l.Instance != s.instance {
			return fmt.Errorf("token: %s: %s is logged in to the token: %w", what, l, ck.CKR_SESSION_EXISTS)
		}
	}
	return nil
}

// emptyStoreLocked replaces everything a PostgreSQL slot's token holds
// with nothing, in one transaction (store.Mover.Import of an empty
// Snapshot): delete and reset of a token that has no files to remove.
func (s *Slot) emptyStoreLocked(what string) error {
	mv, ok := s.st.(store.Mover)
	if !ok {
		return fmt.Errorf("token: %s: %v: %w", what, store.ErrNotMover, ck.CKR_DEVICE_ERROR)
	}
	if err := s.noOtherLoginLocked(what); err != nil {
		return err
	}
	if err := mv.Import(&store.Snapshot{}, true); err != nil {
		return restoreErr(err) // a login begun since the check: CKR_SESSION_EXISTS
	}
	s.dropCachesLocked()
	return nil
}

// dropCachesLocked forgets what the slot knew of its token after the
// store's contents were replaced.
func (s *Slot) dropCachesLocked() {
	s.objs = map[ck.ULong]*Object{}
	s.keys = map[ck.ULong]cachedKey{}
	s.gen = 0
	s.tokenRec = nil
	s.lastUser = map[store.Role]string{}
	s.boot = 0
}

// A slot with an emulated cluster wraps its store (cluster.go); its token
// moves as the store's would, unless the cluster's store is down.

func (c clusterStore) Export() (*store.Snapshot, error) {
	if err := c.cl.StoreDown(); err != nil {
		return nil, err
	}
	mv, ok := c.Store.(store.Mover)
	if !ok {
		return nil, store.ErrNotMover
	}
	return mv.Export()
}

func (c clusterStore) Import(snap *store.Snapshot, replace bool) error {
	if err := c.cl.StoreDown(); err != nil {
		return err
	}
	mv, ok := c.Store.(store.Mover)
	if !ok {
		return store.ErrNotMover
	}
	return mv.Import(snap, replace)
}

// A broken store has no token to move.

func (b brokenStore) Export() (*store.Snapshot, error)   { return nil, b.err }
func (b brokenStore) Import(*store.Snapshot, bool) error { return b.err }
