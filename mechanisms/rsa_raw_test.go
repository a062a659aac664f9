package mechanisms

import (
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"math/big"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
)

// TestRSARawPrivateMatchesMathBig checks the constant-time private
// operation (bigmod, CRT) against the textbook c^d mod n computed with
// math/big, on random inputs and the edges 0, 1, 2 and n-1, for fresh keys
// of each size: through the CRT values, through d alone (a key without
// them), and once through the row's C_Decrypt.
func TestRSARawPrivateMatchesMathBig(t *testing.T) {
	for _, bits := range []int{1024, 2048, 3072} {
		t.Run(fmt.Sprint(bits), func(t *testing.T) {
			t.Parallel()
			priv, err := rsa.GenerateKey(rand.Reader, bits)
			require.NoError(t, err)
			require.NotNil(t, priv.Precomputed.Qinv)
			noCRT := &rsa.PrivateKey{PublicKey: priv.PublicKey, D: priv.D}
			k := priv.Size()

			inputs := []*big.Int{big.NewInt(0), big.NewInt(1), big.NewInt(2), new(big.Int).Sub(priv.N, big.NewInt(1))}
			for range 12 {
				inputs = append(inputs, must(rand.Int(rand.Reader, priv.N)))
			}
			for i, c := range inputs {
				want := new(big.Int).Exp(c, priv.D, priv.N).FillBytes(make([]byte, k))
				got, err := rsaRawPrivate(priv, nil, c)
				require.NoError(t, err, "input %d", i)
				assert.Equal(t, want, got, "input %d (crt)", i)
				got, err = rsaRawPrivate(noCRT, nil, c)
				require.NoError(t, err, "input %d", i)
				assert.Equal(t, want, got, "input %d (d)", i)
			}

			c := inputs[len(inputs)-1]
			d, err := row(t, ck.CKM_RSA_X_509).Decrypt(priv, nil)
			require.NoError(t, err)
			got, err := d.Once(nil, c.FillBytes(make([]byte, k)))
			require.NoError(t, err)
			assert.Equal(t, new(big.Int).Exp(c, priv.D, priv.N).FillBytes(make([]byte, k)), got)
		})
	}
}

// TestRSARawPrivateBadKeys: wrong CRT values and moduli bigmod cannot use
// give CKR_FUNCTION_FAILED, never a wrong block or a panic.
func TestRSARawPrivateBadKeys(t *testing.T) {
	priv := rsaFixture(t).priv.(*rsa.PrivateKey)
	p, q, pc := priv.Primes[0], priv.Primes[1], priv.Precomputed
	two := big.NewInt(2)
	withCRT := func(dp, dq, qinv *big.Int) *rsa.PrivateKey {
		return &rsa.PrivateKey{PublicKey: priv.PublicKey, D: priv.D, Primes: []*big.Int{p, q},
			Precomputed: rsa.PrecomputedValues{Dp: dp, Dq: dq, Qinv: qinv}}
	}
	evenN := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: new(big.Int).Add(priv.N, big.NewInt(1)), E: priv.E}, D: priv.D}
	c := must(rand.Int(rand.Reader, priv.N))

	// The same fields copied into a new key still work: the failures
	// below come from the changed value alone.
	good, err := rsaRawPrivate(withCRT(pc.Dp, pc.Dq, pc.Qinv), nil, c)
	require.NoError(t, err)
	assert.Equal(t, new(big.Int).Exp(c, priv.D, priv.N).FillBytes(make([]byte, priv.Size())), good)

	for name, key := range map[string]*rsa.PrivateKey{
		"dP wrong":        withCRT(new(big.Int).Sub(pc.Dp, two), pc.Dq, pc.Qinv), // caught by the e check
		"qInv wrong":      withCRT(pc.Dp, pc.Dq, new(big.Int).Sub(pc.Qinv, big.NewInt(1))),
		"dP above p":      withCRT(new(big.Int).Add(pc.Dp, p), pc.Dq, pc.Qinv),
		"qInv above p":    withCRT(pc.Dp, pc.Dq, new(big.Int).Add(pc.Qinv, p)),
		"d wrong, no crt": {PublicKey: priv.PublicKey, D: new(big.Int).Add(priv.D, two)},
		"even modulus":    evenN,
	} {
		out, err := rsaRawPrivate(key, nil, c)
		assert.ErrorIs(t, err, ck.CKR_FUNCTION_FAILED, name)
		assert.Nil(t, out, name)
	}
}

// BenchmarkRSARawPrivate2048 is the bare private operation, without the
// row around it (BenchmarkRSA2048/sign/RSA_X_509 has the row).
func BenchmarkRSARawPrivate2048(b *testing.B) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	c := must(rand.Int(rand.Reader, priv.N))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rsaRawPrivate(priv, nil, c); err != nil {
			b.Fatal(err)
		}
	}
}
