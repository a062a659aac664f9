package mechanisms

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"gohsm/internal/ck"
)

// fuzzSrc hands out fuzz bytes as the values a decoded parameter holds.
type fuzzSrc []byte

func (s *fuzzSrc) byte() byte {
	if len(*s) == 0 {
		return 0
	}
	b := (*s)[0]
	*s = (*s)[1:]
	return b
}

func (s *fuzzSrc) bytes() []byte {
	n := min(int(s.byte()%48), len(*s))
	b := (*s)[:n]
	*s = (*s)[n:]
	return b
}

// num is a count, length or bit size as the C boundary hands them over:
// clamped to 0..2^31-1, often small, sometimes at the edges.
func (s *fuzzSrc) num() int {
	switch s.byte() % 4 {
	case 0:
		return []int{0, 1, 7, 8, 12, 16, 32, 64, 96, 104, 128, 1 << 20, 1<<31 - 1}[int(s.byte())%13]
	case 1:
		var b [4]byte
		for i := range b {
			b[i] = s.byte()
		}
		return int(binary.LittleEndian.Uint32(b[:]) & (1<<31 - 1))
	}
	return int(s.byte())
}

func (s *fuzzSrc) ulong() ck.ULong {
	if s.byte()%2 == 0 {
		return ck.ULong(s.num())
	}
	var b [8]byte
	for i := range b {
		b[i] = s.byte()
	}
	return ck.ULong(binary.LittleEndian.Uint64(b[:]))
}

func (s *fuzzSrc) mech() ck.MechanismType {
	hashes := []ck.MechanismType{ck.CKM_SHA_1, ck.CKM_SHA224, ck.CKM_SHA256, ck.CKM_SHA384, ck.CKM_SHA512,
		ck.CKM_SHA256_HMAC, ck.CKM_SHA3_256, ck.CKM_MD5}
	if b := s.byte(); b < 200 {
		return hashes[int(b)%len(hashes)]
	}
	return ck.MechanismType(s.ulong())
}

// fuzzParam builds a decoded parameter of kind from fuzz bytes: what the C
// boundary can hand a mechanism (lengths within its bounds, anything else
// as the caller sent it).
func fuzzParam(kind ParamKind, s *fuzzSrc) any {
	if s.byte()%16 == 0 {
		return nil
	}
	switch kind {
	case ParamGCM:
		return &GCMParams{IV: s.bytes(), AAD: s.bytes(), TagBits: s.num()}
	case ParamPSS:
		return &PSSParams{Hash: s.mech(), MGF: s.ulong(), SaltLen: s.num()}
	case ParamOAEP:
		return &OAEPParams{Hash: s.mech(), MGF: s.ulong(), Source: s.ulong(), Label: s.bytes()}
	case ParamIV, ParamBytes:
		return s.bytes()
	case ParamCCM:
		return &CCMParams{DataLen: s.num(), Nonce: s.bytes(), AAD: s.bytes(), MACLen: s.num()}
	case ParamCTR:
		p := &CTRParams{CounterBits: s.num()}
		copy(p.CB[:], s.bytes())
		return p
	case ParamULong:
		return s.ulong()
	case ParamKeyHandle:
		return KeyHandle(s.ulong())
	case ParamECDH1:
		return &ECDH1Params{KDF: s.ulong(), SharedData: s.bytes(), PublicData: s.bytes()}
	case ParamHKDF:
		return &HKDFParams{Extract: s.byte()%2 == 0, Expand: s.byte()%2 == 0, PRF: s.mech(), SaltType: s.ulong() % 5,
			Salt: s.bytes(), SaltKey: KeyHandle(s.ulong()), Info: s.bytes()}
	case ParamSP800108:
		p := &SP800108Params{PRF: s.mech()}
		for range s.byte() % 5 {
			p.Data = append(p.Data, PRFData{Type: s.ulong() % 6, Bytes: s.bytes(), WidthBits: s.num(),
				LittleEndian: s.byte()%2 == 0, DKMMethod: s.ulong() % 4})
		}
		return p
	case ParamPBKD2:
		// Iterations stay small here: the boundary bounds them, and each
		// costs an HMAC.
		return &PBKD2Params{SaltSource: s.ulong() % 3, Salt: s.bytes(), Iterations: int(s.byte()),
			PRF: s.ulong() % 10, PRFData: s.bytes(), Password: s.bytes()}
	case ParamCBCEncryptData:
		return &CBCEncryptDataParams{IV: s.bytes(), Data: s.bytes()}
	case ParamRSAAESKeyWrap:
		p := &RSAAESKeyWrapParams{AESKeyBits: s.num()}
		if s.byte()%4 != 0 {
			p.OAEP = &OAEPParams{Hash: s.mech(), MGF: s.ulong(), Source: s.ulong(), Label: s.bytes()}
		}
		return p
	case ParamEdDSA:
		return &EdDSAParams{PreHash: s.byte()%2 == 0, Context: s.bytes()}
	case ParamSignContext:
		return &SignContextParams{Hedge: s.ulong() % 4, Context: s.bytes()}
	case ParamCloudHSMGCM:
		return &CloudHSMGCMParams{IVGiven: s.byte()%4 == 0, IVLen: s.num(), AAD: s.bytes(), TagBits: s.num()}
	case ParamCloudHSMKDF:
		// Types around CloudHSM's 4..8 and the v3.0 ones below them.
		p := &CloudHSMKDFParams{PRF: s.mech()}
		if s.byte()%2 == 0 {
			p.PRF = []ck.MechanismType{ck.CKM_SHA_1_HMAC, ck.CKM_SHA512_HMAC, ck.CKM_AES_CMAC}[int(s.byte())%3]
		}
		for range s.byte() % 6 {
			p.Data = append(p.Data, PRFData{Type: s.ulong() % 10, Bytes: s.bytes(), WidthBits: s.num(), DKMMethod: s.ulong() % 4})
		}
		return p
	}
	return s.bytes()
}

// mechErr: every error a mechanism returns carries a ck.RV.
func mechErr(t *testing.T, m *Mechanism, what string, err error) bool {
	t.Helper()
	if err == nil {
		return false
	}
	var rv ck.RV
	if !errors.As(err, &rv) {
		t.Fatalf("%v %s: error without a CK_RV: %v", m.Type, what, err)
	}
	return true
}

// FuzzMechanismParams: every row's constructors with a parameter of its
// kind built from fuzz bytes (hostile lengths, bit sizes, unknown hashes
// and formats) and a real key, then one operation on fuzz data. No panic,
// no error without a CK_RV. The C boundary's own decoding is
// pkcs11.FuzzMechanism. Seeds: testdata/fuzz/FuzzMechanismParams.
func FuzzMechanismParams(f *testing.F) {
	rows := All()
	for i := range rows {
		f.Add(uint16(i), []byte{1, 12, 12, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 0, 128}, []byte("data"))
		f.Add(uint16(i), []byte{1, 0, 255, 255, 255, 255, 0}, []byte{})
	}
	f.Fuzz(func(t *testing.T, idx uint16, pb, data []byte) {
		m := rows[int(idx)%len(rows)]
		var key, pub any
		if len(m.KeyTypes) > 0 && m.GenerateKey == nil && m.GenerateKeyPair == nil {
			kt := m.KeyTypes[int(idx/uint16(len(rows)))%len(m.KeyTypes)]
			if keyClasses[kt] == classSecret {
				// Secret keys of the row's sizes (DES3: 24 bytes).
				n := []int{16, 24, 32, 64}[int(idx)%4]
				if kt == ck.CKK_DES3 {
					n = 24
				}
				k := make([]byte, n)
				for i := range k {
					k[i] = byte(i*7 + 1)
				}
				key, pub = k, k
			} else {
				fs := keyFixtures(t, kt)
				fx := fs[int(idx)%len(fs)]
				key, pub = fx.priv, fx.pub
			}
		}
		s := fuzzSrc(pb)
		p := fuzzParam(m.Param, &s)
		what := func(op string) string { return fmt.Sprintf("%s with %#v", op, p) }
		if m.Encrypt != nil {
			if c, err := m.Encrypt(key, p); !mechErr(t, m, what("Encrypt"), err) {
				_, err := c.Once(nil, data)
				mechErr(t, m, what("Encrypt.Once"), err)
			}
		}
		if m.Decrypt != nil {
			if c, err := m.Decrypt(key, p); !mechErr(t, m, what("Decrypt"), err) {
				_, err := c.Once(nil, data)
				mechErr(t, m, what("Decrypt.Once"), err)
			}
		}
		if m.Sign != nil {
			if sg, err := m.Sign(key, p); !mechErr(t, m, what("Sign"), err) {
				if !mechErr(t, m, "Sign.Update", sg.Update(data)) {
					_, err := sg.Sign(nil)
					mechErr(t, m, what("Sign.Sign"), err)
				}
			}
		}
		if m.Verify != nil {
			if v, err := m.Verify(pub, p); !mechErr(t, m, what("Verify"), err) {
				if !mechErr(t, m, "Verify.Update", v.Update(data)) {
					mechErr(t, m, what("Verify.Verify"), v.Verify(data))
				}
			}
		}
		if m.Derive != nil {
			_, err := m.Derive(key, p, DeriveTarget{KeyType: ck.KeyType(s.ulong() % 0x40), ValueLen: int(s.byte()) * int(s.byte()%3)})
			mechErr(t, m, what("Derive"), err)
		}
		if m.Wrap != nil {
			_, err := m.Wrap(pub, p, data)
			mechErr(t, m, what("Wrap"), err)
		}
		if m.Unwrap != nil {
			_, err := m.Unwrap(key, p, data)
			mechErr(t, m, what("Unwrap"), err)
		}
		if m.SignRecover != nil {
			_, err := m.SignRecover(key, p, data)
			mechErr(t, m, what("SignRecover"), err)
		}
		if m.VerifyRecover != nil {
			_, err := m.VerifyRecover(pub, p, data)
			mechErr(t, m, what("VerifyRecover"), err)
		}
		for _, mk := range []func(any, any) (MessageAEAD, error){m.MessageEncrypt, m.MessageDecrypt} {
			if mk == nil {
				continue
			}
			a, err := mk(key, p)
			if mechErr(t, m, what("Message*"), err) {
				continue
			}
			mp := &MessageParams{IV: s.bytes(), IVFixedBits: s.num(), IVGenerator: s.ulong() % 5, Tag: s.bytes(),
				TagBits: s.num(), DataLen: s.num(), MACLen: s.num()}
			_, err = a.Encrypt(nil, mp, s.bytes(), data)
			mechErr(t, m, fmt.Sprintf("MessageEncrypt %+v", mp), err)
			_, err = a.Decrypt(nil, mp, s.bytes(), data)
			mechErr(t, m, fmt.Sprintf("MessageDecrypt %+v", mp), err)
		}
	})
}
