package token

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"gohsm/internal/ck"
	"gohsm/token/audit"
	"gohsm/token/quorum"
	"gohsm/token/store"
)

// Quorum (M of N) authentication, CloudHSM's way (docs/quorum.md): users
// register an RSA-2048 public key; a user asks for a token for a service;
// approvers sign it outside the token; the user hands the signed token to
// ApproveQuorumToken, which verifies the signatures and remembers the
// token for this login; the next gated operation of that service uses it
// up. The gates:
//
//   - service user (value > 1): CreateUser, DeleteUser, ChangePassword of
//     another user, approvers counted among the officers;
//   - service quorum: SetQuorumValue, officers;
//   - a key's manage value: WrapKey (wrapping and wrapped key), UnwrapKey,
//     Share and unshare, SetKeyAttributes, approvers counted among the
//     key's owner and the users it is shared with;
//   - a key's use value: signing (C_SignInit), same approvers.
//
// An approved token is remembered by the process that approved it, for
// its login (CloudHSM: "The quorum token is only valid as long as your
// current login session is open ... an authorized token can only be used
// within CloudHSM CLI"). So a PKCS#11 application, which has no way to
// hand in a token, gets CKR_FUNCTION_REJECTED from C_SignInit on a key
// whose use value is above 1: it is refused before any signing starts, as
// the HSM refuses the operation for want of an approved token.
//
// Nothing of this runs per signature on the hot path: a key with a use
// value above 1 never enters the session's fast key cache (lookupKeyLocked),
// and every other key is checked once, when its object is loaded.

// quorumNow is the quorum clock; tests move it to expire tokens.
var quorumNow = time.Now

// QuorumToken is an outstanding token as `quorum token-sign list` shows it.
type QuorumToken struct {
	User      string
	Service   quorum.Service
	Required  int // approvals the service (or, for key services, 0) asks
	Approvals int // verified approvals so far
	Timeout   int // seconds until it expires
}

// quorumEvent is the audit record of a quorum action by the logged-in
// user (s.mu held), completed by the audit helpers (audit.go).
func (s *Slot) quorumEvent(op audit.Opcode, detail string) []store.AuditEvent {
	return s.auditAll(nil, s.quorumAuditLocked(op, detail, audit.RespSuccess))
}

// quorumAuditLocked is the event of a quorum action by the logged-in user
// (none: no user), answered resp (s.mu held).
func (s *Slot) quorumAuditLocked(op audit.Opcode, detail string, resp int) audit.Event {
	e := audit.Event{Opcode: op, LogType: audit.MINIMAL_LOG_ENTRY, Detail: detail}
	e.Respond(resp)
	if s.login != nil {
		e.User, e.UserType = s.login.user, audit.CN_CRYPTO_USER
		if s.login.role == store.RoleCO {
			e.UserType = audit.CN_CRYPTO_OFFICER
		}
	}
	return e
}

// quorumRefusedLocked records a refused quorum action (a forged or
// expired approval, an operation without one, a value refused) on its own:
// it changes nothing, but an auditor sees the attempt (s.mu held).
func (s *Slot) quorumRefusedLocked(se *Session, op audit.Opcode, detail string, err error) {
	s.auditAloneLocked(se, s.quorumAuditLocked(op, detail+": "+err.Error(), audit.RespFailure))
}

// quorumLoginLocked is the logged-in user, or CKR_USER_NOT_LOGGED_IN.
func (s *Slot) quorumLoginLocked() (*login, error) {
	if s.login == nil {
		return nil, fmt.Errorf("token: quorum: %w", ck.CKR_USER_NOT_LOGGED_IN)
	}
	return s.login, nil
}

// quorumValuesLocked reads the service values.
func (s *Slot) quorumValuesLocked() (map[quorum.Service]int, error) {
	raw, err := s.st.QuorumValues()
	if err != nil {
		return nil, storeErr(err)
	}
	out := map[quorum.Service]int{}
	for k, v := range raw {
		out[quorum.Service(k)] = v
	}
	return out, nil
}

// QuorumValues are the admin services' values (no login needed), every
// service of the profile with 1 for those never set.
func (m *Module) QuorumValues(h ck.ULong) (map[quorum.Service]int, error) {
	se, err := m.session(h)
	if err != nil {
		return nil, err
	}
	s := se.slot
	s.mu.Lock()
	defer s.mu.Unlock()
	vs, err := s.quorumValuesLocked()
	if err != nil {
		return nil, err
	}
	out := map[quorum.Service]int{}
	for _, svc := range quorum.Services(s.prof.Identity.QuorumCluster) {
		out[svc] = quorum.Value(vs, svc)
	}
	return out, nil
}

// QuorumServices lists the admin services of the slot's profile, in the
// order CloudHSM CLI shows them.
func (s *Slot) QuorumServices() []quorum.Service {
	return quorum.Services(s.prof.Identity.QuorumCluster)
}

// ParseQuorumService parses a --service value for the slot's profile.
func (s *Slot) ParseQuorumService(name string) (quorum.Service, error) {
	return quorum.ParseService(name, s.prof.Identity.QuorumCluster)
}

// officersLocked names the officers, and those with a registered key.
func (s *Slot) officersLocked() (all, registered []string, keys map[string][]byte, err error) {
	us, err := s.st.Users()
	if err != nil {
		return nil, nil, nil, storeErr(err)
	}
	if keys, err = s.st.QuorumKeys(); err != nil {
		return nil, nil, nil, storeErr(err)
	}
	for _, u := range us {
		if u.Role == store.RoleCO {
			all = append(all, u.Name)
			if _, ok := keys[u.Name]; ok {
				registered = append(registered, u.Name)
			}
		}
	}
	return all, registered, keys, nil
}

// SetQuorumValue sets an admin service's value (officer only). With the
// quorum service's value above 1 it needs an approved quorum token. It
// refuses a value that the registered officers could not meet, and returns
// a warning when no approver is to spare (CloudHSM's M+1 advice).
func (m *Module) SetQuorumValue(h ck.ULong, svc quorum.Service, value int) (warning string, err error) {
	se, err := m.session(h)
	if err != nil {
		return "", err
	}
	s := se.slot
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := se.allowLocked(actManageUsers); err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			s.quorumRefusedLocked(se, audit.CN_SET_M_VALUE, fmt.Sprintf("service %s value %d", svc, value), err)
		}
	}()
	if !svc.Admin() || svc == quorum.Cluster && !s.prof.Identity.QuorumCluster {
		return "", fmt.Errorf("token: set quorum value of %q: %w", svc, &quorum.Error{Code: quorum.CodeBadValue, Text: fmt.Sprintf("Quorum value of service %s cannot be set", svc), RV: ck.CKR_ARGUMENTS_BAD})
	}
	vs, err := s.quorumValuesLocked()
	if err != nil {
		return "", err
	}
	next := map[quorum.Service]int{}
	for k, v := range vs {
		next[k] = v
	}
	next[svc] = value
	if err := quorum.CheckValues(next); err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	officers, registered, _, err := s.officersLocked()
	if err != nil {
		return "", err
	}
	if warning, err = quorum.Lockout(value, len(registered)); err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	if err := s.quorumGateLocked(quorum.Quorum, quorum.Value(vs, quorum.Quorum), officers, quorum.ErrApprovalRequired); err != nil {
		return "", err
	}
	ev := s.quorumEvent(audit.CN_SET_M_VALUE, fmt.Sprintf("service %s value %d", svc, value))
	if err := s.st.Audited(ev...).SetQuorumValue(string(svc), value); err != nil {
		return "", storeErr(err)
	}
	return warning, nil
}

// GenerateQuorumToken makes a token for a service, for the logged-in user,
// and returns its approval data. Officers ask for admin-service tokens
// (one live token per user and service), crypto users for key-service
// tokens; either for a registration token.
func (m *Module) GenerateQuorumToken(h ck.ULong, svc quorum.Service) ([]byte, error) {
	se, err := m.session(h)
	if err != nil {
		return nil, err
	}
	s := se.slot
	s.mu.Lock()
	defer s.mu.Unlock()
	l, err := s.quorumLoginLocked()
	if err != nil {
		return nil, err
	}
	switch {
	case svc == quorum.Cluster && !s.prof.Identity.QuorumCluster:
		_, err := quorum.ParseService(string(svc), false)
		return nil, fmt.Errorf("token: %w", err)
	case svc.Admin() && l.role != store.RoleCO, svc.Key() && l.role != store.RoleCU:
		return nil, fmt.Errorf("token: a %s may not ask for a %s token: %w", roleName(l.role), svc, ck.CKR_USER_TYPE_INVALID)
	case !svc.Admin() && !svc.Key() && svc != quorum.Registration:
		return nil, fmt.Errorf("token: %w", &quorum.Error{Code: quorum.CodeBadService, Text: fmt.Sprintf("no quorum service %q", svc), RV: ck.CKR_ARGUMENTS_BAD})
	}
	approval := quorum.NewApprovalData()
	now := quorumNow()
	t := store.QuorumToken{Service: string(svc), User: l.user, Approval: approval,
		Created: now.Unix(), Expires: now.Add(quorum.Expiry).Unix()}
	ev := s.quorumEvent(audit.CN_GET_TOKEN, "service "+string(svc))
	_, err = s.st.Audited(ev...).AddQuorumToken(t, now.Unix(), svc.Admin() || svc == quorum.Registration, quorum.MaxTokens)
	switch {
	case errors.Is(err, store.ErrExists):
		return nil, fmt.Errorf("token: %w", &quorum.Error{Code: quorum.CodeTokenActive, Text: fmt.Sprintf("User %s already has an active %s token: delete it with quorum token-sign delete --scope user, or wait for it to expire", l.user, svc), RV: ck.CKR_FUNCTION_REJECTED})
	case errors.Is(err, store.ErrQuota):
		return nil, fmt.Errorf("token: %w", &quorum.Error{Code: quorum.CodeTokenLimit, Text: fmt.Sprintf("The HSM holds %d quorum tokens, none expired", quorum.MaxTokens), RV: ck.CKR_DEVICE_MEMORY})
	case err != nil:
		return nil, storeErr(err)
	}
	return approval, nil
}

// QuorumTokens lists the live tokens (logged-in users).
func (m *Module) QuorumTokens(h ck.ULong) ([]QuorumToken, error) {
	se, err := m.session(h)
	if err != nil {
		return nil, err
	}
	s := se.slot
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.quorumLoginLocked(); err != nil {
		return nil, err
	}
	ts, err := s.st.QuorumTokens()
	if err != nil {
		return nil, storeErr(err)
	}
	vs, err := s.quorumValuesLocked()
	if err != nil {
		return nil, err
	}
	now := quorumNow().Unix()
	out := []QuorumToken{}
	for _, t := range ts {
		if t.Expires <= now || quorum.Service(t.Service) == quorum.Registration {
			continue
		}
		svc := quorum.Service(t.Service)
		req := 0
		if svc.Admin() {
			req = quorum.Value(vs, svc)
		}
		out = append(out, QuorumToken{User: t.User, Service: svc, Required: req, Approvals: len(t.Approvers), Timeout: int(t.Expires - now)})
	}
	return out, nil
}

// DeleteQuorumTokens deletes the logged-in officer's tokens, or with all
// every token; it returns how many.
func (m *Module) DeleteQuorumTokens(h ck.ULong, all bool) (int, error) {
	se, err := m.session(h)
	if err != nil {
		return 0, err
	}
	s := se.slot
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := se.allowLocked(actManageUsers); err != nil {
		return 0, err
	}
	user, scope := s.login.user, "user"
	if all {
		user, scope = "", "all"
	}
	n, err := s.st.Audited(s.quorumEvent(audit.CN_DELETE_TOKEN, "scope "+scope)...).DeleteQuorumTokens(user)
	if err != nil {
		return 0, storeErr(err)
	}
	return n, nil
}

// quorumAct runs act with session h's slot locked, for its logged-in user
// (none: CKR_USER_NOT_LOGGED_IN); an error act returns is recorded as the
// refused action op (quorumRefusedLocked).
func (m *Module) quorumAct(h ck.ULong, op audit.Opcode, detail string, act func(s *Slot, l *login) error) error {
	se, err := m.session(h)
	if err != nil {
		return err
	}
	s := se.slot
	s.mu.Lock()
	defer s.mu.Unlock()
	l, err := s.quorumLoginLocked()
	if err != nil {
		return err
	}
	if err := act(s, l); err != nil {
		s.quorumRefusedLocked(se, op, detail, err)
		return err
	}
	return nil
}

// findQuorumTokenLocked finds the stored token with the given approval
// data, checking it is the logged-in user's and not expired.
func (s *Slot) findQuorumTokenLocked(l *login, approval []byte) (*store.QuorumToken, error) {
	ts, err := s.st.QuorumTokens()
	if err != nil {
		return nil, storeErr(err)
	}
	for i := range ts {
		t := &ts[i]
		if !slices.Equal(t.Approval, approval) {
			continue
		}
		if t.User != l.user {
			return nil, fmt.Errorf("token: %w", quorum.ErrNotYours)
		}
		if t.Expires <= quorumNow().Unix() {
			return nil, fmt.Errorf("token: %w", quorum.ErrExpired)
		}
		return t, nil
	}
	return nil, fmt.Errorf("token: %w", quorum.ErrUnknown)
}

// RegisterQuorumKey registers the logged-in user's quorum public key
// (PEM): the signed registration token proves the user holds its private
// key. The registration token is used up.
func (m *Module) RegisterQuorumKey(h ck.ULong, publicKeyPEM, signedRegistration []byte) error {
	return m.quorumAct(h, audit.CN_REGISTER_QUORUM_PUBKEY, "registration", func(s *Slot, l *login) error {
		pub, der, err := quorum.ParsePublicKey(publicKeyPEM)
		if err != nil {
			return fmt.Errorf("token: %w", err)
		}
		approval, sig, err := quorum.ParseRegistrationFile(signedRegistration)
		if err != nil {
			return fmt.Errorf("token: %w", err)
		}
		t, err := s.findQuorumTokenLocked(l, approval)
		if err != nil {
			return err
		}
		if quorum.Service(t.Service) != quorum.Registration {
			return fmt.Errorf("token: %w", &quorum.Error{Code: quorum.CodeBadTokenFile, Text: "Quorum token is not a registration token", RV: ck.CKR_ARGUMENTS_BAD})
		}
		if err := quorum.Verify(pub, approval, sig); err != nil {
			return fmt.Errorf("token: registration: %w", err)
		}
		if err := s.st.ConsumeQuorumToken(t.ID); err != nil {
			return fmt.Errorf("token: %w", quorum.ErrUnknown)
		}
		if err := s.st.Audited(s.quorumEvent(audit.CN_REGISTER_QUORUM_PUBKEY, "")...).SetQuorumKey(l.user, der); err != nil {
			return storeErr(err)
		}
		return nil
	})
}

// QuorumRegistered lists the users with a registered quorum key.
func (m *Module) QuorumRegistered(h ck.ULong) ([]string, error) {
	se, err := m.session(h)
	if err != nil {
		return nil, err
	}
	keys, err := se.slot.st.QuorumKeys()
	if err != nil {
		return nil, storeErr(err)
	}
	var out []string
	for u := range keys {
		out = append(out, u)
	}
	slices.Sort(out)
	return out, nil
}

// ApproveQuorumToken verifies a signed token file (the approvers'
// signatures against their registered keys) and remembers the token for
// this login: the next operation gated by its service uses it up. A token
// is the logged-in user's own, not expired, and may carry no signature
// that fails (a forged approval fails the whole token).
func (m *Module) ApproveQuorumToken(h ck.ULong, signed []byte) error {
	return m.quorumAct(h, audit.CN_APPROVE_TOKEN, "approval", func(s *Slot, l *login) error {
		f, err := quorum.ParseTokenFile(signed)
		if err != nil {
			return fmt.Errorf("token: %w", err)
		}
		t, err := s.findQuorumTokenLocked(l, f.Approval)
		if err != nil {
			return err
		}
		keys, err := s.st.QuorumKeys()
		if err != nil {
			return storeErr(err)
		}
		approvers, err := quorum.Approvers(f, keys)
		if err != nil {
			return fmt.Errorf("token: %w", err)
		}
		ev := s.quorumEvent(audit.CN_APPROVE_TOKEN, fmt.Sprintf("service %s approvers %v", t.Service, approvers))
		if err := s.st.Audited(ev...).ApproveQuorumToken(t.ID, approvers); err != nil {
			return storeErr(err)
		}
		if !slices.Contains(l.approved, t.ID) {
			l.approved = append(l.approved, t.ID)
		}
		return nil
	})
}

// quorumGateLocked lets an operation of service svc through when value is
// 1 or less, or when this login approved a live token of the service with
// at least value approvers among eligible (nil: anyone); it uses that
// token up. Otherwise the error is refusal (the text CloudHSM CLI shows),
// or ErrExpired when the only candidate expired.
func (s *Slot) quorumGateLocked(svc quorum.Service, value int, eligible []string, refusal *quorum.Error) error {
	if value <= 1 {
		return nil
	}
	if s.login == nil || len(s.login.approved) == 0 {
		err := fmt.Errorf("token: %s quorum %d: %w", svc, value, refusal)
		s.quorumRefusedLocked(nil, audit.CN_APPROVE_TOKEN, "service "+string(svc), err)
		return err
	}
	ts, err := s.st.QuorumTokens()
	if err != nil {
		return storeErr(err)
	}
	now := quorumNow().Unix()
	why := error(refusal)
	for _, t := range ts {
		if !slices.Contains(s.login.approved, t.ID) || quorum.Service(t.Service) != svc || t.User != s.login.user {
			continue
		}
		if t.Expires <= now {
			why = quorum.ErrExpired
			continue
		}
		if quorum.Count(t.Approvers, eligible) < value {
			why = quorum.ErrTooFew
			continue
		}
		if err := s.st.ConsumeQuorumToken(t.ID); errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return storeErr(err)
		}
		s.login.approved = slices.DeleteFunc(s.login.approved, func(id int64) bool { return id == t.ID })
		return nil
	}
	err = fmt.Errorf("token: %s quorum %d: %w", svc, value, why)
	s.quorumRefusedLocked(nil, audit.CN_APPROVE_TOKEN, "service "+string(svc), err)
	return err
}

// userGateLocked is the user service's gate (officers approve).
func (s *Slot) userGateLocked() error {
	vs, err := s.quorumValuesLocked()
	if err != nil {
		return err
	}
	v := quorum.Value(vs, quorum.User)
	if v <= 1 {
		return nil
	}
	officers, _, _, err := s.officersLocked()
	if err != nil {
		return err
	}
	return s.quorumGateLocked(quorum.User, v, officers, quorum.ErrApprovalRequired)
}

// quorumDeleteGuardLocked refuses to delete an officer whose registered
// key the admin services' values need: with fewer registered officers
// than a value, nobody could approve that service again (CloudHSM's
// lockout that its M+1 advice is about).
func (s *Slot) quorumDeleteGuardLocked(name string) error {
	// A sharee takes its share with it: not below a key's values.
	ks, err := s.st.SharedKeyQuorums(name)
	if err != nil {
		return storeErr(err)
	}
	for _, k := range ks {
		if v := max(k.Use, k.Manage); v > 1 && k.Users-1 < v {
			return fmt.Errorf("token: %w", &quorum.Error{Code: quorum.CodeLockout, Text: fmt.Sprintf("Deleting %s would leave key %#x %d users, fewer than its quorum value %d: nobody could approve it again", name, k.ObjectID, k.Users-1, v), RV: ck.CKR_ACTION_PROHIBITED})
		}
	}
	_, registered, _, err := s.officersLocked()
	if err != nil || !slices.Contains(registered, name) {
		return err
	}
	vs, err := s.quorumValuesLocked()
	if err != nil {
		return err
	}
	for _, svc := range quorum.Services(s.prof.Identity.QuorumCluster) {
		if v := quorum.Value(vs, svc); v > 1 && len(registered)-1 < v {
			return fmt.Errorf("token: %w", &quorum.Error{Code: quorum.CodeLockout, Text: fmt.Sprintf("Deleting %s would leave %d admins with registered quorum keys, fewer than the %s service's quorum value %d: nobody could approve it again", name, len(registered)-1, svc, v), RV: ck.CKR_ACTION_PROHIBITED})
		}
	}
	return nil
}

// keyUsers are the users a key is associated with: its owner and the
// users it is shared with.
func keyUsers(o *Object) []string {
	return append([]string{o.owner}, o.shared...)
}

// keyUnshareGuard refuses an unshare that would leave a key fewer users
// than its quorum values: nobody could approve its use or management
// again (values must not exceed owner plus sharees, UG:quorum-auth-chsm-
// cli-service-names).
func keyUnshareGuard(o *Object, user string) error {
	if !slices.Contains(o.shared, user) {
		return nil
	}
	if left, v := len(keyUsers(o))-1, max(o.useQuorum, o.manageQuorum); v > 1 && left < v {
		return fmt.Errorf("token: %w", &quorum.Error{Code: quorum.CodeLockout, Text: fmt.Sprintf("Unsharing would leave the key %d users, fewer than its quorum value %d: nobody could approve it again", left, v), RV: ck.CKR_ACTION_PROHIBITED})
	}
	return nil
}

// keyGateLocked is a key's gate for a key service (value: the key's
// manage or use value).
func (s *Slot) keyGateLocked(o *Object, svc quorum.Service, value int) error {
	return s.quorumGateLocked(svc, value, keyUsers(o), quorum.ErrQuorumFailed)
}

// SetKeyQuorumValues sets a token key's use and manage quorum values
// (key generate/import --use-key-quorum-value, --manage-key-quorum-value),
// owner only, once: a key's values, once set, are not changed (else its
// owner could lift them alone). Each is 0 (none), or up to 8 and at most
// the number of users the key is associated with (owner and sharees).
func (m *Module) SetKeyQuorumValues(h, obj ck.ULong, use, manage int) error {
	se, err := m.session(h)
	if err != nil {
		return err
	}
	s := se.slot
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.login == nil || s.login.role != store.RoleCU {
		return fmt.Errorf("token: key quorum values: %w", ck.CKR_USER_NOT_LOGGED_IN)
	}
	o, err := s.visibleObjectLocked(obj, ck.CKR_OBJECT_HANDLE_INVALID)
	if err != nil {
		return err
	}
	if !o.token || o.class != ck.CKO_PRIVATE_KEY && o.class != ck.CKO_SECRET_KEY {
		// Public keys sign nothing and are never wrapped, shared or
		// changed under a quorum: their values are not read.
		return fmt.Errorf("token: key quorum values are for token secret and private keys: %w", ck.CKR_ACTION_PROHIBITED)
	}
	if o.owner != s.login.user {
		return fmt.Errorf("token: object %d belongs to %q: %w", obj, o.owner, ck.CKR_ACTION_PROHIBITED)
	}
	users := len(keyUsers(o))
	for _, v := range []int{use, manage} {
		if v < 0 || v > quorum.MaxValue || v > users && v > 1 {
			return fmt.Errorf("token: %w", &quorum.Error{Code: quorum.CodeBadValue, Text: fmt.Sprintf("Key quorum value %d must be 0 to %d and at most the key's %d associated users (owner and shared users)", v, quorum.MaxValue, users), RV: ck.CKR_ARGUMENTS_BAD})
		}
	}
	if o.useQuorum > 1 || o.manageQuorum > 1 {
		return fmt.Errorf("token: key %d has quorum values already: %w", obj, ck.CKR_ACTION_PROHIBITED)
	}
	if err := s.st.SetKeyQuorum(int64(obj), use, manage); err != nil {
		return storeErr(err)
	}
	delete(s.objs, obj)
	return nil
}

// KeyQuorumValues are a key's use and manage values (0 when none).
func (m *Module) KeyQuorumValues(h, obj ck.ULong) (use, manage int, err error) {
	se, err := m.session(h)
	if err != nil {
		return 0, 0, err
	}
	s := se.slot
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.visibleObjectLocked(obj, ck.CKR_OBJECT_HANDLE_INVALID)
	if err != nil {
		return 0, 0, err
	}
	return o.useQuorum, o.manageQuorum, nil
}

// The broken store has no quorum either.
func (b brokenStore) QuorumKeys() (map[string][]byte, error) { return nil, b.err }
func (b brokenStore) SetQuorumKey(string, []byte) error      { return b.err }
func (b brokenStore) QuorumValues() (map[string]int, error)  { return nil, b.err }
func (b brokenStore) SetQuorumValue(string, int) error       { return b.err }
func (b brokenStore) AddQuorumToken(store.QuorumToken, int64, bool, int) (int64, error) {
	return 0, b.err
}
func (b brokenStore) QuorumTokens() ([]store.QuorumToken, error) { return nil, b.err }
func (b brokenStore) ApproveQuorumToken(int64, []string) error   { return b.err }
func (b brokenStore) ConsumeQuorumToken(int64) error             { return b.err }
func (b brokenStore) DeleteQuorumTokens(string) (int, error)     { return 0, b.err }
func (b brokenStore) SetKeyQuorum(int64, int, int) error         { return b.err }
func (b brokenStore) SharedKeyQuorums(string) ([]store.KeyQuorumUsers, error) {
	return nil, b.err
}
