package mechanisms

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"math"
	"math/bits"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/internal/testenv"
)

// NIST SP 800-38A, Appendix F: the four-block plaintext of every example.
const sp80038aPlain = "6bc1bee22e409f96e93d7e117393172a" + "ae2d8a571e03ac9c9eb76fac45af8e51" +
	"30c81c46a35ce411e5fbc1191a0a52ef" + "f69f2445df4f9b17ad2b417be66c3710"

var sp80038a = []struct {
	name  string
	mech  ck.MechanismType
	key   string
	param any
	ct    string
}{
	// F.1.1 ECB-AES128.Encrypt
	{"F.1.1", ck.CKM_AES_ECB, "2b7e151628aed2a6abf7158809cf4f3c", nil,
		"3ad77bb40d7a3660a89ecaf32466ef97f5d3d58503b9699de785895a96fdbaaf43b1cd7f598ece23881b00e3ed0306887b0c785e27e8ad3f8223207104725dd4"},
	// F.1.5 ECB-AES256.Encrypt
	{"F.1.5", ck.CKM_AES_ECB, "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4", nil,
		"f3eed1bdb5d2a03c064b5a7e3db181f8591ccb10d410ed26dc5ba74a31362870b6ed21b99ca6f4f9f153e7b1beafed1d23304b7a39f9f3ff067d8d8f9e24ecc7"},
	// F.2.1 CBC-AES128.Encrypt
	{"F.2.1", ck.CKM_AES_CBC, "2b7e151628aed2a6abf7158809cf4f3c", unhex("000102030405060708090a0b0c0d0e0f"),
		"7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b273bed6b8e3c1743b7116e69e222295163ff1caa1681fac09120eca307586e1a7"},
	// F.5.1 CTR-AES128.Encrypt
	{"F.5.1", ck.CKM_AES_CTR, "2b7e151628aed2a6abf7158809cf4f3c", ctrParams(128, "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"),
		"874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff5ae4df3edbd5d35e5b4f09020db03eab1e031dda2fbe03d1792170a0f3009cee"},
	// The same with only the low byte as counter (it does not wrap: ff..ff02 at most).
	{"F.5.1, 8-bit counter", ck.CKM_AES_CTR, "2b7e151628aed2a6abf7158809cf4f3c", ctrParams(8, "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"), ""},
}

func ctrParams(bits int, cb string) *CTRParams {
	p := &CTRParams{CounterBits: bits}
	copy(p.CB[:], unhex(cb))
	return p
}

func TestSP80038AVectors(t *testing.T) {
	for _, v := range sp80038a {
		if v.ct == "" {
			continue
		}
		m := aesFamilyRow(t, v.mech)
		pt, ct := unhex(sp80038aPlain), unhex(v.ct)
		enc, err := m.Encrypt(unhex(v.key), v.param)
		require.NoError(t, err)
		got, err := enc.Once(nil, pt)
		require.NoError(t, err)
		assert.Equal(t, ct, got, v.name)

		dec, err := m.Decrypt(unhex(v.key), v.param)
		require.NoError(t, err)
		var multi []byte
		for _, part := range chunks(ct) {
			multi, err = dec.Update(multi, part)
			require.NoError(t, err)
		}
		multi, err = dec.Final(multi)
		require.NoError(t, err)
		assert.Equal(t, pt, multi, v.name)
	}
}

// The CTR counter field wraps, in PKCS#11 terms, when the low ulCounterBits
// bits pass all ones; everything up to that is processed, the block that
// would wrap is refused, in one part or across parts.
func TestAESCTRCounterWrap(t *testing.T) {
	m := aesFamilyRow(t, ck.CKM_AES_CTR)
	key := make([]byte, 16)
	for _, c := range []struct {
		bits   int
		cb     string
		blocks int // blocks allowed
	}{
		{8, "000000000000000000000000000000fe", 2},
		{8, "ffffffffffffffffffffffffffffff00", 256},
		{1, "00000000000000000000000000000001", 1},
		{16, "0000000000000000000000000000fff0", 16},
		{64, "0000000000000000fffffffffffffffd", 3},
		{128, "fffffffffffffffffffffffffffffffe", 2},
		{100, "0000000fffffffffffffffffffffffff", 1},
	} {
		p := ctrParams(c.bits, c.cb)
		limit := 16 * c.blocks
		enc, err := m.Encrypt(key, p)
		require.NoError(t, err)
		out, err := enc.Once(nil, make([]byte, limit))
		require.NoError(t, err, "%d bits from %s", c.bits, c.cb)
		// Up to the wrap the key stream is the standard CTR's.
		b, _ := aes.NewCipher(key)
		want := make([]byte, limit)
		cipher.NewCTR(b, p.CB[:]).XORKeyStream(want, want)
		assert.Equal(t, want, out)

		enc, _ = m.Encrypt(key, p)
		_, err = enc.Once(nil, make([]byte, limit+1))
		assert.ErrorIs(t, err, ck.CKR_DATA_LEN_RANGE, "%d bits from %s", c.bits, c.cb)

		dec, _ := m.Decrypt(key, p)
		_, err = dec.Update(nil, make([]byte, limit-1))
		require.NoError(t, err)
		_, err = dec.Update(nil, make([]byte, 1))
		require.NoError(t, err)
		_, err = dec.Update(nil, make([]byte, 1))
		assert.ErrorIs(t, err, ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
	}
	// A clear counter bit above the low 64 leaves no practical limit.
	for _, c := range []struct {
		bits int
		cb   string
	}{{100, "000000000fffffffffffffffffffffff"}, {128, "00000000000000000000000000000000"}, {64, "ffffffffffffffff0000000000000000"}} {
		assert.Equal(t, uint64(math.MaxUint64), ctrBytesLeft(ctrParams(c.bits, c.cb)), "%d bits from %s", c.bits, c.cb)
	}
	for _, bad := range []any{ctrParams(0, "00"), ctrParams(129, "00"), (*CTRParams)(nil), CTRParams{CounterBits: 32}} {
		_, err := m.Encrypt(key, bad)
		assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "%v", bad)
	}
}

// Block-mode edge cases: partial blocks, padding held back on multi-part
// decryption, output bounds, in-place and shifted buffers.
func TestBlockModes(t *testing.T) {
	key := make([]byte, 16)
	iv := make([]byte, 16)
	ecb, cbc, pad := aesFamilyRow(t, ck.CKM_AES_ECB), aesFamilyRow(t, ck.CKM_AES_CBC), aesFamilyRow(t, ck.CKM_AES_CBC_PAD)

	c, _ := ecb.Encrypt(key, nil)
	_, err := c.Once(nil, make([]byte, 17))
	assert.ErrorIs(t, err, ck.CKR_DATA_LEN_RANGE)
	c, _ = cbc.Decrypt(key, iv)
	_, err = c.Once(nil, make([]byte, 15))
	assert.ErrorIs(t, err, ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
	c, _ = cbc.Encrypt(key, iv)
	out, err := c.Update(nil, make([]byte, 20))
	require.NoError(t, err)
	assert.Len(t, out, 16)
	_, err = c.Final(nil)
	assert.ErrorIs(t, err, ck.CKR_DATA_LEN_RANGE)
	_, err = cbc.Encrypt(key, make([]byte, 8))
	assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID)

	// CBC-PAD decryption holds back the last whole block.
	e, _ := pad.Encrypt(key, iv)
	ct, err := e.Once(nil, []byte("sixteen byte msg"))
	require.NoError(t, err)
	require.Len(t, ct, 32)
	d, _ := pad.Decrypt(key, iv)
	assert.Equal(t, 32, d.MaxOutput(32, false))
	got, err := d.Update(nil, ct)
	require.NoError(t, err)
	assert.Equal(t, []byte("sixteen byte msg"), got)
	assert.Equal(t, 16, d.MaxOutput(0, false))
	got, err = d.Final(got)
	require.NoError(t, err)
	assert.Equal(t, []byte("sixteen byte msg"), got)
	d, _ = pad.Decrypt(key, iv)
	_, err = d.Once(nil, nil)
	assert.ErrorIs(t, err, ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
	d, _ = pad.Decrypt(key, iv)
	_, err = d.Once(nil, ct[:16]) // "sixteen byte msg" itself: last byte 'g' is no padding
	assert.ErrorIs(t, err, ck.CKR_ENCRYPTED_DATA_INVALID)

	// Padding: every pad byte is checked.
	for i := 0; i < 16; i++ {
		blk := bytes.Repeat([]byte{4}, 16)
		blk[i] ^= 0x40
		n, ok := unpadLen(blk)
		assert.Equal(t, i < 12, ok, "byte %d", i)
		if ok {
			assert.Equal(t, 12, n)
		}
	}
	for _, p := range []byte{0, 17, 255} {
		_, ok := unpadLen(bytes.Repeat([]byte{p}, 16))
		assert.False(t, ok, "pad byte %d", p)
	}

	// Buffers: in place and shifted, single- and multi-part, all modes.
	msg := make([]byte, 100)
	_, _ = rand.Read(msg)
	for _, m := range []*Mechanism{ecb, cbc, pad} {
		n := len(msg)
		var param any
		if m.Param == ParamIV {
			param = iv
		}
		if m != pad {
			n = 96
		}
		e, _ := m.Encrypt(key, param)
		want, err := e.Once(nil, msg[:n])
		require.NoError(t, err)
		for _, shift := range []int{0, 1, 7, -5} {
			buf := make([]byte, len(want)+32)
			src := buf[8 : 8+n]
			copy(src, msg[:n])
			e, _ := m.Encrypt(key, param)
			got, err := e.Once(buf[8+shift:8+shift], src)
			require.NoError(t, err)
			assert.Equal(t, want, got, "%v shift %d", m.Type, shift)

			copy(buf[8:], msg[:n])
			e, _ = m.Encrypt(key, param)
			got = buf[8+shift : 8+shift]
			pos := 8
			for _, part := range chunks(msg[:n]) {
				got, err = e.Update(got, buf[pos:pos+len(part)])
				require.NoError(t, err)
				pos += len(part)
			}
			got, err = e.Final(got)
			require.NoError(t, err)
			assert.Equal(t, want, got, "%v multi-part shift %d", m.Type, shift)
		}
	}
}

// RFC 3394 §4.1 and §4.6, RFC 5649 §6.
func TestKeyWrapRFCVectors(t *testing.T) {
	for _, v := range []struct {
		name      string
		mech      ck.MechanismType
		kek, data string
		wrapped   string
	}{
		{"RFC 3394 4.1", ck.CKM_AES_KEY_WRAP, "000102030405060708090A0B0C0D0E0F", "00112233445566778899AABBCCDDEEFF",
			"1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5"},
		{"RFC 3394 4.6", ck.CKM_AES_KEY_WRAP, "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
			"00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F",
			"28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21"},
		{"RFC 5649 6 (20 bytes)", ck.CKM_AES_KEY_WRAP_KWP, "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8",
			"c37b7e6492584340bed12207808941155068f738", "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a"},
		{"RFC 5649 6 (7 bytes)", ck.CKM_AES_KEY_WRAP_PAD, "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8",
			"466f7250617369", "afbeb0f07dfbf5419200f2ccb50bb24f"},
	} {
		m := aesFamilyRow(t, v.mech)
		kek, data, wrapped := unhex(v.kek), unhex(v.data), unhex(v.wrapped)
		got, err := m.Wrap(kek, nil, data)
		require.NoError(t, err)
		assert.Equal(t, wrapped, got, v.name)
		got, err = m.Unwrap(kek, []byte{}, wrapped)
		require.NoError(t, err)
		assert.Equal(t, data, got, v.name)
		e, err := m.Encrypt(kek, nil)
		require.NoError(t, err)
		got, err = e.Once(nil, data)
		require.NoError(t, err)
		assert.Equal(t, wrapped, got, v.name)
	}

	// The optional IV (not yet reachable through the table, see kwParam):
	// the default given explicitly changes nothing, another IV changes the
	// wrapping and must match on unwrap.
	kek := unhex("000102030405060708090A0B0C0D0E0F")
	data := unhex("00112233445566778899AABBCCDDEEFF")
	std := unhex("1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5")
	for _, c := range []struct {
		padded bool
		def    []byte
		other  []byte
	}{
		{false, kwDefaultIV[:], []byte("8 bytes!")},
		{true, kwpDefaultIV[:], []byte("4byt")},
	} {
		e, err := newKeyWrap(kek, c.def, c.padded, true)
		require.NoError(t, err)
		w1, ok := e.seal(nil, data)
		require.True(t, ok)
		if !c.padded {
			assert.Equal(t, std, w1)
		}
		e, err = newKeyWrap(kek, c.other, c.padded, true)
		require.NoError(t, err)
		w2, _ := e.seal(nil, data)
		assert.NotEqual(t, w1, w2)
		d, _ := newKeyWrap(kek, c.other, c.padded, false)
		got, lenOK, ok := d.open(nil, w2)
		require.True(t, lenOK && ok)
		assert.Equal(t, data, got)
		d, _ = newKeyWrap(kek, nil, c.padded, false)
		_, _, ok = d.open(nil, w2)
		assert.False(t, ok, "wrong IV")
		_, err = newKeyWrap(kek, make([]byte, 5), c.padded, false)
		assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID)
	}

	// Lengths KW cannot wrap.
	kw := aesFamilyRow(t, ck.CKM_AES_KEY_WRAP)
	for _, n := range []int{0, 8, 20} {
		_, err := kw.Wrap(kek, nil, make([]byte, n))
		assert.ErrorIs(t, err, ck.CKR_KEY_SIZE_RANGE, "%d bytes", n)
		e, _ := kw.Encrypt(kek, nil)
		_, err = e.Once(nil, make([]byte, n))
		assert.ErrorIs(t, err, ck.CKR_DATA_LEN_RANGE, "%d bytes", n)
	}
	_, err := kw.Unwrap(kek, nil, make([]byte, 16))
	assert.ErrorIs(t, err, ck.CKR_WRAPPED_KEY_LEN_RANGE)
}

// NIST SP 800-67 Rev. 1, Appendix B: the TDEA ECB example (three keys).
func TestDES3Vector(t *testing.T) {
	m := aesFamilyRow(t, ck.CKM_DES3_ECB)
	key := unhex("0123456789ABCDEF23456789ABCDEF01456789ABCDEF0123")
	pt := []byte("The qufck brown fox jump")
	ct := unhex("A826FD8CE53B855FCCE21C8112256FE668D5C05DD9B6B900")
	e, err := m.Encrypt(key, nil)
	require.NoError(t, err)
	got, err := e.Once(nil, pt)
	require.NoError(t, err)
	assert.Equal(t, ct, got)
	d, err := m.Decrypt(key, nil)
	require.NoError(t, err)
	got, err = d.Once(nil, ct)
	require.NoError(t, err)
	assert.Equal(t, pt, got)
}

// NIST SP 800-38B, Appendix D.4 (three-key TDEA) CMAC examples.
func TestDES3CMACVectors(t *testing.T) {
	m := aesFamilyRow(t, ck.CKM_DES3_CMAC)
	key := unhex("8aa83bf8cbda10620bc1bf19fbb6cd58bc313d4a371ca8b5")
	for _, v := range []struct{ msg, tag string }{
		{"", "b7a688e122ffaf95"},
		{"6bc1bee22e409f96", "8e8f293136283797"},
		{"6bc1bee22e409f96e93d7e117393172aae2d8a57", "743ddbe0ce2dc2ed"},
		{"6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51", "33e6b1092400eae5"},
	} {
		s, err := m.Sign(key, nil)
		require.NoError(t, err)
		require.NoError(t, s.Update(unhex(v.msg)))
		got, err := s.Sign(nil)
		require.NoError(t, err)
		assert.Equal(t, unhex(v.tag), got, "message %s", v.msg)
	}
	g := aesFamilyRow(t, ck.CKM_DES3_CMAC_GENERAL)
	for _, n := range []ck.ULong{0, 9} {
		_, err := g.Sign(key, n)
		assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "%d", n)
	}
	_, err := aesFamilyRow(t, ck.CKM_AES_CMAC_GENERAL).Sign(make([]byte, 16), ck.ULong(17))
	assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID)
}

func TestDES3KeyGen(t *testing.T) {
	m := aesFamilyRow(t, ck.CKM_DES3_KEY_GEN)
	// DES3 templates carry no CKA_VALUE_LEN; the row's generator takes 0
	// as well (the table's guard still wants it: see the report).
	k, err := generateDES3(rand.Reader, KeyGenParams{})
	require.NoError(t, err)
	require.Len(t, k, 24)
	for _, b := range k.([]byte) {
		assert.Equal(t, 1, bits.OnesCount8(b)%2, "odd parity")
	}
	k, err = m.GenerateKey(rand.Reader, KeyGenParams{ValueLen: 24})
	require.NoError(t, err)
	assert.NotEqual(t, k.([]byte)[:8], k.([]byte)[8:16])
	// A generator repeating itself gives K1 = K2; the key is drawn again.
	r := bytes.NewReader(append(bytes.Repeat([]byte{0x5a}, 24), unhex("0123456789ABCDEF23456789ABCDEF01456789ABCDEF0123")...))
	k, err = generateDES3(r, KeyGenParams{})
	require.NoError(t, err)
	assert.Equal(t, unhex("0123456789ABCDEF23456789ABCDEF01456789ABCDEF0123"), k)
}

// Derivation by data encryption against the SP 800-38A vectors.
func TestEncryptDataDerive(t *testing.T) {
	key := unhex("2b7e151628aed2a6abf7158809cf4f3c")
	data := unhex(sp80038aPlain)
	ecb := aesFamilyRow(t, ck.CKM_AES_ECB_ENCRYPT_DATA)
	got, err := ecb.Derive(key, data, DeriveTarget{KeyType: ck.CKK_GENERIC_SECRET})
	require.NoError(t, err)
	assert.Equal(t, unhex(sp80038a[0].ct), got)
	got, err = ecb.Derive(key, data[:32], DeriveTarget{KeyType: ck.CKK_AES, ValueLen: 24})
	require.NoError(t, err)
	assert.Equal(t, unhex(sp80038a[0].ct)[:24], got, "truncated at the trailing end")
	_, err = ecb.Derive(key, data[:16], DeriveTarget{KeyType: ck.CKK_AES, ValueLen: 32})
	assert.ErrorIs(t, err, ck.CKR_DATA_LEN_RANGE)
	_, err = ecb.Derive(key, data[:15], DeriveTarget{})
	assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID)
	got, err = ecb.Derive(key, data[:32], DeriveTarget{KeyType: ck.CKK_DES3})
	require.NoError(t, err)
	require.Len(t, got, 24)
	want := unhex(sp80038a[0].ct)[:24]
	setDESParity(want)
	assert.Equal(t, want, got, "DES3: 24 bytes, parity set")

	cbc := aesFamilyRow(t, ck.CKM_AES_CBC_ENCRYPT_DATA)
	got, err = cbc.Derive(key, &CBCEncryptDataParams{IV: unhex("000102030405060708090a0b0c0d0e0f"), Data: data}, DeriveTarget{})
	require.NoError(t, err)
	assert.Equal(t, unhex(sp80038a[2].ct), got)
	_, err = cbc.Derive(key, &CBCEncryptDataParams{IV: make([]byte, 8), Data: data}, DeriveTarget{})
	assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID)
	_, err = cbc.Derive(key, data, DeriveTarget{})
	assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID)
}

// ECB and CBC wrapping pad with zero bytes (PKCS#11 v3.0 "AES-ECB"); the
// unwrapped value keeps them for the token to cut.
func TestBlockWrapZeroPadding(t *testing.T) {
	key := make([]byte, 16)
	m := aesFamilyRow(t, ck.CKM_AES_ECB)
	material := bytes.Repeat([]byte{7}, 24)
	w, err := m.Wrap(key, nil, material)
	require.NoError(t, err)
	require.Len(t, w, 32)
	got, err := m.Unwrap(key, nil, w)
	require.NoError(t, err)
	assert.Equal(t, append(bytes.Clone(material), make([]byte, 8)...), got)
	_, err = m.Unwrap(key, nil, w[:31])
	assert.ErrorIs(t, err, ck.CKR_WRAPPED_KEY_LEN_RANGE)

	p := aesFamilyRow(t, ck.CKM_AES_CBC_PAD)
	w, err = p.Wrap(key, make([]byte, 16), material)
	require.NoError(t, err)
	got, err = p.Unwrap(key, make([]byte, 16), w)
	require.NoError(t, err)
	assert.Equal(t, material, got)
	w[len(w)-1] ^= 0xff // the last block decrypts to garbage: its padding fails
	_, err = p.Unwrap(key, make([]byte, 16), w)
	assert.ErrorIs(t, err, ck.CKR_WRAPPED_KEY_INVALID)
}

// AES-CCM parameter rules (SP 800-38C §A.1) and ulDataLen.
func TestAESCCMParams(t *testing.T) {
	m := aesFamilyRow(t, ck.CKM_AES_CCM)
	key := make([]byte, 16)
	for _, p := range []*CCMParams{
		{Nonce: make([]byte, 6), MACLen: 16},
		{Nonce: make([]byte, 14), MACLen: 16},
		{Nonce: make([]byte, 12), MACLen: 2},
		{Nonce: make([]byte, 12), MACLen: 5},
		{Nonce: make([]byte, 12), MACLen: 18},
		{Nonce: make([]byte, 13), MACLen: 16, DataLen: 1 << 16},
		{Nonce: make([]byte, 12), MACLen: 16, DataLen: -1},
		nil,
	} {
		_, err := m.Encrypt(key, p)
		assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "%+v", p)
	}
	p := &CCMParams{Nonce: make([]byte, 13), MACLen: 8, DataLen: 10}
	e, _ := m.Encrypt(key, p)
	_, err := e.Once(nil, make([]byte, 9))
	assert.ErrorIs(t, err, ck.CKR_DATA_LEN_RANGE)
	e, _ = m.Encrypt(key, p)
	_, err = e.Update(nil, make([]byte, 11))
	assert.ErrorIs(t, err, ck.CKR_DATA_LEN_RANGE)
	e, _ = m.Encrypt(key, p)
	ct, err := e.Once(nil, make([]byte, 10))
	require.NoError(t, err)
	require.Len(t, ct, 18)
	// ulDataLen on decryption: the plaintext's length or the input's.
	for _, n := range []int{10, 18} {
		d, _ := m.Decrypt(key, &CCMParams{Nonce: p.Nonce, MACLen: 8, DataLen: n})
		pt, err := d.Once(nil, ct)
		require.NoError(t, err, "ulDataLen %d", n)
		assert.Equal(t, make([]byte, 10), pt)
	}
	d, _ := m.Decrypt(key, &CCMParams{Nonce: p.Nonce, MACLen: 8, DataLen: 11})
	_, err = d.Once(nil, ct)
	assert.ErrorIs(t, err, ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
	// A long AAD takes the 0xfffe length encoding.
	long := &CCMParams{Nonce: make([]byte, 7), MACLen: 16, DataLen: 3, AAD: make([]byte, 70000)}
	e, _ = m.Encrypt(key, long)
	ct, err = e.Once(nil, []byte("abc"))
	require.NoError(t, err)
	d, _ = m.Decrypt(key, long)
	pt, err := d.Once(nil, ct)
	require.NoError(t, err)
	assert.Equal(t, []byte("abc"), pt)
	long.AAD[69999] = 1
	d, _ = m.Decrypt(key, long)
	_, err = d.Once(nil, ct)
	assert.ErrorIs(t, err, ck.CKR_ENCRYPTED_DATA_INVALID)
}

// Message-based GCM: the IV generators, against the single-part row.
func TestAESGCMMessage(t *testing.T) {
	m := gcmRow(t)
	key := unhex("feffe9928665731c6d6a8f9467308308")
	enc, err := m.MessageEncrypt(key, nil)
	require.NoError(t, err)
	dec, err := m.MessageDecrypt(key, nil)
	require.NoError(t, err)

	// CKG_NO_GENERATE: McGrew & Viega test case 4, tag in p.Tag.
	v := gcmVectors[2]
	p := &MessageParams{IV: unhex(v.iv), Tag: make([]byte, 16), TagBits: 128}
	ct, err := enc.Encrypt(nil, p, unhex(v.aad), unhex(v.pt))
	require.NoError(t, err)
	assert.Equal(t, unhex(v.ct), ct)
	assert.Equal(t, unhex(v.tag), p.Tag)
	assert.Equal(t, unhex(v.iv), p.IV)
	pt, err := dec.Decrypt(nil, p, unhex(v.aad), ct)
	require.NoError(t, err)
	assert.Equal(t, unhex(v.pt), pt)
	// A 96-bit tag: the leftmost bits, checked on decryption.
	p96 := &MessageParams{IV: unhex(v.iv), Tag: make([]byte, 12), TagBits: 96}
	_, err = enc.Encrypt(nil, p96, unhex(v.aad), unhex(v.pt))
	require.NoError(t, err)
	assert.Equal(t, unhex(v.tag)[:12], p96.Tag)
	_, err = dec.Decrypt(nil, p96, unhex(v.aad), ct)
	require.NoError(t, err)
	p96.Tag[11] ^= 1
	_, err = dec.Decrypt(nil, p96, unhex(v.aad), ct)
	assert.ErrorIs(t, err, ck.CKR_ENCRYPTED_DATA_INVALID)

	// CKG_GENERATE_COUNTER: fixed prefix, then 0, 1, 2...
	enc, _ = m.MessageEncrypt(key, nil)
	for i := 0; i < 3; i++ {
		p := &MessageParams{IV: unhex("a1a2a3a4ffffffffffffffff"), IVFixedBits: 32, IVGenerator: ck.CKG_GENERATE_COUNTER, Tag: make([]byte, 16), TagBits: 128}
		_, err := enc.Encrypt(nil, p, nil, []byte("x"))
		require.NoError(t, err)
		assert.Equal(t, append(unhex("a1a2a3a400000000000000"), byte(i)), p.IV)
	}
	// CKG_GENERATE_COUNTER_XOR: the counter XORed into the free bits.
	enc, _ = m.MessageEncrypt(key, nil)
	for i := 0; i < 3; i++ {
		p := &MessageParams{IV: unhex("a1a2a3a4f0f0f0f0f0f0f0f0"), IVFixedBits: 32, IVGenerator: ck.CKG_GENERATE_COUNTER_XOR, Tag: make([]byte, 16), TagBits: 128}
		_, err := enc.Encrypt(nil, p, nil, []byte("x"))
		require.NoError(t, err)
		assert.Equal(t, append(unhex("a1a2a3a4f0f0f0f0f0f0f0"), 0xf0^byte(i)), p.IV)
	}
	// A 4-bit free field (fixed bits not on a byte boundary) runs out after 16 messages.
	enc, _ = m.MessageEncrypt(key, nil)
	for i := 0; i < 17; i++ {
		p := &MessageParams{IV: unhex("ffffffffffffffffffffffff"), IVFixedBits: 92, IVGenerator: ck.CKG_GENERATE_COUNTER, Tag: make([]byte, 16), TagBits: 128}
		_, err := enc.Encrypt(nil, p, nil, nil)
		if i == 16 {
			assert.ErrorIs(t, err, ck.CKR_FUNCTION_FAILED)
			break
		}
		require.NoError(t, err)
		assert.Equal(t, append(unhex("ffffffffffffffffffffff"), 0xf0|byte(i)), p.IV)
	}
	// CKG_GENERATE_RANDOM keeps the fixed bits, even mid-byte.
	enc, _ = m.MessageEncrypt(key, nil)
	p = &MessageParams{IV: make([]byte, 12), IVFixedBits: 4, IVGenerator: ck.CKG_GENERATE_RANDOM, Tag: make([]byte, 16), TagBits: 128}
	_, err = enc.Encrypt(nil, p, nil, nil)
	require.NoError(t, err)
	assert.Zero(t, p.IV[0]&0xf0)
	assert.NotEqual(t, make([]byte, 12), p.IV)

	for _, bad := range []*MessageParams{
		nil,
		{IV: make([]byte, 12), Tag: make([]byte, 16), TagBits: 100},
		{IV: make([]byte, 12), Tag: make([]byte, 8), TagBits: 128},
		{IV: nil, Tag: make([]byte, 16), TagBits: 128},
		{IV: make([]byte, 12), IVFixedBits: 96, IVGenerator: ck.CKG_GENERATE_RANDOM, Tag: make([]byte, 16), TagBits: 128},
		{IV: make([]byte, 12), IVFixedBits: 97, Tag: make([]byte, 16), TagBits: 128},
		{IV: make([]byte, 12), IVGenerator: 99, Tag: make([]byte, 16), TagBits: 128},
	} {
		_, err := enc.Encrypt(nil, bad, nil, nil)
		assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "%+v", bad)
	}
	_, err = dec.Encrypt(nil, &MessageParams{IV: make([]byte, 12), Tag: make([]byte, 16), TagBits: 128}, nil, nil)
	assert.Error(t, err, "encrypting with a decryption context")
}

// Message-based CCM against the single-part row.
func TestAESCCMMessage(t *testing.T) {
	m := aesFamilyRow(t, ck.CKM_AES_CCM)
	key := make([]byte, 32)
	nonce := unhex("00112233445566778899aabbcc")
	msg := []byte(strings.Repeat("ccm message ", 5))
	e, _ := m.Encrypt(key, &CCMParams{DataLen: len(msg), Nonce: nonce, AAD: []byte("a"), MACLen: 12})
	want, err := e.Once(nil, msg)
	require.NoError(t, err)

	enc, err := m.MessageEncrypt(key, nil)
	require.NoError(t, err)
	p := &MessageParams{IV: bytes.Clone(nonce), Tag: make([]byte, 12), DataLen: len(msg), MACLen: 12}
	ct, err := enc.Encrypt(nil, p, []byte("a"), msg)
	require.NoError(t, err)
	assert.Equal(t, want, append(ct, p.Tag...))
	dec, _ := m.MessageDecrypt(key, nil)
	pt, err := dec.Decrypt(nil, p, []byte("a"), ct)
	require.NoError(t, err)
	assert.Equal(t, msg, pt)
	p.DataLen++
	_, err = dec.Decrypt(nil, p, []byte("a"), ct)
	assert.ErrorIs(t, err, ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
	_, err = enc.Encrypt(nil, p, []byte("a"), msg)
	assert.ErrorIs(t, err, ck.CKR_DATA_LEN_RANGE)
}

// Message-based GCM encryption into a buffer with room allocates nothing.
func TestAESGCMMessageAllocs(t *testing.T) {
	testenv.NoAllocCount(t)
	m := gcmRow(t)
	enc, err := m.MessageEncrypt(make([]byte, 32), nil)
	require.NoError(t, err)
	dec, err := m.MessageDecrypt(make([]byte, 32), nil)
	require.NoError(t, err)
	p := &MessageParams{IV: make([]byte, 12), IVFixedBits: 32, IVGenerator: ck.CKG_GENERATE_COUNTER, Tag: make([]byte, 16), TagBits: 128}
	msg := make([]byte, 64)
	ct := make([]byte, 0, 64+16)
	pt := make([]byte, 0, 64)
	_, _ = dec.Decrypt(pt, p, nil, must(enc.Encrypt(ct, p, nil, msg))) // warm the scratch space
	allocs := testing.AllocsPerRun(100, func() {
		ct, _ = enc.Encrypt(ct[:0], p, nil, msg)
		pt, _ = dec.Decrypt(pt[:0], p, nil, ct)
	})
	assert.Zero(t, allocs)
	assert.Equal(t, msg, pt)
}
