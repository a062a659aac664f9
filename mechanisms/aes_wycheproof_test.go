package mechanisms

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/internal/wycheproof"
)

func aesFamilyRow(t *testing.T, mt ck.MechanismType) *Mechanism {
	t.Helper()
	if m, ok := Lookup(mt); ok {
		return m
	}
	// des3Rows until table.go concatenates them: the same guarded row
	// the table will hold.
	for _, r := range des3Rows() {
		if r.Type == mt {
			return guard(r)
		}
	}
	t.Fatalf("no row for %v", mt)
	return nil
}

// Wycheproof aes_gcm_test.json. Decisions: IVs of 1..256 bytes are
// accepted (CK_GCM_PARAMS' range in v3.0), so the "acceptable" SmallIv
// cases (IVs under 96 bits) must pass; the valid 2056-bit-IV cases exceed
// 256 bytes and are refused at C_EncryptInit with
// CKR_MECHANISM_PARAM_INVALID, as are the invalid empty IVs.
func TestAESGCMWycheproof(t *testing.T) {
	m := aesFamilyRow(t, ck.CKM_AES_GCM)
	f := wycheproof.Load(t, "aes_gcm_test.json")
	var ran, refusedIV int
	for _, g := range f.Groups {
		tagBits := wycheproof.Int(t, g.Fields, "tagSize")
		for _, c := range g.Tests {
			key, iv := wycheproof.Hex(t, c.Fields, "key"), wycheproof.Hex(t, c.Fields, "iv")
			aad, msg := wycheproof.Hex(t, c.Fields, "aad"), wycheproof.Hex(t, c.Fields, "msg")
			ct := append(wycheproof.Hex(t, c.Fields, "ct"), wycheproof.Hex(t, c.Fields, "tag")...)
			p := &GCMParams{IV: iv, AAD: aad, TagBits: tagBits}
			if len(iv) == 0 || len(iv) > gcmMaxIV {
				_, err := m.Decrypt(key, p)
				assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "tc %d", c.ID)
				refusedIV++
				continue
			}
			ran++
			dec, err := m.Decrypt(key, p)
			require.NoError(t, err, "tc %d", c.ID)
			pt, err := dec.Once(nil, ct)
			switch c.Result {
			case "valid", "acceptable":
				require.NoError(t, err, "tc %d %s", c.ID, c.Comment)
				assert.True(t, bytes.Equal(msg, pt), "tc %d", c.ID)
				enc, err := m.Encrypt(key, p)
				require.NoError(t, err)
				got, err := enc.Once(nil, msg)
				require.NoError(t, err)
				assert.Equal(t, ct, got, "tc %d", c.ID)
			default:
				assert.ErrorIs(t, err, ck.CKR_ENCRYPTED_DATA_INVALID, "tc %d %s", c.ID, c.Comment)
			}
		}
	}
	t.Logf("%d cases run, %d refused for their IV length", ran, refusedIV)
	assert.Greater(t, ran, 200)
}

// Wycheproof aes_ccm_test.json: every case with a nonce of 7..13 bytes
// and an even tag of 4..16 bytes runs through single- and multi-part
// decryption; the others must be refused as parameters (all of them are
// "invalid"). No case is "acceptable".
func TestAESCCMWycheproof(t *testing.T) {
	m := aesFamilyRow(t, ck.CKM_AES_CCM)
	f := wycheproof.Load(t, "aes_ccm_test.json")
	var ran int
	for _, g := range f.Groups {
		tagLen := wycheproof.Int(t, g.Fields, "tagSize") / 8
		for _, c := range g.Tests {
			require.NotEqual(t, "acceptable", c.Result, "tc %d: decide it", c.ID)
			key, iv := wycheproof.Hex(t, c.Fields, "key"), wycheproof.Hex(t, c.Fields, "iv")
			aad, msg := wycheproof.Hex(t, c.Fields, "aad"), wycheproof.Hex(t, c.Fields, "msg")
			ct := append(wycheproof.Hex(t, c.Fields, "ct"), wycheproof.Hex(t, c.Fields, "tag")...)
			p := &CCMParams{DataLen: len(msg), Nonce: iv, AAD: aad, MACLen: tagLen}
			if ccmParamsOK(len(iv), tagLen, len(msg)) != nil {
				assert.Equal(t, "invalid", c.Result, "tc %d", c.ID)
				_, err := m.Decrypt(key, p)
				assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "tc %d", c.ID)
				continue
			}
			ran++
			dec, err := m.Decrypt(key, p)
			require.NoError(t, err, "tc %d", c.ID)
			pt, err := dec.Once(nil, ct)
			if c.Result == "invalid" {
				assert.True(t, errorsIsAny(err, ck.CKR_ENCRYPTED_DATA_INVALID, ck.CKR_ENCRYPTED_DATA_LEN_RANGE), "tc %d %s: %v", c.ID, c.Comment, err)
				continue
			}
			require.NoError(t, err, "tc %d %s", c.ID, c.Comment)
			assert.True(t, bytes.Equal(msg, pt), "tc %d", c.ID)

			enc, err := m.Encrypt(key, p)
			require.NoError(t, err)
			got, err := enc.Once(nil, msg)
			require.NoError(t, err)
			assert.Equal(t, ct, got, "tc %d", c.ID)

			enc, err = m.Encrypt(key, p)
			require.NoError(t, err)
			var multi []byte
			for _, part := range chunks(msg) {
				multi, err = enc.Update(multi, part)
				require.NoError(t, err)
			}
			multi, err = enc.Final(multi)
			require.NoError(t, err)
			assert.Equal(t, ct, multi, "tc %d multi-part", c.ID)
		}
	}
	assert.Greater(t, ran, 100)
}

// Wycheproof aes_cbc_pkcs5_test.json on CKM_AES_CBC_PAD, single- and
// multi-part. Invalid cases (bad padding, partial blocks) fail with
// CKR_ENCRYPTED_DATA_INVALID or _LEN_RANGE; none is "acceptable".
func TestAESCBCPadWycheproof(t *testing.T) {
	m := aesFamilyRow(t, ck.CKM_AES_CBC_PAD)
	f := wycheproof.Load(t, "aes_cbc_pkcs5_test.json")
	for _, g := range f.Groups {
		for _, c := range g.Tests {
			require.NotEqual(t, "acceptable", c.Result, "tc %d: decide it", c.ID)
			key, iv := wycheproof.Hex(t, c.Fields, "key"), wycheproof.Hex(t, c.Fields, "iv")
			msg, ct := wycheproof.Hex(t, c.Fields, "msg"), wycheproof.Hex(t, c.Fields, "ct")
			dec, err := m.Decrypt(key, iv)
			require.NoError(t, err)
			pt, err := dec.Once(nil, ct)

			d2, err2 := m.Decrypt(key, iv)
			require.NoError(t, err2)
			var multi []byte
			for _, part := range chunks(ct) {
				if multi, err2 = d2.Update(multi, part); err2 != nil {
					break
				}
			}
			if err2 == nil {
				multi, err2 = d2.Final(multi)
			}
			if c.Result == "invalid" {
				assert.True(t, errorsIsAny(err, ck.CKR_ENCRYPTED_DATA_INVALID, ck.CKR_ENCRYPTED_DATA_LEN_RANGE), "tc %d %s: %v", c.ID, c.Comment, err)
				assert.True(t, errorsIsAny(err2, ck.CKR_ENCRYPTED_DATA_INVALID, ck.CKR_ENCRYPTED_DATA_LEN_RANGE), "tc %d multi-part: %v", c.ID, err2)
				continue
			}
			require.NoError(t, err, "tc %d", c.ID)
			require.NoError(t, err2, "tc %d multi-part", c.ID)
			equalBytes(t, msg, pt, "tc %d", c.ID)
			equalBytes(t, msg, multi, "tc %d multi-part", c.ID)
			enc, err := m.Encrypt(key, iv)
			require.NoError(t, err)
			got, err := enc.Once(nil, msg)
			require.NoError(t, err)
			assert.Equal(t, ct, got, "tc %d", c.ID)
		}
	}
}

// Wycheproof aes_cmac_test.json: CKM_AES_CMAC for the full tag; keys of
// other sizes than 16, 24, 32 bytes are refused with CKR_KEY_SIZE_RANGE.
// No case is "acceptable".
func TestAESCMACWycheproof(t *testing.T) {
	m := aesFamilyRow(t, ck.CKM_AES_CMAC)
	general := aesFamilyRow(t, ck.CKM_AES_CMAC_GENERAL)
	f := wycheproof.Load(t, "aes_cmac_test.json")
	for _, g := range f.Groups {
		tagLen := wycheproof.Int(t, g.Fields, "tagSize") / 8
		require.Equal(t, 16, tagLen)
		for _, c := range g.Tests {
			require.NotEqual(t, "acceptable", c.Result, "tc %d: decide it", c.ID)
			key, msg, tag := wycheproof.Hex(t, c.Fields, "key"), wycheproof.Hex(t, c.Fields, "msg"), wycheproof.Hex(t, c.Fields, "tag")
			v, err := m.Verify(key, nil)
			if len(key) != 16 && len(key) != 24 && len(key) != 32 {
				assert.ErrorIs(t, err, ck.CKR_KEY_SIZE_RANGE, "tc %d", c.ID)
				continue
			}
			require.NoError(t, err)
			require.NoError(t, v.Update(msg))
			err = v.Verify(tag)
			if c.Result == "invalid" {
				assert.ErrorIs(t, err, ck.CKR_SIGNATURE_INVALID, "tc %d %s", c.ID, c.Comment)
				continue
			}
			require.NoError(t, err, "tc %d", c.ID)
			s, err := m.Sign(key, nil)
			require.NoError(t, err)
			for _, part := range chunks(msg) {
				require.NoError(t, s.Update(part))
			}
			got, err := s.Sign(nil)
			require.NoError(t, err)
			assert.Equal(t, tag, got, "tc %d", c.ID)
			// CMAC_GENERAL is the same MAC cut short.
			for _, n := range []int{1, 4, 8, 15, 16} {
				s, err := general.Sign(key, ck.ULong(n))
				require.NoError(t, err)
				require.NoError(t, s.Update(msg))
				got, err := s.Sign(nil)
				require.NoError(t, err)
				assert.Equal(t, tag[:n], got, "tc %d, %d bytes", c.ID, n)
			}
		}
	}
}

// Wycheproof kw_test.json (RFC 3394) on CKM_AES_KEY_WRAP, through both
// C_UnwrapKey/C_WrapKey and C_Decrypt/C_Encrypt. Invalid cases fail with
// the wrapped-key (or encrypted-data) errors; none is "acceptable".
func TestAESKWWycheproof(t *testing.T) {
	testKeyWrapWycheproof(t, ck.CKM_AES_KEY_WRAP, "kw_test.json")
}

// Wycheproof kwp_test.json (RFC 5649) on both names of KWP. Decision on the
// "acceptable" cases (SmallKey: keys under 16 bytes wrapped;
// WeakWrapping: wrapping keys longer than the wrapping key): PKCS#11 lets
// any key be wrapped, so they are accepted and must round-trip, except
// the wrapping of an empty key (8-byte ciphertexts), which RFC 5649 §4.1
// excludes (m >= 1 octet): it is refused as CKR_KEY_SIZE_RANGE on wrap and
// CKR_WRAPPED_KEY_LEN_RANGE on unwrap.
func TestAESKWPWycheproof(t *testing.T) {
	testKeyWrapWycheproof(t, ck.CKM_AES_KEY_WRAP_KWP, "kwp_test.json")
	testKeyWrapWycheproof(t, ck.CKM_AES_KEY_WRAP_PAD, "kwp_test.json")
}

func testKeyWrapWycheproof(t *testing.T, mt ck.MechanismType, file string) {
	m := aesFamilyRow(t, mt)
	f := wycheproof.Load(t, file)
	var valid, invalid int
	for _, g := range f.Groups {
		for _, c := range g.Tests {
			key, msg, ct := wycheproof.Hex(t, c.Fields, "key"), wycheproof.Hex(t, c.Fields, "msg"), wycheproof.Hex(t, c.Fields, "ct")
			got, err := m.Unwrap(key, nil, ct)
			dec, derr := m.Decrypt(key, nil)
			require.NoError(t, derr)
			pt, derr := dec.Once(nil, ct)
			switch {
			case c.Result == "acceptable" && len(msg) == 0:
				assert.ErrorIs(t, err, ck.CKR_WRAPPED_KEY_LEN_RANGE, "tc %d", c.ID)
				assert.ErrorIs(t, derr, ck.CKR_ENCRYPTED_DATA_LEN_RANGE, "tc %d", c.ID)
				_, err = m.Wrap(key, nil, msg)
				assert.ErrorIs(t, err, ck.CKR_KEY_SIZE_RANGE, "tc %d", c.ID)
			case c.Result == "valid" || c.Result == "acceptable":
				valid++
				require.NoError(t, err, "tc %d %s", c.ID, c.Comment)
				assert.Equal(t, msg, got, "tc %d", c.ID)
				require.NoError(t, derr, "tc %d", c.ID)
				assert.Equal(t, msg, pt, "tc %d", c.ID)
				w, err := m.Wrap(key, nil, msg)
				require.NoError(t, err, "tc %d", c.ID)
				assert.Equal(t, ct, w, "tc %d", c.ID)
			default:
				invalid++
				assert.True(t, errorsIsAny(err, ck.CKR_WRAPPED_KEY_INVALID, ck.CKR_WRAPPED_KEY_LEN_RANGE), "tc %d %s: %v", c.ID, c.Comment, err)
				assert.True(t, errorsIsAny(derr, ck.CKR_ENCRYPTED_DATA_INVALID, ck.CKR_ENCRYPTED_DATA_LEN_RANGE), "tc %d %s: %v", c.ID, c.Comment, derr)
			}
		}
	}
	t.Logf("%v: %d valid/acceptable, %d invalid", mt, valid, invalid)
}
