package token

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"gohsm/internal/ck"
	"gohsm/token/attrs"
	"gohsm/token/audit"
	"gohsm/token/quorum"
	"gohsm/token/store"
)

// User is a token user as the management interface shows it.
type User struct {
	Name     string `json:"username"`
	Role     string `json:"role"` // "crypto-officer" or "crypto-user" (CloudHSM CLI: admin / crypto-user)
	Locked   bool   `json:"locked"`
	Failures int    `json:"failed_logins"`
	HasPIN   bool   `json:"password_set"`
}

// RoleString names a role as the CLI and JSON output do.
func RoleString(r store.Role) string {
	if r == store.RoleCO {
		return "crypto-officer"
	}
	return "crypto-user"
}

// ParseRole parses "crypto-officer"/"co"/"admin" or "crypto-user"/"cu".
func ParseRole(s string) (store.Role, error) {
	switch strings.ToLower(s) {
	case "crypto-officer", "co", "admin", "so":
		return store.RoleCO, nil
	case "crypto-user", "cu", "user":
		return store.RoleCU, nil
	}
	return 0, mistake(CodeBadRole, ck.CKR_USER_TYPE_INVALID, "role %q: want crypto-officer or crypto-user", s)
}

// Users lists the token's users (no login needed, as CloudHSM's user list).
func (m *Module) Users(h ck.ULong) ([]User, error) {
	se, err := m.session(h)
	if err != nil {
		return nil, err
	}
	us, err := se.slot.st.Users()
	if err != nil {
		return nil, storeErr(err)
	}
	out := make([]User, len(us))
	for i, u := range us {
		out[i] = User{Name: u.Name, Role: RoleString(u.Role), Locked: u.Locked, Failures: u.FailedLogins, HasPIN: len(u.WrappedKey) > 0}
	}
	return out, nil
}

// CreateUser creates a user (crypto officer only).
func (m *Module) CreateUser(h ck.ULong, name string, role store.Role, password []byte) error {
	se, err := m.session(h)
	if err != nil {
		return err
	}
	name = store.FoldName(name)
	if err := checkUserName(name); err != nil {
		return err
	}
	s := se.slot
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := se.allowLocked(actManageUsers); err != nil {
		return err
	}
	if _, err := s.st.User(name); err == nil {
		s.auditAloneLocked(se, userEvent(createOp(role), name, role, audit.RespFailure))
		return errUserExists(name)
	}
	if err := s.checkPINLen(password); err != nil {
		return err
	}
	if err := s.userGateLocked(); err != nil {
		return err
	}
	sec, pub, escrow, err := s.userSecretForLocked(name, role, nil)
	if err != nil {
		return err
	}
	defer clear(sec)
	u, err := s.newUserRecord(name, role, password, sec, pub, escrow)
	if err != nil {
		return err
	}
	id := &s.prof.Identity
	if err := s.st.Audited(s.auditAll(se, userEvent(createOp(role), name, role, audit.RespSuccess))...).CreateUserLimit(u, id.MaxUsers); errors.Is(err, store.ErrQuota) {
		e := userEvent(createOp(role), name, role, audit.RespQuota)
		e.Detail = fmt.Sprintf("the token holds %d users, the most profile %s allows", id.MaxUsers, s.prof.Name)
		s.auditAloneLocked(se, e)
		return fmt.Errorf("token: user %q: the token holds %d users, the most profile %s allows: %w", name, id.MaxUsers, s.prof.Name, id.QuotaError)
	} else if errors.Is(err, store.ErrExists) {
		return errUserExists(name) // made by another process since the check
	} else if err != nil {
		return storeErr(err)
	}
	s.m.log.Info("gohsm: user created", "slot", s.cfg.ID, "user", name, "role", roleName(role))
	return nil
}

// DeleteUser deletes a user (crypto officer only). Users who own objects,
// and the officer itself (CKR_ACTION_PROHIBITED), and users logged in in
// any other process (CKR_USER_ALREADY_LOGGED_IN: try again once they
// logged out) cannot be deleted.
func (m *Module) DeleteUser(h ck.ULong, name string) error {
	se, err := m.session(h)
	if err != nil {
		return err
	}
	name = store.FoldName(name)
	s := se.slot
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := se.allowLocked(actManageUsers); err != nil {
		return err
	}
	if s.login.user == name {
		// Deleting oneself: never possible, not a matter of waiting.
		s.auditAloneLocked(se, userEvent(audit.CN_DELETE_USER, name, store.RoleCO, audit.RespUserInUse))
		return mistake(CodeDeleteSelf, ck.CKR_ACTION_PROHIBITED, "user %q is logged in: a user cannot delete itself", name)
	}
	u, err := s.st.User(name)
	if errors.Is(err, store.ErrNotFound) {
		s.auditAloneLocked(se, userEvent(audit.CN_DELETE_USER, name, store.RoleCU, audit.RespNoUser))
		return errNoSuchUser(name)
	}
	if err != nil {
		return storeErr(err)
	}
	if err := s.quorumDeleteGuardLocked(name); err != nil {
		return err
	}
	if err := s.userGateLocked(); err != nil {
		return err
	}
	if err := s.st.Audited(s.auditAll(se, userEvent(audit.CN_DELETE_USER, name, u.Role, audit.RespSuccess))...).DeleteUser(name); err != nil {
		if errors.Is(err, store.ErrInUse) || errors.Is(err, store.ErrLoggedIn) {
			e := userEvent(audit.CN_DELETE_USER, name, u.Role, audit.RespUserInUse)
			e.Detail = err.Error()
			s.auditAloneLocked(se, e)
		}
		if errors.Is(err, store.ErrNotFound) {
			return errNoSuchUser(name) // deleted by another process since the check
		}
		if errors.Is(err, store.ErrInUse) {
			return mistake(CodeUserOwnsKeys, ck.CKR_ACTION_PROHIBITED, "user %q owns objects", name)
		}
		if errors.Is(err, store.ErrLoggedIn) {
			return fmt.Errorf("token: %v: %w", err, ck.CKR_USER_ALREADY_LOGGED_IN)
		}
		return storeErr(err)
	}
	s.lc.Drop(s.cacheEntryLocked(u))
	return nil
}

// ChangePassword sets a user's password: a crypto officer may set anyone's
// (which also unlocks a locked user); a crypto user only its own.
func (m *Module) ChangePassword(h ck.ULong, name string, password []byte) error {
	se, err := m.session(h)
	if err != nil {
		return err
	}
	name = store.FoldName(name)
	s := se.slot
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.login == nil {
		return fmt.Errorf("token: change password: %w", ck.CKR_USER_NOT_LOGGED_IN)
	}
	if s.login.role != store.RoleCO && s.login.user != name {
		return fmt.Errorf("token: a crypto user may change only its own password: %w", ck.CKR_USER_NOT_LOGGED_IN)
	}
	u, err := s.st.User(name)
	if errors.Is(err, store.ErrNotFound) {
		return errNoSuchUser(name)
	}
	if err != nil {
		return storeErr(err)
	}
	if name != s.login.user {
		// The user service gates changing another user's password
		// (UG:quorum-auth-chsm-cli); one's own needs no approval.
		if err := s.userGateLocked(); err != nil {
			return err
		}
	}
	return s.setPasswordLocked(se, name, u.Role, password, false)
}

// Share shares a key with another crypto user (owner only).
func (m *Module) Share(h, obj ck.ULong, user string, share bool) error {
	se, err := m.session(h)
	if err != nil {
		return err
	}
	user = store.FoldName(user)
	s := se.slot
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := se.allowLocked(actCreateKey); err != nil {
		return err
	}
	// Public sessions may create keys; only a crypto user owns and shares.
	if s.login == nil || s.login.role != store.RoleCU {
		return fmt.Errorf("token: share: %w", ck.CKR_USER_NOT_LOGGED_IN)
	}
	o, err := s.visibleObjectLocked(obj, ck.CKR_OBJECT_HANDLE_INVALID)
	if err != nil {
		return err
	}
	if !o.token {
		return fmt.Errorf("token: only token objects can be shared: %w", ck.CKR_ACTION_PROHIBITED)
	}
	if o.owner != s.login.user {
		e := keyEvent(audit.CN_SHARE_OBJECT, uint64(obj), 0, audit.RespKeyDenied)
		e.User = user
		s.auditAloneLocked(se, e)
		return fmt.Errorf("token: object %d belongs to %q: %w", obj, o.owner, ck.CKR_ACTION_PROHIBITED)
	}
	u, err := s.st.User(user)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return errNoSuchUser(user)
	case err != nil:
		return storeErr(err)
	case u.Role != store.RoleCU:
		return mistake(CodeNotCryptoUser, ck.CKR_USER_TYPE_INVALID, "%q is not a crypto user: keys are shared with crypto users", user)
	case user == o.owner:
		return mistake(CodeOwnKey, ck.CKR_ACTION_PROHIBITED, "%q owns the object", user)
	}
	ev := keyEvent(audit.CN_SHARE_OBJECT, uint64(obj), 0, audit.RespSuccess)
	ev.User, ev.Detail = user, "shared with "+user
	if !share {
		ev.Detail = "unshared from " + user
		if err := keyUnshareGuard(o, user); err != nil {
			return err
		}
	}
	if o.manageQuorum > 1 {
		// Mistakes before the gate, which would use up the token.
		switch shared := slices.Contains(o.shared, user); {
		case share && shared:
			return mistake(CodeAlreadyShared, ck.CKR_ACTION_PROHIBITED, "object %d is already shared with %q", obj, user)
		case !share && !shared:
			return mistake(CodeNotShared, ck.CKR_ACTION_PROHIBITED, "object %d is not shared with %q", obj, user)
		}
	}
	if share {
		// Before the gate too: a refused share must not use up an approval.
		if err := s.checkShareesLocked(o, user); err != nil {
			return err
		}
	}
	if err := s.keyGateLocked(o, quorum.KeyManagement, o.manageQuorum); err != nil {
		return err
	}
	audited := s.st.Audited(s.auditAll(se, ev)...)
	if !share {
		if err := audited.Unshare(int64(obj), user); errors.Is(err, store.ErrNotFound) {
			return mistake(CodeNotShared, ck.CKR_ACTION_PROHIBITED, "object %d is not shared with %q", obj, user)
		} else if err != nil {
			return storeErr(err)
		}
		delete(s.objs, obj)
		return s.rekeyLocked(o)
	}
	var wrapped []byte
	if o.key != nil {
		if len(u.PublicKey) == 0 {
			return fmt.Errorf("token: crypto user %q has no public key: %w", user, ck.CKR_DEVICE_ERROR)
		}
		uid := string(o.attrs.Bytes(ck.CKA_UNIQUE_ID))
		if wrapped, err = store.SealDataKey(u.PublicKey, o.key.dk, uid, user); err != nil {
			return fmt.Errorf("token: share with %q: %v: %w", user, err, ck.CKR_DEVICE_ERROR)
		}
	} else if len(o.sealed) > 0 {
		return fmt.Errorf("token: share: the object's key is not open: %w", ck.CKR_USER_NOT_LOGGED_IN)
	}
	if err := audited.Share(int64(obj), user, wrapped); errors.Is(err, store.ErrExists) {
		return mistake(CodeAlreadyShared, ck.CKR_ACTION_PROHIBITED, "object %d is already shared with %q", obj, user)
	} else if err != nil {
		return storeErr(err)
	}
	delete(s.objs, obj)
	return nil
}

// checkShareesLocked refuses a new sharee of o beyond the profile's limit
// (profile.Limits.Sharees). Sharing again with a sharee is not a new one:
// the store answers that it is already shared.
func (s *Slot) checkShareesLocked(o *Object, user string) error {
	max := s.prof.Limits.Sharees
	if max == 0 {
		return nil
	}
	sharees, err := s.st.SharedWith(int64(o.h))
	if err != nil {
		return storeErr(err)
	}
	if len(sharees) >= max && !slices.Contains(sharees, user) {
		return mistake(CodeShareLimit, ck.CKR_ACTION_PROHIBITED,
			"object %d is shared with %d crypto users, the most a key may be shared with besides its owner", o.h, len(sharees))
	}
	return nil
}

// rekeyLocked gives an object the owner just stopped sharing a new data
// key, wrapped for the owner and the remaining sharees: the former sharee's
// copy (and anything it kept of it) no longer opens the object's secrets
// as stored from now on. Object o is the owner's view before the unshare.
func (s *Slot) rekeyLocked(o *Object) error {
	if o.key == nil {
		return nil // nothing sealed
	}
	uid := string(o.attrs.Bytes(ck.CKA_UNIQUE_ID))
	k, err := newObjKey(store.NewDataKey(), 0)
	if err != nil {
		return err
	}
	rec := store.ObjectRecord{ID: int64(o.h), UniqueID: uid, Owner: o.owner, Private: o.private, Version: o.version,
		Attrs: map[ck.AttributeType][]byte{}, Sealed: map[ck.AttributeType][]byte{},
		Keys: map[string][]byte{o.owner: s.login.keys.WrapOwnDataKey(k.dk, uid, o.owner)}}
	for t, v := range o.attrs.All() {
		if attrs.IsSecret(o.class, o.keyType, t) {
			rec.Sealed[t] = k.sealer.Seal(uid, t, v)
		} else {
			rec.Attrs[t] = v
		}
	}
	sharees, err := s.st.SharedWith(int64(o.h))
	if err != nil {
		return storeErr(err)
	}
	for _, sh := range sharees {
		u, err := s.st.User(sh)
		if err != nil {
			return storeErr(err)
		}
		if rec.Keys[sh], err = store.SealDataKey(u.PublicKey, k.dk, uid, sh); err != nil {
			return fmt.Errorf("token: rekey for %q: %v: %w", sh, err, ck.CKR_DEVICE_ERROR)
		}
	}
	v, c, err := s.st.UpdateObject(rec)
	if err != nil {
		return storeErr(err)
	}
	k.version = v
	s.login.dataKeys[int64(o.h)] = k
	s.wroteLocked(c)
	return nil
}

// LoggedInUser names the slot's logged-in user ("" when none).
func (s *Slot) LoggedInUser() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.login == nil {
		return ""
	}
	return s.login.user
}

// Object returns a visible object by handle, for the management interface.
func (m *Module) Object(h, obj ck.ULong) (*Object, error) {
	se, err := m.session(h)
	if err != nil {
		return nil, err
	}
	s := se.slot
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.visibleObjectLocked(obj, ck.CKR_OBJECT_HANDLE_INVALID)
}

// SetTrusted sets CKA_TRUSTED on a key: a crypto officer's act alone (CloudHSM: "CKA_TRUSTED can be set to True or False by Crypto Officer
// only"). A trusted key may wrap keys whose CKA_WRAP_WITH_TRUSTED is set.
// The officer need not see the key: officers manage, they do not use keys.
func (m *Module) SetTrusted(h, obj ck.ULong, trusted bool) error {
	se, err := m.session(h)
	if err != nil {
		return err
	}
	s := se.slot
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := se.allowLocked(actManageUsers); err != nil {
		return err
	}
	o, err := s.objectLocked(obj)
	if err != nil {
		return err
	}
	if o.class != ck.CKO_SECRET_KEY && o.class != ck.CKO_PUBLIC_KEY {
		return fmt.Errorf("token: CKA_TRUSTED is for secret and public keys: %w", ck.CKR_ATTRIBUTE_TYPE_INVALID)
	}
	n := *o
	change := attrs.Template{ck.CKA_TRUSTED: attrs.Bool(trusted)}
	n.attrs = attrs.FromTemplate(attrs.ApplySet(o.attrs.Template(), change))
	if !o.token {
		s.sessObjs[obj] = &n
		s.auditSessionLocked(se, o, modifyEvent(obj, change))
		return nil
	}
	return s.storeUpdateLocked(se, o, &n, modifyEvent(obj, change))
}

// createOp is the opcode of creating a user of a role: CloudHSM logs a
// crypto user's as CN_CREATE_USER and an officer's as CN_CREATE_CO.
func createOp(r store.Role) audit.Opcode {
	if r == store.RoleCO {
		return audit.CN_CREATE_CO
	}
	return audit.CN_CREATE_USER
}
