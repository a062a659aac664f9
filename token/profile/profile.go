// Package profile holds what a slot's profile decides: every way in which
// gohsm's "cloudhsm" profile (AWS CloudHSM, Client SDK 5) differs from its
// "standard" one (PKCS#11 as specified). The token asks its slot's Profile
// at the few points where the two differ and never compares profile names.
//
// Each concern has its own file and its own part of Profile: identity.go
// (PINs, user names, who may change whom), sessions.go (sessions, token and
// slot as the application sees them, unsupported functions), attributes.go
// (defaults, read-only and unsupported attributes), limits.go (key sizes
// and quotas), mechanisms.go (the mechanism list and its rules). Every
// difference is a row in docs/cloudhsm.md with the test that proves it.
package profile

import (
	"fmt"

	"gohsm/token/attrs"
)

// Names of the known profiles, in the order the configuration lists them.
var Names = []string{"standard", "cloudhsm"}

// HSM types of the cloudhsm profile (CloudHSM's hsm1.medium and
// hsm2m.medium): they differ in quotas (cloudhsm-facts §1.5).
const (
	HSM1  = "hsm1"
	HSM2M = "hsm2m"
)

// Settings are a slot's profile settings from the configuration.
type Settings struct {
	// HSMType is hsm1 or hsm2m (cloudhsm only; default hsm2m).
	HSMType string
	// FIPS is the cluster mode (cloudhsm only; default true, like a new
	// cluster).
	FIPS bool
}

// DefaultSettings are a profile's settings when the configuration says
// nothing.
func DefaultSettings(name string) Settings {
	if name == "cloudhsm" {
		return Settings{HSMType: HSM2M, FIPS: true}
	}
	return Settings{}
}

// Profile is one slot's profile: its name, its settings and what they
// decide.
type Profile struct {
	Name     string
	Settings Settings

	Identity   Identity
	Sessions   Sessions
	Attributes attrs.Policy
	Limits     Limits
	Mechanisms Mechanisms
}

// Defaults are the configuration values a profile brings when the
// configuration sets none (CloudHSM: lockout after 5 wrong passwords,
// passwords of 8 to 32 characters).
type Defaults struct {
	LockoutThreshold     int
	MinPINLen, MaxPINLen int
}

// ConfigDefaults are the profile's defaults for configuration keys the
// configuration may also set.
func ConfigDefaults(name string) Defaults {
	if name == "cloudhsm" {
		return Defaults{LockoutThreshold: 5, MinPINLen: 8, MaxPINLen: 32}
	}
	return Defaults{LockoutThreshold: 5, MinPINLen: 4, MaxPINLen: 64}
}

// Known reports whether name is a profile.
func Known(name string) bool {
	for _, n := range Names {
		if n == name {
			return true
		}
	}
	return false
}

// New makes the profile called name with settings s.
func New(name string, s Settings) (*Profile, error) {
	switch name {
	case "standard":
		return &Profile{Name: name, Settings: s,
			Identity: standardIdentity(), Sessions: standardSessions(), Attributes: standardAttributes(),
			Limits: standardLimits(), Mechanisms: standardMechanisms()}, nil
	case "cloudhsm":
		if s.HSMType != HSM1 && s.HSMType != HSM2M {
			return nil, fmt.Errorf("profile: hsm_type %q: want hsm1 or hsm2m", s.HSMType)
		}
		if !s.FIPS && s.HSMType == HSM1 {
			// cloudhsm-facts §2.10: non-FIPS clusters exist only on hsm2m.medium.
			return nil, fmt.Errorf("profile: fips = false needs hsm_type = hsm2m (CloudHSM has no non-FIPS hsm1 clusters)")
		}
		return &Profile{Name: name, Settings: s,
			Identity: cloudhsmIdentity(s), Sessions: cloudhsmSessions(s), Attributes: cloudhsmAttributes(s),
			Limits: cloudhsmLimits(s), Mechanisms: cloudhsmMechanisms(s)}, nil
	}
	return nil, fmt.Errorf("profile: unknown profile %q (known: standard, cloudhsm)", name)
}

// Standard is the standard profile, for slots made without a
// configuration (tests' SlotConfig literals).
func Standard() *Profile {
	p, err := New("standard", Settings{})
	if err != nil {
		panic(err)
	}
	return p
}
