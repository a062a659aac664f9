package token

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/mechanisms"
	"gohsm/token/attrs"
)

// The cloudhsm profile's mechanism policy (docs/cloudhsm.md, "Mechanisms"
// and "AES-GCM"), against the standard profile on the same calls.

const (
	mechCOPIN = "admin:officer-pw1"
	mechCUPIN = "cu1:crypto-pw1"
)

// mechModule opens a module whose slot 3 has the given profile lines
// (e.g. "profile = cloudhsm\nfips = false"), with an officer and a crypto
// user made the way the CLI makes them, and returns a R/W session logged
// in as the crypto user.
func mechModule(t testing.TB, profileLines string) (*Module, ck.ULong) {
	t.Helper()
	m := profileModuleLines(t, t.TempDir(), profileLines)
	h := profileSetUp(t, m, mechCOPIN, "cu1", "crypto-pw1")
	require.NoError(t, m.Logout(h))
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(mechCUPIN)))
	return m, h
}

var mechProfiles = []struct{ name, lines string }{
	{"standard", ""},
	{"cloudhsm", "profile = cloudhsm"},
}

func mechAES(t *testing.T, m *Module, h ck.ULong) ck.ULong {
	t.Helper()
	k, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, attrs.Template{
		ck.CKA_VALUE_LEN: attrs.ULong(32), ck.CKA_ENCRYPT: attrs.Bool(true), ck.CKA_DECRYPT: attrs.Bool(true),
		ck.CKA_WRAP: attrs.Bool(true), ck.CKA_UNWRAP: attrs.Bool(true), ck.CKA_EXTRACTABLE: attrs.Bool(true),
		ck.CKA_SENSITIVE: attrs.Bool(true)})
	require.NoError(t, err)
	return k
}

func mechHMAC(t *testing.T, m *Module, h ck.ULong) ck.ULong {
	t.Helper()
	k, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_GENERIC_SECRET_KEY_GEN}, attrs.Template{
		ck.CKA_VALUE_LEN: attrs.ULong(32), ck.CKA_SIGN: attrs.Bool(true), ck.CKA_VERIFY: attrs.Bool(true)})
	require.NoError(t, err)
	return k
}

func mechRSA(t *testing.T, m *Module, h ck.ULong) (pub, priv ck.ULong) {
	t.Helper()
	pub, priv, err := m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_RSA_PKCS_KEY_PAIR_GEN},
		attrs.Template{ck.CKA_MODULUS_BITS: attrs.ULong(2048), ck.CKA_PUBLIC_EXPONENT: []byte{1, 0, 1},
			ck.CKA_ENCRYPT: attrs.Bool(true), ck.CKA_VERIFY: attrs.Bool(true), ck.CKA_WRAP: attrs.Bool(true)},
		attrs.Template{ck.CKA_DECRYPT: attrs.Bool(true), ck.CKA_SIGN: attrs.Bool(true), ck.CKA_UNWRAP: attrs.Bool(true)})
	require.NoError(t, err)
	return pub, priv
}

func wantRV(t *testing.T, err error, want ck.RV, what string) {
	t.Helper()
	if want == 0 {
		require.NoError(t, err, what)
		return
	}
	require.Error(t, err, what)
	require.Truef(t, errors.Is(err, want), "%s: got %v, want %v", what, err, want)
}

// TestCloudHSMMechanismList: the cloudhsm slot lists exactly the SDK 5
// mechanisms the table has, every other mechanism is CKR_MECHANISM_INVALID
// at C_GetMechanismInfo, C_*Init, generation, wrap, unwrap and derive, and
// the standard slot's list is the whole table.
func TestCloudHSMMechanismList(t *testing.T) {
	ms, hs := mechModule(t, "")
	mc, hc := mechModule(t, "profile = cloudhsm")
	std, err := ms.Mechanisms(3)
	require.NoError(t, err)
	require.Len(t, std, len(mechanisms.All()))
	chsm, err := mc.Mechanisms(3)
	require.NoError(t, err)
	for _, want := range []ck.MechanismType{ck.CKM_AES_GCM, ck.CKM_RSA_PKCS_OAEP, ck.CKM_SHA256_HMAC, ck.CKM_ECDH1_DERIVE,
		ck.CKM_RSA_X9_31_KEY_PAIR_GEN, ck.CKM_RSA_AES_KEY_WRAP, ck.CKM_AES_CMAC} {
		require.Contains(t, chsm, want)
	}
	for _, not := range []ck.MechanismType{ck.CKM_AES_KEY_WRAP, ck.CKM_AES_KEY_WRAP_PAD, ck.CKM_SHA3_256,
		ck.CKM_EDDSA, ck.CKM_SP800_108_COUNTER_KDF, ck.CKM_HKDF_DERIVE, ck.CKM_SHA256_HMAC_GENERAL, ck.CKM_AES_CCM,
		ck.CKM_DES3_KEY_GEN, ck.CKM_DES3_CBC} { // 3DES: FIPS mode, the default
		require.NotContains(t, chsm, not)
		require.Contains(t, std, not)
		_, _, _, err := mc.MechanismInfo(3, not)
		wantRV(t, err, ck.CKR_MECHANISM_INVALID, not.String()+" info")
	}
	require.Less(t, len(chsm), len(std))
	for _, mt := range chsm {
		_, _, _, err := mc.MechanismInfo(3, mt)
		require.NoError(t, err, mt.String())
	}

	// Each function refuses what the profile does not offer.
	ka, kc := mechAES(t, ms, hs), mechAES(t, mc, hc)
	for _, c := range []struct {
		name string
		call func(m *Module, h, k ck.ULong) error
	}{
		{"EncryptInit CKM_AES_CCM", func(m *Module, h, k ck.ULong) error {
			err := m.EncryptInit(h, Mechanism{Type: ck.CKM_AES_CCM, Param: &mechanisms.CCMParams{DataLen: 4, Nonce: make([]byte, 12), MACLen: 16}}, k)
			m.Abort(h, OpEncrypt)
			return err
		}},
		{"SignInit CKM_SHA256_HMAC_GENERAL", func(m *Module, h, k ck.ULong) error {
			return m.SignInit(h, Mechanism{Type: ck.CKM_SHA256_HMAC_GENERAL, Param: ck.ULong(16)}, k)
		}},
		{"DigestInit CKM_SHA3_256", func(m *Module, h, _ ck.ULong) error {
			err := m.DigestInit(h, Mechanism{Type: ck.CKM_SHA3_256})
			m.Abort(h, OpDigest)
			return err
		}},
		{"GenerateKey CKM_SHA256_KEY_GEN", func(m *Module, h, _ ck.ULong) error {
			_, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_SHA256_KEY_GEN}, attrs.Template{ck.CKA_VALUE_LEN: attrs.ULong(32)})
			return err
		}},
		{"WrapKey CKM_AES_KEY_WRAP", func(m *Module, h, k ck.ULong) error {
			_, err := m.WrapKey(h, Mechanism{Type: ck.CKM_AES_KEY_WRAP}, k, k, Out{Query: true})
			return err
		}},
		{"WrapKey CKM_AES_CBC_PAD (encrypt only)", func(m *Module, h, k ck.ULong) error {
			_, err := m.WrapKey(h, Mechanism{Type: ck.CKM_AES_CBC_PAD, Param: make([]byte, 16)}, k, k, Out{Query: true})
			return err
		}},
		{"UnwrapKey CKM_AES_KEY_WRAP_PAD", func(m *Module, h, k ck.ULong) error {
			_, err := m.UnwrapKey(h, Mechanism{Type: ck.CKM_AES_KEY_WRAP_PAD}, k, make([]byte, 40),
				attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY)), ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_AES))})
			return err
		}},
		{"DeriveKey CKM_AES_ECB_ENCRYPT_DATA", func(m *Module, h, k ck.ULong) error {
			_, err := m.DeriveKey(h, Mechanism{Type: ck.CKM_AES_ECB_ENCRYPT_DATA, Param: make([]byte, 32)}, k, nil)
			return err
		}},
	} {
		errC := c.call(mc, hc, kc)
		wantRV(t, errC, ck.CKR_MECHANISM_INVALID, "cloudhsm "+c.name)
		if errS := c.call(ms, hs, ka); errors.Is(errS, ck.CKR_MECHANISM_INVALID) {
			t.Errorf("standard %s: %v (the table has it)", c.name, errS)
		}
	}
}

// TestCloudHSMFIPSRefusals: with fips = true (the default) 3DES and RSA
// PKCS#1 v1.5 encryption and wrapping are refused with
// CKR_MECHANISM_INVALID while PKCS#1 v1.5 signatures work; fips = false
// allows them, and standard never refuses.
func TestCloudHSMFIPSRefusals(t *testing.T) {
	for _, c := range []struct {
		name, lines string
		refused     bool
	}{
		{"standard", "", false},
		{"cloudhsm fips", "profile = cloudhsm", true},
		{"cloudhsm non-fips", "profile = cloudhsm\nfips = false", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, h := mechModule(t, c.lines)
			want := ck.RV(0)
			if c.refused {
				want = ck.CKR_MECHANISM_INVALID
			}
			des3, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_DES3_KEY_GEN}, attrs.Template{ck.CKA_ENCRYPT: attrs.Bool(true)})
			wantRV(t, err, want, "C_GenerateKey CKM_DES3_KEY_GEN")
			if err == nil {
				wantRV(t, m.EncryptInit(h, Mechanism{Type: ck.CKM_DES3_CBC, Param: make([]byte, 8)}, des3), 0, "C_EncryptInit CKM_DES3_CBC")
				m.Abort(h, OpEncrypt)
			}
			pub, priv := mechRSA(t, m, h)
			wantRV(t, m.EncryptInit(h, Mechanism{Type: ck.CKM_RSA_PKCS}, pub), want, "C_EncryptInit CKM_RSA_PKCS")
			m.Abort(h, OpEncrypt)
			wantRV(t, m.DecryptInit(h, Mechanism{Type: ck.CKM_RSA_PKCS}, priv), want, "C_DecryptInit CKM_RSA_PKCS")
			m.Abort(h, OpDecrypt)
			aes := mechAES(t, m, h)
			_, err = m.WrapKey(h, Mechanism{Type: ck.CKM_RSA_PKCS}, pub, aes, Out{Query: true})
			wantRV(t, err, want, "C_WrapKey CKM_RSA_PKCS")
			wantRV(t, m.SignInit(h, Mechanism{Type: ck.CKM_RSA_PKCS}, priv), 0, "C_SignInit CKM_RSA_PKCS")
			m.Abort(h, OpSign)
			_, _, flags, err := m.MechanismInfo(3, ck.CKM_RSA_PKCS)
			require.NoError(t, err)
			require.Equal(t, c.refused, flags&ck.CKF_ENCRYPT == 0, "CKF_ENCRYPT of CKM_RSA_PKCS")
			require.NotZero(t, flags&ck.CKF_SIGN)
		})
	}
}

// TestCloudHSMGCMIVFromHSM: CKM_AES_GCM encryption in cloudhsm refuses a
// caller's IV and an empty one, fills a zeroed 12-byte one with a fresh IV
// that decrypts, different each time; standard uses the caller's IV.
func TestCloudHSMGCMIVFromHSM(t *testing.T) {
	msg := []byte("attack at dawn")
	for _, pr := range mechProfiles {
		t.Run(pr.name, func(t *testing.T) {
			m, h := mechModule(t, pr.lines)
			k := mechAES(t, m, h)
			cloudhsm := pr.name == "cloudhsm"
			encrypt := func(iv []byte) ([]byte, *mechanisms.GCMParams, error) {
				p := &mechanisms.GCMParams{IV: iv, TagBits: 128, IVBits: int32(8 * len(iv))}
				if err := m.EncryptInit(h, Mechanism{Type: ck.CKM_AES_GCM, Param: p}, k); err != nil {
					return nil, p, err
				}
				out := make([]byte, 64)
				n, err := m.Encrypt(h, msg, Out{Buf: out})
				return out[:n], p, err
			}
			want := ck.RV(0)
			if cloudhsm {
				want = ck.CKR_MECHANISM_PARAM_INVALID
			}
			_, _, err := encrypt([]byte("twelve bytes"))
			wantRV(t, err, want, "caller's non-zero IV")
			_, _, err = encrypt(make([]byte, 16))
			wantRV(t, err, want, "zero IV of 16 bytes")
			p := &mechanisms.GCMParams{TagBits: 128}
			err = m.EncryptInit(h, Mechanism{Type: ck.CKM_AES_GCM, Param: p}, k)
			wantRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "ulIvLen 0") // both: GCM needs an IV
			// ulIvBits must agree with ulIvLen (or be 0) where the HSM
			// makes the IV; the standard profile goes by ulIvLen alone.
			p = &mechanisms.GCMParams{IV: make([]byte, 12), IVBits: 128, TagBits: 128}
			err = m.EncryptInit(h, Mechanism{Type: ck.CKM_AES_GCM, Param: p}, k)
			wantRV(t, err, want, "ulIvBits 128 with ulIvLen 12")
			m.Abort(h, OpEncrypt)

			ct1, p1, err := encrypt(make([]byte, 12))
			require.NoError(t, err)
			ct2, p2, err := encrypt(make([]byte, 12))
			require.NoError(t, err)
			require.Len(t, ct1, len(msg)+16, "ciphertext || tag, no IV")
			require.Equal(t, cloudhsm, p1.IVGenerated)
			if cloudhsm {
				require.NotEqual(t, make([]byte, 12), p1.IV, "IV made by the HSM")
				require.NotEqual(t, p1.IV, p2.IV)
				require.NotEqual(t, ct1, ct2)
			} else {
				require.Equal(t, make([]byte, 12), p1.IV, "the caller's IV, used as given")
				require.Equal(t, ct1, ct2, "same key, IV and message")
			}
			require.NoError(t, m.DecryptInit(h, Mechanism{Type: ck.CKM_AES_GCM, Param: &mechanisms.GCMParams{IV: p1.IV, TagBits: 128}}, k))
			pt := make([]byte, 64)
			n, err := m.Decrypt(h, ct1, Out{Buf: pt})
			require.NoError(t, err, "decrypt with the IV given back")
			require.Equal(t, msg, pt[:n])
		})
	}
}

// TestCloudHSMMaxInput: per-mechanism caps, at size and size+1, single-
// and multi-part; hash-and-sign and digests take any multi-part length.
func TestCloudHSMMaxInput(t *testing.T) {
	for _, pr := range mechProfiles {
		t.Run(pr.name, func(t *testing.T) {
			m, h := mechModule(t, pr.lines)
			cloudhsm := pr.name == "cloudhsm"
			over := func(rv ck.RV) ck.RV {
				if cloudhsm {
					return rv
				}
				return 0
			}
			hk := mechHMAC(t, m, h)
			for _, c := range []struct {
				t   ck.MechanismType
				max int
			}{
				{ck.CKM_SHA_1_HMAC, 16288}, {ck.CKM_SHA224_HMAC, 16256}, {ck.CKM_SHA256_HMAC, 16288},
				{ck.CKM_SHA384_HMAC, 16224}, {ck.CKM_SHA512_HMAC, 16224},
			} {
				sign := func(n int, parts int) error {
					if err := m.SignInit(h, Mechanism{Type: c.t}, hk); err != nil {
						return err
					}
					data := make([]byte, n)
					out := make([]byte, 64)
					if parts == 1 {
						_, err := m.Sign(h, data, Out{Buf: out})
						return err
					}
					for len(data) > 0 {
						part := data[:min(len(data), n/parts+1)]
						data = data[len(part):]
						if err := m.SignUpdate(h, part); err != nil {
							return err
						}
					}
					_, err := m.SignFinal(h, Out{Buf: out})
					return err
				}
				wantRV(t, sign(c.max, 1), 0, c.t.String()+" at the cap")
				wantRV(t, sign(c.max+1, 1), over(ck.CKR_DATA_LEN_RANGE), c.t.String()+" cap+1")
				wantRV(t, sign(c.max, 3), 0, c.t.String()+" at the cap in 3 parts")
				wantRV(t, sign(c.max+1, 3), over(ck.CKR_DATA_LEN_RANGE), c.t.String()+" cap+1 in 3 parts")
				// The failed operation ended: a new one starts.
				require.NoError(t, m.SignInit(h, Mechanism{Type: c.t}, hk))
				m.Abort(h, OpSign)
			}
			// C_Verify counts too.
			require.NoError(t, m.VerifyInit(h, Mechanism{Type: ck.CKM_SHA256_HMAC}, hk))
			err := m.Verify(h, make([]byte, 16289), make([]byte, 32))
			if cloudhsm {
				wantRV(t, err, ck.CKR_DATA_LEN_RANGE, "C_Verify cap+1")
			} else {
				wantRV(t, err, ck.CKR_SIGNATURE_INVALID, "C_Verify standard")
			}

			ak := mechAES(t, m, h)
			crypt := func(mech Mechanism, encrypt bool, in []byte, parts int) ([]byte, error) {
				init, once, update, final := m.EncryptInit, m.Encrypt, m.EncryptUpdate, m.EncryptFinal
				if !encrypt {
					init, once, update, final = m.DecryptInit, m.Decrypt, m.DecryptUpdate, m.DecryptFinal
				}
				if err := init(h, mech, ak); err != nil {
					return nil, err
				}
				out := make([]byte, len(in)+64)
				if parts == 1 {
					n, err := once(h, in, Out{Buf: out})
					return out[:n], err
				}
				var got []byte
				for len(in) > 0 {
					part := in[:min(len(in), 4096)]
					in = in[len(part):]
					n, err := update(h, part, Out{Buf: out})
					if err != nil {
						return nil, err
					}
					got = append(got, out[:n]...)
				}
				n, err := final(h, Out{Buf: out})
				return append(got, out[:n]...), err
			}
			cbc := Mechanism{Type: ck.CKM_AES_CBC, Param: make([]byte, 16)}
			ct, err := crypt(cbc, true, make([]byte, 16272), 1)
			require.NoError(t, err, "AES-CBC at the cap")
			_, err = crypt(cbc, false, ct, 1)
			require.NoError(t, err, "AES-CBC decrypt at the cap")
			_, err = crypt(cbc, true, make([]byte, 16272+16), 1)
			wantRV(t, err, over(ck.CKR_DATA_LEN_RANGE), "AES-CBC cap+16")
			_, err = crypt(cbc, true, make([]byte, 16272+16), 4)
			wantRV(t, err, over(ck.CKR_DATA_LEN_RANGE), "AES-CBC cap+16 multi-part")
			_, err = crypt(cbc, false, make([]byte, 16272+16), 4)
			wantRV(t, err, over(ck.CKR_ENCRYPTED_DATA_LEN_RANGE), "AES-CBC decrypt cap+16 multi-part")

			gcm := func() Mechanism {
				return Mechanism{Type: ck.CKM_AES_GCM, Param: &mechanisms.GCMParams{IV: make([]byte, 12), TagBits: 128}}
			}
			g := gcm()
			ct, err = crypt(g, true, make([]byte, 16224), 1)
			require.NoError(t, err, "AES-GCM at the cap")
			iv := g.Param.(*mechanisms.GCMParams).IV
			_, err = crypt(Mechanism{Type: ck.CKM_AES_GCM, Param: &mechanisms.GCMParams{IV: iv, TagBits: 128}}, false, ct, 1)
			require.NoError(t, err, "AES-GCM decrypt of the cap's ciphertext")
			_, err = crypt(gcm(), true, make([]byte, 16225), 1)
			wantRV(t, err, over(ck.CKR_DATA_LEN_RANGE), "AES-GCM cap+1")

			// Hash-and-sign and digests: several MiB in parts.
			big := bytes.Repeat([]byte{7}, 3<<20)
			require.NoError(t, m.DigestInit(h, Mechanism{Type: ck.CKM_SHA256}))
			for p := range slices.Chunk(big, 1<<20) {
				require.NoError(t, m.DigestUpdate(h, p))
			}
			_, err = m.DigestFinal(h, Out{Buf: make([]byte, 32)})
			require.NoError(t, err)
			_, priv := mechRSA(t, m, h)
			require.NoError(t, m.SignInit(h, Mechanism{Type: ck.CKM_SHA256_RSA_PKCS}, priv))
			for p := range slices.Chunk(big, 1<<20) {
				require.NoError(t, m.SignUpdate(h, p))
			}
			_, err = m.SignFinal(h, Out{Buf: make([]byte, 256)})
			require.NoError(t, err)
		})
	}
}

// TestCloudHSMSinglePart: CKM_AES_GCM has no multi-part form in cloudhsm
// (CKR_MECHANISM_INVALID); raw RSA, PSS, OAEP and raw ECDSA are
// single-part in both profiles (CKR_FUNCTION_NOT_SUPPORTED).
func TestCloudHSMSinglePart(t *testing.T) {
	for _, pr := range mechProfiles {
		t.Run(pr.name, func(t *testing.T) {
			m, h := mechModule(t, pr.lines)
			cloudhsm := pr.name == "cloudhsm"
			k := mechAES(t, m, h)
			want := ck.RV(0)
			if cloudhsm {
				want = ck.CKR_MECHANISM_INVALID
			}
			require.NoError(t, m.EncryptInit(h, Mechanism{Type: ck.CKM_AES_GCM, Param: gcmParamsValue()}, k))
			_, err := m.EncryptUpdate(h, []byte("part"), Out{Buf: make([]byte, 64)})
			wantRV(t, err, want, "C_EncryptUpdate CKM_AES_GCM")
			m.Abort(h, OpEncrypt)
			require.NoError(t, m.DecryptInit(h, Mechanism{Type: ck.CKM_AES_GCM, Param: gcmParamsValue()}, k))
			_, err = m.DecryptUpdate(h, make([]byte, 32), Out{Buf: make([]byte, 64)})
			wantRV(t, err, want, "C_DecryptUpdate CKM_AES_GCM")
			m.Abort(h, OpDecrypt)

			pub, priv := mechRSA(t, m, h)
			_, ecPriv, err := m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN},
				attrs.Template{ck.CKA_EC_PARAMS: p256, ck.CKA_VERIFY: attrs.Bool(true)},
				attrs.Template{ck.CKA_SIGN: attrs.Bool(true)})
			require.NoError(t, err)
			for _, c := range []struct {
				mech Mechanism
				key  ck.ULong
				sign bool
			}{
				{Mechanism{Type: ck.CKM_RSA_PKCS}, priv, true},
				{Mechanism{Type: ck.CKM_RSA_PKCS_PSS, Param: &mechanisms.PSSParams{Hash: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA256, SaltLen: 32}}, priv, true},
				{Mechanism{Type: ck.CKM_ECDSA}, ecPriv, true},
				{Mechanism{Type: ck.CKM_RSA_PKCS_OAEP, Param: &mechanisms.OAEPParams{Hash: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA256}}, pub, false},
			} {
				if c.sign {
					require.NoError(t, m.SignInit(h, c.mech, c.key))
					wantRV(t, m.SignUpdate(h, []byte("x")), ck.CKR_FUNCTION_NOT_SUPPORTED, "C_SignUpdate "+c.mech.Type.String())
				} else {
					require.NoError(t, m.EncryptInit(h, c.mech, c.key))
					_, err := m.EncryptUpdate(h, []byte("x"), Out{Buf: make([]byte, 256)})
					wantRV(t, err, ck.CKR_FUNCTION_NOT_SUPPORTED, "C_EncryptUpdate "+c.mech.Type.String())
				}
			}
		})
	}
}

// TestCloudHSMOAEPPairs: in cloudhsm the OAEP hash and MGF must match
// (SHA-1..SHA-512); standard accepts any known pair, as the spec does.
func TestCloudHSMOAEPPairs(t *testing.T) {
	for _, pr := range mechProfiles {
		t.Run(pr.name, func(t *testing.T) {
			m, h := mechModule(t, pr.lines)
			cloudhsm := pr.name == "cloudhsm"
			pub, priv := mechRSA(t, m, h)
			aes := mechAES(t, m, h)
			for _, c := range []struct {
				hash ck.MechanismType
				mgf  ck.ULong
				ok   bool // in cloudhsm
			}{
				{ck.CKM_SHA_1, ck.CKG_MGF1_SHA1, true},
				{ck.CKM_SHA224, ck.CKG_MGF1_SHA224, true},
				{ck.CKM_SHA256, ck.CKG_MGF1_SHA256, true},
				{ck.CKM_SHA384, ck.CKG_MGF1_SHA384, true},
				{ck.CKM_SHA512, ck.CKG_MGF1_SHA512, true},
				{ck.CKM_SHA256, ck.CKG_MGF1_SHA1, false}, // Java's OAEPWithSHA-256AndMGF1Padding
				{ck.CKM_SHA_1, ck.CKG_MGF1_SHA256, false},
				{ck.CKM_SHA3_256, ck.CKG_MGF1_SHA3_256, false},
			} {
				mech := Mechanism{Type: ck.CKM_RSA_PKCS_OAEP, Param: &mechanisms.OAEPParams{Hash: c.hash, MGF: c.mgf, Source: ck.CKZ_DATA_SPECIFIED}}
				want := ck.RV(0)
				if cloudhsm && !c.ok {
					want = ck.CKR_MECHANISM_PARAM_INVALID
				}
				what := fmt.Sprintf("%v/mgf 0x%x", c.hash, uint64(c.mgf))
				wantRV(t, m.EncryptInit(h, mech, pub), want, "C_EncryptInit "+what)
				m.Abort(h, OpEncrypt)
				wantRV(t, m.DecryptInit(h, mech, priv), want, "C_DecryptInit "+what)
				m.Abort(h, OpDecrypt)
				_, err := m.WrapKey(h, mech, pub, aes, Out{Query: true})
				wantRV(t, err, want, "C_WrapKey "+what)
				_, err = m.UnwrapKey(h, mech, priv, make([]byte, 256),
					attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY)), ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_AES))})
				if want != 0 {
					wantRV(t, err, want, "C_UnwrapKey "+what)
				} else if errors.Is(err, ck.CKR_MECHANISM_PARAM_INVALID) {
					t.Errorf("C_UnwrapKey %s: %v", what, err)
				}
			}
		})
	}
}

// BenchmarkSignHMAC64CloudHSM is BenchmarkSignHMAC64 in a cloudhsm slot:
// the profile's lookup and the input cap on the operation.
func BenchmarkSignHMAC64CloudHSM(b *testing.B) {
	m, h := mechModule(b, "profile = cloudhsm")
	key, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_GENERIC_SECRET_KEY_GEN}, attrs.Template{
		ck.CKA_VALUE_LEN: attrs.ULong(32), ck.CKA_TOKEN: attrs.Bool(true), ck.CKA_SIGN: attrs.Bool(true)})
	require.NoError(b, err)
	benchSign(b, m, ck.CKM_SHA256_HMAC, key, make([]byte, 64), 32)
}
