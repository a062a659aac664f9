package token

import (
	"gohsm/internal/ck"
	"gohsm/mechanisms"
	"gohsm/token/attrs"
	"gohsm/token/profile"
)

// The emulated CloudHSM CLI's entry points for what CloudHSM offers its
// CLI and not its PKCS#11 library (ML-DSA: profile.CLILookup). They are
// GenerateKeyPair, SignInit and VerifyInit with the mechanism looked up in
// the CLI's list instead of the PKCS#11 one; everything else (sessions,
// users, key usage, sharing, quotas, attributes) is the same code. The C
// boundary never calls them, so a PKCS#11 application of the cloudhsm
// profile never reaches ML-DSA (tests/abi TestCloudHSMMechanismPolicy,
// token TestCLIOnlyMechanisms).

// offer looks a mechanism up for one kind of caller.
type offer func(p *profile.Profile, t ck.MechanismType) (*mechanisms.Mechanism, *profile.Rule, error)

func cliOffer(p *profile.Profile, t ck.MechanismType) (*mechanisms.Mechanism, *profile.Rule, error) {
	return p.CLILookup(t)
}

// CLIGenerateKeyPair is GenerateKeyPair for CloudHSM CLI's key
// generate-asymmetric-pair.
func (m *Module) CLIGenerateKeyPair(h ck.ULong, mech Mechanism, pubTmpl, privTmpl attrs.Template) (pubH, privH ck.ULong, err error) {
	return m.generateKeyPairVia(h, mech, pubTmpl, privTmpl, cliOffer)
}

// CLISignInit is SignInit for CloudHSM CLI's crypto sign.
func (m *Module) CLISignInit(h ck.ULong, mech Mechanism, key ck.ULong) error {
	return m.initOpVia(h, opSign, mech, key, cliOffer)
}

// CLIVerifyInit is VerifyInit for CloudHSM CLI's crypto verify.
func (m *Module) CLIVerifyInit(h ck.ULong, mech Mechanism, key ck.ULong) error {
	return m.initOpVia(h, opVerify, mech, key, cliOffer)
}

// cliCheckKeyLimits is checkKeyLimits for a key the CLI makes
// (profile.CLICheckKey).
func (s *Slot) cliCheckKeyLimits(class ck.ObjectClass, keyType ck.KeyType, t *attrs.Attrs) error {
	if !isKeyClass(class) {
		return nil
	}
	return s.prof.CLICheckKey(keyType, keySize(keyType, t))
}
