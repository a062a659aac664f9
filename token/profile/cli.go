package profile

import (
	"fmt"
	"slices"

	"gohsm/internal/ck"
	"gohsm/mechanisms"
)

// cliOnly are the mechanisms CloudHSM offers through CloudHSM CLI and not
// through its PKCS#11 library: ML-DSA (CloudHSM CLI has "key
// generate-asymmetric-pair ml-dsa" and "crypto sign|verify ml-dsa",
// UG:cloudhsm_cli-key-generate-asymmetric-pair-mldsa and
// UG:cloudhsm_cli-crypto-sign-mldsa, "available in FIPS mode for
// hsm2m.medium clusters"; the SDK 5 PKCS#11 mechanism page lists no
// ML-DSA, so Mechanisms never holds them: TestMLDSAOffers).
// mechanisms.MLDSAExternalMu (--data-type external-mu) is CLI-only in both
// profiles: PKCS#11 has no external-μ mechanism.
var cliOnly = []ck.MechanismType{ck.CKM_ML_DSA_KEY_PAIR_GEN, ck.CKM_ML_DSA, mechanisms.MLDSAExternalMu}

// CLILookup is Mechanisms.Lookup for the emulated CloudHSM CLI, which
// reaches a few mechanisms the profile's PKCS#11 list does not offer.
// The standard profile offers the CLI what it offers PKCS#11, and the
// rows no PKCS#11 list can hold (mechanisms.LookupCLI). The cloudhsm
// profile adds cliOnly on hsm2m (FIPS or not: the note "Starting
// September 1, 2026, ML-DSA is available in FIPS mode for hsm2m.medium
// clusters" extends a non-FIPS feature to FIPS mode) and refuses them on
// hsm1 with CKR_MECHANISM_INVALID and a reason; err is nil when ok.
func (p *Profile) CLILookup(t ck.MechanismType) (*mechanisms.Mechanism, *Rule, error) {
	if row, rule, ok := p.Mechanisms.Lookup(t); ok {
		return row, rule, nil
	}
	if p.Name == "cloudhsm" && slices.Contains(cliOnly, t) {
		if p.Settings.HSMType != HSM2M {
			return nil, nil, fmt.Errorf("profile: %v: ML-DSA is available on hsm2m.medium clusters only, this HSM is %s.medium: %w",
				t, p.Settings.HSMType, ck.CKR_MECHANISM_INVALID)
		}
		if row, ok := mechanisms.Lookup(t); ok {
			return row, nil, nil
		}
	}
	if row, ok := mechanisms.LookupCLI(t); ok {
		return row, nil, nil
	}
	return nil, nil, fmt.Errorf("profile: %v: %w", t, ck.CKR_MECHANISM_INVALID)
}

// CLICheckKey is Limits.CheckKey for a key the CLI makes or key replicate
// brings: the cloudhsm profile's PKCS#11 key types lack CKK_ML_DSA, which
// the HSM holds where CLILookup offers ML-DSA (hsm2m) and refuses, with
// the reason and CKR_ATTRIBUTE_VALUE_INVALID as for any key type it does
// not support, on hsm1.
func (p *Profile) CLICheckKey(kt ck.KeyType, size uint) error {
	if p.Name == "cloudhsm" && kt == ck.CKK_ML_DSA {
		if p.Settings.HSMType == HSM2M {
			return nil
		}
		return fmt.Errorf("profile: ML-DSA keys are available on hsm2m.medium clusters only, this HSM is %s.medium: %w",
			p.Settings.HSMType, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	return p.Limits.CheckKey(kt, size)
}
