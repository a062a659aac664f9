package mechanisms

import (
	"bytes"
	"crypto"
	"crypto/mldsa"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/sha512"
	"encoding/asn1"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
)

// CK_HASH_SIGN_ADDITIONAL_CONTEXT in the conformance suite: SHA-256 with
// a context, deterministic; another context, none, or another hash of the
// same length (another OID in M') must not verify what it signed.
func init() {
	paramCases[ParamHashContext] = func(*testing.T, *Mechanism, *fixture) (any, []any) {
		ctx := []byte("gohsm")
		return &HashSignContextParams{Hedge: ck.CKH_DETERMINISTIC_REQUIRED, Context: ctx, Hash: ck.CKM_SHA256}, []any{
			&HashSignContextParams{Context: []byte("gohsM"), Hash: ck.CKM_SHA256},
			&HashSignContextParams{Hash: ck.CKM_SHA256},
			&HashSignContextParams{Context: ctx, Hash: ck.CKM_SHA3_256},
			&HashSignContextParams{Context: ctx, Hash: ck.CKM_SHA512_256},
		}
	}
}

// hashMLDSACase is FIPS 204's pre-hash function as the test writes it
// down on its own: the OID's arcs (NIST hashAlgs, FIPS 204 section 5.4.1),
// the output length and an independent computation of PH(M).
type hashMLDSACase struct {
	variant, digest ck.MechanismType
	arc             int
	size            int
	ph              func([]byte) []byte
}

var hashMLDSACases = []hashMLDSACase{
	{ck.CKM_HASH_ML_DSA_SHA224, ck.CKM_SHA224, 4, 28, func(m []byte) []byte { s := sha256.Sum224(m); return s[:] }},
	{ck.CKM_HASH_ML_DSA_SHA256, ck.CKM_SHA256, 1, 32, func(m []byte) []byte { s := sha256.Sum256(m); return s[:] }},
	{ck.CKM_HASH_ML_DSA_SHA384, ck.CKM_SHA384, 2, 48, func(m []byte) []byte { s := sha512.Sum384(m); return s[:] }},
	{ck.CKM_HASH_ML_DSA_SHA512, ck.CKM_SHA512, 3, 64, func(m []byte) []byte { s := sha512.Sum512(m); return s[:] }},
	{0, ck.CKM_SHA512_224, 5, 28, func(m []byte) []byte { s := sha512.Sum512_224(m); return s[:] }},
	{0, ck.CKM_SHA512_256, 6, 32, func(m []byte) []byte { s := sha512.Sum512_256(m); return s[:] }},
	{ck.CKM_HASH_ML_DSA_SHA3_224, ck.CKM_SHA3_224, 7, 28, func(m []byte) []byte { s := sha3.Sum224(m); return s[:] }},
	{ck.CKM_HASH_ML_DSA_SHA3_256, ck.CKM_SHA3_256, 8, 32, func(m []byte) []byte { s := sha3.Sum256(m); return s[:] }},
	{ck.CKM_HASH_ML_DSA_SHA3_384, ck.CKM_SHA3_384, 9, 48, func(m []byte) []byte { s := sha3.Sum384(m); return s[:] }},
	{ck.CKM_HASH_ML_DSA_SHA3_512, ck.CKM_SHA3_512, 10, 64, func(m []byte) []byte { s := sha3.Sum512(m); return s[:] }},
	{ck.CKM_HASH_ML_DSA_SHAKE128, 0, 11, 32, func(m []byte) []byte { return sha3.SumSHAKE128(m, 32) }},
	{ck.CKM_HASH_ML_DSA_SHAKE256, 0, 12, 64, func(m []byte) []byte { return sha3.SumSHAKE256(m, 64) }},
}

// expectHashMLDSAMu computes μ of HashML-DSA as FIPS 204 Algorithms 4 and
// 7 say, apart from the code under test: tr = SHAKE256(pk, 64), M' = 1 ||
// len(ctx) || ctx || DER(OID) || PH(M), μ = SHAKE256(tr || M', 64).
func expectHashMLDSAMu(t *testing.T, pk []byte, c hashMLDSACase, ctx, ph []byte) []byte {
	oid, err := asn1.Marshal(asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, c.arc})
	require.NoError(t, err)
	tr := sha3.SumSHAKE256(pk, 64)
	m := slices.Concat(tr, []byte{1, byte(len(ctx))}, ctx, oid, ph)
	return sha3.SumSHAKE256(m, 64)
}

func rowSign(t *testing.T, mech ck.MechanismType, key, param any, parts ...[]byte) ([]byte, error) {
	t.Helper()
	s, err := row(t, mech).Sign(key, param)
	if err != nil {
		return nil, err
	}
	for _, p := range parts {
		require.NoError(t, s.Update(p))
	}
	return s.Sign(nil)
}

func rowVerify(t *testing.T, mech ck.MechanismType, key, param any, sig []byte, parts ...[]byte) error {
	t.Helper()
	v, err := row(t, mech).Verify(key, param)
	if err != nil {
		return err
	}
	for _, p := range parts {
		require.NoError(t, v.Update(p))
	}
	return v.Verify(sig)
}

// TestHashMLDSACrossCheck: NIST's vectors kept here
// (TestHashMLDSAACVPSigVer) cover seven pre-hashes and verification only,
// Bouncy Castle's (TestHashMLDSABCSign) signing with SHA-512 only,
// so each pre-hash, for each parameter set, is checked against μ computed
// by the test itself (its own OID table, DER from encoding/asn1, the
// standard library's hashes): the deterministic signature of a
// CKM_HASH_ML_DSA_<hash> row and of CKM_HASH_ML_DSA given PH(M) equal
// crypto/mldsa's signature of that μ (crypto.MLDSAMu); both rows verify
// it; a flipped byte in c̃, z, the hint positions or the hint counts, a
// changed message, context or pre-hash, does not; pure ML-DSA does not
// accept it (domain separation).
func TestHashMLDSACrossCheck(t *testing.T) {
	msg := []byte("HashML-DSA message")
	ctx := []byte("context")
	for _, vs := range mldsaVectorSets {
		t.Run(vs.name, func(t *testing.T) {
			t.Parallel()
			sk, err := MLDSAPrivateKey(vs.set, bytes.Repeat([]byte{byte(vs.set) + 0x40}, 32))
			require.NoError(t, err)
			pk := sk.PublicKey()
			p := mldsaVerifyParamsOf(pk.Parameters())
			for _, c := range hashMLDSACases {
				ph := c.ph(msg)
				require.Len(t, ph, c.size)
				mu := expectHashMLDSAMu(t, pk.Bytes(), c, ctx, ph)
				want, err := sk.SignDeterministic(mu, crypto.MLDSAMu)
				require.NoError(t, err)

				if c.digest != 0 {
					hp := &HashSignContextParams{Hedge: ck.CKH_DETERMINISTIC_REQUIRED, Context: ctx, Hash: c.digest}
					got, err := rowSign(t, ck.CKM_HASH_ML_DSA, sk, hp, ph)
					require.NoError(t, err, "%v", c.digest)
					assert.Equal(t, want, got, "CKM_HASH_ML_DSA with %v", c.digest)
					assert.NoError(t, rowVerify(t, ck.CKM_HASH_ML_DSA, pk, hp, want, ph), "%v", c.digest)
				}
				if c.variant == 0 {
					continue
				}
				sp := &SignContextParams{Hedge: ck.CKH_DETERMINISTIC_REQUIRED, Context: ctx}
				got, err := rowSign(t, c.variant, sk, sp, msg[:4], msg[4:])
				require.NoError(t, err, "%v", c.variant)
				assert.Equal(t, want, got, "%v", c.variant)
				require.NoError(t, rowVerify(t, c.variant, pk, sp, want, msg), "%v", c.variant)
				require.NoError(t, rowVerify(t, c.variant, pk, sp, want, msg[:1], msg[1:]), "%v multi-part", c.variant)

				for _, at := range []int{0, p.lambda/4 - 1, p.lambda / 4, p.lambda/4 + 700, len(want) - p.k - p.omega, len(want) - p.k - 1, len(want) - 1} {
					bad := slices.Clone(want)
					bad[at] ^= 0x10
					assert.ErrorIs(t, rowVerify(t, c.variant, pk, sp, bad, msg), ck.CKR_SIGNATURE_INVALID, "%v: byte %d", c.variant, at)
				}
				assert.ErrorIs(t, rowVerify(t, c.variant, pk, sp, want, flipLast(msg)), ck.CKR_SIGNATURE_INVALID, "%v: message", c.variant)
				assert.ErrorIs(t, rowVerify(t, c.variant, pk, nil, want, msg), ck.CKR_SIGNATURE_INVALID, "%v: no context", c.variant)
				assert.ErrorIs(t, mldsaVerifyOnce(t, pk, sp, msg, want), ck.CKR_SIGNATURE_INVALID, "%v: pure ML-DSA", c.variant)
				for _, other := range hashMLDSACases {
					if other.variant != 0 && other.variant != c.variant {
						assert.ErrorIs(t, rowVerify(t, other.variant, pk, sp, want, msg), ck.CKR_SIGNATURE_INVALID, "%v under %v", c.variant, other.variant)
					}
				}
			}
		})
	}
}

// TestHashMLDSAEmptyMessage: the variants hash an empty message (no
// Update at all) as PH of the empty string.
func TestHashMLDSAEmptyMessage(t *testing.T) {
	sk, err := MLDSAPrivateKey(ck.CKP_ML_DSA_44, bytes.Repeat([]byte{3}, 32))
	require.NoError(t, err)
	for _, c := range hashMLDSACases {
		if c.variant == 0 {
			continue
		}
		mu := expectHashMLDSAMu(t, sk.PublicKey().Bytes(), c, nil, c.ph(nil))
		want, err := sk.SignDeterministic(mu, crypto.MLDSAMu)
		require.NoError(t, err)
		got, err := rowSign(t, c.variant, sk, &SignContextParams{Hedge: ck.CKH_DETERMINISTIC_REQUIRED})
		require.NoError(t, err)
		assert.Equal(t, want, got, "%v", c.variant)
		assert.NoError(t, rowVerify(t, c.variant, sk.PublicKey(), nil, got))
	}
}

// TestHashMLDSAParams: hedging, lengths and parameter errors.
func TestHashMLDSAParams(t *testing.T) {
	sk, err := MLDSAPrivateKey(ck.CKP_ML_DSA_65, bytes.Repeat([]byte{9}, 32))
	require.NoError(t, err)
	pk := sk.PublicKey()
	ph := make([]byte, 48)
	hp := &HashSignContextParams{Hash: ck.CKM_SHA384}

	// Hedged (no parameter, or CKH_HEDGE_REQUIRED): two signatures differ,
	// both verify.
	for _, mech := range []ck.MechanismType{ck.CKM_HASH_ML_DSA, ck.CKM_HASH_ML_DSA_SHAKE256} {
		var param any
		if mech == ck.CKM_HASH_ML_DSA {
			param = hp
		}
		a, err := rowSign(t, mech, sk, param, ph)
		require.NoError(t, err)
		b, err := rowSign(t, mech, sk, param, ph)
		require.NoError(t, err)
		assert.NotEqual(t, a, b, "%v hedged", mech)
		assert.Len(t, a, mldsa.MLDSA65().SignatureSize())
		assert.NoError(t, rowVerify(t, mech, pk, param, a, ph))
		assert.NoError(t, rowVerify(t, mech, pk, param, b, ph))
	}
	a, err := rowSign(t, ck.CKM_HASH_ML_DSA_SHA256, sk, &SignContextParams{Hedge: ck.CKH_HEDGE_REQUIRED}, ph)
	require.NoError(t, err)
	assert.NoError(t, rowVerify(t, ck.CKM_HASH_ML_DSA_SHA256, pk, &SignContextParams{Hedge: ck.CKH_DETERMINISTIC_REQUIRED}, a, ph), "hedge ignored on verify")

	// CKM_HASH_ML_DSA takes exactly the pre-hash's length.
	for _, n := range []int{0, 47, 49, 64} {
		_, err := rowSign(t, ck.CKM_HASH_ML_DSA, sk, hp, make([]byte, n))
		assert.ErrorIs(t, err, ck.CKR_DATA_LEN_RANGE, "sign %d bytes", n)
		sig, err := rowSign(t, ck.CKM_HASH_ML_DSA, sk, hp, ph)
		require.NoError(t, err)
		assert.ErrorIs(t, rowVerify(t, ck.CKM_HASH_ML_DSA, pk, hp, sig, make([]byte, n)), ck.CKR_DATA_LEN_RANGE, "verify %d bytes", n)
	}
	sig, err := rowSign(t, ck.CKM_HASH_ML_DSA, sk, hp, ph)
	require.NoError(t, err)
	for _, n := range []int{0, len(sig) - 1, len(sig) + 1} {
		bad := make([]byte, n)
		copy(bad, sig)
		assert.ErrorIs(t, rowVerify(t, ck.CKM_HASH_ML_DSA, pk, hp, bad, ph), ck.CKR_SIGNATURE_LEN_RANGE, "signature of %d bytes", n)
	}

	// Bad parameters.
	for _, p := range []any{
		nil,
		&SignContextParams{},
		&HashSignContextParams{Hash: ck.CKM_SHA_1},
		&HashSignContextParams{Hash: ck.CKM_MD5},
		&HashSignContextParams{Hash: ck.CKM_HASH_ML_DSA_SHAKE128},
		&HashSignContextParams{Hash: 0},
		&HashSignContextParams{Hash: ck.CKM_SHA256, Hedge: 3},
		&HashSignContextParams{Hash: ck.CKM_SHA256, Context: make([]byte, 256)},
	} {
		_, err := row(t, ck.CKM_HASH_ML_DSA).Sign(sk, p)
		assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "sign %#v", p)
		_, err = row(t, ck.CKM_HASH_ML_DSA).Verify(pk, p)
		assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "verify %#v", p)
	}
	for _, p := range []any{
		&HashSignContextParams{Hash: ck.CKM_SHA256},
		&SignContextParams{Hedge: 3},
		&SignContextParams{Context: make([]byte, 256)},
		[]byte{1},
	} {
		_, err := row(t, ck.CKM_HASH_ML_DSA_SHA3_256).Sign(sk, p)
		assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "sign %#v", p)
		_, err = row(t, ck.CKM_HASH_ML_DSA_SHA3_256).Verify(pk, p)
		assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "verify %#v", p)
	}
	_, err = rowSign(t, ck.CKM_HASH_ML_DSA_SHA3_256, sk, &SignContextParams{Context: make([]byte, 255)}, ph)
	assert.NoError(t, err, "255-byte context")

	// Wrong key types.
	_, err = row(t, ck.CKM_HASH_ML_DSA).Sign(pk, hp)
	assert.ErrorIs(t, err, ck.CKR_KEY_TYPE_INCONSISTENT)
	_, err = row(t, ck.CKM_HASH_ML_DSA_SHA256).Verify(sk, nil)
	assert.ErrorIs(t, err, ck.CKR_KEY_TYPE_INCONSISTENT)
}

// TestHashMLDSARows: one row per PKCS#11 3.2 mechanism, with CKM_ML_DSA's
// key sizes and flags; CKM_HASH_ML_DSA single-part, the variants not.
func TestHashMLDSARows(t *testing.T) {
	pure := row(t, ck.CKM_ML_DSA)
	n := 0
	for _, c := range hashMLDSACases {
		if c.variant == 0 {
			continue
		}
		n++
		m := row(t, c.variant)
		assert.Equal(t, pure.MinKeySize, m.MinKeySize)
		assert.Equal(t, pure.MaxKeySize, m.MaxKeySize)
		assert.Equal(t, pure.Flags(), m.Flags())
		assert.False(t, m.SinglePart || m.VerifySinglePart, "%v", c.variant)
		assert.Equal(t, ParamSignContext, m.Param)
		assert.True(t, m.ParamOptional)
	}
	assert.Equal(t, 10, n)
	m := row(t, ck.CKM_HASH_ML_DSA)
	assert.Equal(t, pure.Flags(), m.Flags())
	assert.Equal(t, uint(1312), m.MinKeySize)
	assert.Equal(t, uint(2592), m.MaxKeySize)
	assert.True(t, m.SinglePart)
	assert.Equal(t, ParamHashContext, m.Param)
	assert.False(t, m.ParamOptional)
}
