package mechanisms

import (
	"bytes"
	"crypto/rand"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
)

// Registrations of the AES and DES3 families with the conformance suite,
// and the extra checks for wrap, derive and message-based AEAD, which are
// written for every row that has those operations.

func init() {
	type bad = struct {
		p    KeyGenParams
		want ck.RV
	}
	// DES3 fixtures need a DES3 generation row in the table: des3Rows
	// (des3.go) joins the table's concatenation in table.go; until then
	// the DES3 tests take the rows from des3Rows directly.
	if _, ok := Lookup(ck.CKM_DES3_KEY_GEN); ok {
		fixtureSizes[ck.CKK_DES3] = []int{des3KeySize}
	}
	keyGenCases[ck.CKK_DES3] = struct {
		good []KeyGenParams
		bad  []bad
	}{
		good: []KeyGenParams{{ValueLen: 24}},
		bad: []bad{
			{KeyGenParams{ValueLen: 16}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
			{KeyGenParams{ValueLen: 32}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
			{KeyGenParams{ValueLen: -1}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		},
	}

	paramCases[ParamIV] = func(t *testing.T, m *Mechanism, _ *fixture) (any, []any) {
		n := 16
		switch {
		case m.Type == ck.CKM_AES_KEY_WRAP:
			n = 8
		case m.Type == ck.CKM_AES_KEY_WRAP_PAD || m.Type == ck.CKM_AES_KEY_WRAP_KWP:
			n = 4
		case slices.Contains(m.KeyTypes, ck.CKK_DES3):
			n = 8
		}
		iv := bytes.Repeat([]byte{0x3c}, n)
		return iv, []any{flipLast(iv)}
	}
	paramCases[ParamCTR] = func(*testing.T, *Mechanism, *fixture) (any, []any) {
		p := &CTRParams{CounterBits: 32}
		copy(p.CB[:], bytes.Repeat([]byte{0xc3}, 12))
		q := *p
		q.CB[3] ^= 1
		return p, []any{&q}
	}
	paramCases[ParamCCM] = func(*testing.T, *Mechanism, *fixture) (any, []any) {
		nonce := bytes.Repeat([]byte{0x71}, 13)
		return &CCMParams{DataLen: ccmTestLen, Nonce: nonce, AAD: []byte("header"), MACLen: 16}, []any{
			&CCMParams{DataLen: ccmTestLen, Nonce: flipLast(nonce), AAD: []byte("header"), MACLen: 16},
			&CCMParams{DataLen: ccmTestLen, Nonce: nonce, AAD: []byte("Header"), MACLen: 16},
		}
	}
	paramCases[ParamULong] = func(_ *testing.T, m *Mechanism, _ *fixture) (any, []any) {
		// CK_MAC_GENERAL_PARAMS: a MAC shorter than the block. Other MAC
		// lengths are not variants that must fail with
		// CKR_SIGNATURE_INVALID (a length change is _LEN_RANGE).
		if slices.Contains(m.KeyTypes, ck.CKK_DES3) {
			return ck.ULong(6), nil
		}
		return ck.ULong(10), nil
	}
	paramCases[ParamBytes] = func(_ *testing.T, m *Mechanism, _ *fixture) (any, []any) {
		return bytes.Repeat([]byte{0x42}, 32), []any{bytes.Repeat([]byte{0x43}, 32)}
	}
	paramCases[ParamCBCEncryptData] = func(_ *testing.T, m *Mechanism, _ *fixture) (any, []any) {
		n := 16
		if slices.Contains(m.KeyTypes, ck.CKK_DES3) {
			n = 8
		}
		p := &CBCEncryptDataParams{IV: bytes.Repeat([]byte{1}, n), Data: bytes.Repeat([]byte{0x42}, 32)}
		return p, []any{&CBCEncryptDataParams{IV: flipLast(p.IV), Data: p.Data}}
	}

	// Whole blocks for the modes without padding; no empty message where
	// a wrong key could not show (an empty ciphertext decrypts to the
	// empty message under any key).
	for _, mt := range []ck.MechanismType{ck.CKM_AES_ECB, ck.CKM_AES_CBC} {
		inputLengths[mt] = []int{16, 32, 48, 4096}
	}
	for _, mt := range []ck.MechanismType{ck.CKM_DES3_ECB, ck.CKM_DES3_CBC} {
		inputLengths[mt] = []int{8, 16, 24, 4096}
	}
	inputLengths[ck.CKM_AES_CTR] = []int{1, 15, 16, 17, 1000, 4096}
	inputLengths[ck.CKM_AES_CCM] = []int{ccmTestLen}
	inputLengths[ck.CKM_AES_KEY_WRAP] = []int{16, 24, 32, 40, 264}
	for _, mt := range []ck.MechanismType{ck.CKM_AES_KEY_WRAP_PAD, ck.CKM_AES_KEY_WRAP_KWP} {
		inputLengths[mt] = []int{1, 7, 8, 9, 16, 31, 32, 1000}
	}

	extraConformance = append(extraConformance, testWrapConformance, testDeriveConformance, testMessageConformance)
}

// ccmTestLen is the message length the CCM parameter case is made for
// (CK_CCM_PARAMS.ulDataLen fixes it).
const ccmTestLen = 100

// testWrapConformance: for every row that wraps, material of suitable
// lengths unwraps to itself, and a tampered or truncated wrapping, or the
// wrong key, never yields it (authenticated rows fail with the unwrap
// errors; the others produce something else).
func testWrapConformance(t *testing.T, m *Mechanism) {
	if m.Wrap == nil && m.Unwrap == nil {
		return
	}
	require.True(t, m.Wrap != nil && m.Unwrap != nil, "wrap without unwrap or back")
	for _, kt := range m.KeyTypes {
		for _, f := range keyFixtures(t, kt) {
			param, _ := testParamFor(t, m, &f)
			lengths := []int{16, 32, 48, 96}
			if l, ok := inputLengths[m.Type]; ok {
				lengths = l
			}
			for _, n := range lengths {
				if n == 0 {
					continue
				}
				material := make([]byte, n)
				_, _ = rand.Read(material)
				wrapped, err := m.Wrap(f.pub, param, material)
				require.NoError(t, err, "%v wrap %d bytes", m.Type, n)
				got, err := m.Unwrap(f.priv, param, wrapped)
				require.NoError(t, err, "%v unwrap %d bytes", m.Type, n)
				equalBytes(t, material, got, "%v unwrap", m.Type)

				refused := func(what string, got []byte, err error) {
					if err != nil {
						assert.True(t, errorsIsAny(err, ck.CKR_WRAPPED_KEY_INVALID, ck.CKR_WRAPPED_KEY_LEN_RANGE), "%v %s: %v", m.Type, what, err)
						return
					}
					assert.False(t, bytes.Equal(material, got), "%v %s", m.Type, what)
				}
				got, err = m.Unwrap(f.priv, param, flipLast(wrapped))
				refused("tampered", got, err)
				got, err = m.Unwrap(f.priv, param, wrapped[:len(wrapped)-1])
				refused("truncated", got, err)
				got, err = m.Unwrap(f.priv2, param, wrapped)
				refused("wrong key", got, err)
			}
		}
	}
}

// testDeriveConformance: derivation is deterministic, depends on the base
// key and on the parameter, and honours CKA_VALUE_LEN.
func testDeriveConformance(t *testing.T, m *Mechanism) {
	if m.Derive == nil || !inRows(m.Type, aesRows(), des3Rows()) {
		// Other families' derivations (concatenation keeps one input
		// whole, ECDH needs a peer) have checks of their own.
		return
	}
	for _, kt := range m.KeyTypes {
		for _, f := range keyFixtures(t, kt) {
			param, variants := testParamFor(t, m, &f)
			target := DeriveTarget{KeyType: ck.CKK_GENERIC_SECRET, ValueLen: 16}
			a, err := m.Derive(f.priv, param, target)
			require.NoError(t, err, "%v", m.Type)
			require.Len(t, a, 16)
			b, err := m.Derive(f.priv, param, target)
			require.NoError(t, err)
			assert.Equal(t, a, b, "%v is not deterministic", m.Type)
			c, err := m.Derive(f.priv2, param, target)
			require.NoError(t, err)
			assert.NotEqual(t, a, c, "%v ignores the base key", m.Type)
			for _, v := range variants {
				d, err := m.Derive(f.priv, v, target)
				require.NoError(t, err)
				assert.NotEqual(t, a, d, "%v ignores its parameter", m.Type)
			}
		}
	}
}

// testMessageConformance: message-based AEAD round trips, generated IVs
// differ and are written back, and a tampered tag, AAD or ciphertext fails.
func testMessageConformance(t *testing.T, m *Mechanism) {
	if m.MessageEncrypt == nil && m.MessageDecrypt == nil {
		return
	}
	require.True(t, m.MessageEncrypt != nil && m.MessageDecrypt != nil, "message encrypt without decrypt or back")
	newParams := func(n int) *MessageParams {
		switch m.Param {
		case ParamGCM:
			return &MessageParams{IV: bytes.Repeat([]byte{0xee}, 12), IVFixedBits: 32, IVGenerator: ck.CKG_GENERATE_RANDOM, Tag: make([]byte, 16), TagBits: 128}
		case ParamCCM:
			return &MessageParams{IV: bytes.Repeat([]byte{0xee}, 12), IVFixedBits: 32, IVGenerator: ck.CKG_GENERATE_RANDOM, Tag: make([]byte, 16), DataLen: n, MACLen: 16}
		}
		t.Fatalf("no message parameters for ParamKind %d", m.Param)
		return nil
	}
	for _, kt := range m.KeyTypes {
		for _, f := range keyFixtures(t, kt) {
			enc, err := m.MessageEncrypt(f.pub, nil)
			require.NoError(t, err)
			dec, err := m.MessageDecrypt(f.priv, nil)
			require.NoError(t, err)
			seen := map[string]bool{}
			for _, n := range []int{0, 1, 16, 100, 1000} {
				msg := make([]byte, n)
				_, _ = rand.Read(msg)
				aad := []byte("aad")
				p := newParams(n)
				ct, err := enc.Encrypt([]byte("prefix"), p, aad, msg)
				require.NoError(t, err)
				require.Equal(t, []byte("prefix"), ct[:6])
				ct = ct[6:]
				assert.Equal(t, []byte{0xee, 0xee, 0xee, 0xee}, p.IV[:4], "fixed IV bits kept")
				assert.False(t, seen[string(p.IV)], "generated IV repeated")
				seen[string(p.IV)] = true

				pt, err := dec.Decrypt(nil, p, aad, ct)
				require.NoError(t, err, "%v %d bytes", m.Type, n)
				equalBytes(t, msg, pt)

				q := *p
				q.Tag = flipLast(p.Tag)
				_, err = dec.Decrypt(nil, &q, aad, ct)
				assert.ErrorIs(t, err, ck.CKR_ENCRYPTED_DATA_INVALID, "tampered tag")
				_, err = dec.Decrypt(nil, p, []byte("aaD"), ct)
				assert.ErrorIs(t, err, ck.CKR_ENCRYPTED_DATA_INVALID, "tampered aad")
				if n > 0 {
					_, err = dec.Decrypt(nil, p, aad, flipLast(ct))
					assert.ErrorIs(t, err, ck.CKR_ENCRYPTED_DATA_INVALID, "tampered ciphertext")
				}
				// The same context continues after a failure.
				pt, err = dec.Decrypt(nil, p, aad, ct)
				require.NoError(t, err)
				equalBytes(t, msg, pt)
			}
		}
	}
}

func inRows(t ck.MechanismType, families ...[]Mechanism) bool {
	for _, rows := range families {
		for _, r := range rows {
			if r.Type == t {
				return true
			}
		}
	}
	return false
}
