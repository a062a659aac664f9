package token

import (
	"fmt"

	"gohsm/internal/ck"
	"gohsm/token/profile"
)

// Functions a profile refuses (profile.Sessions.Unsupported) are refused
// at the PKCS#11 entry: the C boundary asks before it decodes anything,
// so the answer is CKR_FUNCTION_NOT_SUPPORTED whatever the arguments (a
// session handle that names no session still wins, as everywhere). The
// token methods behind those functions stay as they are: the management
// CLI reaches the same internals (InitToken, the users' passwords) through
// its own calls, which no profile refuses.

// Unsupported answers whether the profile of session h's slot refuses fn:
// CKR_SESSION_HANDLE_INVALID for an unknown session, CKR_FUNCTION_NOT_SUPPORTED
// when refused, nil otherwise.
func (m *Module) Unsupported(h ck.ULong, fn profile.Function) error {
	se, err := m.session(h)
	if err != nil {
		return err
	}
	return se.slot.refuses(fn)
}

// UnsupportedOnSlot is Unsupported for the functions that take a slot
// (C_InitToken): CKR_SLOT_ID_INVALID for an unknown slot.
func (m *Module) UnsupportedOnSlot(slotID ck.ULong, fn profile.Function) error {
	s, err := m.Slot(slotID)
	if err != nil {
		return err
	}
	return s.refuses(fn)
}

func (s *Slot) refuses(fn profile.Function) error {
	if s.prof.Sessions.Unsupported[fn] {
		return fmt.Errorf("token: %v: not in profile %s: %w", fn, s.prof.Name, ck.CKR_FUNCTION_NOT_SUPPORTED)
	}
	return nil
}

// UnsupportedForKey is Unsupported for C_SetAttributeValue, which CloudHSM
// refuses on keys only (a certificate in its certificate storage is changed
// with it): refused when the profile refuses fn and obj is a key the
// session sees. Any other object, or a handle that names none, goes on to
// the call, which gives its own answer.
func (m *Module) UnsupportedForKey(h, obj ck.ULong, fn profile.Function) error {
	se, err := m.session(h)
	if err != nil {
		return err
	}
	s := se.slot
	if !s.prof.Sessions.Unsupported[fn] {
		return nil
	}
	s.mu.Lock()
	o, err := s.visibleObjectLocked(obj, ck.CKR_OBJECT_HANDLE_INVALID)
	s.mu.Unlock()
	if err != nil || !isKeyClass(o.class) {
		return nil
	}
	return s.refuses(fn)
}
