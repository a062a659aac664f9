package mechanisms

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/internal/testenv"
)

func unhex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func gcmRow(t *testing.T) *Mechanism {
	m, ok := Lookup(ck.CKM_AES_GCM)
	require.True(t, ok)
	return m
}

// Test cases 2-6 of McGrew & Viega, "The Galois/Counter Mode of Operation
// (GCM)", revised 2005, Appendix B (also SP 800-38D's reference vectors):
// 96-bit IV with and without AAD, an 8-byte IV (case 5) and a 60-byte IV
// (case 6), which take the GHASH path for J0.
var gcmVectors = []struct {
	name             string
	key, iv, aad, pt string
	ct, tag          string
}{
	{"case 2", "00000000000000000000000000000000", "000000000000000000000000", "",
		"00000000000000000000000000000000",
		"0388dace60b6a392f328c2b971b2fe78", "ab6e47d42cec13bdf53a67b21257bddf"},
	{"case 3", "feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888", "",
		"d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
		"42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985",
		"4d5c2af327cd64a62cf35abd2ba6fab4"},
	{"case 4", "feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888", "feedfacedeadbeeffeedfacedeadbeefabaddad2",
		"d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
		"42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091",
		"5bc94fbc3221a5db94fae95ae7121a47"},
	{"case 5", "feffe9928665731c6d6a8f9467308308", "cafebabefacedbad", "feedfacedeadbeeffeedfacedeadbeefabaddad2",
		"d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
		"61353b4c2806934a777ff51fa22a4755699b2a714fcdc6f83766e5f97b6c742373806900e49f24b22b097544d4896b424989b5e1ebac0f07c23f4598",
		"3612d2e79e3b0785561be14aaca2fccb"},
	{"case 6", "feffe9928665731c6d6a8f9467308308",
		"9313225df88406e555909c5aff5269aa6a7a9538534f7da1e4c303d2a318a728c3c0c95156809539fcf0e2429a6b525416aedbf5a0de6a57a637b39b",
		"feedfacedeadbeeffeedfacedeadbeefabaddad2",
		"d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
		"8ce24998625615b603a033aca13fb894be9112a5c3a211a8ba262a3cca7e2ca701e4a9a4fba43c90ccdcb281d48c7c6fd62875d2aca417034c34aee5",
		"619cc5aefffe0bfa462af43c1699d050"},
}

func TestAESGCMVectors(t *testing.T) {
	m := gcmRow(t)
	for _, v := range gcmVectors {
		// Every accepted tag length: a shorter tag is the leftmost bits
		// of the full one (SP 800-38D §7.1, PKCS#11 v3.0 "AES-GCM").
		for _, bits := range []int{128, 120, 112, 104, 96, 64, 32} {
			p := &GCMParams{IV: unhex(v.iv), AAD: unhex(v.aad), TagBits: bits}
			want := append(unhex(v.ct), unhex(v.tag)[:bits/8]...)

			enc, err := m.Encrypt(unhex(v.key), p)
			require.NoError(t, err)
			got, err := enc.Once(nil, unhex(v.pt))
			require.NoError(t, err)
			assert.Equal(t, want, got, "%s, %d-bit tag", v.name, bits)

			dec, err := m.Decrypt(unhex(v.key), p)
			require.NoError(t, err)
			pt, err := dec.Once(nil, want)
			require.NoError(t, err, "%s, %d-bit tag", v.name, bits)
			assert.Equal(t, unhex(v.pt), pt)

			// The tag's last byte, and a ciphertext byte, are checked.
			for _, i := range []int{len(want) - 1, 0} {
				bad := bytes.Clone(want)
				bad[i] ^= 0x80
				dec, err = m.Decrypt(unhex(v.key), p)
				require.NoError(t, err)
				_, err = dec.Once(nil, bad)
				assert.ErrorIs(t, err, ck.CKR_ENCRYPTED_DATA_INVALID, "%s, %d-bit tag, byte %d", v.name, bits, i)
			}
		}
	}
}

// The truncated-tag decryption path against Go's own tag-size support,
// which covers 96..120-bit tags with 12-byte IVs.
func TestAESGCMShortTagsAgainstStdlib(t *testing.T) {
	m := gcmRow(t)
	key := make([]byte, 32)
	iv := make([]byte, 12)
	_, _ = rand.Read(key)
	_, _ = rand.Read(iv)
	b, err := aes.NewCipher(key)
	require.NoError(t, err)
	for _, tagLen := range []int{12, 13, 14, 15} {
		std, err := cipher.NewGCMWithTagSize(b, tagLen)
		require.NoError(t, err)
		for _, n := range []int{0, 1, 16, 100} {
			pt := make([]byte, n)
			_, _ = rand.Read(pt)
			ct := std.Seal(nil, iv, pt, []byte("aad"))
			dec, err := m.Decrypt(key, &GCMParams{IV: iv, AAD: []byte("aad"), TagBits: tagLen * 8})
			require.NoError(t, err)
			got, err := dec.Once(nil, ct)
			require.NoError(t, err)
			assert.True(t, bytes.Equal(pt, got))
		}
	}
}

func TestAESGCMParams(t *testing.T) {
	m := gcmRow(t)
	key := make([]byte, 16)
	for _, c := range []struct {
		name  string
		key   any
		param any
		want  ck.RV
	}{
		{"no iv", key, &GCMParams{TagBits: 128}, ck.CKR_MECHANISM_PARAM_INVALID},
		{"iv too long", key, &GCMParams{IV: make([]byte, gcmMaxIV+1), TagBits: 128}, ck.CKR_MECHANISM_PARAM_INVALID},
		{"tag 0", key, &GCMParams{IV: make([]byte, 12)}, ck.CKR_MECHANISM_PARAM_INVALID},
		{"tag 8", key, &GCMParams{IV: make([]byte, 12), TagBits: 8}, ck.CKR_MECHANISM_PARAM_INVALID},
		{"tag 100", key, &GCMParams{IV: make([]byte, 12), TagBits: 100}, ck.CKR_MECHANISM_PARAM_INVALID},
		{"tag 136", key, &GCMParams{IV: make([]byte, 12), TagBits: 136}, ck.CKR_MECHANISM_PARAM_INVALID},
		{"nil params", key, (*GCMParams)(nil), ck.CKR_MECHANISM_PARAM_INVALID},
		{"params by value", key, GCMParams{IV: make([]byte, 12), TagBits: 128}, ck.CKR_MECHANISM_PARAM_INVALID},
		{"20-byte key", make([]byte, 20), &GCMParams{IV: make([]byte, 12), TagBits: 128}, ck.CKR_KEY_SIZE_RANGE},
		{"8-byte key", make([]byte, 8), &GCMParams{IV: make([]byte, 12), TagBits: 128}, ck.CKR_KEY_SIZE_RANGE},
	} {
		_, err := m.Encrypt(c.key, c.param)
		assert.ErrorIs(t, err, c.want, c.name)
		_, err = m.Decrypt(c.key, c.param)
		assert.ErrorIs(t, err, c.want, c.name)
	}
	for _, n := range []int{1, gcmMaxIV} {
		_, err := m.Encrypt(key, &GCMParams{IV: make([]byte, n), TagBits: 128})
		assert.NoError(t, err, "%d-byte iv", n)
	}

	dec, err := m.Decrypt(key, &GCMParams{IV: make([]byte, 12), TagBits: 128})
	require.NoError(t, err)
	_, err = dec.Once(nil, make([]byte, 15))
	assert.ErrorIs(t, err, ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
	_, err = dec.Final(nil)
	assert.ErrorIs(t, err, ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
}

// C callers may encrypt in place or into overlapping buffers; neither may
// panic (crypto/cipher does on inexact overlap) or corrupt the result.
func TestAESGCMOverlap(t *testing.T) {
	m := gcmRow(t)
	key := make([]byte, 32)
	p := &GCMParams{IV: make([]byte, 12), TagBits: 128}
	msg := bytes.Repeat([]byte("0123456789abcdef"), 8)
	enc, err := m.Encrypt(key, p)
	require.NoError(t, err)
	want, err := enc.Once(nil, msg)
	require.NoError(t, err)

	for _, shift := range []int{0, 1, 5, -3} {
		buf := make([]byte, len(msg)+32)
		src := buf[8 : 8+len(msg)]
		copy(src, msg)
		dst := buf[8+shift : 8+shift]
		enc, err := m.Encrypt(key, p)
		require.NoError(t, err)
		got, err := enc.Once(dst, src)
		require.NoError(t, err, "shift %d", shift)
		assert.Equal(t, want, got, "shift %d", shift)

		// And back, over the ciphertext's own storage.
		copy(buf[8:], want)
		dec, err := m.Decrypt(key, p)
		require.NoError(t, err)
		pt, err := dec.Once(buf[8+shift:8+shift], buf[8:8+len(want)])
		require.NoError(t, err, "shift %d", shift)
		assert.Equal(t, msg, pt, "shift %d", shift)
	}
}

// With enough room in dst, single-part GCM allocates nothing.
func TestAESGCMOnceAllocs(t *testing.T) {
	testenv.NoAllocCount(t)
	m := gcmRow(t)
	key := make([]byte, 32)
	p := &GCMParams{IV: make([]byte, 12), TagBits: 128}
	enc, err := m.Encrypt(key, p)
	require.NoError(t, err)
	dec, err := m.Decrypt(key, p)
	require.NoError(t, err)
	msg := make([]byte, 4096)
	ct := make([]byte, 0, len(msg)+16)
	pt := make([]byte, 0, len(msg))
	allocs := testing.AllocsPerRun(50, func() {
		ct, _ = enc.Once(ct[:0], msg)
		pt, _ = dec.Once(pt[:0], ct)
	})
	assert.Zero(t, allocs)
	assert.Equal(t, msg, pt)
}
