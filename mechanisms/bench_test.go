package mechanisms

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	"gohsm/internal/ck"
)

func BenchmarkECDSAP256Sign(b *testing.B) {
	m, _ := Lookup(ck.CKM_ECDSA)
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	hash := make([]byte, 32)
	sig := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		s, err := m.Sign(priv, nil)
		if err != nil {
			b.Fatal(err)
		}
		_ = s.Update(hash)
		if sig, err = s.Sign(sig[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAES256GCMOnce4KiB(b *testing.B) {
	m, _ := Lookup(ck.CKM_AES_GCM)
	key := make([]byte, 32)
	p := &GCMParams{IV: make([]byte, 12), TagBits: 128}
	msg := make([]byte, 4096)
	out := make([]byte, 0, len(msg)+16)
	b.Run("once", func(b *testing.B) {
		c, err := m.Encrypt(key, p)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(msg)))
		b.ReportAllocs()
		for b.Loop() {
			out, _ = c.Once(out[:0], msg)
		}
	})
	// What C_EncryptInit + C_Encrypt costs: the key schedule every time.
	b.Run("init+once", func(b *testing.B) {
		b.SetBytes(int64(len(msg)))
		b.ReportAllocs()
		for b.Loop() {
			c, err := m.Encrypt(key, p)
			if err != nil {
				b.Fatal(err)
			}
			out, _ = c.Once(out[:0], msg)
		}
	})
}
