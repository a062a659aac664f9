package mechanisms

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/internal/wycheproof"
)

// RFC 5869 Appendix A, test cases 1-3 (SHA-256): PRK for extract only,
// OKM for extract and expand, and the OKM again by expanding the PRK.
func TestHKDFRFC5869(t *testing.T) {
	m := kdfRow(t, ck.CKM_HKDF_DERIVE)
	for _, c := range []struct {
		name                      string
		ikm, salt, info, prk, okm string
	}{
		{"A.1", "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "000102030405060708090a0b0c", "f0f1f2f3f4f5f6f7f8f9",
			"077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
			"3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"},
		{"A.2",
			"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f",
			"606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
			"b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
			"06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
			"b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87"},
		{"A.3", "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "", "",
			"19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
			"8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"},
	} {
		saltType := ck.CKF_HKDF_SALT_DATA
		if c.salt == "" {
			saltType = ck.CKF_HKDF_SALT_NULL
		}
		okm := unhex(c.okm)
		target := DeriveTarget{KeyType: ck.CKK_GENERIC_SECRET, ValueLen: len(okm)}
		p := &HKDFParams{Extract: true, Expand: true, PRF: ck.CKM_SHA256, SaltType: saltType, Salt: unhex(c.salt), Info: unhex(c.info)}
		out, err := m.Derive(unhex(c.ikm), p, target)
		require.NoError(t, err, c.name)
		assert.Equal(t, okm, out, c.name)

		// The salt as a key's value (CKF_HKDF_SALT_KEY, resolved by the token).
		if c.salt != "" {
			q := *p
			q.SaltType, q.SaltKey = ck.CKF_HKDF_SALT_KEY, 99
			out, err = m.Derive(unhex(c.ikm), &q, target)
			require.NoError(t, err, c.name)
			assert.Equal(t, okm, out, c.name)
		}

		q := *p
		q.Expand = false
		prk, err := m.Derive(unhex(c.ikm), &q, DeriveTarget{KeyType: ck.CKK_GENERIC_SECRET})
		require.NoError(t, err, c.name)
		assert.Equal(t, unhex(c.prk), prk, c.name)

		q = *p
		q.Extract, q.SaltType, q.Salt = false, 0, nil // salt ignored without extract
		out, err = m.Derive(prk, &q, target)
		require.NoError(t, err, c.name)
		assert.Equal(t, okm, out, c.name)

		// CKM_HKDF_DATA computes the same.
		out, err = kdfRow(t, ck.CKM_HKDF_DATA).Derive(unhex(c.ikm), p, target)
		require.NoError(t, err, c.name)
		assert.Equal(t, okm, out, c.name)
	}
}

// A 1200-byte HKDF-SHA256 output (IKM 22 x 0x0b, no salt, no info), the
// vector pyca/cryptography publishes as hkdf-generated.txt.
func TestHKDFLong(t *testing.T) {
	m := kdfRow(t, ck.CKM_HKDF_DATA)
	out, err := m.Derive(bytes.Repeat([]byte{0x0b}, 22),
		&HKDFParams{Extract: true, Expand: true, PRF: ck.CKM_SHA256, SaltType: ck.CKF_HKDF_SALT_NULL},
		DeriveTarget{KeyType: ck.CKK_GENERIC_SECRET, ValueLen: 1200})
	require.NoError(t, err)
	require.Len(t, out, 1200)
	assert.Equal(t, "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d", hexs(out[:32]))
	assert.Equal(t, "44c513d1e61b8c8789eb9e823d1a38862dca1c5331da", hexs(out[1200-22:]))
}

// Project Wycheproof hkdf_sha{1,256,384,512}_test.json. An empty salt is
// CKF_HKDF_SALT_NULL (RFC 5869 §2.2 makes the two equal; pSalt must not be
// empty under CKF_HKDF_SALT_DATA, checked below). "invalid" cases ask for
// more than 255*HashLen bytes. There are no "acceptable" cases; any other
// result fails.
func TestHKDFWycheproof(t *testing.T) {
	files := map[string]ck.MechanismType{
		"hkdf_sha1_test.json":   ck.CKM_SHA_1,
		"hkdf_sha256_test.json": ck.CKM_SHA256,
		"hkdf_sha384_test.json": ck.CKM_SHA384,
		"hkdf_sha512_test.json": ck.CKM_SHA512,
	}
	m := kdfRow(t, ck.CKM_HKDF_DERIVE)
	total := 0
	for name, prf := range files {
		f := wycheproof.Load(t, name)
		for _, g := range f.Groups {
			for _, c := range g.Tests {
				total++
				what := fmt.Sprintf("%s #%d (%s)", name, c.ID, c.Comment)
				ikm := wycheproof.Hex(t, c.Fields, "ikm")
				salt := wycheproof.Hex(t, c.Fields, "salt")
				size := wycheproof.Int(t, c.Fields, "size")
				require.Positive(t, size, what)
				p := &HKDFParams{Extract: true, Expand: true, PRF: prf, SaltType: ck.CKF_HKDF_SALT_DATA, Salt: salt, Info: wycheproof.Hex(t, c.Fields, "info")}
				if len(salt) == 0 {
					p.SaltType = ck.CKF_HKDF_SALT_NULL
				}
				out, err := m.Derive(ikm, p, DeriveTarget{KeyType: ck.CKK_GENERIC_SECRET, ValueLen: size})
				switch c.Result {
				case "valid":
					require.NoError(t, err, what)
					assert.Equal(t, wycheproof.Hex(t, c.Fields, "okm"), out, what)
				case "invalid":
					assert.ErrorIs(t, err, ck.CKR_TEMPLATE_INCONSISTENT, what)
				default:
					t.Fatalf("%s: result %q not decided", what, c.Result)
				}
			}
		}
	}
	t.Logf("%d Wycheproof HKDF cases", total)
	assert.Greater(t, total, 300)
}

func TestHKDFParams(t *testing.T) {
	m := kdfRow(t, ck.CKM_HKDF_DERIVE)
	key := bytes.Repeat([]byte{1}, 32)
	g := func(n int) DeriveTarget { return DeriveTarget{KeyType: ck.CKK_GENERIC_SECRET, ValueLen: n} }
	ok := HKDFParams{Extract: true, Expand: true, PRF: ck.CKM_SHA384, SaltType: ck.CKF_HKDF_SALT_NULL}
	v := func(f func(*HKDFParams)) *HKDFParams { q := ok; f(&q); return &q }

	out, err := m.Derive(key, &ok, g(0))
	require.NoError(t, err)
	assert.Len(t, out, 48, "natural length: the hash's")
	for _, a := range digestAlgs {
		out, err := m.Derive(key, v(func(q *HKDFParams) { q.PRF = a.mech }), g(0))
		require.NoError(t, err, a.mech)
		assert.Len(t, out, a.hash.Size(), a.mech)
	}

	for name, c := range map[string]struct {
		p   *HKDFParams
		t   DeriveTarget
		err ck.RV
	}{
		"neither":               {v(func(q *HKDFParams) { q.Extract, q.Expand = false, false }), g(0), ck.CKR_MECHANISM_PARAM_INVALID},
		"hmac as prf":           {v(func(q *HKDFParams) { q.PRF = ck.CKM_SHA256_HMAC }), g(0), ck.CKR_MECHANISM_PARAM_INVALID},
		"salt data empty":       {v(func(q *HKDFParams) { q.SaltType = ck.CKF_HKDF_SALT_DATA }), g(0), ck.CKR_MECHANISM_PARAM_INVALID},
		"salt key unresolved":   {v(func(q *HKDFParams) { q.SaltType, q.SaltKey = ck.CKF_HKDF_SALT_KEY, 5 }), g(0), ck.CKR_MECHANISM_PARAM_INVALID},
		"salt type unknown":     {v(func(q *HKDFParams) { q.SaltType = 8 }), g(0), ck.CKR_MECHANISM_PARAM_INVALID},
		"salt type zero":        {v(func(q *HKDFParams) { q.SaltType = 0 }), g(0), ck.CKR_MECHANISM_PARAM_INVALID},
		"too long":              {&ok, g(255*48 + 1), ck.CKR_TEMPLATE_INCONSISTENT},
		"extract only, longer":  {v(func(q *HKDFParams) { q.Expand = false }), g(49), ck.CKR_TEMPLATE_INCONSISTENT},
		"extract only, shorter": {v(func(q *HKDFParams) { q.Expand = false }), g(16), ck.CKR_TEMPLATE_INCONSISTENT},
		"extract only, AES":     {v(func(q *HKDFParams) { q.Expand = false }), DeriveTarget{KeyType: ck.CKK_AES}, ck.CKR_TEMPLATE_INCOMPLETE},
	} {
		_, err := m.Derive(key, c.p, c.t)
		assert.ErrorIs(t, err, c.err, name)
	}
	out, err = m.Derive(key, &ok, g(255*48))
	require.NoError(t, err)
	assert.Len(t, out, 255*48)
	out, err = m.Derive(key, v(func(q *HKDFParams) { q.Expand = false; q.PRF = ck.CKM_SHA256 }), DeriveTarget{KeyType: ck.CKK_AES, ValueLen: 32})
	require.NoError(t, err)
	assert.Len(t, out, 32, "extract only makes an AES-256 key from SHA-256")
}

func TestHKDFKeyGen(t *testing.T) {
	m := kdfRow(t, ck.CKM_HKDF_KEY_GEN)
	assert.Equal(t, []ck.KeyType{ck.CKK_HKDF}, m.KeyTypes)
	assert.Equal(t, ck.CKF_HW|ck.CKF_GENERATE, m.Flags())
	for _, d := range []ck.MechanismType{ck.CKM_HKDF_DERIVE, ck.CKM_HKDF_DATA} {
		assert.Equal(t, ck.CKF_HW|ck.CKF_DERIVE, kdfRow(t, d).Flags(), d)
	}
}
