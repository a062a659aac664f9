package noble

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/internal/mldsavectors"
)

// acvpCase is one NIST ACVP HashML-DSA sigVer case as
// mechanisms/testdata/acvp_hashmldsa_sigver.json carries it (its README
// says where each comes from; internal/mldsavectors reads it).
type acvpCase = mldsavectors.ACVPCase

// acvpSets and acvpHashes name ACVP's parameterSet and hashAlg values the
// module's way and noble's.
var acvpSets = map[string]struct {
	n   int
	ckp ck.ULong
}{"ML-DSA-44": {44, ck.CKP_ML_DSA_44}, "ML-DSA-65": {65, ck.CKP_ML_DSA_65}, "ML-DSA-87": {87, ck.CKP_ML_DSA_87}}

var acvpHashes = map[string]string{
	"SHA2-224": "sha224", "SHA2-256": "sha256", "SHA2-384": "sha384", "SHA2-512": "sha512",
	"SHA2-512/224": "sha512_224", "SHA2-512/256": "sha512_256",
	"SHA3-224": "sha3_224", "SHA3-256": "sha3_256", "SHA3-384": "sha3_384", "SHA3-512": "sha3_512",
	"SHAKE-128": "shake128_32", "SHAKE-256": "shake256_64",
}

// TestHashMLDSAACVPAgainstNoble: every case of NIST's HashML-DSA sigVer
// vectors kept in mechanisms/testdata, through the built library's C ABI
// and through noble. The module imports the case's public key with
// C_CreateObject (CKA_VALUE) and verifies with C_VerifyInit/C_Verify by the
// CKM_HASH_ML_DSA_<hash> variant (the module hashes the message) and by
// CKM_HASH_ML_DSA naming the hash (the test hashes it), wherever PKCS#11
// has the mechanism; noble verifies the same bytes under the same key.
// Each answer must be NIST's testPassed: "ok", or CKR_SIGNATURE_INVALID
// and "bad". That noble agrees with NIST is what tells a transcription
// error (both would disagree) from a module bug (only the module would).
func TestHashMLDSAACVPAgainstNoble(t *testing.T) {
	cases := mldsavectors.ACVP(t)

	mod, nb, version := peers(t)
	var answers int
	for i, c := range cases {
		set, ok := acvpSets[c.ParameterSet]
		require.True(t, ok, "tc %d: parameterSet %q", c.TcID, c.ParameterSet)
		name, ok := acvpHashes[c.HashAlg]
		require.True(t, ok, "tc %d: hashAlg %q", c.TcID, c.HashAlg)
		ph := preHashNamed(name)
		msg, err := hex.DecodeString(c.Message)
		require.NoError(t, err, "tc %d", c.TcID)
		ctx, sig := strings.ToLower(c.Context), strings.ToLower(c.Signature)
		if ctx == "" {
			ctx = "-"
		}
		what := func(how string) string {
			return fmt.Sprintf("%s %s tg %d tc %d: %s", c.ParameterSet, c.HashAlg, c.TgID, c.TcID, how)
		}

		require.Equal(t, "ok", mod.ask(t, "pub %d %d %s", i, uint64(set.ckp), strings.ToLower(c.PK)), what("C_CreateObject of the public key"))
		wantMod, wantNoble := "rv CKR_SIGNATURE_INVALID", "bad"
		if c.TestPassed {
			wantMod, wantNoble = "ok", "ok"
		}
		if ph.variant != 0 {
			require.Equal(t, wantMod, mod.ask(t, "verify %d %x 0 %s %s %s", i, uint64(ph.variant), ctx, hx(msg), sig), what(ph.variant.String()))
			answers++
		}
		if ph.digest != 0 {
			h := ph.new()
			h.Write(msg)
			require.Equal(t, wantMod, mod.ask(t, "verify %d %x %x %s %s %s", i, uint64(ck.CKM_HASH_ML_DSA), uint64(ph.digest), ctx, hx(h.Sum(nil)), sig),
				what("CKM_HASH_ML_DSA with "+ph.digest.String()))
			answers++
		}
		require.Equal(t, wantNoble, nb.ask(t, "verifypk %d prehash %s %s %s %s %s", set.n, name, strings.ToLower(c.PK), ctx, hx(msg), sig), what("noble"))
	}
	nb.in.Close()
	last, _ := nb.out.ReadString('\n')
	t.Logf("@noble/post-quantum %s and the module (%d C_Verify answers) agree with NIST on all %d cases; noble's %s",
		version, answers, len(cases), strings.TrimSpace(last))
}
