package mechanisms

import (
	"crypto/rand"
	"crypto/rsa"
	"testing"

	"gohsm/internal/ck"
)

// RSA-2048 private-key operations through the rows, as the token runs them
// (constructor + update + sign per operation). The key is generated once;
// crypto/rsa keeps its precomputed CRT values in the key (Precompute at
// generation and in RSAPrivateKey), so nothing is recomputed per call.
func BenchmarkRSA2048(b *testing.B) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	digest := make([]byte, 32)
	di := append(append([]byte(nil), unhex("3031300d060960864801650304020105000420")...), digest...)
	pss := &PSSParams{Hash: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA256, SaltLen: 32}
	for _, c := range []struct {
		name  string
		mech  ck.MechanismType
		param any
		in    []byte
	}{
		{"SHA256_RSA_PKCS", ck.CKM_SHA256_RSA_PKCS, nil, []byte("message")},
		{"RSA_PKCS", ck.CKM_RSA_PKCS, nil, di},
		{"RSA_PKCS_PSS", ck.CKM_RSA_PKCS_PSS, pss, digest},
		{"RSA_X_509", ck.CKM_RSA_X_509, nil, di},
	} {
		m, _ := Lookup(c.mech)
		b.Run("sign/"+c.name, func(b *testing.B) {
			sig := make([]byte, 0, priv.Size())
			b.ReportAllocs()
			for b.Loop() {
				s, err := m.Sign(priv, c.param)
				if err != nil {
					b.Fatal(err)
				}
				_ = s.Update(c.in)
				if sig, err = s.Sign(sig[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("decrypt/RSA_PKCS", func(b *testing.B) {
		m, _ := Lookup(ck.CKM_RSA_PKCS)
		ct, _ := rsa.EncryptPKCS1v15(rand.Reader, &priv.PublicKey, make([]byte, 32))
		out := make([]byte, 0, 256)
		b.ReportAllocs()
		for b.Loop() {
			d, _ := m.Decrypt(priv, nil)
			if out, err = d.Once(out[:0], ct); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("verify/SHA256_RSA_PKCS", func(b *testing.B) {
		m, _ := Lookup(ck.CKM_SHA256_RSA_PKCS)
		s, _ := m.Sign(priv, nil)
		_ = s.Update([]byte("message"))
		sig, _ := s.Sign(nil)
		b.ReportAllocs()
		for b.Loop() {
			v, _ := m.Verify(&priv.PublicKey, nil)
			_ = v.Update([]byte("message"))
			if err := v.Verify(sig); err != nil {
				b.Fatal(err)
			}
		}
	})
}
