package mechanisms

import (
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/internal/mldsavectors"
)

// bcHashMLDSAVector is a case decoded, its key derived from the seed and
// checked against the recorded ends of the public key.
type bcHashMLDSAVector struct {
	name                 string
	set                  ck.ULong
	seed, msg, ctx, hash []byte
	sig                  []byte
}

func loadBCHashMLDSA(t *testing.T) []bcHashMLDSAVector {
	t.Helper()
	perSet := map[string]int{}
	var out []bcHashMLDSAVector
	for _, c := range mldsavectors.BC(t) {
		name := fmt.Sprintf("%s count %d", c.ParameterSet, c.Count)
		require.Equal(t, "bcgit/bc-test-data", c.Repository, name)
		require.Len(t, c.Commit, 40, name)
		require.Equal(t, "SHA2-512", c.HashAlg, name)
		set, ok := acvpParameterSets[c.ParameterSet]
		require.True(t, ok, "%s: parameterSet", name)
		perSet[c.ParameterSet]++
		dec := func(what, s string) []byte {
			b, err := hex.DecodeString(s)
			require.NoError(t, err, "%s %s", name, what)
			return b
		}
		v := bcHashMLDSAVector{name: name, set: set, seed: dec("seed", c.Seed), msg: dec("msg", c.Msg),
			ctx: dec("context", c.Context), hash: dec("message_hash", c.MessageHash), sig: dec("sm", c.SM)}
		// The transcription's own checks: SHA-512 of the message is the
		// file's message_hash, the signature has FIPS 204's length, and the
		// key derived from the seed starts and ends as the file's pk.
		sum := sha512.Sum512(v.msg)
		require.Equal(t, hex.EncodeToString(v.hash), hex.EncodeToString(sum[:]), "%s: SHA-512(msg)", name)
		sk, err := MLDSAPrivateKey(set, v.seed)
		require.NoError(t, err, name)
		require.Len(t, v.sig, sk.PublicKey().Parameters().SignatureSize(), "%s: sm", name)
		pk := sk.PublicKey().Bytes()
		require.Equal(t, strings.ToLower(c.PKFirst16), hex.EncodeToString(pk[:16]), "%s: pk from the seed, first 16 bytes", name)
		require.Equal(t, strings.ToLower(c.PKLast16), hex.EncodeToString(pk[len(pk)-16:]), "%s: pk from the seed, last 16 bytes", name)
		out = append(out, v)
	}
	require.Equal(t, map[string]int{"ML-DSA-44": 2, "ML-DSA-65": 2, "ML-DSA-87": 2}, perSet)
	return out
}

// TestHashMLDSABCSign: published deterministic HashML-DSA signatures
// (Bouncy Castle's mldsa44/65/87sha512.rsp; testdata/README.md). For each
// case the private key comes from its seed ξ (MLDSAPrivateKey); signing
// deterministically (CKH_DETERMINISTIC_REQUIRED) with the case's context
// must give the published signature byte for byte through
// CKM_HASH_ML_DSA_SHA512 (the module hashes the message, in one part and
// in several) and through CKM_HASH_ML_DSA with CKM_SHA512 given the
// message's SHA-512; both rows verify it; a hedged signature
// (CKH_HEDGE_REQUIRED) differs from it and verifies through both rows.
func TestHashMLDSABCSign(t *testing.T) {
	vectors := loadBCHashMLDSA(t)
	for _, v := range vectors {
		sk, err := MLDSAPrivateKey(v.set, v.seed)
		require.NoError(t, err, v.name)
		pk := sk.PublicKey()
		det := &SignContextParams{Hedge: ck.CKH_DETERMINISTIC_REQUIRED, Context: v.ctx}
		hdet := &HashSignContextParams{Hedge: ck.CKH_DETERMINISTIC_REQUIRED, Context: v.ctx, Hash: ck.CKM_SHA512}
		third := len(v.msg) / 3

		got, err := rowSign(t, ck.CKM_HASH_ML_DSA_SHA512, sk, det, v.msg)
		require.NoError(t, err, v.name)
		assert.Equal(t, hex.EncodeToString(v.sig), hex.EncodeToString(got), "%s: CKM_HASH_ML_DSA_SHA512 in one part", v.name)
		got, err = rowSign(t, ck.CKM_HASH_ML_DSA_SHA512, sk, det, v.msg[:1], v.msg[1:third], nil, v.msg[third:])
		require.NoError(t, err, v.name)
		assert.Equal(t, hex.EncodeToString(v.sig), hex.EncodeToString(got), "%s: CKM_HASH_ML_DSA_SHA512 in four parts", v.name)
		got, err = rowSign(t, ck.CKM_HASH_ML_DSA, sk, hdet, v.hash)
		require.NoError(t, err, v.name)
		assert.Equal(t, hex.EncodeToString(v.sig), hex.EncodeToString(got), "%s: CKM_HASH_ML_DSA with CKM_SHA512", v.name)

		verify := func(what string, sig []byte) {
			t.Helper()
			assert.NoError(t, rowVerify(t, ck.CKM_HASH_ML_DSA_SHA512, pk, det, sig, v.msg), "%s: %s, CKM_HASH_ML_DSA_SHA512", v.name, what)
			assert.NoError(t, rowVerify(t, ck.CKM_HASH_ML_DSA_SHA512, pk, det, sig, v.msg[:third], v.msg[third:]), "%s: %s, CKM_HASH_ML_DSA_SHA512 in two parts", v.name, what)
			assert.NoError(t, rowVerify(t, ck.CKM_HASH_ML_DSA, pk, hdet, sig, v.hash), "%s: %s, CKM_HASH_ML_DSA", v.name, what)
		}
		verify("published signature", v.sig)

		hedged, err := rowSign(t, ck.CKM_HASH_ML_DSA_SHA512, sk, &SignContextParams{Hedge: ck.CKH_HEDGE_REQUIRED, Context: v.ctx}, v.msg)
		require.NoError(t, err, v.name)
		assert.False(t, bytes.Equal(v.sig, hedged), "%s: hedged CKM_HASH_ML_DSA_SHA512 gave the deterministic signature", v.name)
		verify("hedged CKM_HASH_ML_DSA_SHA512 signature", hedged)
		hedged, err = rowSign(t, ck.CKM_HASH_ML_DSA, sk, &HashSignContextParams{Hedge: ck.CKH_HEDGE_REQUIRED, Context: v.ctx, Hash: ck.CKM_SHA512}, v.hash)
		require.NoError(t, err, v.name)
		assert.False(t, bytes.Equal(v.sig, hedged), "%s: hedged CKM_HASH_ML_DSA gave the deterministic signature", v.name)
		verify("hedged CKM_HASH_ML_DSA signature", hedged)
	}
	t.Logf("%d Bouncy Castle cases (ML-DSA-44/65/87 x 2): deterministic signatures equal by both rows, hedged ones differ and verify", len(vectors))
}
