package profile

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
)

// TestMLDSAOffers: the standard profile offers ML-DSA (pure and HashML-DSA)
// like the table; the
// cloudhsm profile offers it on no HSM type and in no mode, FIPS or not:
// CloudHSM's PKCS#11 library (Client SDK 5) lists no ML-DSA key type or
// mechanism (AWS CloudHSM user guide, "Supported mechanisms for the
// PKCS #11 library"; cloudhsm-facts.md §2.4: ML-DSA is CloudHSM CLI only),
// so a real SDK 5 client sees CKR_MECHANISM_INVALID.
func TestMLDSAOffers(t *testing.T) {
	mlDSA := []ck.MechanismType{ck.CKM_ML_DSA_KEY_PAIR_GEN, ck.CKM_ML_DSA, ck.CKM_HASH_ML_DSA,
		ck.CKM_HASH_ML_DSA_SHA224, ck.CKM_HASH_ML_DSA_SHA256, ck.CKM_HASH_ML_DSA_SHA384, ck.CKM_HASH_ML_DSA_SHA512,
		ck.CKM_HASH_ML_DSA_SHA3_224, ck.CKM_HASH_ML_DSA_SHA3_256, ck.CKM_HASH_ML_DSA_SHA3_384, ck.CKM_HASH_ML_DSA_SHA3_512,
		ck.CKM_HASH_ML_DSA_SHAKE128, ck.CKM_HASH_ML_DSA_SHAKE256}
	std := Standard()
	for _, mt := range mlDSA {
		_, _, ok := std.Mechanisms.Lookup(mt)
		assert.True(t, ok, "standard %v", mt)
		assert.Contains(t, std.Mechanisms.List(), mt)
	}
	for _, hsm := range []string{HSM1, HSM2M} {
		for _, fips := range []bool{true, false} {
			if hsm == HSM1 && !fips {
				continue // no non-FIPS hsm1 clusters
			}
			p, err := New("cloudhsm", Settings{HSMType: hsm, FIPS: fips})
			require.NoError(t, err)
			for _, mt := range mlDSA {
				_, _, ok := p.Mechanisms.Lookup(mt)
				assert.False(t, ok, "cloudhsm %s fips=%v %v", hsm, fips, mt)
				assert.NotContains(t, p.Mechanisms.List(), mt)
			}
		}
	}
}
