package token

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gohsm/internal/ck"
	"gohsm/mechanisms"
	"gohsm/token/audit"
	"gohsm/token/cluster"
	"gohsm/token/logincache"
	"gohsm/token/metrics"
	"gohsm/token/profile"
	"gohsm/token/store"
	"gohsm/token/store/postgres"
)

// Default user names: a PIN without "name:" logs in the default user of the
// role, so clients that know nothing of named users (pkcs11-tool, NSS) work.
const (
	DefaultCO = "admin"
	DefaultCU = "user"
)

// Slot is one configured slot and its token.
type Slot struct {
	m    *Module
	cfg  SlotConfig
	st   store.Store
	prof *profile.Profile // what the slot's profile decides (token/profile)
	// cl is the slot's emulated cluster (token/cluster), nil when the
	// slot's configuration has none: then nothing cluster-related runs.
	cl *cluster.Cluster
	// mt publishes the slot's operation counters (metrics.go), nil when
	// its metrics are off.
	mt *metrics.Process
	// ends brackets logouts and session closes for C_SignInit's hand-off
	// to C (csign.go).
	ends slotEnds
	// quotas are prof's object quotas for the store (quota.go).
	quotas []store.Quota
	// instance names this opening of the token in the store's login
	// registry (logins.go).
	instance int64
	// boot is this opening's audit reboot counter, 0 until its first
	// event (audit.go).
	boot uint32
	// auditSt is the store the cluster's events are written to, read
	// without s.mu (cluster.go), and the one the queued events of
	// session objects are flushed to (audit.go).
	auditSt atomic.Pointer[store.Store]
	// The flusher writes the store's queued audit events (audit.go): one
	// goroutine on a thread of its own, started at the first queued
	// event, woken through flushWake once flushArmed is set, stopped by
	// closing flushQuit (it closes flushDone as it ends).
	flushMu              sync.Mutex // guards the channels
	flushWake            chan struct{}
	flushQuit, flushDone chan struct{}
	flushArmed           atomic.Bool
	flushTID             atomic.Int64 // the flusher's OS thread (0: none)
	// lc is the slot's login cache (token/logincache), nil when its
	// login_cache is off; lcPlace names the token's place in its
	// entries, made at the first use (under mu).
	lc      *logincache.Cache
	lcPlace string

	// writes is read-held by key writes that run without mu
	// (addGeneratedLocked); a logout takes it (mu held) to wait for them.
	writes sync.RWMutex

	mu       slotLock               // writers: everything that changes the fields below; readers: useKeyFast
	login    *login                 // slot-wide login state of this process, nil when logged out
	sessions map[ck.ULong]*Session  // open sessions on this slot
	sessObjs map[ck.ULong]*Object   // session objects by handle
	objs     map[ck.ULong]*Object   // cache of token objects, dropped when the store changes
	keys     map[ck.ULong]cachedKey // parsed key material by handle, checked by version
	gen      uint64                 // store generation the cache reflects
	tokenRec *store.TokenRecord     // the token record as of tokenGen (nil: not read)
	tokenGen uint64
	info     *storeInfo            // what C_GetTokenInfo last read from the store (nil: nothing)
	nextSess ck.ULong              // next session-object handle
	lastUser map[store.Role]string // user named by the last login attempt per role, for token flags

	// bySession: session objects by session (sessobjs.go), made at the first one.
	bySession map[ck.ULong]map[ck.ULong]struct{}
}

// slotLock is the slot's read/write lock with an epoch that every write
// section advances as it ends: a session that remembers what the read
// side found (Session.fastKey) knows it is still true while the epoch
// (and the store's generation) are unchanged.
type slotLock struct {
	sync.RWMutex
	epoch atomic.Uint64
}

// Unlock ends a write section, advancing the epoch before readers can
// see the changes.
func (l *slotLock) Unlock() {
	l.epoch.Add(1)
	l.RWMutex.Unlock()
}

type cachedKey struct {
	version int64
	key     any
	// prepared holds, per mechanism, what the mechanism's Prepare made of
	// the key (an AES key schedule, say); it lives and dies with the key.
	// The *Prepared is made once and handed out as is (never modified).
	prepared map[ck.MechanismType]*mechanisms.Prepared
}

// tokenRecord returns the token record, read from the store only when the
// store changed since the last read (C_OpenSession asks on every call).
// A store that is not initialised gives store.ErrNotInitialized.
func (s *Slot) tokenRecord() (*store.TokenRecord, error) {
	g, err := s.st.Generation()
	if err != nil {
		return nil, storeErr(err)
	}
	s.mu.RLock() // the read side: no epoch advance, no queueing behind readers
	if s.tokenRec != nil && (s.tokenGen == g || s.cl != nil && s.cl.StoreDown() != nil) {
		// (A dropped store: as refreshLocked, the record read before.)
		t := s.tokenRec
		s.mu.RUnlock()
		return t, nil
	}
	s.mu.RUnlock()
	t, err := s.st.Token()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.tokenRec, s.tokenGen = t, g
	s.mu.Unlock()
	return t, nil
}

// login is the process-wide (per slot) login state: Cryptoki logins are
// slot-wide, not per session.
type login struct {
	user string
	role store.Role
	// secret is the user's secret: a crypto user's private key, or the
	// escrow's for an officer (to reset crypto users' passwords and to
	// give new officers their copy). keys is what it opens.
	secret []byte
	keys   *store.Keyring
	// dataKeys caches opened object data keys by object ID, checked by
	// version: an object loaded again after another process's commit
	// costs no unwrap.
	dataKeys map[int64]*objKey
	// approved lists the quorum tokens this login approved and has not
	// used yet (quorum.go).
	approved []int64
}

// sessionObjectBase is the first session-object handle; token objects use
// their store IDs, which stay far below it.
const sessionObjectBase = 0x40000000

func newSlot(m *Module, cfg SlotConfig, st store.Store, prof *profile.Profile) *Slot {
	s := &Slot{
		m: m, cfg: cfg, st: st, prof: prof, quotas: slotQuotas(prof, cfg), instance: store.NewInstance(),
		sessions: map[ck.ULong]*Session{},
		sessObjs: map[ck.ULong]*Object{},
		objs:     map[ck.ULong]*Object{},
		keys:     map[ck.ULong]cachedKey{},
		nextSess: sessionObjectBase,
		lastUser: map[store.Role]string{},
		lc:       newLoginCache(m, cfg),
	}
	s.setAuditStore(st)
	return s
}

// ID is the slot ID.
func (s *Slot) ID() ck.ULong { return s.cfg.ID }

// Config is the slot's configuration.
func (s *Slot) Config() SlotConfig { return s.cfg }

// Store is the slot's token store (for the management CLI and console):
// the audit events still queued are written first, so that a reader of
// the audit log in this process finds them there (audit.go).
func (s *Slot) Store() store.Store {
	s.flushAudit()
	return s.st
}

// SlotInfo is CK_SLOT_INFO without the C layout.
type SlotInfo struct {
	Description, Manufacturer string
	Flags                     ck.ULong
}

// SlotInfo answers C_GetSlotInfo: a virtual slot with its token always present.
func (s *Slot) SlotInfo() SlotInfo {
	si := SlotInfo{
		Description:  fmt.Sprintf("gohsm slot %d", s.cfg.ID),
		Manufacturer: "gohsm",
		Flags:        ck.CKF_TOKEN_PRESENT,
	}
	if in := s.prof.Sessions.Info; in.SlotDescription != "" {
		si.Description = fmt.Sprintf(in.SlotDescription, s.cfg.ID)
		si.Manufacturer = in.Manufacturer
	}
	return si
}

// TokenInfo is CK_TOKEN_INFO without the C layout.
type TokenInfo struct {
	Label, Manufacturer, Model, SerialNumber string
	Flags                                    ck.ULong
	MaxSessionCount, SessionCount            ck.ULong
	MaxRwSessionCount, RwSessionCount        ck.ULong
	MaxPinLen, MinPinLen                     ck.ULong
	UTCTime                                  string
	// Initialized: the store holds a token (an officer set it up), whatever
	// Flags say (a cloudhsm token always says it is initialised).
	Initialized bool
}

// TokenInfo answers C_GetTokenInfo.
func (s *Slot) TokenInfo() (TokenInfo, error) {
	ti := TokenInfo{
		Manufacturer:      "gohsm",
		Model:             "gohsm " + s.cfg.Profile,
		MaxSessionCount:   ck.CK_EFFECTIVELY_INFINITE,
		MaxRwSessionCount: ck.CK_EFFECTIVELY_INFINITE,
		MaxPinLen:         ck.ULong(s.maxPINLen()),
		MinPinLen:         ck.ULong(s.minPINLen()),
		UTCTime:           time.Now().UTC().Format("20060102150405") + "00",
		Flags:             ck.CKF_RNG | ck.CKF_CLOCK_ON_TOKEN,
	}
	ps := &s.prof.Sessions
	if ps.Info.Manufacturer != "" {
		ti.Manufacturer, ti.Model = ps.Info.Manufacturer, ps.Info.Model
	}
	if ps.MaxSessions > 0 {
		ti.MaxSessionCount = ck.ULong(ps.MaxSessions)
		ti.MaxRwSessionCount = ck.ULong(ps.MaxSessions)
	}
	if ps.AlwaysInitialized {
		// A CloudHSM cluster's token is initialised before any
		// application sees it, and its PINs are its crypto users' (SDK 2
		// reported 0x404, without CKF_USER_PIN_INITIALIZED, and libp11
		// refused the slot: "Found slot without user PIN", OpenSC/libp11#242).
		ti.Flags |= ck.CKF_TOKEN_INITIALIZED | ck.CKF_LOGIN_REQUIRED | ck.CKF_USER_PIN_INITIALIZED
	}
	s.mu.Lock()
	for _, se := range s.sessions {
		ti.SessionCount++
		if se.rw {
			ti.RwSessionCount++
		}
	}
	cu, co := s.lastUserName(store.RoleCU), s.lastUserName(store.RoleCO)
	cached := s.info
	s.mu.Unlock()
	g, gerr := s.st.Generation()
	si := cached
	if gerr != nil || si == nil || si.gen != g || si.cu != cu || si.co != co {
		var err error
		if si, err = s.readStoreInfo(cu, co); err != nil {
			return ti, storeErr(err)
		}
		if gerr == nil && si.complete {
			// Read after g: at least as new as g, so keyed by it; a commit
			// since moves the generation and the next call reads again.
			si.gen = g
			s.mu.Lock()
			s.info = si
			s.mu.Unlock()
		}
	}
	if si.rec == nil {
		ti.Label = s.cfg.Label
		ti.SerialNumber = fmt.Sprintf("%016d", s.cfg.ID)
		return ti, nil
	}
	ti.Label = si.rec.Label
	ti.SerialNumber = si.rec.SerialNumber
	ti.Initialized = true
	ti.Flags |= ck.CKF_TOKEN_INITIALIZED | ck.CKF_LOGIN_REQUIRED | si.flags
	return ti, nil
}

// storeInfo is what C_GetTokenInfo reads from the store: the token record
// and the flags its users give. It changes only with a commit, so the slot
// keeps the last one with the generation it was read at and the users it
// names (the last login attempt's), and a C_GetTokenInfo that finds the
// same reads nothing (before: the token record and two users on every
// call; TestTokenInfoReadsOncePerGeneration).
type storeInfo struct {
	gen    uint64
	cu, co string
	rec    *store.TokenRecord // nil: not initialised
	flags  ck.ULong
	// complete: every read answered (a user may be missing); a flag
	// left out because a read failed is not kept for the generation.
	complete bool
}

func (s *Slot) readStoreInfo(cu, co string) (*storeInfo, error) {
	si := &storeInfo{cu: cu, co: co, complete: true}
	t, err := s.st.Token()
	if errors.Is(err, store.ErrNotInitialized) {
		return si, nil
	}
	if err != nil {
		return nil, err
	}
	si.rec = t
	answered := func(err error) bool {
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			si.complete = false
		}
		return err == nil
	}
	u, err := s.st.User(cu)
	switch {
	case answered(err):
		if len(u.WrappedKey) > 0 {
			si.flags |= ck.CKF_USER_PIN_INITIALIZED
		}
		si.flags |= s.pinFlags(u, ck.CKF_USER_PIN_COUNT_LOW, ck.CKF_USER_PIN_FINAL_TRY, ck.CKF_USER_PIN_LOCKED)
	default:
		us, err := s.st.Users()
		if answered(err) {
			for _, u := range us {
				if u.Role == store.RoleCU && len(u.WrappedKey) > 0 {
					si.flags |= ck.CKF_USER_PIN_INITIALIZED
					break
				}
			}
		}
	}
	if u, err := s.st.User(co); answered(err) {
		si.flags |= s.pinFlags(u, ck.CKF_SO_PIN_COUNT_LOW, ck.CKF_SO_PIN_FINAL_TRY, ck.CKF_SO_PIN_LOCKED)
	}
	return si, nil
}

func (s *Slot) pinFlags(u *store.UserRecord, low, final, locked ck.ULong) ck.ULong {
	switch {
	case u.Locked, s.lockoutThreshold() > 0 && u.FailedLogins >= s.lockoutThreshold():
		// Failures at the threshold without the flag: attempts in flight,
		// or left by processes that died; BeginLogin refuses further ones.
		return locked
	case u.FailedLogins > 0 && u.FailedLogins == s.lockoutThreshold()-1:
		return low | final
	case u.FailedLogins > 0:
		return low
	}
	return 0
}

func (s *Slot) lastUserName(r store.Role) string {
	if n := s.lastUser[r]; n != "" {
		return n
	}
	if r == store.RoleCO {
		return DefaultCO
	}
	return DefaultCU
}

// storeErr maps store failures that are not Cryptoki errors already. A
// damaged token is CKR_TOKEN_NOT_RECOGNIZED, which C_GetTokenInfo,
// C_OpenSession and C_InitToken may return and clients show as such
// (pkcs11-tool -L prints "(token not recognized)").
func storeErr(err error) error {
	var rv ck.RV
	if errors.As(err, &rv) {
		return err
	}
	if errors.Is(err, store.ErrDamaged) || errors.Is(err, store.ErrFormat) {
		// ErrFormat: a token (or PostgreSQL schema) of another version,
		// which a store that opened before its database answered finds at
		// its first call; the error says what to do.
		return fmt.Errorf("token: %v: %w", err, ck.CKR_TOKEN_NOT_RECOGNIZED)
	}
	if errors.Is(err, store.ErrUnavailable) {
		// The database does not answer (within store_timeout): the
		// device failed this call; the next may work.
		return fmt.Errorf("token: %v: %w", err, ck.CKR_DEVICE_ERROR)
	}
	if store.IsFull(err) {
		return fmt.Errorf("token: store: %v: %w", err, ck.CKR_DEVICE_MEMORY)
	}
	return fmt.Errorf("token: store: %v: %w", err, ck.CKR_DEVICE_ERROR)
}

// splitPIN splits a CloudHSM-style "name:password" PIN; a PIN without a
// colon names the role's default user.
func splitPIN(pin []byte, role store.Role) (name string, password []byte) {
	if i := strings.IndexByte(string(pin), ':'); i >= 0 {
		return store.FoldName(string(pin[:i])), pin[i+1:]
	}
	if role == store.RoleCO {
		return DefaultCO, pin
	}
	return DefaultCU, pin
}

// checkUserName applies CloudHSM's rules: at most 31 characters, letters,
// digits and underscore; names are case-insensitive and kept lowercase.
func checkUserName(name string) error {
	if name == "" || len(name) > 31 {
		return fmt.Errorf("token: user name %q: 1 to 31 characters: %w", name, ck.CKR_ARGUMENTS_BAD)
	}
	for _, c := range name {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return fmt.Errorf("token: user name %q: only letters, digits and underscore: %w", name, ck.CKR_ARGUMENTS_BAD)
		}
	}
	return nil
}

func (s *Slot) checkPINLen(p []byte) error {
	if len(p) < s.minPINLen() || len(p) > s.maxPINLen() {
		return fmt.Errorf("token: password of %d bytes, want %d to %d: %w", len(p), s.minPINLen(), s.maxPINLen(), ck.CKR_PIN_LEN_RANGE)
	}
	return nil
}

// newUserRecord derives the password KEK and wraps the user's secret (a
// crypto user's private key, the escrow's for an officer) under it; public
// and escrow are the crypto user's public key and escrowed secret.
func (s *Slot) newUserRecord(name string, role store.Role, password, secret, public, escrow []byte) (store.UserRecord, error) {
	u := store.UserRecord{Name: name, Role: role, KDF: s.m.cfg.KDF, Salt: make([]byte, 16),
		KeyVersion: store.KeyV2, PublicKey: public, Escrow: escrow}
	if _, err := s.m.rand.Read(u.Salt); err != nil {
		return u, err
	}
	kek := store.DeriveKEK(password, u.Salt, u.KDF)
	defer clear(kek)
	w, err := store.WrapUserSecret(kek, secret, name)
	if err != nil {
		return u, err
	}
	u.WrappedKey = w
	return u, nil
}

// InitToken answers C_InitToken: pin is the first crypto officer's
// ("name:password", or a password for the default officer "admin"). An
// initialised token is re-initialised (every user and object removed) only
// when pin authenticates one of its crypto officers; so is a damaged one
// (its token record lost while users or objects remain), which once looked
// uninitialised and was wiped with any PIN. Only an empty store is
// initialised without an officer, and the store checks it is still empty
// in the transaction that initialises it.
func (s *Slot) InitToken(pin []byte, label string) error {
	name, password := splitPIN(pin, store.RoleCO)
	if err := checkUserName(name); err != nil {
		return fmt.Errorf("%v: %w", err, ck.CKR_PIN_INVALID)
	}
	if err := s.checkPINLen(password); err != nil {
		return err
	}
	if len(label) > 32 {
		return fmt.Errorf("token: label of %d bytes, at most 32: %w", len(label), ck.CKR_ARGUMENTS_BAD)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sessions) > 0 {
		return fmt.Errorf("token: init token: %w", ck.CKR_SESSION_EXISTS)
	}
	fresh := false
	var entries []string // the login cache's entries of the token's users
	if _, err := s.st.Token(); err == nil || errors.Is(err, store.ErrDamaged) {
		tk, err := s.authenticate(nil, name, store.RoleCO, password)
		if err != nil {
			return err
		}
		clear(tk)
		entries = s.cacheEntriesLocked()
	} else if errors.Is(err, store.ErrNotInitialized) {
		fresh = true
	} else {
		return storeErr(err)
	}
	escrowSec, escrowPub, err := store.NewUserSecret()
	if err != nil {
		return err
	}
	defer clear(escrowSec)
	co, err := s.newUserRecord(name, store.RoleCO, password, escrowSec, nil, nil)
	if err != nil {
		return err
	}
	serial := make([]byte, 8)
	s.m.rand.Read(serial)
	t := store.TokenRecord{Label: strings.TrimRight(label, " "), SerialNumber: fmt.Sprintf("%016x", serial), Created: time.Now().Unix(),
		EscrowPublic: escrowPub}
	// CloudHSM's first HSM logs CN_INIT_TOKEN, then the officer's
	// creation (UG-2023:interpreting-audit-logs.md).
	init := userEvent(audit.CN_INIT_TOKEN, name, store.RoleCO, audit.RespSuccess)
	init.Detail = "label " + t.Label
	audited := s.st.Audited(append(s.auditAll(nil, init), s.auditAll(nil, userEvent(audit.CN_CREATE_CO, name, store.RoleCO, audit.RespSuccess))...)...)
	write := audited.InitToken
	if fresh {
		write = audited.CreateToken
	}
	if err := write(t, co); errors.Is(err, store.ErrExists) {
		// Another process initialised it meanwhile; a new call
		// authenticates against that.
		return fmt.Errorf("token: init token: initialised meanwhile by another process: %w", ck.CKR_FUNCTION_FAILED)
	} else if err != nil {
		return storeErr(err)
	}
	s.objs = map[ck.ULong]*Object{}
	s.keys = map[ck.ULong]cachedKey{}
	for _, e := range entries {
		s.lc.Drop(e)
	}
	s.m.log.Info("gohsm: token initialised", "slot", s.cfg.ID, "label", t.Label, "officer", name)
	return nil
}

// testOnlyDerive, when set, is called with the parameters of every
// password derivation authenticate makes (the login tests count them).
var testOnlyDerive func(store.KDFParams)

// dummySalt salts the derivation made for a login naming no user of the
// role: its result is thrown away.
var dummySalt = make([]byte, 16)

func (s *Slot) derive(password, salt []byte, p store.KDFParams) []byte {
	if testOnlyDerive != nil {
		testOnlyDerive(p)
	}
	return store.DeriveKEK(password, salt, p)
}

// authenticate checks a user's password against the store, counting
// failures towards the lockout; it returns the user's secret
// (unlockLocked).
//
// A login naming no user of the role costs what a wrong password does: one
// derivation with the configured parameters (before, it answered in 0.2 ms
// against ~590 ms, with the same CKR, telling which users exist). A locked
// user answers CKR_PIN_LOCKED at once, as CloudHSM does: the answer already
// says the user exists, and deriving would only spend CPU for the guesser.
func (s *Slot) authenticate(se *Session, name string, role store.Role, password []byte) ([]byte, error) {
	s.lastUser[role] = name
	ev := func(code int) audit.Event { return userEvent(audit.CN_LOGIN, name, role, code) }
	u, err := s.st.User(name)
	if errors.Is(err, store.ErrNotFound) || err == nil && u.Role != role {
		s.auditAllAloneLocked(se, ev(audit.RespNoUser))
		if role == store.RoleCU && !s.prof.Identity.UnknownUserPINIncorrect && !s.anyUserPIN() {
			// Before any C_InitPIN: the spec's answer, which says nothing
			// C_GetTokenInfo's CKF_USER_PIN_INITIALIZED does not.
			return nil, fmt.Errorf("token: login %q: no crypto user has a password: %w", name, ck.CKR_USER_PIN_NOT_INITIALIZED)
		}
		// An unknown user looks like a wrong password.
		clear(s.derive(password, dummySalt, s.m.cfg.KDF))
		return nil, fmt.Errorf("token: login %q: no such %s: %w", name, roleName(role), ck.CKR_PIN_INCORRECT)
	}
	if err != nil {
		return nil, storeErr(err)
	}
	if u.Locked {
		s.auditAllAloneLocked(se, ev(audit.RespUserLocked))
		return nil, fmt.Errorf("token: login %q: %w", name, ck.CKR_PIN_LOCKED)
	}
	if len(u.WrappedKey) == 0 {
		s.auditAllAloneLocked(se, ev(audit.RespNoUser))
		return nil, fmt.Errorf("token: login %q: %w", name, ck.CKR_USER_PIN_NOT_INITIALIZED)
	}
	// A record out of bounds is damaged, never a crash or a hang: argon2
	// would allocate and run as the record says, with the slot's lock held.
	if err := checkUserRecord(u); err != nil {
		return nil, fmt.Errorf("token: login %q: damaged user record: %v: %w", name, err, ck.CKR_DEVICE_ERROR)
	}
	// The login cache: an entry that opens with this password holds the
	// KEK argon2 would derive. A wrong password never opens one, and goes
	// the whole way below, counted. Failures already at the threshold
	// (attempts in flight, or left by dead processes) are BeginLogin's to
	// settle, never the cache's.
	entry := s.cacheEntryLocked(u)
	var kek []byte
	if t := s.lockoutThreshold(); t <= 0 || u.FailedLogins < t {
		kek = s.cachedKEKLocked(entry, password)
	}
	if kek != nil {
		tk, err := s.unlockLocked(kek, u)
		clear(kek)
		if err == nil {
			return s.acceptLoginLocked(se, name, ev, tk)
		}
		s.lc.Drop(entry) // not what the record opens with: derive
	}
	// The attempt is counted as a failure before deriving (see BeginLogin).
	if err := s.st.BeginLogin(name, s.lockoutThreshold()); errors.Is(err, store.ErrLocked) {
		s.auditAllAloneLocked(se, ev(audit.RespUserLocked))
		return nil, fmt.Errorf("token: login %q: %w", name, ck.CKR_PIN_LOCKED)
	} else if err != nil {
		return nil, storeErr(err)
	}
	kek = s.derive(password, u.Salt, u.KDF)
	defer clear(kek)
	tk, err := s.unlockLocked(kek, u)
	if err != nil && !errors.Is(err, store.ErrWrongPassword) {
		// The password was right but its keys could not be opened (a
		// format-1 upgrade that failed): the reserved attempt is no
		// failure. Its own error, if any, says less than err.
		_ = s.st.LoginSucceeded(name)
		return nil, err
	}
	if err != nil {
		n, locked, ferr := s.st.Audited(s.auditAll(se, ev(audit.RespLoginFailure))...).LoginFailed(name, s.lockoutThreshold())
		if ferr != nil {
			return nil, storeErr(ferr)
		}
		if locked {
			s.lc.Drop(entry)
			// The lockout, after the failure that caused it.
			le := ev(audit.RespUserLocked)
			le.Detail = fmt.Sprintf("locked after %d failed logins", n)
			s.auditAllAloneLocked(se, le)
		}
		s.m.log.Warn("gohsm: wrong password", "slot", s.cfg.ID, "user", name, "failures", n, "locked", locked)
		if locked {
			return nil, fmt.Errorf("token: login %q: now locked after %d failures: %w", name, n, ck.CKR_PIN_INCORRECT)
		}
		return nil, fmt.Errorf("token: login %q: %w", name, ck.CKR_PIN_INCORRECT)
	}
	tk, err = s.acceptLoginLocked(se, name, ev, tk)
	if err == nil && entry != "" {
		s.lc.Store(entry, password, kek)
	}
	return tk, err
}

// acceptLoginLocked ends a login whose password was right, returning the
// user's secret tk: the audited success, after a re-check of the lock
// (attempts that ran meanwhile may have locked the user).
func (s *Slot) acceptLoginLocked(se *Session, name string, ev func(int) audit.Event, tk []byte) ([]byte, error) {
	if err := s.st.Audited(s.auditAll(se, ev(audit.RespSuccess))...).LoginSucceeded(name); err != nil {
		clear(tk)
		if errors.Is(err, store.ErrLocked) {
			s.auditAllAloneLocked(se, ev(audit.RespUserLocked))
			return nil, fmt.Errorf("token: login %q: locked meanwhile: %w", name, ck.CKR_PIN_LOCKED)
		}
		return nil, storeErr(err)
	}
	return tk, nil
}

// testOnlyKeyring, when set, is the keyring of the login caches made
// after (the tests' unusable keyring).
var testOnlyKeyring logincache.Keyring

// newLoginCache makes a slot's login cache: nil when its login_cache is
// off.
func newLoginCache(m *Module, cfg SlotConfig) *logincache.Cache {
	if cfg.LoginCache != LoginCacheKeyring {
		return nil
	}
	kr := logincache.Kernel
	if testOnlyKeyring != nil {
		kr = testOnlyKeyring
	}
	return logincache.New(kr, cfg.LoginCacheTTL, func(msg string, args ...any) {
		if m.log != nil {
			m.log.Info(msg, append(args, "slot", cfg.ID)...)
		}
	})
}

// cacheEntryLocked names u's login cache entry: "" when the slot has no
// cache, when u is a format-1 user (its first login rewrites its record)
// or when the token record cannot be read.
func (s *Slot) cacheEntryLocked(u *store.UserRecord) string {
	if s.lc == nil || u == nil || u.KeyVersion == store.KeyV1 {
		return ""
	}
	t, err := s.tokenRecordLocked()
	if err != nil {
		return ""
	}
	if s.lcPlace == "" {
		s.lcPlace = tokenPlace(s.cfg)
	}
	return logincache.Describe(logincache.Token{Place: s.lcPlace, Serial: t.SerialNumber}, u.Name, u.Salt, u.WrappedKey)
}

// cachedKEKLocked is the KEK of the login cache's entry when there is one
// and it opens with password, else nil.
func (s *Slot) cachedKEKLocked(entry string, password []byte) []byte {
	if entry == "" {
		return nil
	}
	return s.lc.Lookup(entry, password)
}

// cacheEntriesLocked names the login cache entries of every user of the
// token (best effort: none when the store cannot list them).
func (s *Slot) cacheEntriesLocked() []string {
	if s.lc == nil {
		return nil
	}
	us, err := s.st.Users()
	if err != nil {
		return nil
	}
	var es []string
	for i := range us {
		if e := s.cacheEntryLocked(&us[i]); e != "" {
			es = append(es, e)
		}
	}
	return es
}

// tokenRecordLocked is tokenRecord for a caller holding s.mu.
func (s *Slot) tokenRecordLocked() (*store.TokenRecord, error) {
	g, err := s.st.Generation()
	if err != nil {
		return nil, err
	}
	if s.tokenRec != nil && s.tokenGen == g {
		return s.tokenRec, nil
	}
	t, err := s.st.Token()
	if err != nil {
		return nil, err
	}
	s.tokenRec, s.tokenGen = t, g
	return t, nil
}

// tokenPlace names where a slot's token lives, for its login cache
// entries: the directory with its symbolic links resolved, or the
// PostgreSQL database (hosts, ports, database name; never the password).
func tokenPlace(sc SlotConfig) string {
	if sc.Postgres() {
		cfg, err := postgres.ParseURL(sc.Store)
		if err != nil {
			return "postgres:" + RedactURL(sc.Store)
		}
		// The hosts, each once: pgx adds a fallback per TLS mode
		// (sslmode=prefer tries TLS, then the same host without).
		hosts := []string{fmt.Sprintf("%s:%d", cfg.Host, cfg.Port)}
		for _, f := range cfg.Fallbacks {
			hosts = append(hosts, fmt.Sprintf("%s:%d", f.Host, f.Port))
		}
		slices.Sort(hosts)
		return "postgres:" + strings.Join(slices.Compact(hosts), ",") + "/" + cfg.Database
	}
	d, err := filepath.EvalSymlinks(sc.Dir)
	if err != nil {
		d, _ = filepath.Abs(sc.Dir)
	}
	return "dir:" + d
}

// maxRecordBlob bounds a user record's salt and wrapped key: far above what
// gohsm writes (16 and 60 bytes), low enough that hashing a salt costs
// nothing.
const maxRecordBlob = 64 << 10

// checkUserRecord bounds what authenticate takes from a user record before
// using it.
func checkUserRecord(u *store.UserRecord) error {
	if err := u.KDF.Validate(); err != nil {
		return err
	}
	if len(u.Salt) > maxRecordBlob || len(u.WrappedKey) > maxRecordBlob {
		return fmt.Errorf("token: salt of %d bytes, wrapped key of %d, at most %d", len(u.Salt), len(u.WrappedKey), maxRecordBlob)
	}
	if u.FailedLogins < 0 {
		// It would grant that many more guesses.
		return fmt.Errorf("token: failed login count %d", u.FailedLogins)
	}
	return nil
}

// anyUserPIN reports whether some crypto user has a password (a store that
// cannot say counts as yes, so the answer stays CKR_PIN_INCORRECT).
func (s *Slot) anyUserPIN() bool {
	us, err := s.st.Users()
	if err != nil {
		return true
	}
	for _, u := range us {
		if u.Role == store.RoleCU && len(u.WrappedKey) > 0 {
			return true
		}
	}
	return false
}

func roleName(r store.Role) string {
	if r == store.RoleCO {
		return "crypto officer"
	}
	return "crypto user"
}
