package mechanisms

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/internal/wycheproof"
)

func init() {
	type bad = struct {
		p    KeyGenParams
		want ck.RV
	}
	secretCases := struct {
		good []KeyGenParams
		bad  []bad
	}{
		// No 1-byte good case: two random 1-byte keys are equal once in 256
		// runs, and the suite checks that they differ.
		good: []KeyGenParams{{ValueLen: 8}, {ValueLen: 32}, {ValueLen: secretMaxBytes}},
		bad: []bad{
			{KeyGenParams{}, ck.CKR_TEMPLATE_INCOMPLETE},
			{KeyGenParams{ValueLen: secretMaxBytes + 1}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
			{KeyGenParams{ValueLen: -1}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		},
	}
	// 16 bytes, and 150: longer than every hash block here (SHA-512's 128,
	// SHA3-224's 144), so HMAC hashes it first.
	fixtureSizes[ck.CKK_GENERIC_SECRET] = []int{16, 150}
	keyGenCases[ck.CKK_GENERIC_SECRET] = secretCases
	for _, a := range digestAlgs {
		fixtureSizes[a.keyType] = []int{32}
		keyGenCases[a.keyType] = secretCases
	}
	keyGenCases[ck.CKK_HKDF] = secretCases
	// A fixture size makes the suite generate keys of that type for
	// every other row's wrong-key checks, which needs a generating row.
	if _, ok := Lookup(ck.CKM_HKDF_KEY_GEN); ok {
		fixtureSizes[ck.CKK_HKDF] = []int{32}
	}

	// ParamULong is shared: CK_MAC_GENERAL_PARAMS for the HMAC_GENERAL rows,
	// CK_EXTRACT_PARAMS for CKM_EXTRACT_KEY_FROM_KEY (ours) and the other
	// families' *_MAC_GENERAL rows. Rows not ours go to whoever registered
	// before us.
	prevULong := paramCases[ParamULong]
	paramCases[ParamULong] = func(t *testing.T, m *Mechanism, f *fixture) (any, []any) {
		for _, a := range digestAlgs {
			if m.Type == a.hmacGeneral {
				// A shorter MAC; other lengths make a MAC of another
				// length (CKR_SIGNATURE_LEN_RANGE), not a wrong one, so
				// there is no variant to offer.
				return ck.ULong(a.hash.Size()/2 + 1), nil
			}
		}
		if m.Type == ck.CKM_EXTRACT_KEY_FROM_KEY {
			return ck.ULong(5), []any{ck.ULong(6), ck.ULong(77)}
		}
		if prevULong == nil {
			t.Fatalf("no ParamULong case for %v", m.Type)
		}
		return prevULong(t, m, f)
	}
}

// RFC 4231 §4.2-4.8, test cases 1-7 for HMAC-SHA-224/256/384/512. Case 5
// gives only the leftmost 128 bits, which is what the _HMAC_GENERAL rows
// produce with a length of 16.
func TestHMACRFC4231(t *testing.T) {
	aa131 := bytes.Repeat([]byte{0xaa}, 131)
	key4 := make([]byte, 25)
	for i := range key4 {
		key4[i] = byte(i + 1)
	}
	cases := []struct {
		key, data []byte
		out       [4]string // SHA-224, SHA-256, SHA-384, SHA-512
	}{
		{bytes.Repeat([]byte{0x0b}, 20), []byte("Hi There"), [4]string{
			"896fb1128abbdf196832107cd49df33f47b4b1169912ba4f53684b22",
			"b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
			"afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6",
			"87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"}},
		{[]byte("Jefe"), []byte("what do ya want for nothing?"), [4]string{
			"a30e01098bc6dbbf45690f3a7e9e6d0f8bbea2a39e6148008fd05e44",
			"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
			"af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649",
			"164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"}},
		{bytes.Repeat([]byte{0xaa}, 20), bytes.Repeat([]byte{0xdd}, 50), [4]string{
			"7fb3cb3588c6c1f6ffa9694d7d6ad2649365b0c1f65d69d1ec8333ea",
			"773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
			"88062608d3e6ad8a0aa2ace014c8a86f0aa635d947ac9febe83ef4e55966144b2a5ab39dc13814b94e3ab6e101a34f27",
			"fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb"}},
		{key4, bytes.Repeat([]byte{0xcd}, 50), [4]string{
			"6c11506874013cac6a2abc1bb382627cec6a90d86efc012de7afec5a",
			"82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
			"3e8a69b7783c25851933ab6290af6ca77a9981480850009cc5577c6e1f573b4e6801dd23c4a7d679ccf8a386c674cffb",
			"b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3dba91ca5c11aa25eb4d679275cc5788063a5f19741120c4f2de2adebeb10a298dd"}},
		{bytes.Repeat([]byte{0x0c}, 20), []byte("Test With Truncation"), [4]string{
			"0e2aea68a90c8d37c988bcdb9fca6fa8",
			"a3b6167473100ee06e0c796c2955552b",
			"3abf34c3503b2a23a46efc619baef897",
			"415fad6271580a531d4179bc891d87a6"}},
		{aa131, []byte("Test Using Larger Than Block-Size Key - Hash Key First"), [4]string{
			"95e9a0db962095adaebe9b2d6f0dbce2d499f112f2d2b7273fa6870e",
			"60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
			"4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c60c2ef6ab4030fe8296248df163f44952",
			"80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f3526b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598"}},
		{aa131, []byte("This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm."), [4]string{
			"3a854166ac5d9f023f54d517d0b39dbd946770db9c2b95c9f6f565d1",
			"9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
			"6617178e941f020d351e2f254e8fd32c602420feb0b8fb9adccebb82461e99c5a678cc31e799176d3860e6110c46523e",
			"e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944b6022cac3c4982b10d5eeb55c3e4de15134676fb6de0446065c97440fa8c6a58"}},
	}
	mechs := [4][2]ck.MechanismType{
		{ck.CKM_SHA224_HMAC, ck.CKM_SHA224_HMAC_GENERAL},
		{ck.CKM_SHA256_HMAC, ck.CKM_SHA256_HMAC_GENERAL},
		{ck.CKM_SHA384_HMAC, ck.CKM_SHA384_HMAC_GENERAL},
		{ck.CKM_SHA512_HMAC, ck.CKM_SHA512_HMAC_GENERAL},
	}
	for i, c := range cases {
		for j, mm := range mechs {
			want := unhex(c.out[j])
			full, _ := Lookup(mm[0])
			general, _ := Lookup(mm[1])
			if i != 4 {
				checkMAC(t, full, c.key, nil, c.data, want)
			}
			checkMAC(t, general, c.key, ck.ULong(len(want)), c.data, want)
		}
	}
}

// checkMAC signs data and verifies the MAC, and that a changed MAC fails.
func checkMAC(t *testing.T, m *Mechanism, key []byte, param any, data, want []byte) {
	t.Helper()
	s, err := m.Sign(key, param)
	require.NoError(t, err, m.Type)
	require.NoError(t, s.Update(data))
	got, err := s.Sign(nil)
	require.NoError(t, err)
	assert.Equal(t, want, got, "%v key %d bytes", m.Type, len(key))
	v, err := m.Verify(key, param)
	require.NoError(t, err)
	require.NoError(t, v.Update(data))
	assert.NoError(t, v.Verify(want), m.Type)
}

// Project Wycheproof hmac_*_test.json (pinned in internal/wycheproof): every
// hash it covers. Full-length tags go through CKM_<h>_HMAC and
// CKM_<h>_HMAC_GENERAL, truncated ones through _HMAC_GENERAL. The files
// hold only "valid" and "invalid" cases (wrong tags); anything else fails.
func TestHMACWycheproof(t *testing.T) {
	files := map[string]ck.MechanismType{
		"hmac_sha1_test.json":     ck.CKM_SHA_1,
		"hmac_sha224_test.json":   ck.CKM_SHA224,
		"hmac_sha256_test.json":   ck.CKM_SHA256,
		"hmac_sha384_test.json":   ck.CKM_SHA384,
		"hmac_sha512_test.json":   ck.CKM_SHA512,
		"hmac_sha3_224_test.json": ck.CKM_SHA3_224,
		"hmac_sha3_256_test.json": ck.CKM_SHA3_256,
		"hmac_sha3_384_test.json": ck.CKM_SHA3_384,
		"hmac_sha3_512_test.json": ck.CKM_SHA3_512,
	}
	total := 0
	for name, mech := range files {
		a, ok := digestByMech(mech)
		require.True(t, ok)
		full, _ := Lookup(a.hmac)
		general, _ := Lookup(a.hmacGeneral)
		f := wycheproof.Load(t, name)
		for _, g := range f.Groups {
			tagBits := wycheproof.Int(t, g.Fields, "tagSize")
			require.Zero(t, tagBits%8)
			tagLen := tagBits / 8
			for _, c := range g.Tests {
				total++
				key := wycheproof.Hex(t, c.Fields, "key")
				msg := wycheproof.Hex(t, c.Fields, "msg")
				tag := wycheproof.Hex(t, c.Fields, "tag")
				type row struct {
					m     *Mechanism
					param any
				}
				rows := []row{{general, ck.ULong(tagLen)}}
				if tagLen == a.hash.Size() {
					rows = append(rows, row{full, nil})
				}
				for _, r := range rows {
					what := fmt.Sprintf("%s #%d (%s) via %v", name, c.ID, c.Comment, r.m.Type)
					v, err := r.m.Verify(key, r.param)
					require.NoError(t, err, what)
					require.NoError(t, v.Update(msg))
					err = v.Verify(tag)
					s, err2 := r.m.Sign(key, r.param)
					require.NoError(t, err2)
					require.NoError(t, s.Update(msg))
					mac, err2 := s.Sign(nil)
					require.NoError(t, err2)
					switch c.Result {
					case "valid":
						assert.NoError(t, err, what)
						assert.Equal(t, tag, mac, what)
					case "invalid":
						// Same length, wrong bits: a modified tag.
						assert.ErrorIs(t, err, ck.CKR_SIGNATURE_INVALID, what)
						assert.NotEqual(t, tag, mac, what)
					default:
						t.Fatalf("%s: result %q not decided", what, c.Result)
					}
				}
			}
		}
	}
	t.Logf("%d Wycheproof HMAC cases", total)
	assert.Greater(t, total, 1500)
}

func TestHMACGeneralLengths(t *testing.T) {
	key := make([]byte, 32)
	for _, a := range digestAlgs {
		m, ok := Lookup(a.hmacGeneral)
		require.True(t, ok)
		full, _ := Lookup(a.hmac)
		s, err := full.Sign(key, nil)
		require.NoError(t, err)
		want, err := s.Sign(nil)
		require.NoError(t, err)
		require.Len(t, want, a.hash.Size())
		for _, n := range []int{1, a.hash.Size()} {
			checkMAC(t, m, key, ck.ULong(n), nil, want[:n])
		}
		for _, p := range []any{ck.ULong(0), ck.ULong(a.hash.Size() + 1), nil, 4, []byte{4}} {
			_, err := m.Sign(key, p)
			assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "%v %v", a.hmacGeneral, p)
			_, err = m.Verify(key, p)
			assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "%v %v", a.hmacGeneral, p)
		}
	}
}

// Each HMAC row takes generic secrets and its own HMAC key type; its key
// generation row makes exactly that type.
func TestHMACRows(t *testing.T) {
	for _, a := range digestAlgs {
		for _, mech := range []ck.MechanismType{a.hmac, a.hmacGeneral} {
			m, ok := Lookup(mech)
			require.True(t, ok, mech)
			assert.Equal(t, []ck.KeyType{ck.CKK_GENERIC_SECRET, a.keyType}, m.KeyTypes, mech)
			assert.Equal(t, ck.CKF_HW|ck.CKF_SIGN|ck.CKF_VERIFY, m.Flags(), mech)
			assert.EqualValues(t, 1, m.MinKeySize)
			assert.EqualValues(t, secretMaxBytes, m.MaxKeySize)
		}
		m, ok := Lookup(a.keyGen)
		require.True(t, ok, a.keyGen)
		assert.Equal(t, []ck.KeyType{a.keyType}, m.KeyTypes)
		assert.Equal(t, ck.CKF_HW|ck.CKF_GENERATE, m.Flags())
	}
	m, ok := Lookup(ck.CKM_GENERIC_SECRET_KEY_GEN)
	require.True(t, ok)
	assert.Equal(t, []ck.KeyType{ck.CKK_GENERIC_SECRET}, m.KeyTypes)
	k, err := m.GenerateKey(rand.Reader, KeyGenParams{ValueLen: 1})
	require.NoError(t, err)
	assert.Len(t, k, 1)
}

// Reset gives a fresh operation with the same key, and a MAC computed
// after it equals one from a new operation.
func TestHMACReset(t *testing.T) {
	m, _ := Lookup(ck.CKM_SHA256_HMAC)
	key := []byte("0123456789abcdef")
	s, err := m.Sign(key, nil)
	require.NoError(t, err)
	require.NoError(t, s.Update([]byte("first message")))
	_, err = s.Sign(nil)
	require.NoError(t, err)
	s.(interface{ Reset() }).Reset()
	require.NoError(t, s.Update([]byte("second")))
	got, err := s.Sign(nil)
	require.NoError(t, err)

	s2, err := m.Sign(key, nil)
	require.NoError(t, err)
	require.NoError(t, s2.Update([]byte("second")))
	want, err := s2.Sign(nil)
	require.NoError(t, err)
	assert.Equal(t, want, got)
}

// Sign appends exactly Size bytes: a caller's buffer of that capacity is
// written in place.
func TestHMACSignInPlace(t *testing.T) {
	m, _ := Lookup(ck.CKM_SHA512_HMAC_GENERAL)
	s, err := m.Sign([]byte("k"), ck.ULong(10))
	require.NoError(t, err)
	buf := make([]byte, 0, 10)
	out, err := s.Sign(buf)
	require.NoError(t, err)
	require.Len(t, out, 10)
	assert.Same(t, &buf[:1][0], &out[0])
}
