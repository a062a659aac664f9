package mechanisms

import (
	"crypto/rsa"
	"fmt"
	"math/big"

	"filippo.io/bigmod"

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
// filippo.io/bigmod, the standalone form of the constant-time arithmetic
// crypto/rsa itself uses (crypto/internal/fips140/bigmod), which the
// standard library does not export. math/big is not constant time and
// must not touch the private values.

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

// rsaRawPrivate computes c^d mod n (RSADP / RSASP1, RFC 8017 5.1.2 and
// 5.2.1) as a k-byte block, c already checked to be below n. With two
// primes and the key's CRT values it computes
//
//	m1 = c^dP mod p, m2 = c^dQ mod q, h = qInv (m1 - m2) mod p, m = m2 + h q
//
// and otherwise c^d mod n, all in constant time (bigmod leaks only the
// sizes of the moduli, and the exponents are padded to them). The result is
// checked with the public exponent, against faults and inconsistent CRT
// values. There is no blinding: as in crypto/rsa since Go 1.20, the
// constant-time arithmetic is the defence against timing, and blinding
// would cost a modular inverse per operation for no further protection in
// software.
func rsaRawPrivate(priv *rsa.PrivateKey, acc *rsaAccelKey, c *big.Int) ([]byte, error) {
	if acc != nil {
		in := c.FillBytes(make([]byte, priv.Size()))
		return rsaAccelSign(nil, priv, acc, in)
	}
	// bigmod's Exp panics on an even modulus; RSAPrivateKey never makes
	// such a key, but a panic is no answer.
	if priv.N.Bit(0) == 0 || priv.E <= 0 {
		return nil, fmt.Errorf("mechanisms: rsa x.509: even modulus or exponent %d: %w", priv.E, ck.CKR_FUNCTION_FAILED)
	}
	k := priv.Size()
	N, err := bigmod.NewModulus(priv.N.FillBytes(make([]byte, k)))
	if err != nil {
		return nil, fmt.Errorf("mechanisms: rsa x.509: modulus: %w (%w)", ck.CKR_FUNCTION_FAILED, err)
	}
	cn, err := bigmod.NewNat().SetBytes(c.FillBytes(make([]byte, k)), N)
	if err != nil { // rawInput has checked c < n
		return nil, fmt.Errorf("mechanisms: rsa x.509: input: %w (%w)", ck.CKR_FUNCTION_FAILED, err)
	}

	var m *bigmod.Nat
	if pc := priv.Precomputed; len(priv.Primes) == 2 && pc.Dp != nil && pc.Dq != nil && pc.Qinv != nil &&
		priv.Primes[0].Bit(0) == 1 && priv.Primes[1].Bit(0) == 1 {
		if m, err = rsaRawCRT(N, cn, priv.Primes[0], priv.Primes[1], pc.Dp, pc.Dq, pc.Qinv); err != nil {
			return nil, err
		}
	} else {
		// No CRT values (or more than two primes): the plain exponent.
		d := priv.D.FillBytes(make([]byte, max(k, (priv.D.BitLen()+7)/8)))
		m = bigmod.NewNat().Exp(cn, d, N)
		clear(d)
	}
	defer clear(m.Bits())

	if bigmod.NewNat().ExpShortVarTime(m, uint(priv.E), N).Equal(cn) != 1 {
		return nil, fmt.Errorf("mechanisms: rsa x.509: private operation failed its check: %w", ck.CKR_FUNCTION_FAILED)
	}
	return m.Bytes(N), nil
}

// rsaRawCRT is the CRT half of rsaRawPrivate; the caller checks the
// result. CRT values not below their primes (no key Precompute made has
// them) are refused. The secret temporaries are cleared before returning.
func rsaRawCRT(N *bigmod.Modulus, c *bigmod.Nat, p, q, dP, dQ, qInv *big.Int) (*bigmod.Nat, error) {
	P, err := bigmod.NewModulus(p.Bytes())
	if err != nil {
		return nil, fmt.Errorf("mechanisms: rsa x.509: prime: %w (%w)", ck.CKR_FUNCTION_FAILED, err)
	}
	Q, err := bigmod.NewModulus(q.Bytes())
	if err != nil {
		return nil, fmt.Errorf("mechanisms: rsa x.509: prime: %w (%w)", ck.CKR_FUNCTION_FAILED, err)
	}
	// Each CRT value as a Nat below its prime (bigmod checks that in
	// constant time); the exponents are then read back padded to their
	// primes' sizes, so their own lengths do not show in Exp.
	nat := func(x *big.Int, m *bigmod.Modulus) (*bigmod.Nat, error) {
		b := x.Bytes()
		defer clear(b)
		n, err := bigmod.NewNat().SetBytes(b, m)
		if err != nil {
			return nil, fmt.Errorf("mechanisms: rsa x.509: crt value not below its prime: %w", ck.CKR_FUNCTION_FAILED)
		}
		return n, nil
	}
	dPn, err := nat(dP, P)
	if err != nil {
		return nil, err
	}
	defer clear(dPn.Bits())
	dQn, err := nat(dQ, Q)
	if err != nil {
		return nil, err
	}
	defer clear(dQn.Bits())
	qInvn, err := nat(qInv, P)
	if err != nil {
		return nil, err
	}
	defer clear(qInvn.Bits())
	eP, eQ := dPn.Bytes(P), dQn.Bytes(Q)
	defer clear(eP)
	defer clear(eQ)

	// t is sized for n at once, so that no resize leaves a copy of a
	// secret behind; bigmod offers no other way to clear a Nat.
	t := bigmod.NewNat().ExpandFor(N)
	defer func() { clear(t.Bits()) }()
	m1 := bigmod.NewNat().Exp(t.Mod(c, P), eP, P) // m1 = c^dP mod p
	defer func() { clear(m1.Bits()) }()
	m2 := bigmod.NewNat().Exp(t.Mod(c, Q), eQ, Q) // m2 = c^dQ mod q
	defer func() { clear(m2.Bits()) }()
	m1.Sub(t.Mod(m2, P), P).Mul(qInvn, P) // h = qInv (m1 - m2) mod p
	// m = h q + m2 mod n; h q + m2 <= (p-1) q + q-1 < n, so it is exact.
	m := bigmod.NewNat().Mod(m1, N)
	m.Mul(t.Mod(Q.Nat(), N), N)
	return m.Add(t.Mod(m2, N), N), nil
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
	return &rsaRawCipher{pub: &priv.PublicKey, priv: priv, acc: rsaAccel(key)}, nil
}

// rsaRawCipher is single-part like rsaCipher.
type rsaRawCipher struct {
	pub  *rsa.PublicKey
	priv *rsa.PrivateKey // nil: encrypting
	acc  *rsaAccelKey    // non-nil: the private operation runs in libcrypto
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
	out, err := rsaRawPrivate(c.priv, c.acc, x)
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
	return &rsaRawSigner{key: key, priv: priv}, nil
}

type rsaRawSigner struct {
	input
	key  any // as given, perhaps prepared
	priv *rsa.PrivateKey
}

func (s *rsaRawSigner) Size() int { return s.priv.Size() }

func (s *rsaRawSigner) Sign(dst []byte) ([]byte, error) {
	sig, err := rsaRawSignRecover(s.key, nil, s.message())
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
	return rsaRawPrivate(priv, rsaAccel(key), x)
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
