package token

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"gohsm/internal/ck"
	"gohsm/mechanisms"
	"gohsm/token/audit"
	"gohsm/token/cluster"
	"gohsm/token/profile"
	"gohsm/token/store"
)

// Session is one Cryptoki session.
type Session struct {
	// Sessions are allocated next to each other, and every call writes its
	// session (mu, the operation): the pads keep one session's fields off
	// the cache lines of whatever the allocator put beside it, another
	// session used from another thread say. Without them, 2-session HMAC
	// spent 8% of its cycles missing on se.h, se.fastKey and se.mu in
	// sessionTable.load, useKeyFast, activeOp and done (docs/bench.md).
	_ cacheLinePad

	h     ck.ULong
	slot  *Slot
	rw    bool
	rules *profileRules // the slot's profile's, looked up once at C_OpenSession

	mu   sync.Mutex // serialises calls on the session
	ops  [numOpKinds]*operation
	wrap wrapCache // last C_WrapKey output awaiting a retry
	// opMem is where C_*Init puts each kind's operation: at most one
	// operation of a kind is active on a session, so its memory is reused
	// rather than allocated on every C_*Init (the garbage collector's share
	// of 2 cores under small-operation load). endOp clears it. Made at the
	// first C_*Init, so that opening a session stays cheap.
	opMem *[numOpKinds]operation
	// fastKey is the last key useKeyFast handed this session (se.mu held),
	// valid while the slot's epoch and the store's generation are those
	// it was found under: a session using one key over and over takes no
	// slot lock at all.
	fastKey struct {
		ok         bool
		h          ck.ULong
		mech       ck.MechanismType
		purpose    ck.AttributeType
		epoch, gen uint64
		key        any
		auth       bool // the key has CKA_ALWAYS_AUTHENTICATE
	}
	// authKind is the kind of the operation last started with a
	// CKA_ALWAYS_AUTHENTICATE key: the one C_Login(CKU_CONTEXT_SPECIFIC)
	// authorises, while it still waits (operation.needAuth).
	authKind opKind
	// handedEver: an operation of the session was handed to C once
	// (csign.go): its record is dropped when the session closes or logs
	// out.
	handedEver atomic.Bool

	_ cacheLinePad
}

// cacheLinePad is one cache line of padding (64 bytes on amd64 and arm64).
type cacheLinePad [64]byte

// newOp returns the session's operation of a kind, reset (se.mu held).
func (se *Session) newOp(kind opKind, mm *mechanisms.Mechanism) *operation {
	if se.opMem == nil {
		se.opMem = new([numOpKinds]operation)
	}
	op := &se.opMem[kind]
	*op = operation{mech: mm}
	return op
}

// endOp ends the operation of a kind (se.mu held) and drops what it
// referenced.
func (se *Session) endOp(kind opKind) {
	if op := se.ops[kind]; op != nil {
		if op.handed {
			op.handed = false
			se.slot.m.csign.Settle(se.h) // ended there or here: over either way
		}
		// The operation's memory may serve the next one (CKM_ECDSA's
		// signers, the digests' hash states): nothing here uses it again.
		if r, ok := op.signer.(mechanisms.Releaser); ok {
			r.Release()
		}
		if r, ok := op.digester.(mechanisms.Releaser); ok {
			r.Release()
		}
	}
	if se.opMem != nil && se.ops[kind] == &se.opMem[kind] {
		se.opMem[kind] = operation{}
	}
	se.ops[kind] = nil
}

// Handle is the session handle.
func (se *Session) Handle() ck.ULong { return se.h }

// Slot is the session's slot.
func (se *Session) Slot() *Slot { return se.slot }

// action is what a call wants to do; the permission table says, per session
// state, whether it may.
type action int

const (
	actUseKey       action = iota // crypto with a key: encrypt, decrypt, sign, verify, digest
	actCreateKey                  // generate, create, copy keys
	actWriteToken                 // create, modify or destroy a token object
	actCreatePublic               // create a non-key object (data, certificate)
	actManageUsers                // C_InitPIN
	numActions
)

var actionNames = [numActions]string{"use a key", "create a key", "write a token object", "create an object", "manage users"}

// stateLocked is the session state; s.slot.mu must be held.
func (se *Session) stateLocked() ck.State {
	l := se.slot.login
	switch {
	case l != nil && l.role == store.RoleCO:
		return ck.CKS_RW_SO_FUNCTIONS
	case l != nil && se.rw:
		return ck.CKS_RW_USER_FUNCTIONS
	case l != nil:
		return ck.CKS_RO_USER_FUNCTIONS
	case se.rw:
		return ck.CKS_RW_PUBLIC_SESSION
	}
	return ck.CKS_RO_PUBLIC_SESSION
}

// allowLocked checks the permission table; s.slot.mu must be held.
func (se *Session) allowLocked(a action) error {
	st := se.stateLocked()
	if rv := se.rules.permissions[st][a]; rv != 0 {
		return fmt.Errorf("token: %s in state %v: %w", actionNames[a], st, rv)
	}
	return nil
}

// OpenSession answers C_OpenSession.
func (m *Module) OpenSession(slotID ck.ULong, flags ck.ULong) (ck.ULong, error) {
	s, err := m.Slot(slotID)
	if err != nil {
		return 0, err
	}
	if err := s.fault(cluster.FuncOpenSession); err != nil {
		return 0, err
	}
	if flags&ck.CKF_SERIAL_SESSION == 0 {
		return 0, fmt.Errorf("token: open session: %w", ck.CKR_SESSION_PARALLEL_NOT_SUPPORTED)
	}
	rw := flags&ck.CKF_RW_SESSION != 0
	ps := &s.prof.Sessions
	if !rw && ps.ReadOnlyError != 0 {
		return 0, fmt.Errorf("token: open session: read-only sessions are not supported in profile %s: %w", s.prof.Name, ps.ReadOnlyError)
	}
	if _, err := s.tokenRecord(); errors.Is(err, store.ErrNotInitialized) {
		// A cloudhsm token is initialised from the application's view
		// (its first officer comes through the CLI); logins fail until
		// then, as for an unknown user.
		if !ps.AlwaysInitialized {
			return 0, fmt.Errorf("token: open session: slot %d: %w", slotID, ck.CKR_TOKEN_NOT_RECOGNIZED)
		}
	} else if err != nil {
		return 0, storeErr(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ps.MaxSessions > 0 && len(s.sessions) >= ps.MaxSessions {
		return 0, fmt.Errorf("token: open session: %d sessions open, the most one application may have: %w", len(s.sessions), ps.SessionCountError)
	}
	if !rw && s.login != nil && s.login.role == store.RoleCO {
		return 0, fmt.Errorf("token: open session: %w", ck.CKR_SESSION_READ_WRITE_SO_EXISTS)
	}
	h := ck.ULong(m.nextHandle.Add(1))
	se := &Session{h: h, slot: s, rw: rw, rules: s.rules()}
	s.sessions[h] = se
	m.sessions.store(se)
	return h, nil
}

// CloseSession answers C_CloseSession.
func (m *Module) CloseSession(h ck.ULong) error {
	se, err := m.session(h)
	if err != nil {
		return err
	}
	s := se.slot
	defer s.flushAudit() // after the unlock: the session's queued events
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropSessionLocked(se)
	return nil
}

// CloseAllSessions answers C_CloseAllSessions.
func (m *Module) CloseAllSessions(slotID ck.ULong) error {
	s, err := m.Slot(slotID)
	if err != nil {
		return err
	}
	defer s.flushAudit()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropAllSessionsLocked()
	return nil
}

func (s *Slot) dropAllSessionsLocked() {
	for _, se := range s.sessions {
		s.dropSessionLocked(se)
	}
}

// dropSessionLocked ends a session: its session objects die with it, and
// closing the last session logs the slot out (spec 5.6, C_CloseSession).
func (s *Slot) dropSessionLocked(se *Session) {
	s.ends.begin()
	defer s.ends.end()
	delete(s.sessions, se.h)
	s.m.sessions.delete(se)
	s.dropHandedLocked(se)
	s.dropSessionObjectsLocked(se.h)
	if len(s.sessions) == 0 {
		s.logoutLocked(se, audit.CN_CLOSE_SESSION)
	}
}

// SessionInfo is CK_SESSION_INFO.
type SessionInfo struct {
	SlotID ck.ULong
	State  ck.State
	Flags  ck.ULong
}

// SessionInfo answers C_GetSessionInfo.
func (m *Module) SessionInfo(h ck.ULong) (SessionInfo, error) {
	se, err := m.session(h)
	if err != nil {
		return SessionInfo{}, err
	}
	se.slot.mu.Lock()
	defer se.slot.mu.Unlock()
	fl := ck.ULong(ck.CKF_SERIAL_SESSION)
	if se.rw {
		fl |= ck.CKF_RW_SESSION
	}
	return SessionInfo{SlotID: se.slot.cfg.ID, State: se.stateLocked(), Flags: fl}, nil
}

func roleOf(ut ck.UserType) (store.Role, error) {
	switch ut {
	case ck.CKU_SO:
		return store.RoleCO, nil
	case ck.CKU_USER:
		return store.RoleCU, nil
	case ck.CKU_CONTEXT_SPECIFIC:
		// Not a role: Login and LoginUser send it to contextLogin first.
		return 0, fmt.Errorf("token: context-specific login: %w", ck.CKR_OPERATION_NOT_INITIALIZED)
	}
	return 0, fmt.Errorf("token: user type %d: %w", ut, ck.CKR_USER_TYPE_INVALID)
}

// Login answers C_Login: pin is "name:password" or a password for the
// role's default user.
func (m *Module) Login(h ck.ULong, ut ck.UserType, pin []byte) (err error) {
	if s, t0 := m.begin(h); s != nil {
		defer s.record(cluster.ClassManage, t0, &err)
	}
	if err := m.loginFault(h); err != nil {
		return err
	}
	if ut == ck.CKU_CONTEXT_SPECIFIC {
		name := ""
		if i := strings.IndexByte(string(pin), ':'); i >= 0 {
			name, pin = store.FoldName(string(pin[:i])), pin[i+1:]
		}
		return m.contextLogin(h, name, pin)
	}
	role, err := roleOf(ut)
	if err != nil {
		return err
	}
	if err := m.checkPINForm(h, pin); err != nil {
		return err
	}
	name, password := splitPIN(pin, role)
	return m.loginUser(h, role, name, password)
}

// checkPINForm applies the profile's PIN format: cloudhsm's PINs are
// "name:password" (UG pkcs11-pin); a bare password names nobody.
func (m *Module) checkPINForm(h ck.ULong, pin []byte) error {
	se, err := m.session(h)
	if err != nil {
		return err
	}
	id := &se.slot.prof.Identity
	if id.NamedPINOnly && strings.IndexByte(string(pin), ':') < 0 {
		return fmt.Errorf("token: login: the PIN is not name:password: %w", id.BarePINError)
	}
	return nil
}

// LoginUser answers C_LoginUser (3.0): the user name comes separately.
func (m *Module) LoginUser(h ck.ULong, ut ck.UserType, pin []byte, name string) (err error) {
	if s, t0 := m.begin(h); s != nil {
		defer s.record(cluster.ClassManage, t0, &err)
	}
	if err := m.loginFault(h); err != nil {
		return err
	}
	if ut == ck.CKU_CONTEXT_SPECIFIC {
		return m.contextLogin(h, store.FoldName(name), pin)
	}
	role, err := roleOf(ut)
	if err != nil {
		return err
	}
	return m.loginUser(h, role, store.FoldName(name), pin)
}

// loginFault is a fault plan's failure of C_Login on the session's slot.
func (m *Module) loginFault(h ck.ULong) error {
	se, err := m.session(h)
	if err != nil {
		return err
	}
	return se.slot.fault(cluster.FuncLogin)
}

func (m *Module) loginUser(h ck.ULong, role store.Role, name string, password []byte) error {
	se, err := m.session(h)
	if err != nil {
		return err
	}
	s := se.slot
	// A login reaches the cluster's HSMs (none reachable: CKR_DEVICE_ERROR).
	if _, err := s.admitAny(cluster.ClassManage); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.login != nil {
		if s.login.role == role {
			return fmt.Errorf("token: login: %w", ck.CKR_USER_ALREADY_LOGGED_IN)
		}
		return fmt.Errorf("token: login: %w", ck.CKR_USER_ANOTHER_ALREADY_LOGGED_IN)
	}
	if role == store.RoleCO {
		for _, o := range s.sessions {
			if !o.rw {
				return fmt.Errorf("token: login as crypto officer: %w", ck.CKR_SESSION_READ_ONLY_EXISTS)
			}
		}
	}
	sec, err := s.authenticate(se, name, role, password)
	if err != nil {
		return err
	}
	keys, err := store.NewKeyring(sec)
	if err != nil {
		clear(sec)
		return fmt.Errorf("token: login %q: %v: %w", name, err, ck.CKR_DEVICE_ERROR)
	}
	if err := s.registerLoginLocked(name); err != nil {
		clear(sec)
		return err
	}
	s.login = &login{user: name, role: role, secret: sec, keys: keys, dataKeys: map[int64]*objKey{}}
	// Objects loaded while logged out lack their secrets; reload them.
	s.objs = map[ck.ULong]*Object{}
	s.m.log.Info("gohsm: login", "slot", s.cfg.ID, "user", name, "role", roleName(role))
	return nil
}

// contextLogin answers C_Login(CKU_CONTEXT_SPECIFIC): the logged-in crypto
// user's password again, for the operation just started with a
// CKA_ALWAYS_AUTHENTICATE key (PKCS#11 v3.0 C_Login; v2.20 §10.9). Right,
// it authorises that one operation until it ends; wrong, it is
// CKR_PIN_INCORRECT, counts towards the user's lockout like any wrong
// password, and the operation still waits; a user locked meanwhile is
// CKR_PIN_LOCKED and is logged out. With no operation waiting for it
// (none started, or its key lacks the attribute, or already authorised)
// it is CKR_OPERATION_NOT_INITIALIZED and an active operation is left as
// it was. name, when given ("name:password" or C_LoginUser), must be the
// logged-in user's.
func (m *Module) contextLogin(h ck.ULong, name string, password []byte) error {
	se, err := m.session(h)
	if err != nil {
		return err
	}
	se.mu.Lock()
	defer se.mu.Unlock()
	op := se.ops[se.authKind]
	if op == nil || !op.needAuth {
		// Another kind may still wait (two started before the login).
		op = nil
		for _, o := range se.ops {
			if o != nil && o.needAuth {
				op = o
				break
			}
		}
	}
	if op == nil {
		return fmt.Errorf("token: context-specific login: no operation waits for one: %w", ck.CKR_OPERATION_NOT_INITIALIZED)
	}
	s := se.slot
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.login
	if l == nil || l.role != store.RoleCU {
		// Logging out ends every operation; this is a guard.
		return fmt.Errorf("token: context-specific login: %w", ck.CKR_USER_NOT_LOGGED_IN)
	}
	if name != "" && name != l.user {
		return fmt.Errorf("token: context-specific login: logged in as %q, not %q: %w", l.user, name, ck.CKR_PIN_INCORRECT)
	}
	tk, err := s.authenticate(se, l.user, store.RoleCU, password)
	if errors.Is(err, ck.CKR_PIN_LOCKED) {
		s.m.log.Info("gohsm: logout: user locked", "slot", s.cfg.ID, "user", l.user)
		s.logoutLocked(se, audit.CN_LOGOUT)
	}
	if err != nil {
		return err
	}
	clear(tk)
	op.needAuth = false
	return nil
}

// Logout answers C_Logout.
func (m *Module) Logout(h ck.ULong) error {
	se, err := m.session(h)
	if err != nil {
		return err
	}
	s := se.slot
	if err := s.fault(cluster.FuncLogout); err != nil {
		return err
	}
	defer s.flushAudit()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.login == nil {
		return fmt.Errorf("token: logout: %w", ck.CKR_USER_NOT_LOGGED_IN)
	}
	s.logoutLocked(se, audit.CN_LOGOUT)
	return nil
}

// logoutLocked forgets the login: private session objects become
// unreachable (spec: they are destroyed), and every operation ends. op is
// the audit record of the logout: CN_LOGOUT for C_Logout, CN_CLOSE_SESSION
// when the last session closed, CN_APP_FINALIZE at C_Finalize (CloudHSM
// logs those when an application ends without logging out).
func (s *Slot) logoutLocked(se *Session, op audit.Opcode) {
	if s.login == nil {
		return
	}
	// Key writes of this login still in the store end first.
	s.writes.Lock()
	s.writes.Unlock() //lint:ignore SA2001 only waits for the writes
	s.unregisterLoginLocked(s.auditEvent(se, userEvent(op, s.login.user, s.login.role, audit.RespSuccess)))
	clear(s.login.secret)
	for _, k := range s.login.dataKeys {
		clear(k.dk)
	}
	s.login = nil
	for h, o := range s.sessObjs {
		if o.private {
			s.removeSessObjLocked(h)
		}
	}
	s.ends.begin()
	defer s.ends.end()
	for _, se := range s.sessions {
		for i := range se.ops {
			se.ops[i] = nil
		}
		s.dropHandedLocked(se)
	}
	s.forgetSecretsLocked() // empties s.keys and s.objs
}

// InitPIN answers C_InitPIN (crypto officer only): pin is "name:password" for
// a crypto user, created if missing, or a password for the default crypto
// user. Setting a password unlocks the user.
func (m *Module) InitPIN(h ck.ULong, pin []byte) error {
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
	if !se.rw {
		return fmt.Errorf("token: init pin: %w", ck.CKR_SESSION_READ_ONLY)
	}
	name, password := splitPIN(pin, store.RoleCU)
	if err := checkUserName(name); err != nil {
		return fmt.Errorf("%v: %w", err, ck.CKR_PIN_INVALID)
	}
	// An officer creating a user or setting its password: the user
	// quorum service's, which Cryptoki cannot approve (quorum.go).
	if err := s.userGateLocked(); err != nil {
		return err
	}
	return s.setPasswordLocked(se, name, store.RoleCU, password, true)
}

// setPasswordLocked sets a user's password (creating the user when create
// is set). The user keeps its secret: an officer resetting a crypto
// user's password opens it through the escrow (userSecretForLocked).
//
// Another process may create or delete the user between the read and the
// write (the slot's lock is this process's only). With create set, the
// call is then tried once more, and ends as if it had come after the
// other process's: it sets the password of the user that now exists, or
// creates the one that no longer does. Without create, or when the user
// changes again, the answer is the mistake (user_exists, no_such_user),
// never CKR_DEVICE_ERROR: the token is not broken.
func (s *Slot) setPasswordLocked(se *Session, name string, role store.Role, password []byte, create bool) error {
	err := s.setPasswordOnceLocked(se, name, role, password, create)
	if c := MistakeCode(err); create && (c == CodeUserExists || c == CodeNoSuchUser) {
		err = s.setPasswordOnceLocked(se, name, role, password, create)
	}
	return err
}

func (s *Slot) setPasswordOnceLocked(se *Session, name string, role store.Role, password []byte, create bool) error {
	if err := s.checkPINLen(password); err != nil {
		return err
	}
	if s.login == nil {
		return fmt.Errorf("token: set password: %w", ck.CKR_USER_NOT_LOGGED_IN)
	}
	old, err := s.st.User(name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return storeErr(err)
	}
	if errors.Is(err, store.ErrNotFound) && !create {
		return errNoSuchUser(name)
	}
	if old != nil && old.Role != role {
		return fmt.Errorf("token: user %q is a %s: %w", name, roleName(old.Role), ck.CKR_PIN_INVALID)
	}
	if old != nil && s.prof.Identity.NoPasswordChangeWhileLoggedIn {
		if err := s.loggedInElsewhereLocked(name, "set password"); err != nil {
			e := userEvent(audit.CN_CHANGE_PSWD, name, role, audit.RespUserInUse)
			e.Detail = "logged in"
			s.auditAloneLocked(se, e) // a refusal: the HSM that ran it
			return err
		}
	}
	sec, pub, escrow, err := s.userSecretForLocked(name, role, old)
	if err != nil {
		return err
	}
	defer clear(sec)
	u, err := s.newUserRecord(name, role, password, sec, pub, escrow)
	if err != nil {
		return err
	}
	if old == nil {
		err = s.st.Audited(s.auditAll(se, userEvent(createOp(role), name, role, audit.RespSuccess))...).CreateUser(u)
	} else {
		err = s.st.Audited(s.auditAll(se, userEvent(audit.CN_CHANGE_PSWD, name, role, audit.RespSuccess))...).UpdateUser(u)
	}
	switch {
	case old == nil && errors.Is(err, store.ErrExists):
		return errUserExists(name) // made by another process since the read
	case old != nil && errors.Is(err, store.ErrNotFound):
		return errNoSuchUser(name) // deleted by another process since the read
	case err != nil:
		return storeErr(err)
	}
	s.lc.Drop(s.cacheEntryLocked(old)) // the old password's entry, if any
	s.m.log.Info("gohsm: password set", "slot", s.cfg.ID, "user", name)
	return nil
}

// SetPIN answers C_SetPIN: logged in, it changes the logged-in user's
// password; logged out, the user named by oldPIN (default crypto user).
func (m *Module) SetPIN(h ck.ULong, oldPIN, newPIN []byte) error {
	se, err := m.session(h)
	if err != nil {
		return err
	}
	s := se.slot
	s.mu.Lock()
	defer s.mu.Unlock()
	if !se.rw {
		return fmt.Errorf("token: set pin: %w", ck.CKR_SESSION_READ_ONLY)
	}
	role := store.RoleCU
	if s.login != nil {
		role = s.login.role
	}
	name, oldPass := splitPIN(oldPIN, role)
	if s.login != nil && name != s.login.user {
		if strings.IndexByte(string(oldPIN), ':') < 0 {
			name = s.login.user
		} else {
			return fmt.Errorf("token: set pin: logged in as %q, not %q: %w", s.login.user, name, ck.CKR_PIN_INCORRECT)
		}
	}
	newName, newPass := splitPIN(newPIN, role)
	if strings.IndexByte(string(newPIN), ':') >= 0 && newName != name {
		return fmt.Errorf("token: set pin: new pin names %q, not %q: %w", newName, name, ck.CKR_PIN_INVALID)
	}
	if err := s.checkPINLen(newPass); err != nil {
		return err
	}
	sec, err := s.authenticate(se, name, role, oldPass)
	if err != nil {
		return err
	}
	defer clear(sec)
	old, err := s.st.User(name)
	if err != nil {
		return storeErr(err)
	}
	u, err := s.newUserRecord(name, role, newPass, sec, old.PublicKey, old.Escrow)
	if err != nil {
		return err
	}
	if err := s.st.Audited(s.auditAll(se, userEvent(audit.CN_CHANGE_PSWD, name, role, audit.RespSuccess))...).UpdateUser(u); err != nil {
		return storeErr(err)
	}
	s.lc.Drop(s.cacheEntryLocked(old)) // the old password's entry
	return nil
}

// opKind indexes a session's active operations: Cryptoki allows one of each
// kind at a time.
type opKind int

const (
	opFind opKind = iota
	opEncrypt
	opDecrypt
	opDigest
	opSign
	opVerify
	opSignRecover
	opVerifyRecover
	opMessageEncrypt
	opMessageDecrypt
	numOpKinds
)

// operation is one active operation of a session.
type operation struct {
	mech     *mechanisms.Mechanism
	cipher   mechanisms.Cipher
	signer   mechanisms.Signer
	verifier mechanisms.Verifier
	digester mechanisms.Digester
	// sign/verify recover: the key and parameter, used at the one call.
	key   any
	param any
	// message-based AEAD: the context, and a multi-part message being
	// assembled between C_*MessageBegin and the last C_*MessageNext.
	aead     mechanisms.MessageAEAD
	inMsg    bool
	msgAAD   []byte
	msgParam *mechanisms.MessageParams
	msgBuf   []byte
	found    []ck.ULong // find results not yet returned
	multi    bool       // an Update was made
	// needAuth: the key has CKA_ALWAYS_AUTHENTICATE and no
	// C_Login(CKU_CONTEXT_SPECIFIC) has authorised this operation yet.
	needAuth bool
	// pending holds an output computed but not yet delivered (the caller's
	// buffer was too short): the retry gets the same bytes (ECDSA signatures
	// are randomised, so recomputing would not do).
	pending    []byte
	hasPending bool
	// rule is what the slot's profile adds to the mechanism (nil: nothing,
	// the standard profile), and inSum the input counted against its cap
	// (token/crypto.go, take).
	rule  *profile.Rule
	inSum int
	// cl is the slot's cluster when it has one (nil: the one comparison
	// a call pays without a cluster), route where the operation runs,
	// cls the class of its single-part calls and Finals, updCls of its
	// Updates (token/cluster.go).
	cl          *cluster.Cluster
	route       cluster.Route
	cls, updCls cluster.Class
	// handed: C_Sign is answered in C for this operation (csign.go); any
	// Go call that uses or ends it takes it back first (settleLocked).
	handed bool
}
