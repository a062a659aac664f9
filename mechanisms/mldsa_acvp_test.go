package mechanisms

import (
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/internal/mldsavectors"
)

// acvpHashMLDSACase is one NIST ACVP sigVer case of an external/preHash
// test group (testdata/README.md; internal/mldsavectors reads it).
type acvpHashMLDSACase = mldsavectors.ACVPCase

// acvpParameterSets and acvpHashAlgs name ACVP's values (ACVP ML-DSA
// specification: parameterSet, hashAlg) the module's way. A hashAlg maps
// to its entry in hashMLDSACases (the test's own OID, length and hash).
var acvpParameterSets = map[string]ck.ULong{
	"ML-DSA-44": ck.CKP_ML_DSA_44,
	"ML-DSA-65": ck.CKP_ML_DSA_65,
	"ML-DSA-87": ck.CKP_ML_DSA_87,
}

var acvpHashAlgs = map[string]int{ // arc of 2.16.840.1.101.3.4.2
	"SHA2-224": 4, "SHA2-256": 1, "SHA2-384": 2, "SHA2-512": 3,
	"SHA2-512/224": 5, "SHA2-512/256": 6,
	"SHA3-224": 7, "SHA3-256": 8, "SHA3-384": 9, "SHA3-512": 10,
	"SHAKE-128": 11, "SHAKE-256": 12,
}

func loadACVPHashMLDSA(t *testing.T) []acvpHashMLDSACase { return mldsavectors.ACVP(t) }

func acvpHex(t *testing.T, tc *acvpHashMLDSACase, name, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	require.NoError(t, err, "tc %d %s", tc.TcID, name)
	return b
}

// TestHashMLDSAACVPSigVer: NIST's own HashML-DSA vectors (ACVP-Server,
// ML-DSA sigVer FIPS 204, external/preHash groups; testdata/README.md).
// Each case's public key is imported as CKA_VALUE is (MLDSAPublicKey);
// the signature over message, context and hashAlg must verify exactly
// when NIST's testPassed says so, through CKM_HASH_ML_DSA_<hash> (the
// module hashes the message, in one part and in two) and through
// CKM_HASH_ML_DSA given PH(M) computed by the test's own hash, wherever
// PKCS#11 has the mechanism. A rejection is CKR_SIGNATURE_INVALID, never
// another error. A valid signature must not verify as pure ML-DSA, nor
// under another pre-hash of the same length.
func TestHashMLDSAACVPSigVer(t *testing.T) {
	cases := loadACVPHashMLDSA(t)
	seen := map[string]map[bool]int{}
	hashes := map[string]bool{}
	for i := range cases {
		tc := &cases[i]
		require.Equal(t, "usnistgov/ACVP-Server", tc.Repository, "tc %d", tc.TcID)
		require.Len(t, tc.Commit, 40, "tc %d", tc.TcID)
		require.Equal(t, "external", tc.SignatureInterface, "tc %d", tc.TcID)
		require.Equal(t, "preHash", tc.PreHash, "tc %d", tc.TcID)
		set, ok := acvpParameterSets[tc.ParameterSet]
		require.True(t, ok, "tc %d: parameterSet %q", tc.TcID, tc.ParameterSet)
		arc, ok := acvpHashAlgs[tc.HashAlg]
		require.True(t, ok, "tc %d: hashAlg %q", tc.TcID, tc.HashAlg)
		var c hashMLDSACase
		for _, h := range hashMLDSACases {
			if h.arc == arc {
				c = h
			}
		}
		require.NotZero(t, c.arc, "tc %d", tc.TcID)
		if seen[tc.ParameterSet] == nil {
			seen[tc.ParameterSet] = map[bool]int{}
		}
		seen[tc.ParameterSet][tc.TestPassed]++
		hashes[tc.HashAlg] = true

		pk, err := MLDSAPublicKey(set, acvpHex(t, tc, "pk", tc.PK))
		require.NoError(t, err, "tc %d", tc.TcID)
		msg := acvpHex(t, tc, "message", tc.Message)
		ctx := acvpHex(t, tc, "context", tc.Context)
		sig := acvpHex(t, tc, "signature", tc.Signature)
		require.Len(t, sig, pk.Parameters().SignatureSize(), "tc %d", tc.TcID)
		check := func(what string, err error) {
			t.Helper()
			if tc.TestPassed {
				assert.NoError(t, err, "tg %d tc %d %s %s: %s", tc.TgID, tc.TcID, tc.ParameterSet, tc.HashAlg, what)
			} else {
				assert.ErrorIs(t, err, ck.CKR_SIGNATURE_INVALID, "tg %d tc %d %s %s: %s", tc.TgID, tc.TcID, tc.ParameterSet, tc.HashAlg, what)
			}
		}
		if c.variant != 0 {
			sp := &SignContextParams{Context: ctx}
			check(c.variant.String(), rowVerify(t, c.variant, pk, sp, sig, msg))
			if len(msg) > 1 {
				check(c.variant.String()+" in two parts", rowVerify(t, c.variant, pk, sp, sig, msg[:len(msg)/2], msg[len(msg)/2:]))
			}
		}
		if c.digest != 0 {
			hp := &HashSignContextParams{Context: ctx, Hash: c.digest}
			check("CKM_HASH_ML_DSA with "+c.digest.String(), rowVerify(t, ck.CKM_HASH_ML_DSA, pk, hp, sig, c.ph(msg)))
		}
		if !tc.TestPassed {
			continue
		}
		assert.ErrorIs(t, mldsaVerifyOnce(t, pk, &SignContextParams{Context: ctx}, msg, sig), ck.CKR_SIGNATURE_INVALID, "tc %d as pure ML-DSA", tc.TcID)
		for _, o := range hashMLDSACases {
			if o.arc == c.arc || o.size != c.size || o.digest == 0 {
				continue
			}
			hp := &HashSignContextParams{Context: ctx, Hash: o.digest}
			assert.ErrorIs(t, rowVerify(t, ck.CKM_HASH_ML_DSA, pk, hp, sig, c.ph(msg)), ck.CKR_SIGNATURE_INVALID, "tc %d under %v", tc.TcID, o.digest)
		}
	}
	t.Logf("%d cases: %v; hashAlgs %v", len(cases), seen, hashes)
}
