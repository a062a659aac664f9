package token

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"gohsm/internal/ck"
	"gohsm/token/audit"
	"gohsm/token/store"
)

// Backup and restore of a slot's token (docs/backup.md).
//
// Who may: CloudHSM takes backups itself (the service, at least daily) and
// restores them only onto new HSMs of a cluster; no user command does
// either. gohsm has no service, so the operator runs them:
//
//   - a backup needs a crypto officer's PIN: it is a management action the
//     audit log attributes to someone (CN_BACKUP_BEGIN names the officer),
//     and it copies every user's and key's sealed material at once, which
//     an officer, who manages the users, is the one to decide. (Whoever may
//     read the token directory can copy the files anyway; the gate is for
//     the record, not a barrier against the file system's owner.)
//   - a restore needs no PIN, like token reset: it replaces the token
//     directory's contents, which whoever may write the directory can do
//     anyway, and the officers it would ask for may be the ones lost (the
//     reason to restore). It refuses a token that another process has
//     open, and replaces an initialised token only when told to.

// Backup writes a consistent snapshot of the slot's token to path while
// other processes keep using it. pin logs in one of the token's crypto
// officers ("name:password", or a password for "admin") on a session of
// its own; a wrong password counts towards the lockout, and the slot must
// have no login of this process already (CKR_USER_ALREADY_LOGGED_IN).
// The audit log gets CN_BACKUP_BEGIN (inside the snapshot) and
// CN_BACKUP_END (after it, not inside).
func (s *Slot) Backup(pin []byte, path string) (store.BackupInfo, error) {
	return s.writeTokenFile(pin, path, "backup", "", backupMsg, s.st.Backup)
}

const backupMsg = "gohsm: token backed up"

// writeTokenFile is Backup and Export (move.go): an officer's session for
// the duration, CN_BACKUP_BEGIN and CN_BACKUP_END around write (their
// detail prefixed with prefix, the error's with verb), and the log line
// msg.
func (s *Slot) writeTokenFile(pin []byte, path, verb, prefix, msg string, write func(abs string) (store.BackupInfo, error)) (store.BackupInfo, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return store.BackupInfo{}, fmt.Errorf("token: %s: %v: %w", verb, err, ck.CKR_ARGUMENTS_BAD)
	}
	// The officer logs in as on any session (the login and its failures
	// are the slot's as usual), for the duration of the backup.
	h, err := s.m.OpenSession(s.cfg.ID, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	if err != nil {
		return store.BackupInfo{}, err
	}
	defer s.m.CloseSession(h)
	if err := s.m.Login(h, ck.CKU_SO, pin); err != nil {
		return store.BackupInfo{}, err
	}
	defer s.m.Logout(h)
	se, err := s.m.session(h)
	if err != nil {
		return store.BackupInfo{}, err
	}
	return s.writeTokenFileAs(se, abs, verb, prefix, msg, write)
}

// BackupSession is Backup on session h of this module, logged in as a
// crypto officer already (the console's web session): no second login,
// the same snapshot, audit records and log line. A session that is not
// an officer's is CKR_USER_NOT_LOGGED_IN.
func (m *Module) BackupSession(h ck.ULong, path string) (store.BackupInfo, error) {
	se, err := m.session(h)
	if err != nil {
		return store.BackupInfo{}, err
	}
	s := se.slot
	s.mu.Lock()
	officer := s.login != nil && s.login.role == store.RoleCO
	s.mu.Unlock()
	if !officer {
		return store.BackupInfo{}, fmt.Errorf("token: backup needs a crypto officer: %w", ck.CKR_USER_NOT_LOGGED_IN)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return store.BackupInfo{}, fmt.Errorf("token: backup: %v: %w", err, ck.CKR_ARGUMENTS_BAD)
	}
	return s.writeTokenFileAs(se, abs, "backup", "", backupMsg, s.st.Backup)
}

// writeTokenFileAs is writeTokenFile once session se is an officer's.
func (s *Slot) writeTokenFileAs(se *Session, abs, verb, prefix, msg string, write func(abs string) (store.BackupInfo, error)) (store.BackupInfo, error) {
	name := s.LoggedInUser()
	if err := s.st.Audit(s.backupEvent(se, audit.CN_BACKUP_BEGIN, name, nil, prefix+"to "+abs)); err != nil {
		return store.BackupInfo{}, storeErr(err)
	}
	info, err := write(abs)
	detail := fmt.Sprintf("%sto %s, sha256 %s", prefix, abs, info.SHA256)
	if aerr := s.st.Audit(s.backupEvent(se, audit.CN_BACKUP_END, name, err, detail)); err == nil && aerr != nil {
		err = aerr
	}
	switch {
	case errors.Is(err, store.ErrExists), errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrPermission):
		// --out names something not to replace, or a place not to write.
		return info, fmt.Errorf("token: %s: %v: %w", verb, err, ck.CKR_ARGUMENTS_BAD)
	case errors.Is(err, store.ErrUnavailable):
		return info, storeErr(err)
	case err != nil:
		return info, fmt.Errorf("token: %s: %v: %w", verb, err, ck.CKR_DEVICE_ERROR)
	}
	s.m.log.Info(msg, "slot", s.cfg.ID, "officer", name, "file", abs, "sha256", info.SHA256)
	return info, nil
}

// Restore replaces the slot's token with the one in backup file from (a
// file Backup wrote, or a token.db copied from a closed token). The
// token directory must hold no initialised token unless replace is set,
// and no other process may have it open (CKR_SESSION_EXISTS), nor this
// process a session on the slot. A file that is not a usable backup
// (truncated, corrupt, not a gohsm token, a newer format) is refused with
// CKR_DATA_INVALID and the token is left as it was.
//
// The restored token's audit log continues the original's chain with
// CN_RESTORE_BEGIN (written before the token is moved into place) and
// CN_RESTORE_END.
func (s *Slot) Restore(from string, replace bool) (store.BackupInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sessions) > 0 {
		return store.BackupInfo{}, fmt.Errorf("token: restore: %w", ck.CKR_SESSION_EXISTS)
	}
	abs, err := filepath.Abs(from)
	if err != nil {
		return store.BackupInfo{}, fmt.Errorf("token: restore: %v: %w", err, ck.CKR_ARGUMENTS_BAD)
	}
	if s.cfg.Postgres() {
		// No directory to put a file into: the backup's records replace
		// the database's in one transaction (move.go).
		return s.importLocked(abs, replace, "restore")
	}
	who := fmt.Sprintf("uid %d", os.Getuid())
	begin := s.backupEventLocked(nil, audit.CN_RESTORE_BEGIN, "", nil, fmt.Sprintf("from %s by %s", abs, who))
	// Our own connections go first: the restore must see other processes'
	// locks only, and replaces the file they have open.
	s.flushAudit() // the queued events belong to the token being closed
	if err := s.st.Close(); err != nil {
		return store.BackupInfo{}, s.reopenAfter(storeErr(err))
	}
	// The restored file is shared with token_group as the one it replaces
	// was (Open did that); else the group's processes could no longer open it.
	ropts := store.RestoreOptions{Replace: replace, Sync: s.m.storeOpts.Sync, Group: s.m.storeOpts.Group,
		Events: []store.AuditEvent{begin}}
	info, err := store.Restore(s.cfg.Dir, abs, ropts)
	if err != nil {
		return info, s.reopenAfter(restoreErr(err))
	}
	if err := s.reopenAfter(nil); err != nil {
		return info, err
	}
	s.tokenRec = nil
	end := s.backupEventLocked(nil, audit.CN_RESTORE_END, "", nil, fmt.Sprintf("token %q serial %s, taken %s, sha256 %s", info.Label, info.Serial, info.Created, info.SHA256))
	if err := s.st.Audit(end); err != nil {
		return info, storeErr(err)
	}
	s.m.log.Info("gohsm: token restored", "slot", s.cfg.ID, "file", abs, "serial", info.Serial)
	return info, nil
}

func restoreErr(err error) error {
	switch {
	case errors.Is(err, store.ErrTokenOpen), errors.Is(err, store.ErrLoggedIn):
		return fmt.Errorf("token: %v: %w", err, ck.CKR_SESSION_EXISTS)
	case errors.Is(err, store.ErrExists):
		return fmt.Errorf("token: %v: %w", err, ck.CKR_ACTION_PROHIBITED)
	case errors.Is(err, store.ErrBackup), errors.Is(err, store.ErrFormat):
		return fmt.Errorf("token: %v: %w", err, ck.CKR_DATA_INVALID)
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("token: %v: %w", err, ck.CKR_ARGUMENTS_BAD)
	}
	return storeErr(err)
}

// backupEventLocked is the audit record of a backup or restore step (s.mu
// held; se may be nil), completed as every event of the slot (audit.go):
// about the officer who took a backup (MGMT_USER_DETAILS_LOG), or with no
// user for a restore, which needs no login (MINIMAL_LOG_ENTRY); failed
// with RespFailure and the error in Detail when err is not nil.
func (s *Slot) backupEventLocked(se *Session, op audit.Opcode, officer string, err error, detail string) store.AuditEvent {
	e := audit.Event{Opcode: op, LogType: audit.MINIMAL_LOG_ENTRY}
	if officer != "" {
		e = userEvent(op, officer, store.RoleCO, audit.RespSuccess)
	}
	e.Detail = detail
	e.Respond(audit.RespSuccess)
	if err != nil {
		e.Respond(audit.RespFailure)
		e.Detail += ": " + err.Error()
	}
	return s.auditEvent(se, e)
}

// backupEvent is backupEventLocked for a caller without the slot's lock.
func (s *Slot) backupEvent(se *Session, op audit.Opcode, officer string, err error, detail string) store.AuditEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.backupEventLocked(se, op, officer, err, detail)
}

// A slot whose token could not be opened (broken.go) answers these as it
// answers everything; a restore replaces its store without asking it.

func (b brokenStore) Backup(string) (store.BackupInfo, error) { return store.BackupInfo{}, b.err }

func (b brokenStore) ReplicaOf(int64) (store.Replica, error) { return store.Replica{}, b.err }

func (b brokenStore) CreateReplica(store.Replica, ...store.Quota) (store.ObjectRecord, store.Commit, error) {
	return store.ObjectRecord{}, store.Commit{}, b.err
}
