package mechanisms

import (
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"math/big"

	"gohsm/internal/ck"
)

// CKM_RSA_X_509 (PKCS#11 v3.0 "X.509 (raw) RSA") is RSA itself: no
// padding, no hash. Every input is at most k bytes (k the modulus length),
// is taken as a big-endian integer (so a shorter input is read as if
// left-padded with zero bytes) and must be below the modulus; every output
// is exactly k bytes.
//
// Public-key operations use math/big: their inputs and outputs are public.
// The private-key operation cannot be had from crypto/rsa, which exposes
// RSA only behind a padding scheme, so rsaRawPrivate computes it with
// math/big, which is NOT constant time. It is mitigated, as crypto/rsa did
// before Go 1.20, by blinding the base with a fresh random r^e and by
// checking the result with the public exponent (against faults), but the
// exponent's windows are still looked up by index. Only this row's
// private operations use it; every padded mechanism goes through crypto/rsa's
// constant-time bigmod. Replacing it with a constant-time modular
// exponentiation (filippo.io/bigmod, the standalone form of Go's own
// crypto/internal/fips140/bigmod) needs a go.mod change left to the lead.

// rawInput reads an X.509 raw input of at most k bytes as an integer below
// the modulus; rv is the error for an input that is not.
func rawInput(pub *rsa.PublicKey, in []byte, rv ck.RV, what string) (*big.Int, error) {
	if k := pub.Size(); len(in) > k {
		return nil, fmt.Errorf("mechanisms: rsa x.509 %s: %d bytes, max %d: %w", what, len(in), k, rv)
	}
	x := new(big.Int).SetBytes(in)
	if x.Cmp(pub.N) >= 0 {
		return nil, fmt.Errorf("mechanisms: rsa x.509 %s: input not below the modulus: %w", what, rv)
	}
	return x, nil
}

// rsaRawPrivate computes c^d mod n as a k-byte block: CRT with the key's
// precomputed values, base blinding and a public-exponent check (see the
// comment at the top of this file for what it does not protect).
func rsaRawPrivate(priv *rsa.PrivateKey, c *big.Int) ([]byte, error) {
	n := priv.N
	e := big.NewInt(int64(priv.E))
	var r, rInv *big.Int
	for {
		var err error
		r, err = rand.Int(rand.Reader, n)
		if err != nil {
			return nil, fmt.Errorf("mechanisms: rsa x.509: blinding: %w (%w)", ck.CKR_FUNCTION_FAILED, err)
		}
		if r.Sign() == 0 {
			continue
		}
		if rInv = new(big.Int).ModInverse(r, n); rInv != nil {
			break
		}
	}
	// cb = c * r^e; cb^d = c^d * r.
	cb := new(big.Int).Exp(r, e, n)
	cb.Mul(cb, c).Mod(cb, n)

	var m *big.Int
	pc := priv.Precomputed
	if len(priv.Primes) == 2 && pc.Dp != nil && pc.Dq != nil && pc.Qinv != nil {
		p, q := priv.Primes[0], priv.Primes[1]
		m1 := new(big.Int).Exp(cb, pc.Dp, p)
		m2 := new(big.Int).Exp(cb, pc.Dq, q)
		m1.Sub(m1, m2).Mul(m1, pc.Qinv).Mod(m1, p) // h = qInv (m1 - m2) mod p
		m = m1.Mul(m1, q).Add(m1, m2)              // m = m2 + h q
	} else {
		m = new(big.Int).Exp(cb, priv.D, n)
	}
	m.Mul(m, rInv).Mod(m, n)
	if new(big.Int).Exp(m, e, n).Cmp(c) != 0 {
		return nil, fmt.Errorf("mechanisms: rsa x.509: private operation failed its check: %w", ck.CKR_FUNCTION_FAILED)
	}
	return m.FillBytes(make([]byte, priv.Size())), nil
}

func rsaRawEncrypt(key, _ any) (Cipher, error) {
	pub, err := rsaPublic(key, "rsa x.509 encrypt")
	if err != nil {
		return nil, err
	}
	return &rsaRawCipher{pub: pub}, nil
}

func rsaRawDecrypt(key, _ any) (Cipher, error) {
	priv, err := rsaPrivate(key, "rsa x.509 decrypt")
	if err != nil {
		return nil, err
	}
	return &rsaRawCipher{pub: &priv.PublicKey, priv: priv}, nil
}

// rsaRawCipher is single-part like rsaCipher.
type rsaRawCipher struct {
	pub  *rsa.PublicKey
	priv *rsa.PrivateKey // nil: encrypting
	buf  []byte
}

func (c *rsaRawCipher) Once(dst, src []byte) ([]byte, error) {
	if c.priv == nil {
		x, err := rawInput(c.pub, src, ck.CKR_DATA_LEN_RANGE, "encrypt")
		if err != nil {
			return dst, err
		}
		return append(dst, rsaPublicOp(c.pub, x)...), nil
	}
	if k := c.pub.Size(); len(src) != k {
		return dst, fmt.Errorf("mechanisms: rsa x.509 decrypt: %d bytes, want %d: %w", len(src), k, ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
	}
	// A ciphertext not below the modulus is no RSA ciphertext: invalid,
	// as crypto/rsa reports it for CKM_RSA_PKCS.
	x, err := rawInput(c.pub, src, ck.CKR_ENCRYPTED_DATA_INVALID, "decrypt")
	if err != nil {
		return dst, err
	}
	out, err := rsaRawPrivate(c.priv, x)
	if err != nil {
		return dst, err
	}
	dst = append(dst, out...)
	clear(out)
	return dst, nil
}

func (c *rsaRawCipher) Update(dst, src []byte) ([]byte, error) {
	c.buf = append(c.buf, src...)
	return dst, nil
}

func (c *rsaRawCipher) Final(dst []byte) ([]byte, error) {
	dst, err := c.Once(dst, c.buf)
	clear(c.buf)
	c.buf = c.buf[:0]
	return dst, err
}

func (c *rsaRawCipher) MaxOutput(n int, once bool) int {
	if !once && n > 0 {
		return 0
	}
	return c.pub.Size()
}

func rsaRawSign(key, _ any) (Signer, error) {
	priv, err := rsaPrivate(key, "rsa x.509 sign")
	if err != nil {
		return nil, err
	}
	return &rsaRawSigner{priv: priv}, nil
}

type rsaRawSigner struct {
	input
	priv *rsa.PrivateKey
}

func (s *rsaRawSigner) Size() int { return s.priv.Size() }

func (s *rsaRawSigner) Sign(dst []byte) ([]byte, error) {
	sig, err := rsaRawSignRecover(s.priv, nil, s.message())
	if err != nil {
		return dst, err
	}
	return append(dst, sig...), nil
}

// rsaRawSignRecover is C_SignRecover (and C_Sign) with CKM_RSA_X_509: the
// signature of the data is the data itself raised to d, so it is
// recoverable as is.
func rsaRawSignRecover(key, _ any, data []byte) ([]byte, error) {
	priv, err := rsaPrivate(key, "rsa x.509 sign")
	if err != nil {
		return nil, err
	}
	x, err := rawInput(&priv.PublicKey, data, ck.CKR_DATA_LEN_RANGE, "sign")
	if err != nil {
		return nil, err
	}
	return rsaRawPrivate(priv, x)
}

// rsaRawVerifyRecover returns the k-byte block a signature opens to.
func rsaRawVerifyRecover(key, _ any, sig []byte) ([]byte, error) {
	pub, err := rsaPublic(key, "rsa x.509 verify recover")
	if err != nil {
		return nil, err
	}
	return rsaRawPublicVerify(pub, sig)
}

func rsaRawVerify(key, _ any) (Verifier, error) {
	pub, err := rsaPublic(key, "rsa x.509 verify")
	if err != nil {
		return nil, err
	}
	return &rsaRawVerifier{pub: pub}, nil
}

type rsaRawVerifier struct {
	input
	pub *rsa.PublicKey
}

// Verify checks that the signature opens to the data, left-padded to k
// bytes.
func (v *rsaRawVerifier) Verify(sig []byte) error {
	x, err := rawInput(v.pub, v.message(), ck.CKR_DATA_LEN_RANGE, "verify")
	if err != nil {
		return err
	}
	em, err := rsaRawPublicVerify(v.pub, sig)
	if err != nil {
		return err
	}
	if !equalBlocks(em, x.FillBytes(make([]byte, v.pub.Size()))) {
		return fmt.Errorf("mechanisms: rsa x.509 verify: %w", ck.CKR_SIGNATURE_INVALID)
	}
	return nil
}
