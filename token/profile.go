package token

import (
	"gohsm/internal/ck"
	"gohsm/token/profile"
)

// profileRules is what a slot's profile (configuration key "profile")
// decides: the role model as data. Everything that differs between
// profiles lives here, so that no rule is an if on the profile's name
// somewhere else.
type profileRules struct {
	// permissions: for each session state and action the Cryptoki error,
	// or 0 when allowed.
	permissions map[ck.State][numActions]ck.RV
}

// profiles' rules by name; token/config.go's list of known profiles names
// the same ones (TestEveryProfileHasRules).
var profileTable = map[string]*profileRules{
	"standard": &standardRules,
	"cloudhsm": &cloudhsmRules,
}

// cloudhsmRules: CloudHSM's permission table (cloudhsm-facts §1.1). An
// unauthenticated session may do nothing but read what is public: no key
// management and no crypto (the table's last column), so it neither uses
// nor makes keys or other objects. Officers (admin) manage users only, as
// in standard; crypto users do everything else. Read-only sessions do not
// exist (C_OpenSession refuses them, profile.Sessions.ReadOnlyError); their
// rows say what the R/W ones do.
var cloudhsmRules = profileRules{permissions: map[ck.State][numActions]ck.RV{
	ck.CKS_RO_PUBLIC_SESSION: cloudhsmPublic,
	ck.CKS_RW_PUBLIC_SESSION: cloudhsmPublic,
	ck.CKS_RO_USER_FUNCTIONS: standardRules.permissions[ck.CKS_RW_USER_FUNCTIONS],
	ck.CKS_RW_USER_FUNCTIONS: standardRules.permissions[ck.CKS_RW_USER_FUNCTIONS],
	ck.CKS_RW_SO_FUNCTIONS:   standardRules.permissions[ck.CKS_RW_SO_FUNCTIONS],
}}

var cloudhsmPublic = [numActions]ck.RV{
	actUseKey: ck.CKR_USER_NOT_LOGGED_IN, actCreateKey: ck.CKR_USER_NOT_LOGGED_IN,
	actWriteToken: ck.CKR_USER_NOT_LOGGED_IN, actCreatePublic: ck.CKR_USER_NOT_LOGGED_IN,
	actManageUsers: ck.CKR_USER_NOT_LOGGED_IN,
}

// standardRules: PKCS#11's session states (v3.0 section 5.5, "Session
// states"; 4.4 for CKA_PRIVATE) with CloudHSM's split of roles. Crypto
// officers manage users and nothing else (CloudHSM's admin); crypto users
// own and use keys. Without a login a session may use and create public
// objects, keys included: a R/O public session makes session objects, a
// R/W public session token objects too (owned by nobody, visible to all).
// A private object (CKA_PRIVATE true) needs a crypto user (newObjectLocked),
// and so does a token object with a secret attribute: only a login brings
// the key that seals it.
var standardRules = profileRules{permissions: map[ck.State][numActions]ck.RV{
	ck.CKS_RO_PUBLIC_SESSION: {
		actUseKey: 0, actCreateKey: 0, actWriteToken: ck.CKR_SESSION_READ_ONLY,
		actCreatePublic: 0, actManageUsers: ck.CKR_USER_NOT_LOGGED_IN,
	},
	ck.CKS_RW_PUBLIC_SESSION: {
		actUseKey: 0, actCreateKey: 0, actWriteToken: 0,
		actCreatePublic: 0, actManageUsers: ck.CKR_USER_NOT_LOGGED_IN,
	},
	ck.CKS_RO_USER_FUNCTIONS: {
		actUseKey: 0, actCreateKey: 0, actWriteToken: ck.CKR_SESSION_READ_ONLY,
		actCreatePublic: 0, actManageUsers: ck.CKR_USER_NOT_LOGGED_IN,
	},
	ck.CKS_RW_USER_FUNCTIONS: {
		actUseKey: 0, actCreateKey: 0, actWriteToken: 0,
		actCreatePublic: 0, actManageUsers: ck.CKR_USER_NOT_LOGGED_IN,
	},
	ck.CKS_RW_SO_FUNCTIONS: {
		actUseKey: ck.CKR_USER_NOT_LOGGED_IN, actCreateKey: ck.CKR_USER_NOT_LOGGED_IN, actWriteToken: ck.CKR_USER_NOT_LOGGED_IN,
		actCreatePublic: ck.CKR_USER_NOT_LOGGED_IN, actManageUsers: 0,
	},
}}

// rules are the slot's profile's permission table. The configuration
// admits only known profiles; a slot made without one (a test's
// SlotConfig literal) gets the standard profile.
func (s *Slot) rules() *profileRules {
	if r, ok := profileTable[s.cfg.Profile]; ok {
		return r
	}
	return &standardRules
}

// newProfile makes a slot's profile from its configuration; a slot made
// without one (a test's SlotConfig literal) gets the standard profile.
func newProfile(cfg SlotConfig) (*profile.Profile, error) {
	if cfg.Profile == "" {
		return profile.Standard(), nil
	}
	st := cfg.Settings
	if st == (profile.Settings{}) {
		st = profile.DefaultSettings(cfg.Profile)
	}
	return profile.New(cfg.Profile, st)
}

// lockoutThreshold, minPINLen and maxPINLen are the slot's: its own
// configuration's, else the module's.
func (s *Slot) lockoutThreshold() int {
	if s.cfg.LockoutThreshold > 0 {
		return s.cfg.LockoutThreshold
	}
	return s.m.cfg.LockoutThreshold
}

func (s *Slot) minPINLen() int {
	if s.cfg.MinPINLen > 0 {
		return s.cfg.MinPINLen
	}
	return s.m.cfg.MinPINLen
}

func (s *Slot) maxPINLen() int {
	if s.cfg.MaxPINLen > 0 {
		return s.cfg.MaxPINLen
	}
	return s.m.cfg.MaxPINLen
}

// Profile is the slot's profile.
func (s *Slot) Profile() *profile.Profile { return s.prof }
