package token

import (
	"crypto/mlkem"
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token/attrs"
)

// BenchmarkMLKEM768: C_EncapsulateKey / C_DecapsulateKey at the token
// layer, each making a session AES key. The keys are destroyed in
// batches, the timer stopped once a batch (stopping it on every
// operation weighed on what it measured). A CPU profile of it shows where
// p11bench's ML-KEM overhead goes (docs/bench.md).
func BenchmarkMLKEM768(b *testing.B) {
	m, _ := newToken(b)
	h := openRW(b, m)
	require.NoError(b, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	pub, priv, err := m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_ML_KEM_KEY_PAIR_GEN},
		attrs.Template{ck.CKA_PARAMETER_SET: attrs.ULong(ck.CKP_ML_KEM_768)}, attrs.Template{})
	require.NoError(b, err)
	tmpl := attrs.ListOf(attrs.Template{ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_AES)), ck.CKA_ENCRYPT: attrs.Bool(true)})
	ct := make([]byte, mlkem.CiphertextSize768)
	mech := Mechanism{Type: ck.CKM_ML_KEM}
	const batch = 256
	keys := make([]ck.ULong, 0, batch)
	destroy := func(b *testing.B) {
		b.StopTimer()
		for _, k := range keys {
			_ = m.DestroyObject(h, k)
		}
		keys = keys[:0]
		b.StartTimer()
	}
	b.Run("encaps", func(b *testing.B) {
		for b.Loop() {
			_, k, err := m.EncapsulateKey(h, mech, pub, tmpl, Out{Buf: ct})
			if err != nil {
				b.Fatal(err)
			}
			if keys = append(keys, k); len(keys) == batch {
				destroy(b)
			}
		}
		destroy(b)
	})
	// crypto/mlkem alone, in the same run: what the rows above are over.
	dk, err := mlkem.GenerateKey768()
	require.NoError(b, err)
	ek := dk.EncapsulationKey()
	b.Run("go-encaps", func(b *testing.B) {
		for b.Loop() {
			ek.Encapsulate()
		}
	})
	b.Run("go-decaps", func(b *testing.B) {
		for b.Loop() {
			if _, err := dk.Decapsulate(ct); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decaps", func(b *testing.B) {
		for b.Loop() {
			k, err := m.DecapsulateKey(h, mech, priv, tmpl, ct)
			if err != nil {
				b.Fatal(err)
			}
			if keys = append(keys, k); len(keys) == batch {
				destroy(b)
			}
		}
		destroy(b)
	})
}
