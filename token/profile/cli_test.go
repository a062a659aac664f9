package profile

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
)

// TestCLILookup: the CLI's list is the PKCS#11 list plus ML-DSA on
// cloudhsm hsm2m (FIPS or not); hsm1 refuses ML-DSA with a reason; the
// PKCS#11 list and key types stay without it (TestMLDSAOffers).
func TestCLILookup(t *testing.T) {
	mlDSA := []ck.MechanismType{ck.CKM_ML_DSA_KEY_PAIR_GEN, ck.CKM_ML_DSA}
	for _, c := range []struct {
		hsm  string
		fips bool
		ok   bool
	}{{HSM2M, true, true}, {HSM2M, false, true}, {HSM1, true, false}} {
		p, err := New("cloudhsm", Settings{HSMType: c.hsm, FIPS: c.fips})
		require.NoError(t, err)
		for _, mt := range mlDSA {
			row, _, err := p.CLILookup(mt)
			if c.ok {
				require.NoError(t, err, "%s %v", c.hsm, mt)
				assert.Equal(t, mt, row.Type)
			} else {
				require.ErrorIs(t, err, ck.CKR_MECHANISM_INVALID)
				assert.Contains(t, err.Error(), "hsm2m.medium clusters only")
			}
			_, _, ok := p.Mechanisms.Lookup(mt)
			assert.False(t, ok, "PKCS#11 list %s %v", c.hsm, mt)
		}
		err = p.CLICheckKey(ck.CKK_ML_DSA, 0)
		if c.ok {
			assert.NoError(t, err)
		} else {
			assert.ErrorIs(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
		}
		assert.ErrorIs(t, p.Limits.CheckKey(ck.CKK_ML_DSA, 0), ck.CKR_ATTRIBUTE_VALUE_INVALID, "PKCS#11 key types")
		// Everything else is the PKCS#11 list's answer.
		row, _, err := p.CLILookup(ck.CKM_ECDSA)
		require.NoError(t, err)
		assert.Equal(t, ck.CKM_ECDSA, row.Type)
		_, _, err = p.CLILookup(ck.CKM_ML_KEM)
		assert.ErrorIs(t, err, ck.CKR_MECHANISM_INVALID)
	}
	row, _, err := Standard().CLILookup(ck.CKM_ML_DSA)
	require.NoError(t, err)
	assert.Equal(t, ck.CKM_ML_DSA, row.Type)
}
