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

// TestHashMLDSABCAgainstNoble: Bouncy Castle's deterministic HashML-DSA
// signatures kept in mechanisms/testdata, through the built library's C
// ABI and through noble. noble derives the key pair from the case's seed
// ξ (its public key must start and end as the file's pk); the module
// imports the private key from CKA_SEED = ξ with noble's expanded key as
// CKA_VALUE (which it checks against the seed) and the public key from
// noble's. The module's C_Sign with CKH_DETERMINISTIC_REQUIRED and the
// case's context must give the published signature through
// CKM_HASH_ML_DSA_SHA512 (one C_Sign, and two C_SignUpdate calls) and
// through CKM_HASH_ML_DSA naming CKM_SHA512 over the message's SHA-512;
// noble's deterministic HashML-DSA-SHA512 signature must be it too. Both
// rows and noble verify it; the module's hedged signatures
// (CKH_HEDGE_REQUIRED) differ from it and verify on both sides.
func TestHashMLDSABCAgainstNoble(t *testing.T) {
	cases := mldsavectors.BC(t)
	require.Len(t, cases, 6)

	mod, nb, version := peers(t)
	ph := preHashNamed("sha512")
	signs, verifies := 0, 0
	for i, c := range cases {
		set, ok := acvpSets[c.ParameterSet]
		require.True(t, ok, "count %d: parameterSet %q", c.Count, c.ParameterSet)
		require.Equal(t, "SHA2-512", c.HashAlg)
		what := func(how string) string { return fmt.Sprintf("%s count %d: %s", c.ParameterSet, c.Count, how) }
		seed, ctx, msg, digest := strings.ToLower(c.Seed), strings.ToLower(c.Context), strings.ToLower(c.Msg), strings.ToLower(c.MessageHash)
		sm := strings.ToLower(c.SM)

		f := strings.Fields(nb.ask(t, "keygen %d %s", set.n, seed))
		require.Len(t, f, 3, what(fmt.Sprint("noble keygen: ", f)))
		pk := f[1]
		require.Equal(t, strings.ToLower(c.PKFirst16), pk[:32], what("noble's pk from the seed, first 16 bytes"))
		require.Equal(t, strings.ToLower(c.PKLast16), pk[len(pk)-32:], what("noble's pk from the seed, last 16 bytes"))
		require.Equal(t, "ok", mod.ask(t, "key %d %d %s %s %s", i, uint64(set.ckp), seed, pk, f[2]), what("C_CreateObject from the seed"))

		sign := func(mech, hashMech ck.MechanismType, det, parts int, data string) string {
			t.Helper()
			a := mod.ask(t, "sign %d %x %x %d %d %s %s", i, uint64(mech), uint64(hashMech), det, parts, ctx, data)
			require.True(t, strings.HasPrefix(a, "sig "), what(fmt.Sprintf("C_Sign %v: %s", mech, a)))
			signs++
			return a[4:]
		}
		verify := func(who, sig string) {
			t.Helper()
			require.Equal(t, "ok", mod.ask(t, "verify %d %x 0 %s %s %s", i, uint64(ph.variant), ctx, msg, sig), what(who+": C_Verify CKM_HASH_ML_DSA_SHA512"))
			require.Equal(t, "ok", mod.ask(t, "verify %d %x %x %s %s %s", i, uint64(ck.CKM_HASH_ML_DSA), uint64(ph.digest), ctx, digest, sig), what(who+": C_Verify CKM_HASH_ML_DSA"))
			require.Equal(t, "ok", nb.ask(t, "verifypk %d prehash sha512 %s %s %s %s", set.n, pk, ctx, msg, sig), what(who+": noble verify"))
			verifies += 3
		}

		require.Equal(t, sm, sign(ph.variant, 0, 1, 1, msg), what("CKM_HASH_ML_DSA_SHA512, one C_Sign"))
		require.Equal(t, sm, sign(ph.variant, 0, 1, 2, msg), what("CKM_HASH_ML_DSA_SHA512, two C_SignUpdate"))
		require.Equal(t, sm, sign(ck.CKM_HASH_ML_DSA, ph.digest, 1, 1, digest), what("CKM_HASH_ML_DSA with CKM_SHA512"))
		a := nb.ask(t, "sign %d prehash sha512 1 %s %s %s", set.n, seed, ctx, msg)
		require.Equal(t, "sig "+sm, a, what("noble's deterministic signature"))
		verify("published signature", sm)

		for _, h := range []string{sign(ph.variant, 0, 0, 2, msg), sign(ck.CKM_HASH_ML_DSA, ph.digest, 0, 1, digest)} {
			require.NotEqual(t, sm, h, what("a hedged signature is the deterministic one"))
			_, err := hex.DecodeString(h)
			require.NoError(t, err)
			verify("hedged signature", h)
		}
	}
	nb.in.Close()
	last, _ := nb.out.ReadString('\n')
	t.Logf("@noble/post-quantum %s and the module give Bouncy Castle's signature on all %d cases (%d C_Sign, %d verifications); noble's %s",
		version, len(cases), signs, verifies, strings.TrimSpace(last))
}
