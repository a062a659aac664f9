package mechanisms

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
)

// NIST CAVP "KDF in Counter Mode" vectors (KDFCTR_gen.rsp, CAVS 14.4,
// [CTRLOCATION=BEFORE_FIXED]): PRF(KI, [i]_r || FixedInputData), which is an
// iteration variable followed by one byte array.
var kbkdfCAVP = []struct {
	name      string
	prf       ck.MechanismType
	rlen      int
	ki, fixed string
	ko        string
}{
	{"HMAC_SHA256 RLEN=32 COUNT=0", ck.CKM_SHA256_HMAC, 32,
		"dd1d91b7d90b2bd3138533ce92b272fbf8a369316aefe242e659cc0ae238afe0",
		"01322b96b30acd197979444e468e1c5c6859bf1b1cf951b7e725303e237e46b864a145fab25e517b08f8683d0315bb2911d80a0e8aba17f3b413faac",
		"10621342bfb0fd40046c0e29f2cfdbf0"},
	{"HMAC_SHA256 RLEN=32 L=320", ck.CKM_SHA256_HMAC, 32,
		"c4bedbddb66493e7c7259a3bbbc25f8c7e0ca7fe284d92d431d9cd99a0d214ac",
		"1c69c54766791e315c2cc5c47ecd3ffab87d0d273dd920e70955814c220eacace6a5946542da3dfe24ff626b4897898cafb7db83bdff3c14fa46fd4b",
		"1da47638d6c9c4d04d74d4640bbd42ab814d9e8cc22f4326695239f96b0693f12d0dd1152cf44430"},
	{"HMAC_SHA256 RLEN=8 COUNT=0", ck.CKM_SHA256_HMAC, 8,
		"3edc6b5b8f7aadbd713732b482b8f979286e1ea3b8f8f99c30c884cfe3349b83",
		"98e9988bb4cc8b34d7922e1c68ad692ba2a1d9ae15149571675f17a77ad49e80c8d2a85e831a26445b1f0ff44d7084a17206b4896c8112daad18605a",
		"6c037652990674a07844732d0ad985f9"},
	{"HMAC_SHA1 RLEN=32 COUNT=30", ck.CKM_SHA_1_HMAC, 32,
		"693adb9037184627ad300f176985bd379f388a95",
		"7f09570c2d9304ec743ab845a8761c126c18f5cf72358eada2b5d1deb43dc6a0f4ff8f933bef7af0bcfacb33fa07f8ca04a06afe231835d5075996be",
		"52f55f51010e9bd78e4f58cab274ecafa561bd4e0f20da84f0303a1e5ff9bebc514361ec6df5c77e"},
	// [PRF=CMAC_AES128]
	{"CMAC_AES128 RLEN=32 COUNT=0", ck.CKM_AES_CMAC, 32,
		"c10b152e8c97b77e18704e0f0bd38305",
		"98cd4cbbbebe15d17dc86e6dbad800a2dcbd64f7c7ad0e78e9cf94ffdba89d03e97eadf6c4f7b806caf52aa38f09d0eb71d71f497bcc6906b48d36c4",
		"26faf61908ad9ee881b8305c221db53f"},
	{"CMAC_AES128 RLEN=32 L=256", ck.CKM_AES_CMAC, 32,
		"695f1b1a16c949cea51cdf2554ec9d42",
		"4fce5942832a390aa1cbe8a0bf9d202cb799e986c9d6b51f45e4d597a6b57f06a4ebfec6467335d116b7f5f9c5b954062f661820f5db2a5bbb3e0625",
		"d34b601ec18c34dfa0f9e0b7523e218bdddb9befe8d08b6c0202d75ace0dba89"},
}

func TestKBKDFCAVP(t *testing.T) {
	m := kdfRow(t, ck.CKM_SP800_108_COUNTER_KDF)
	for _, v := range kbkdfCAVP {
		p := &SP800108Params{PRF: v.prf, Data: []PRFData{
			{Type: ck.CK_SP800_108_ITERATION_VARIABLE, WidthBits: v.rlen},
			{Type: ck.CK_SP800_108_BYTE_ARRAY, Bytes: unhex(v.fixed)},
		}}
		ko := unhex(v.ko)
		out, err := m.Derive(unhex(v.ki), p, DeriveTarget{KeyType: ck.CKK_GENERIC_SECRET, ValueLen: len(ko)})
		require.NoError(t, err, v.name)
		assert.Equal(t, ko, out, v.name)
	}
}

// A layout with everything in it, against HMAC-SHA256 computed by hand:
// Label || 0x00 || [i]_16 little-endian || Context || [L]_24 big-endian,
// L the sum of the segments (three SHA-256 outputs for 70 bytes).
func TestKBKDFLayout(t *testing.T) {
	m := kdfRow(t, ck.CKM_SP800_108_COUNTER_KDF)
	key := []byte("key derivation key")
	for _, method := range []ck.ULong{ck.CK_SP800_108_DKM_LENGTH_SUM_OF_SEGMENTS, ck.CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS} {
		p := &SP800108Params{PRF: ck.CKM_SHA256_HMAC, Data: []PRFData{
			{Type: ck.CK_SP800_108_BYTE_ARRAY, Bytes: []byte("Label")},
			{Type: ck.CK_SP800_108_BYTE_ARRAY, Bytes: []byte{0}},
			{Type: ck.CK_SP800_108_ITERATION_VARIABLE, WidthBits: 16, LittleEndian: true},
			{Type: ck.CK_SP800_108_BYTE_ARRAY, Bytes: []byte("Context")},
			{Type: ck.CK_SP800_108_DKM_LENGTH, WidthBits: 24, DKMMethod: method},
		}}
		out, err := m.Derive(key, p, DeriveTarget{KeyType: ck.CKK_GENERIC_SECRET, ValueLen: 70})
		require.NoError(t, err)

		dkmBits := uint32(70 * 8)
		if method == ck.CK_SP800_108_DKM_LENGTH_SUM_OF_SEGMENTS {
			dkmBits = 3 * 32 * 8
		}
		var want []byte
		for i := uint16(1); i <= 3; i++ {
			mac := hmac.New(sha256.New, key)
			mac.Write([]byte("Label\x00"))
			mac.Write(binary.LittleEndian.AppendUint16(nil, i))
			mac.Write([]byte("Context"))
			mac.Write(binary.BigEndian.AppendUint32(nil, dkmBits)[1:])
			want = mac.Sum(want)
		}
		assert.Equal(t, want[:70], out, "method %d", method)
	}
}

func TestKBKDFParams(t *testing.T) {
	m := kdfRow(t, ck.CKM_SP800_108_COUNTER_KDF)
	key := make([]byte, 32)
	iter := func(bits int) PRFData { return PRFData{Type: ck.CK_SP800_108_ITERATION_VARIABLE, WidthBits: bits} }
	dkm := func(bits int, method ck.ULong) PRFData {
		return PRFData{Type: ck.CK_SP800_108_DKM_LENGTH, WidthBits: bits, DKMMethod: method}
	}
	bytesOf := func(b ...byte) PRFData { return PRFData{Type: ck.CK_SP800_108_BYTE_ARRAY, Bytes: b} }
	keys := ck.CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS
	g := func(n int) DeriveTarget { return DeriveTarget{KeyType: ck.CKK_GENERIC_SECRET, ValueLen: n} }

	for _, c := range []struct {
		name string
		prf  ck.MechanismType
		data []PRFData
		t    DeriveTarget
		err  ck.RV
	}{
		{"no iteration variable", ck.CKM_SHA256_HMAC, []PRFData{bytesOf(1)}, g(16), ck.CKR_MECHANISM_PARAM_INVALID},
		{"two iteration variables", ck.CKM_SHA256_HMAC, []PRFData{iter(8), iter(8)}, g(16), ck.CKR_MECHANISM_PARAM_INVALID},
		{"counter 0 bits", ck.CKM_SHA256_HMAC, []PRFData{iter(0)}, g(16), ck.CKR_MECHANISM_PARAM_INVALID},
		{"counter 12 bits", ck.CKM_SHA256_HMAC, []PRFData{iter(12)}, g(16), ck.CKR_MECHANISM_PARAM_INVALID},
		{"counter 40 bits", ck.CKM_SHA256_HMAC, []PRFData{iter(40)}, g(16), ck.CKR_MECHANISM_PARAM_INVALID},
		{"optional counter", ck.CKM_SHA256_HMAC, []PRFData{iter(8), {Type: ck.CK_SP800_108_COUNTER, WidthBits: 8}}, g(16), ck.CKR_MECHANISM_PARAM_INVALID},
		{"unknown data type", ck.CKM_SHA256_HMAC, []PRFData{iter(8), {Type: 9}}, g(16), ck.CKR_MECHANISM_PARAM_INVALID},
		{"empty byte array", ck.CKM_SHA256_HMAC, []PRFData{iter(8), bytesOf()}, g(16), ck.CKR_MECHANISM_PARAM_INVALID},
		{"dkm 72 bits", ck.CKM_SHA256_HMAC, []PRFData{iter(8), dkm(72, keys)}, g(16), ck.CKR_MECHANISM_PARAM_INVALID},
		{"dkm 4 bits", ck.CKM_SHA256_HMAC, []PRFData{iter(8), dkm(4, keys)}, g(16), ck.CKR_MECHANISM_PARAM_INVALID},
		{"dkm method 3", ck.CKM_SHA256_HMAC, []PRFData{iter(8), dkm(32, 3)}, g(16), ck.CKR_MECHANISM_PARAM_INVALID},
		{"two dkm", ck.CKM_SHA256_HMAC, []PRFData{iter(8), dkm(32, keys), dkm(32, keys)}, g(16), ck.CKR_MECHANISM_PARAM_INVALID},
		{"digest as prf", ck.CKM_SHA256, []PRFData{iter(8)}, g(16), ck.CKR_MECHANISM_PARAM_INVALID},
		{"sha512/224 hmac not listed", ck.CKM_SHA512_224_HMAC, []PRFData{iter(8)}, g(16), ck.CKR_MECHANISM_PARAM_INVALID},
		{"8-bit counter overflows", ck.CKM_SHA256_HMAC, []PRFData{iter(8)}, g(255*32 + 1), ck.CKR_TEMPLATE_INCONSISTENT},
		{"dkm does not fit 8 bits", ck.CKM_SHA256_HMAC, []PRFData{iter(8), dkm(8, keys)}, g(32), ck.CKR_TEMPLATE_INCONSISTENT},
	} {
		_, err := m.Derive(key, &SP800108Params{PRF: c.prf, Data: c.data}, c.t)
		assert.ErrorIs(t, err, c.err, c.name)
	}

	for _, c := range []struct {
		name string
		data []PRFData
		t    DeriveTarget
		n    int
	}{
		{"8-bit counter at its limit", []PRFData{iter(8)}, g(255 * 32), 255 * 32},
		{"dkm 8 bits at its limit", []PRFData{iter(8), dkm(8, keys)}, g(31), 31},
		{"dkm 64 bits", []PRFData{iter(32), dkm(64, keys)}, g(16), 16},
		{"natural length", []PRFData{iter(24)}, g(0), 32},
	} {
		out, err := m.Derive(key, &SP800108Params{PRF: ck.CKM_SHA256_HMAC, Data: c.data}, c.t)
		require.NoError(t, err, c.name)
		assert.Len(t, out, c.n, c.name)
	}

	// Every listed PRF works, and gives its own output.
	seen := map[string]bool{}
	for prf := range prfs {
		k := key
		if prf == ck.CKM_DES3_CMAC {
			k = key[:24]
		}
		out, err := m.Derive(k, &SP800108Params{PRF: prf, Data: []PRFData{iter(32), bytesOf('x')}}, g(20))
		require.NoError(t, err, prf)
		require.Len(t, out, 20)
		assert.False(t, seen[string(out)], prf)
		seen[string(out)] = true
	}
	assert.Len(t, seen, 11, "the eleven PRFs of PKCS#11 v3.0")
	// A key the PRF cannot take.
	_, err := m.Derive(make([]byte, 20), &SP800108Params{PRF: ck.CKM_AES_CMAC, Data: []PRFData{iter(32)}}, g(16))
	assert.ErrorIs(t, err, ck.CKR_KEY_SIZE_RANGE)
	assert.Equal(t, ck.CKF_HW|ck.CKF_DERIVE, m.Flags())
	assert.Equal(t, fmt.Sprint(kbkdfKeys()), fmt.Sprint(m.KeyTypes))
}
