package token

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"gohsm/internal/ck"
	"gohsm/token/store"
)

// Token-level management for the gohsm CLI: operations that have no Cryptoki
// function.

// DeleteToken removes the slot's token so that the slot holds an
// uninitialised token again (C_InitToken can then create a new one). pin
// must authenticate one of the token's crypto officers ("name:password", or
// a password for "admin"); a wrong password counts towards the lockout.
//
// The token's files are removed, so the slot must have no open session in
// this process (CKR_SESSION_EXISTS), and no other process may have the token
// open: a process holding SQLite's shared-memory lock on it makes the call
// fail with CKR_SESSION_EXISTS, with the token left as it was. The slot's
// store is replaced under s.mu; TokenInfo reads it without the lock, so no
// other goroutine of the process may call TokenInfo meanwhile (the CLI is the
// only caller).
func (s *Slot) DeleteToken(pin []byte) error {
	name, password := splitPIN(pin, store.RoleCO)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sessions) > 0 {
		return fmt.Errorf("token: delete token: %w", ck.CKR_SESSION_EXISTS)
	}
	// A damaged token can be deleted by one of its officers.
	if _, err := s.st.Token(); errors.Is(err, store.ErrNotInitialized) {
		return fmt.Errorf("token: delete token: slot %d: %w", s.cfg.ID, ck.CKR_TOKEN_NOT_RECOGNIZED)
	} else if err != nil && !errors.Is(err, store.ErrDamaged) {
		return storeErr(err)
	}
	tk, err := s.authenticate(nil, name, store.RoleCO, password)
	if err != nil {
		return err
	}
	clear(tk)
	if err := s.removeTokenLocked("delete token"); err != nil {
		return err
	}
	s.m.log.Info("gohsm: token deleted", "slot", s.cfg.ID, "officer", name)
	return nil
}

// ResetToken erases the slot's token without a PIN, like softhsm2-util's
// --delete-token: the way out when every officer is locked or the
// passwords are lost. It asks nothing the file system does not already
// grant (whoever may write the token directory may remove its files), and
// like DeleteToken it refuses while any process has the token open.
func (s *Slot) ResetToken() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sessions) > 0 {
		return fmt.Errorf("token: reset token: %w", ck.CKR_SESSION_EXISTS)
	}
	if err := s.removeTokenLocked("reset token"); err != nil {
		return err
	}
	s.m.log.Info("gohsm: token reset", "slot", s.cfg.ID)
	return nil
}

// removeTokenLocked leaves the slot with an uninitialised token: a SQLite
// token's files are removed (removeStoreLocked); a PostgreSQL token has
// none, so everything it holds is replaced with nothing in one transaction,
// refused while another process or host is logged in to it.
func (s *Slot) removeTokenLocked(what string) error {
	if s.cfg.Postgres() {
		return s.emptyStoreLocked(what)
	}
	return s.removeStoreLocked(what)
}

// removeStoreLocked removes the slot's store files when no other process
// has them open, and opens a new, uninitialised store in their place.
func (s *Slot) removeStoreLocked(what string) error {
	// Our own connections must be gone before probing the lock: closing the
	// probe's descriptor would drop this process's SQLite locks on the file.
	s.flushAudit() // the queued events belong to the token being closed
	if err := s.st.Close(); err != nil {
		return s.reopenAfter(storeErr(err))
	}
	dbPath := filepath.Join(s.cfg.Dir, store.DBName)
	if pid, err := store.HeldBy(dbPath); err != nil {
		return s.reopenAfter(fmt.Errorf("token: %s: %v: %w", what, err, ck.CKR_DEVICE_ERROR))
	} else if pid != 0 {
		return s.reopenAfter(fmt.Errorf("token: %s: in use by process %d: %w", what, pid, ck.CKR_SESSION_EXISTS))
	}
	for _, p := range []string{dbPath, dbPath + "-wal", dbPath + "-shm"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return s.reopenAfter(fmt.Errorf("token: %s: %v: %w", what, err, ck.CKR_DEVICE_ERROR))
		}
	}
	return s.reopenAfter(nil)
}

// reopenAfter reopens the slot's store (empty if its files were removed)
// and drops every cache of the old one; it returns cause, or the reopening
// error when there is no cause. s.mu must be held.
func (s *Slot) reopenAfter(cause error) error {
	st, err := openStore(s.cfg, s.m.storeOpts)
	if err != nil {
		// The slot keeps its closed store: every later call fails with
		// CKR_DEVICE_ERROR rather than touching a half-removed token.
		return errors.Join(cause, storeErr(err))
	}
	s.setStore(st)
	s.dropCachesLocked() // a new token (or the old one again) has a reboot counter of its own
	return cause
}
