package token

import (
	"errors"
	"fmt"

	"gohsm/internal/ck"
	"gohsm/token/store"
)

// The store's login registry (token/store/logins.go) knows which process
// has which user logged in, so that no process deletes a user logged in in
// another one (its sessions would go on working with keys it opened), and,
// in the cloudhsm profile, nobody changes the password of a user logged in
// elsewhere (CloudHSM refuses it). A slot writes its entry at login and
// removes it at logout, which closing the last session and C_Finalize
// include; a process that ends without either leaves an entry that is dead
// with it. Nothing here runs on a cryptographic call.

// registerLoginLocked records the slot's login of name. A user deleted by
// another process since its password was checked has nothing to log in to.
func (s *Slot) registerLoginLocked(name string) error {
	l := store.ThisProcess()
	l.User, l.Instance = name, s.instance
	err := s.st.AddLogin(l)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("token: login %q: deleted meanwhile: %w", name, ck.CKR_PIN_INCORRECT)
	}
	if err != nil {
		return storeErr(err)
	}
	return nil
}

// unregisterLoginLocked removes the slot's entry. A failure only leaves an
// entry that dies with the process, so it is logged, not returned: logging
// out always succeeds.
func (s *Slot) unregisterLoginLocked(ev store.AuditEvent) {
	if err := s.st.Audited(ev).RemoveLogin(s.instance); err != nil {
		s.m.log.Warn("gohsm: logout: login registry", "slot", s.cfg.ID, "err", err)
	}
}

// loggedInElsewhereLocked reports a live login of name by another opening
// of the token (another process, or another module of this one): the
// error to answer, or nil.
func (s *Slot) loggedInElsewhereLocked(name, what string) error {
	ls, err := s.st.Logins(name)
	if err != nil {
		return storeErr(err)
	}
	for _, l := range ls {
		if l.Instance != s.instance {
			return fmt.Errorf("token: %s: user %q is logged in in process %d: %w", what, name, l.PID, ck.CKR_USER_ALREADY_LOGGED_IN)
		}
	}
	return nil
}
