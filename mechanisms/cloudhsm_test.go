package mechanisms

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/internal/testenv"
)

// CloudHSM's vendor mechanisms (cloudhsm.go): registrations with the
// conformance suite (round trip, tampering fails, wrong key fails, derive
// determinism and parameter sensitivity), pinned vectors with their
// sources, interoperability with OpenSSL's key wrap, and the parameter
// rules.

func init() {
	paramCases[ParamCloudHSMGCM] = func(*testing.T, *Mechanism, *fixture) (any, []any) {
		p := &CloudHSMGCMParams{AAD: []byte("header"), TagBits: 128}
		return p, []any{
			&CloudHSMGCMParams{AAD: []byte("Header"), TagBits: 128},
			&CloudHSMGCMParams{AAD: p.AAD, TagBits: 96},
		}
	}
	prevIV := paramCases[ParamIV]
	paramCases[ParamIV] = func(t *testing.T, m *Mechanism, f *fixture) (any, []any) {
		switch m.Type {
		case ck.CKM_CLOUDHSM_AES_KEY_WRAP_NO_PAD, ck.CKM_CLOUDHSM_AES_KEY_WRAP_PKCS5_PAD:
			return kwDefaultIV[:], nil // the one explicit IV allowed
		case ck.CKM_CLOUDHSM_AES_KEY_WRAP_ZERO_PAD:
			return nil, nil // no explicit IV allowed
		}
		return prevIV(t, m, f)
	}
	inputLengths[ck.CKM_CLOUDHSM_AES_KEY_WRAP_NO_PAD] = []int{16, 24, 32, 40, 264}
	inputLengths[ck.CKM_CLOUDHSM_AES_KEY_WRAP_PKCS5_PAD] = []int{8, 9, 15, 16, 31, 32, 1000}
	inputLengths[ck.CKM_CLOUDHSM_AES_KEY_WRAP_ZERO_PAD] = []int{1, 7, 8, 9, 16, 31, 32, 1000}
	paramCases[ParamCloudHSMKDF] = func(*testing.T, *Mechanism, *fixture) (any, []any) {
		mk := func(prf ck.MechanismType, ctr int, label, context string, dkm int) any {
			return &CloudHSMKDFParams{PRF: prf, Data: []PRFData{
				{Type: ck.CK_CLOUDHSM_PRF_COUNTER_FORMAT, WidthBits: ctr},
				{Type: ck.CK_CLOUDHSM_PRF_DKM_FORMAT, WidthBits: dkm, DKMMethod: ck.CK_CLOUDHSM_DKM_SUM_OF_KEYS},
				{Type: ck.CK_CLOUDHSM_PRF_LABEL, Bytes: []byte(label)},
				{Type: ck.CK_CLOUDHSM_PRF_CONTEXT, Bytes: []byte(context)},
			}}
		}
		return mk(ck.CKM_SHA256_HMAC, 32, "label", "context", 32), []any{
			mk(ck.CKM_SHA256_HMAC, 32, "labe1", "context", 32),
			mk(ck.CKM_SHA256_HMAC, 32, "label", "c0ntext", 32),
			mk(ck.CKM_SHA256_HMAC, 32, "labelc", "ontext", 32), // the 0x00 separator
			mk(ck.CKM_SHA256_HMAC, 16, "label", "context", 32),
			mk(ck.CKM_SHA256_HMAC, 32, "label", "context", 64),
			mk(ck.CKM_SHA512_HMAC, 32, "label", "context", 32),
		}
	}
	ourDerive[ck.CKM_CLOUDHSM_SP800_108_COUNTER_KDF] = true
}

func cloudhsmRow(t *testing.T, mt ck.MechanismType) *Mechanism {
	t.Helper()
	m, ok := Lookup(mt)
	require.True(t, ok, "no row %v", mt)
	return m
}

// TestCloudHSMGCM: encryption makes a fresh 12-byte IV and outputs
// IV || ciphertext || tag, where ciphertext || tag is exactly what Go's
// crypto/cipher GCM gives with that IV (and the AAD and tag length of the
// parameter); decryption takes that format back.
func TestCloudHSMGCM(t *testing.T) {
	m := cloudhsmRow(t, ck.CKM_CLOUDHSM_AES_GCM)
	for _, size := range []int{16, 24, 32} {
		key := make([]byte, size)
		_, _ = rand.Read(key)
		b, err := aes.NewCipher(key)
		require.NoError(t, err)
		ref, err := cipher.NewGCM(b)
		require.NoError(t, err)
		for _, tagBits := range []int{128, 96} {
			for _, n := range []int{0, 1, 16, 61, 1000} {
				pt := make([]byte, n)
				_, _ = rand.Read(pt)
				p := &CloudHSMGCMParams{AAD: []byte("additional data"), TagBits: tagBits, IVLen: 12}
				enc, err := m.Encrypt(key, p)
				require.NoError(t, err)
				require.Equal(t, 12+n+tagBits/8, enc.MaxOutput(n, true), "length query is exact")
				out, err := enc.Once(nil, pt)
				require.NoError(t, err)
				require.Len(t, out, 12+n+tagBits/8)
				iv := out[:12]
				want := ref.Seal(nil, iv, pt, p.AAD)
				assert.Equal(t, want[:n+tagBits/8], out[12:], "%d-byte key, %d bytes: crypto/cipher with the IV chosen", size, n)

				enc2, err := m.Encrypt(key, p)
				require.NoError(t, err)
				out2, err := enc2.Once(nil, pt)
				require.NoError(t, err)
				assert.NotEqual(t, iv, out2[:12], "a fresh IV each time")

				dec, err := m.Decrypt(key, p)
				require.NoError(t, err)
				require.Equal(t, n, dec.MaxOutput(len(out), true), "length query is exact")
				got, err := dec.Once(nil, out)
				require.NoError(t, err)
				equalBytes(t, pt, got)

				dec, err = m.Decrypt(key, p)
				require.NoError(t, err)
				_, err = dec.Once(nil, out[:12+tagBits/8-1])
				assert.ErrorIs(t, err, ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
				bad := slices.Clone(out)
				bad[0] ^= 1 // the IV is authenticated like everything else
				dec, err = m.Decrypt(key, p)
				require.NoError(t, err)
				_, err = dec.Once(nil, bad)
				assert.ErrorIs(t, err, ck.CKR_ENCRYPTED_DATA_INVALID)
			}
		}
	}
}

// TestCloudHSMGCMInPlace: a C caller may pass the same buffer for input and
// output; the IV written first must not clobber the plaintext.
func TestCloudHSMGCMInPlace(t *testing.T) {
	m := cloudhsmRow(t, ck.CKM_CLOUDHSM_AES_GCM)
	key := bytes.Repeat([]byte{7}, 32)
	p := &CloudHSMGCMParams{TagBits: 128}
	pt := []byte("in-place plaintext, longer than an IV")
	buf := make([]byte, len(pt), len(pt)+12+16)
	copy(buf, pt)
	enc, err := m.Encrypt(key, p)
	require.NoError(t, err)
	ct, err := enc.Once(buf[:0], buf)
	require.NoError(t, err)
	dec, err := m.Decrypt(key, p)
	require.NoError(t, err)
	got, err := dec.Once(ct[:0], ct)
	require.NoError(t, err)
	assert.Equal(t, pt, got)
}

// TestCloudHSMGCMParams: pIV must be NULL (a caller's IV, even a zeroed
// buffer, is CKR_MECHANISM_PARAM_INVALID), ulIvLen 0 or 12, the tag length
// one SP 800-38D allows.
func TestCloudHSMGCMParams(t *testing.T) {
	m := cloudhsmRow(t, ck.CKM_CLOUDHSM_AES_GCM)
	key := make([]byte, 32)
	for _, p := range []any{
		&CloudHSMGCMParams{IVGiven: true, IVLen: 12, TagBits: 128},
		&CloudHSMGCMParams{IVGiven: true, TagBits: 128},
		&CloudHSMGCMParams{IVLen: 16, TagBits: 128},
		&CloudHSMGCMParams{TagBits: 0},
		&CloudHSMGCMParams{TagBits: 100},
		&GCMParams{IV: make([]byte, 12), TagBits: 128},
		nil,
	} {
		_, err := m.Encrypt(key, p)
		assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "encrypt %+v", p)
		_, err = m.Decrypt(key, p)
		assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "decrypt %+v", p)
		_, err = m.Wrap(key, p, make([]byte, 32))
		assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "wrap %+v", p)
	}
	// Wrap and unwrap: the wrapped key is IV || ciphertext || tag.
	p := &CloudHSMGCMParams{TagBits: 128}
	target := bytes.Repeat([]byte{0x42}, 32)
	w, err := m.Wrap(key, p, target)
	require.NoError(t, err)
	require.Len(t, w, 12+32+16)
	got, err := m.Unwrap(key, p, w)
	require.NoError(t, err)
	assert.Equal(t, target, got)
	_, err = m.Unwrap(key, p, w[:27])
	assert.ErrorIs(t, err, ck.CKR_WRAPPED_KEY_LEN_RANGE)
}

// RFC 3394 §4.1-4.6 (NO_PAD) and RFC 5649 §6 (ZERO_PAD), with the IV
// implicit (NULL) and, where CloudHSM allows one, explicit.
func TestCloudHSMKeyWrapRFCVectors(t *testing.T) {
	const (
		kek128 = "000102030405060708090A0B0C0D0E0F"
		kek192 = "000102030405060708090A0B0C0D0E0F1011121314151617"
		kek256 = "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F"
		data16 = "00112233445566778899AABBCCDDEEFF"
		data24 = "00112233445566778899AABBCCDDEEFF0001020304050607"
		data32 = "00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F"
		kwpKEK = "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8"
	)
	for _, v := range []struct {
		name      string
		mech      ck.MechanismType
		kek, data string
		wrapped   string
	}{
		{"RFC 3394 4.1", ck.CKM_CLOUDHSM_AES_KEY_WRAP_NO_PAD, kek128, data16, "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5"},
		{"RFC 3394 4.2", ck.CKM_CLOUDHSM_AES_KEY_WRAP_NO_PAD, kek192, data16, "96778B25AE6CA435F92B5B97C050AED2468AB8A17AD84E5D"},
		{"RFC 3394 4.3", ck.CKM_CLOUDHSM_AES_KEY_WRAP_NO_PAD, kek256, data16, "64E8C3F9CE0F5BA263E9777905818A2A93C8191E7D6E8AE7"},
		{"RFC 3394 4.4", ck.CKM_CLOUDHSM_AES_KEY_WRAP_NO_PAD, kek192, data24,
			"031D33264E15D33268F24EC260743EDCE1C6C7DDEE725A936BA814915C6762D2"},
		{"RFC 3394 4.5", ck.CKM_CLOUDHSM_AES_KEY_WRAP_NO_PAD, kek256, data24,
			"A8F9BC1612C68B3FF6E6F4FBE30E71E4769C8B80A32CB8958CD5D17D6B254DA1"},
		{"RFC 3394 4.6", ck.CKM_CLOUDHSM_AES_KEY_WRAP_NO_PAD, kek256, data32,
			"28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21"},
		{"RFC 5649 6 (20 bytes)", ck.CKM_CLOUDHSM_AES_KEY_WRAP_ZERO_PAD, kwpKEK,
			"c37b7e6492584340bed12207808941155068f738", "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a"},
		{"RFC 5649 6 (7 bytes)", ck.CKM_CLOUDHSM_AES_KEY_WRAP_ZERO_PAD, kwpKEK,
			"466f7250617369", "afbeb0f07dfbf5419200f2ccb50bb24f"},
	} {
		m := cloudhsmRow(t, v.mech)
		kek, data, wrapped := unhex(v.kek), unhex(v.data), unhex(v.wrapped)
		ivs := []any{nil, []byte{}}
		if v.mech == ck.CKM_CLOUDHSM_AES_KEY_WRAP_NO_PAD {
			ivs = append(ivs, unhex("A6A6A6A6A6A6A6A6"))
		}
		for _, iv := range ivs {
			got, err := m.Wrap(kek, iv, data)
			require.NoError(t, err, "%s iv %x", v.name, iv)
			assert.Equal(t, wrapped, got, "%s iv %x", v.name, iv)
			got, err = m.Unwrap(kek, iv, wrapped)
			require.NoError(t, err, "%s iv %x", v.name, iv)
			assert.Equal(t, data, got, "%s iv %x", v.name, iv)
		}
	}
}

// TestCloudHSMKeyWrapIVRules: "AES key wrapping", permitted IVs — ZERO_PAD
// implicit only; NO_PAD and PKCS5_PAD implicit or exactly A6A6A6A6A6A6A6A6.
// Anything else is CKR_MECHANISM_PARAM_INVALID, on wrap and on unwrap.
func TestCloudHSMKeyWrapIVRules(t *testing.T) {
	kek := bytes.Repeat([]byte{1}, 32)
	key := bytes.Repeat([]byte{2}, 32)
	for _, c := range []struct {
		mech ck.MechanismType
		ok   [][]byte
		bad  [][]byte
	}{
		{ck.CKM_CLOUDHSM_AES_KEY_WRAP_NO_PAD, [][]byte{nil, unhex("A6A6A6A6A6A6A6A6")},
			[][]byte{unhex("A6A6A6A6A6A6A6A7"), unhex("A65959A6"), make([]byte, 8), unhex("A6A6A6A6A6A6A6A6A6")}},
		{ck.CKM_CLOUDHSM_AES_KEY_WRAP_PKCS5_PAD, [][]byte{nil, unhex("A6A6A6A6A6A6A6A6")},
			[][]byte{unhex("0000000000000000"), unhex("A65959A6"), unhex("A6A6A6A6A6A6A6")}},
		{ck.CKM_CLOUDHSM_AES_KEY_WRAP_ZERO_PAD, [][]byte{nil},
			[][]byte{unhex("A65959A6"), unhex("A6A6A6A6A6A6A6A6"), unhex("A659")}},
	} {
		m := cloudhsmRow(t, c.mech)
		for _, iv := range c.ok {
			w, err := m.Wrap(kek, iv, key)
			require.NoError(t, err, "%v iv %x", c.mech, iv)
			_, err = m.Unwrap(kek, iv, w)
			require.NoError(t, err, "%v iv %x", c.mech, iv)
		}
		w, err := m.Wrap(kek, nil, key)
		require.NoError(t, err)
		for _, iv := range c.bad {
			_, err := m.Wrap(kek, iv, key)
			assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "%v wrap iv %x", c.mech, iv)
			_, err = m.Unwrap(kek, iv, w)
			assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "%v unwrap iv %x", c.mech, iv)
		}
		_, err = m.Wrap(kek, &GCMParams{}, key)
		assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID)
	}
}

// TestCloudHSMKeyWrapPadding: NO_PAD takes block-aligned keys only; PKCS5_PAD
// adds 1 to 8 bytes of PKCS #5 padding ("at least 8 bytes are added" for
// block-aligned keys, manage-aes-key-wrapping; "eight bytes of padding data
// might be added to the end of your key data during a standards-compliant
// unwrap", ki-all #1), i.e. it is RFC 3394 of the padded key.
func TestCloudHSMKeyWrapPadding(t *testing.T) {
	kek := bytes.Repeat([]byte{3}, 16)
	noPad := cloudhsmRow(t, ck.CKM_CLOUDHSM_AES_KEY_WRAP_NO_PAD)
	pkcs5 := cloudhsmRow(t, ck.CKM_CLOUDHSM_AES_KEY_WRAP_PKCS5_PAD)
	for _, n := range []int{1, 7, 8, 9, 15, 16, 24, 31, 32, 1217} {
		key := make([]byte, n)
		_, _ = rand.Read(key)
		_, err := noPad.Wrap(kek, nil, key)
		if n%8 != 0 || n < 16 {
			assert.ErrorIs(t, err, ck.CKR_KEY_SIZE_RANGE, "NO_PAD of %d bytes", n)
		} else {
			assert.NoError(t, err, "NO_PAD of %d bytes", n)
		}

		pad := 8 - n%8
		padded := append(slices.Clone(key), bytes.Repeat([]byte{byte(pad)}, pad)...)
		w, err := pkcs5.Wrap(kek, nil, key)
		if n < 8 {
			// Padded to one semiblock, which RFC 3394 cannot wrap.
			assert.ErrorIs(t, err, ck.CKR_KEY_SIZE_RANGE, "PKCS5_PAD of %d bytes", n)
			continue
		}
		require.NoError(t, err)
		require.Len(t, w, n+pad+8)
		ref, err := noPad.Wrap(kek, nil, padded)
		require.NoError(t, err)
		assert.Equal(t, ref, w, "PKCS5_PAD of %d bytes is RFC 3394 of the padded key", n)
		got, err := pkcs5.Unwrap(kek, nil, w)
		require.NoError(t, err)
		assert.Equal(t, key, got)
	}
	// Integrity-protected but wrongly padded: a wrapping of something
	// PKCS5_PAD did not make.
	for _, blob := range [][]byte{
		append(bytes.Repeat([]byte{1}, 15), 0),    // pad byte 0
		append(bytes.Repeat([]byte{1}, 15), 9),    // pad byte above 8
		append(bytes.Repeat([]byte{1}, 14), 1, 2), // last byte 2, the one before not 2
	} {
		w, err := noPad.Wrap(kek, nil, blob)
		require.NoError(t, err)
		_, err = pkcs5.Unwrap(kek, nil, w)
		assert.ErrorIs(t, err, ck.CKR_WRAPPED_KEY_INVALID, "padding %x", blob[len(blob)-2:])
	}
}

// TestCloudHSMKeyWrapOpenSSL: the wraps interoperate with OpenSSL's
// id-aes256-wrap (RFC 3394) and id-aes256-wrap-pad (RFC 5649), both ways;
// PKCS5_PAD is id-aes256-wrap of the PKCS #5-padded key. Under CI=true a
// missing openssl fails the test.
func TestCloudHSMKeyWrapOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		testenv.Missing(t, "openssl not found: %v", err)
		return
	}
	dir := t.TempDir()
	kek := make([]byte, 32)
	_, _ = rand.Read(kek)
	run := func(decrypt bool, cipherName, iv string, in []byte) []byte {
		t.Helper()
		inFile := filepath.Join(dir, "in")
		require.NoError(t, os.WriteFile(inFile, in, 0o600))
		args := []string{"enc", "-" + cipherName, "-K", hex.EncodeToString(kek), "-iv", iv, "-in", inFile}
		if decrypt {
			args = append(args, "-d")
		}
		out, err := exec.Command(openssl, args...).Output()
		require.NoError(t, err, "openssl %s", strings.Join(args, " "))
		return out
	}
	noPad := cloudhsmRow(t, ck.CKM_CLOUDHSM_AES_KEY_WRAP_NO_PAD)
	pkcs5 := cloudhsmRow(t, ck.CKM_CLOUDHSM_AES_KEY_WRAP_PKCS5_PAD)
	zero := cloudhsmRow(t, ck.CKM_CLOUDHSM_AES_KEY_WRAP_ZERO_PAD)
	for _, n := range []int{1, 7, 16, 20, 24, 32, 64} {
		key := make([]byte, n)
		_, _ = rand.Read(key)

		if n%8 == 0 {
			ours, err := noPad.Wrap(kek, nil, key)
			require.NoError(t, err)
			assert.Equal(t, run(false, "id-aes256-wrap", "A6A6A6A6A6A6A6A6", key), ours, "NO_PAD %d bytes", n)
			back, err := noPad.Unwrap(kek, nil, run(false, "id-aes256-wrap", "A6A6A6A6A6A6A6A6", key))
			require.NoError(t, err)
			assert.Equal(t, key, back)
		}

		ours, err := zero.Wrap(kek, nil, key)
		require.NoError(t, err)
		assert.Equal(t, run(false, "id-aes256-wrap-pad", "A65959A6", key), ours, "ZERO_PAD %d bytes", n)
		assert.Equal(t, key, run(true, "id-aes256-wrap-pad", "A65959A6", ours), "OpenSSL unwraps ZERO_PAD %d bytes", n)

		if n < 8 {
			continue // PKCS5_PAD wraps 8 bytes and more (TestCloudHSMKeyWrapPadding)
		}
		ours, err = pkcs5.Wrap(kek, nil, key)
		require.NoError(t, err)
		pad := 8 - n%8
		padded := append(slices.Clone(key), bytes.Repeat([]byte{byte(pad)}, pad)...)
		{
			assert.Equal(t, run(false, "id-aes256-wrap", "A6A6A6A6A6A6A6A6", padded), ours, "PKCS5_PAD %d bytes", n)
			assert.Equal(t, padded, run(true, "id-aes256-wrap", "A6A6A6A6A6A6A6A6", ours),
				"OpenSSL unwraps PKCS5_PAD %d bytes to the padded key (ki-all #1)", n)
		}
	}
}

// TestCloudHSMKDFCAVP: NIST CAVP counter-mode vectors (KDFCTR_gen.rsp,
// counter before the fixed input: those pinned for the standard mechanism,
// kbkdfCAVP, and cloudhsmKBKDFCAVP) through CloudHSM's layout: a counter
// format and one byte array, in that order. CloudHSM takes 16- and 32-bit
// counters only, so the 8-bit vectors are refused.
func TestCloudHSMKDFCAVP(t *testing.T) {
	m := cloudhsmRow(t, ck.CKM_CLOUDHSM_SP800_108_COUNTER_KDF)
	ran := 0
	vectors := append(slices.Clone(kbkdfCAVP), cloudhsmKBKDFCAVP...)
	for _, v := range vectors {
		p := &CloudHSMKDFParams{PRF: v.prf, Data: []PRFData{
			{Type: ck.CK_CLOUDHSM_PRF_COUNTER_FORMAT, WidthBits: v.rlen},
			{Type: ck.CK_CLOUDHSM_PRF_BYTE_ARRAY, Bytes: unhex(v.fixed)},
		}}
		ko := unhex(v.ko)
		out, err := m.Derive(unhex(v.ki), p, DeriveTarget{KeyType: ck.CKK_GENERIC_SECRET, ValueLen: len(ko)})
		if v.rlen != 16 && v.rlen != 32 {
			assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID, v.name)
			continue
		}
		require.NoError(t, err, v.name)
		assert.Equal(t, ko, out, v.name)
		ran++
	}
	assert.GreaterOrEqual(t, ran, 7)
}

// More of NIST CAVP's KDFCTR_gen.rsp ([CTRLOCATION=BEFORE_FIXED]): the
// largest HMAC CloudHSM takes and a 16-bit counter, the other width it
// takes.
var cloudhsmKBKDFCAVP = []struct {
	name      string
	prf       ck.MechanismType
	rlen      int
	ki, fixed string
	ko        string
}{
	{"HMAC_SHA512 RLEN=32 COUNT=0", ck.CKM_SHA512_HMAC, 32,
		"dd5dbd45593ee2ac139748e7645b450f223d2ff297b73fd71cbcebe71d41653c950b88500de5322d99ef18dfdd30428294c4b3094f4c954334e593bd982ec614",
		"b50b0c963c6b3034b8cf19cd3f5c4ebe4f4985af0c03e575db62e6fdf1ecfe4f28b95d7ce16df85843246e1557ce95bb26cc9a21974bbd2eb69e8355",
		"e5993bf9bd2aa1c45746042e12598155"},
	{"CMAC_AES192 RLEN=16 COUNT=0", ck.CKM_AES_CMAC, 16,
		"d7e8eefc503a39e70d931f16645958ad06fb789f0cbc518b",
		"b10ea2d67904a8b3b7ce5eef7d9ee49768e8deb3506ee74a2ad8dd8661146fde74137a8f6dfc69a370945d15335e0d6403fa029da19d34140c7e3da0",
		"95278b8883852f6676c587507b0aa162"},
}

// TestCloudHSMKDFLabelLayout: the vendor header's layout, with the
// parameters of AWS's hmac_kdf.c sample (32-byte base key, HMAC-SHA512,
// 32-bit counter and DKM length, label 01abe1, context 0c097e07, listed in
// the order counter, DKM, label, context), against HMAC-SHA512 computed by
// hand over the input the sample documents: [i]_32 || Label || 0x00 ||
// Context || [L]_32.
func TestCloudHSMKDFLabelLayout(t *testing.T) {
	m := cloudhsmRow(t, ck.CKM_CLOUDHSM_SP800_108_COUNTER_KDF)
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i)
	}
	label, context := []byte{0x01, 0xab, 0xe1}, []byte{0x0c, 0x09, 0x7e, 0x07}
	p := &CloudHSMKDFParams{PRF: ck.CKM_SHA512_HMAC, Data: []PRFData{
		{Type: ck.CK_CLOUDHSM_PRF_COUNTER_FORMAT, WidthBits: 32},
		{Type: ck.CK_CLOUDHSM_PRF_DKM_FORMAT, WidthBits: 32, DKMMethod: ck.CK_CLOUDHSM_DKM_SUM_OF_KEYS},
		{Type: ck.CK_CLOUDHSM_PRF_LABEL, Bytes: label},
		{Type: ck.CK_CLOUDHSM_PRF_CONTEXT, Bytes: context},
	}}
	for _, n := range []int{32, 100} { // one block; two (SHA-512 gives 64 bytes)
		out, err := m.Derive(key, p, DeriveTarget{KeyType: ck.CKK_GENERIC_SECRET, ValueLen: n})
		require.NoError(t, err)
		var want []byte
		for i := uint32(1); len(want) < n; i++ {
			mac := hmac.New(sha512.New, key)
			mac.Write(binary.BigEndian.AppendUint32(nil, i))
			mac.Write(label)
			mac.Write([]byte{0})
			mac.Write(context)
			mac.Write(binary.BigEndian.AppendUint32(nil, uint32(n*8)))
			want = mac.Sum(want)
		}
		assert.Equal(t, want[:n], out, "%d bytes", n)
	}

	// The order of the data parameters does not matter in this layout.
	shuffled := &CloudHSMKDFParams{PRF: p.PRF, Data: []PRFData{p.Data[3], p.Data[2], p.Data[1], p.Data[0]}}
	a, err := m.Derive(key, p, DeriveTarget{KeyType: ck.CKK_AES, ValueLen: 32})
	require.NoError(t, err)
	b, err := m.Derive(key, shuffled, DeriveTarget{KeyType: ck.CKK_AES, ValueLen: 32})
	require.NoError(t, err)
	assert.Equal(t, a, b)
}

// TestCloudHSMKDFOrderedLayout: byte arrays (AWS's aes_cmac_kdf.c: prefix,
// counter, suffix, DKM length, with AES-CMAC) are concatenated in the order
// given, the same as the standard mechanism with the same pieces.
func TestCloudHSMKDFOrderedLayout(t *testing.T) {
	m := cloudhsmRow(t, ck.CKM_CLOUDHSM_SP800_108_COUNTER_KDF)
	std := kdfRow(t, ck.CKM_SP800_108_COUNTER_KDF)
	key := bytes.Repeat([]byte{0x5c}, 32)
	prefix, suffix := []byte{0x1, 0xab, 0xe1}, []byte{0xc, 0x09, 0x7e, 0x7}
	for _, prf := range []ck.MechanismType{ck.CKM_AES_CMAC, ck.CKM_SHA256_HMAC} {
		for _, ctr := range []int{16, 32} {
			p := &CloudHSMKDFParams{PRF: prf, Data: []PRFData{
				{Type: ck.CK_CLOUDHSM_PRF_BYTE_ARRAY, Bytes: prefix},
				{Type: ck.CK_CLOUDHSM_PRF_COUNTER_FORMAT, WidthBits: ctr},
				{Type: ck.CK_CLOUDHSM_PRF_BYTE_ARRAY, Bytes: suffix},
				{Type: ck.CK_CLOUDHSM_PRF_DKM_FORMAT, WidthBits: 32, DKMMethod: ck.CK_CLOUDHSM_DKM_SUM_OF_KEYS},
			}}
			q := &SP800108Params{PRF: prf, Data: []PRFData{
				{Type: ck.CK_SP800_108_BYTE_ARRAY, Bytes: prefix},
				{Type: ck.CK_SP800_108_ITERATION_VARIABLE, WidthBits: ctr},
				{Type: ck.CK_SP800_108_BYTE_ARRAY, Bytes: suffix},
				{Type: ck.CK_SP800_108_DKM_LENGTH, WidthBits: 32, DKMMethod: ck.CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS},
			}}
			target := DeriveTarget{KeyType: ck.CKK_AES, ValueLen: 32}
			got, err := m.Derive(key, p, target)
			require.NoError(t, err)
			want, err := std.Derive(key, q, target)
			require.NoError(t, err)
			assert.Equal(t, want, got, "%v counter %d", prf, ctr)
		}
	}
}

// TestCloudHSMKDFParams: what CloudHSM does not take is
// CKR_MECHANISM_PARAM_INVALID.
func TestCloudHSMKDFParams(t *testing.T) {
	m := cloudhsmRow(t, ck.CKM_CLOUDHSM_SP800_108_COUNTER_KDF)
	key := bytes.Repeat([]byte{9}, 32)
	ctr := func(w int) PRFData { return PRFData{Type: ck.CK_CLOUDHSM_PRF_COUNTER_FORMAT, WidthBits: w} }
	dkm := func(w int, method ck.ULong) PRFData {
		return PRFData{Type: ck.CK_CLOUDHSM_PRF_DKM_FORMAT, WidthBits: w, DKMMethod: method}
	}
	label := PRFData{Type: ck.CK_CLOUDHSM_PRF_LABEL, Bytes: []byte("l")}
	context := PRFData{Type: ck.CK_CLOUDHSM_PRF_CONTEXT, Bytes: []byte("c")}
	arr := PRFData{Type: ck.CK_CLOUDHSM_PRF_BYTE_ARRAY, Bytes: []byte("a")}
	sok := ck.CK_CLOUDHSM_DKM_SUM_OF_KEYS
	good := []PRFData{ctr(32), dkm(32, sok), label, context}
	for _, c := range []struct {
		name string
		prf  ck.MechanismType
		data []PRFData
	}{
		{"8-bit counter", ck.CKM_SHA256_HMAC, []PRFData{ctr(8), dkm(32, sok), label, context}},
		{"24-bit counter", ck.CKM_SHA256_HMAC, []PRFData{ctr(24), dkm(32, sok), label, context}},
		{"64-bit counter", ck.CKM_SHA256_HMAC, []PRFData{ctr(64), dkm(32, sok), label, context}},
		{"24-bit DKM", ck.CKM_SHA256_HMAC, []PRFData{ctr(32), dkm(24, sok), label, context}},
		{"SUM_OF_SEGMENTS", ck.CKM_SHA256_HMAC, []PRFData{ctr(32), dkm(32, ck.CK_CLOUDHSM_DKM_SUM_OF_SEGMENTS), label, context}},
		{"no counter", ck.CKM_SHA256_HMAC, []PRFData{dkm(32, sok), label, context}},
		{"two counters", ck.CKM_SHA256_HMAC, []PRFData{ctr(32), ctr(32), dkm(32, sok), label, context}},
		{"two DKM formats", ck.CKM_SHA256_HMAC, []PRFData{ctr(32), dkm(32, sok), dkm(32, sok), label}},
		{"two labels", ck.CKM_SHA256_HMAC, []PRFData{ctr(32), dkm(32, sok), label, label}},
		{"label layout without DKM", ck.CKM_SHA256_HMAC, []PRFData{ctr(32), label, context}},
		{"layouts mixed", ck.CKM_SHA256_HMAC, []PRFData{ctr(32), dkm(32, sok), label, arr}},
		{"empty byte array", ck.CKM_SHA256_HMAC, []PRFData{ctr(32), {Type: ck.CK_CLOUDHSM_PRF_BYTE_ARRAY}}},
		{"v3.0 iteration variable type", ck.CKM_SHA256_HMAC, []PRFData{{Type: ck.CK_SP800_108_ITERATION_VARIABLE, WidthBits: 32}, arr}},
		{"SHA3-256 HMAC", ck.CKM_SHA3_256_HMAC, good},
		{"DES3 CMAC", ck.CKM_DES3_CMAC, good},
		{"SHA-256 (not a PRF)", ck.CKM_SHA256, good},
	} {
		_, err := m.Derive(key, &CloudHSMKDFParams{PRF: c.prf, Data: c.data}, DeriveTarget{KeyType: ck.CKK_GENERIC_SECRET, ValueLen: 16})
		assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID, c.name)
	}
	// The standard mechanism's parameter is not this one's.
	_, err := m.Derive(key, &SP800108Params{PRF: ck.CKM_SHA256_HMAC}, DeriveTarget{KeyType: ck.CKK_GENERIC_SECRET, ValueLen: 16})
	assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID)
	// Label and context may be empty; the separator stays.
	for _, d := range [][]PRFData{{ctr(16), dkm(8, sok)}, {ctr(32), dkm(64, sok), {Type: ck.CK_CLOUDHSM_PRF_LABEL}}} {
		_, err := m.Derive(key, &CloudHSMKDFParams{PRF: ck.CKM_SHA_1_HMAC, Data: d}, DeriveTarget{KeyType: ck.CKK_GENERIC_SECRET, ValueLen: 16})
		assert.NoError(t, err)
	}
}

// TestCloudHSMECDHKDFs: CloudHSM's CKD_CLOUDHSM_X963_SHA*_KDF have no
// published values (docs/cloudhsm.md), so none is defined: a KDF value in
// the vendor range is CKR_MECHANISM_PARAM_INVALID, never a silent guess,
// while the standard CKD_SHA*_KDF (the same X9.63 KDF, RFC 8418 §2.1 over
// Z and the shared data) derive as TestX963KDF pins.
func TestCloudHSMECDHKDFs(t *testing.T) {
	m := cloudhsmRow(t, ck.CKM_ECDH1_DERIVE)
	a, b := genEC(t, elliptic.P256()), genEC(t, elliptic.P256())
	peer := must(pointBytes(&b.PublicKey))
	z, err := m.Derive(a, &ECDH1Params{KDF: ck.CKD_NULL, PublicData: peer}, DeriveTarget{})
	require.NoError(t, err)
	for _, kdf := range []ck.ULong{0x80000001, 0x80000002, 0x80000006, 0x8000000a} {
		_, err := m.Derive(a, &ECDH1Params{KDF: kdf, PublicData: peer}, DeriveTarget{KeyType: ck.CKK_AES, ValueLen: 32})
		assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "kdf %#x", kdf)
	}
	for kdf, h := range map[ck.ULong]crypto.Hash{ck.CKD_SHA1_KDF: crypto.SHA1, ck.CKD_SHA224_KDF: crypto.SHA224,
		ck.CKD_SHA256_KDF: crypto.SHA256, ck.CKD_SHA384_KDF: crypto.SHA384, ck.CKD_SHA512_KDF: crypto.SHA512} {
		k, err := m.Derive(a, &ECDH1Params{KDF: kdf, SharedData: []byte("shared"), PublicData: peer}, DeriveTarget{KeyType: ck.CKK_AES, ValueLen: 32})
		require.NoError(t, err)
		assert.Equal(t, x963KDF(h, z, []byte("shared"), 32), k, "%v", h)
	}
}
