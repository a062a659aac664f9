package mechanisms

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"io"
	"math/big"

	"gohsm/internal/ck"
)

// f4 is the public exponent 65537, the only one Go's key generation produces.
var f4 = []byte{0x01, 0x00, 0x01}

// generateRSA is CKM_RSA_PKCS_KEY_PAIR_GEN (PKCS#11 v3.0 "PKCS #1 RSA key pair
// generation"). The
// guard has checked CKA_MODULUS_BITS against the row.
func generateRSA(r io.Reader, p KeyGenParams) (pub, priv any, err error) {
	if e := bytes.TrimLeft(p.PublicExponent, "\x00"); len(p.PublicExponent) != 0 && !bytes.Equal(e, f4) {
		return nil, nil, fmt.Errorf("mechanisms: rsa key pair gen: public exponent %x (only 65537): %w", p.PublicExponent, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	k, err := rsa.GenerateKey(r, p.ModulusBits)
	if err != nil {
		return nil, nil, cryptoErr("rsa key pair gen", err)
	}
	return &k.PublicKey, k, nil
}

func rsaPrivate(key any, what string) (*rsa.PrivateKey, error) {
	k, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("mechanisms: %s with %T: %w", what, key, ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	return k, nil
}

func rsaPublic(key any, what string) (*rsa.PublicKey, error) {
	k, ok := key.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("mechanisms: %s with %T: %w", what, key, ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	return k, nil
}

// pkcs1Overhead is the minimum padding of PKCS#1 v1.5 (RFC 8017 §7.2.1,
// §9.2): CKM_RSA_PKCS input is at most k-11 bytes (PKCS#11 v3.0 "PKCS #1 v1.5 RSA").
const pkcs1Overhead = 11

// rsaPKCSSign returns the constructor for CKM_RSA_PKCS (h == 0: the input,
// typically a DigestInfo, is padded as it is, PKCS#11 v3.0 "PKCS #1 v1.5 RSA") or
// CKM_<h>_RSA_PKCS ("PKCS #1 v1.5 RSA signature with ..."), which hashes and adds the DigestInfo.
func rsaPKCSSign(h crypto.Hash) func(key, param any) (Signer, error) {
	return func(key, _ any) (Signer, error) {
		priv, err := rsaPrivate(key, "rsa pkcs sign")
		if err != nil {
			return nil, err
		}
		return &rsaSigner{input: newInput(h), priv: priv, hash: h}, nil
	}
}

func rsaPKCSVerify(h crypto.Hash) func(key, param any) (Verifier, error) {
	return func(key, _ any) (Verifier, error) {
		pub, err := rsaPublic(key, "rsa pkcs verify")
		if err != nil {
			return nil, err
		}
		return &rsaVerifier{input: newInput(h), pub: pub, hash: h}, nil
	}
}

// pssOptions validates CK_RSA_PKCS_PSS_PARAMS for a key. h is the hash the
// mechanism itself applies (0 for CKM_RSA_PKCS_PSS, whose input is the
// hash); the parameter must name the same one (PKCS#11 v3.0
// "PKCS #1 RSA PSS signature with ...").
func pssOptions(param any, h crypto.Hash, pub *rsa.PublicKey) (*rsa.PSSOptions, error) {
	p, ok := param.(*PSSParams)
	if !ok || p == nil {
		return nil, fmt.Errorf("mechanisms: rsa pss: parameter %T: %w", param, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	ph, err := hashParams(p.Hash, p.MGF)
	if err != nil {
		return nil, err
	}
	if h != 0 && ph != h {
		return nil, fmt.Errorf("mechanisms: rsa pss: parameter hash %v for %v: %w", p.Hash, h, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	// RFC 8017 §9.1.1: emLen >= hLen + sLen + 2, emLen = ceil((modBits-1)/8).
	// A salt length of 0 is valid PSS but Go's API reads 0 as "automatic",
	// so it cannot be asked for; it is refused rather than silently changed.
	emLen := (pub.N.BitLen() - 1 + 7) / 8
	if p.SaltLen < 1 || p.SaltLen > emLen-ph.Size()-2 {
		return nil, fmt.Errorf("mechanisms: rsa pss: salt length %d: %w", p.SaltLen, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	return &rsa.PSSOptions{SaltLength: p.SaltLen, Hash: ph}, nil
}

// rsaPSSSign returns the constructor for CKM_RSA_PKCS_PSS (h == 0,
// single-part, the input is the hash, PKCS#11 v3.0 "PKCS #1 RSA PSS") or
// CKM_<h>_RSA_PKCS_PSS ("PKCS #1 RSA PSS signature with ...").
func rsaPSSSign(h crypto.Hash) func(key, param any) (Signer, error) {
	return func(key, param any) (Signer, error) {
		priv, err := rsaPrivate(key, "rsa pss sign")
		if err != nil {
			return nil, err
		}
		opts, err := pssOptions(param, h, &priv.PublicKey)
		if err != nil {
			return nil, err
		}
		return &rsaSigner{input: newInput(h), priv: priv, hash: opts.Hash, pss: opts}, nil
	}
}

func rsaPSSVerify(h crypto.Hash) func(key, param any) (Verifier, error) {
	return func(key, param any) (Verifier, error) {
		pub, err := rsaPublic(key, "rsa pss verify")
		if err != nil {
			return nil, err
		}
		opts, err := pssOptions(param, h, pub)
		if err != nil {
			return nil, err
		}
		return &rsaVerifier{input: newInput(h), pub: pub, hash: opts.Hash, pss: opts}, nil
	}
}

type rsaSigner struct {
	input
	priv *rsa.PrivateKey
	hash crypto.Hash     // of the message passed to rsa (0: raw PKCS#1 v1.5)
	pss  *rsa.PSSOptions // nil: PKCS#1 v1.5
}

func (s *rsaSigner) Size() int { return s.priv.Size() }

func (s *rsaSigner) Sign(dst []byte) ([]byte, error) {
	msg := s.message()
	if err := checkRSAInput(msg, s.priv.Size(), s.hash, s.pss, s.h == nil); err != nil {
		return dst, err
	}
	var sig []byte
	var err error
	if s.pss != nil {
		sig, err = rsa.SignPSS(rand.Reader, s.priv, s.hash, msg, s.pss)
	} else {
		sig, err = rsa.SignPKCS1v15(nil, s.priv, s.hash, msg)
	}
	if err != nil {
		return dst, cryptoErr("rsa sign", err)
	}
	return append(dst, sig...), nil
}

type rsaVerifier struct {
	input
	pub  *rsa.PublicKey
	hash crypto.Hash
	pss  *rsa.PSSOptions
}

func (v *rsaVerifier) Verify(sig []byte) error {
	if k := v.pub.Size(); len(sig) != k {
		return fmt.Errorf("mechanisms: rsa signature of %d bytes, want %d: %w", len(sig), k, ck.CKR_SIGNATURE_LEN_RANGE)
	}
	msg := v.message()
	if err := checkRSAInput(msg, v.pub.Size(), v.hash, v.pss, v.h == nil); err != nil {
		return err
	}
	var err error
	if v.pss != nil {
		err = rsa.VerifyPSS(v.pub, v.hash, msg, sig, v.pss)
	} else {
		err = rsa.VerifyPKCS1v15(v.pub, v.hash, msg, sig)
	}
	if err != nil {
		// Every failure of a well-sized signature is a mismatch.
		return fmt.Errorf("mechanisms: rsa verify: %w (%w)", ck.CKR_SIGNATURE_INVALID, err)
	}
	return nil
}

// checkRSAInput enforces the input lengths of the single-part mechanisms,
// whose input the caller supplies directly: CKM_RSA_PKCS takes at most
// k-11 bytes, CKM_RSA_PKCS_PSS exactly the parameter hash's length.
func checkRSAInput(msg []byte, k int, h crypto.Hash, pss *rsa.PSSOptions, raw bool) error {
	switch {
	case !raw:
		return nil
	case pss != nil && len(msg) != h.Size():
		return fmt.Errorf("mechanisms: rsa pss: input of %d bytes, want %d: %w", len(msg), h.Size(), ck.CKR_DATA_LEN_RANGE)
	case pss == nil && len(msg) > k-pkcs1Overhead:
		return fmt.Errorf("mechanisms: rsa pkcs: input of %d bytes, max %d: %w", len(msg), k-pkcs1Overhead, ck.CKR_DATA_LEN_RANGE)
	}
	return nil
}

// rsaPKCSEncrypt is CKM_RSA_PKCS encryption (PKCS#1 v1.5 block type 2).
func rsaPKCSEncrypt(key, _ any) (Cipher, error) {
	pub, err := rsaPublic(key, "rsa pkcs encrypt")
	if err != nil {
		return nil, err
	}
	return &rsaCipher{pub: pub}, nil
}

func rsaPKCSDecrypt(key, _ any) (Cipher, error) {
	priv, err := rsaPrivate(key, "rsa pkcs decrypt")
	if err != nil {
		return nil, err
	}
	return &rsaCipher{pub: &priv.PublicKey, priv: priv}, nil
}

// rsaCipher is single-part: the token layer refuses C_*Update for it; if it
// is called anyway the input is buffered and processed by Final.
type rsaCipher struct {
	pub  *rsa.PublicKey
	priv *rsa.PrivateKey // nil: encrypting
	buf  []byte
}

func (c *rsaCipher) Once(dst, src []byte) ([]byte, error) {
	k := c.pub.Size()
	if c.priv == nil {
		if len(src) > k-pkcs1Overhead {
			return dst, fmt.Errorf("mechanisms: rsa pkcs encrypt: %d bytes, max %d: %w", len(src), k-pkcs1Overhead, ck.CKR_DATA_LEN_RANGE)
		}
		out, err := rsa.EncryptPKCS1v15(rand.Reader, c.pub, src)
		if err != nil {
			return dst, cryptoErr("rsa pkcs encrypt", err)
		}
		return append(dst, out...), nil
	}
	if len(src) != k {
		return dst, fmt.Errorf("mechanisms: rsa pkcs decrypt: %d bytes, want %d: %w", len(src), k, ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
	}
	out, err := rsa.DecryptPKCS1v15(nil, c.priv, src)
	if err != nil {
		return dst, fmt.Errorf("mechanisms: rsa pkcs decrypt: %w", ck.CKR_ENCRYPTED_DATA_INVALID)
	}
	dst = append(dst, out...)
	clear(out)
	return dst, nil
}

func (c *rsaCipher) Update(dst, src []byte) ([]byte, error) {
	c.buf = append(c.buf, src...)
	return dst, nil
}

func (c *rsaCipher) Final(dst []byte) ([]byte, error) {
	dst, err := c.Once(dst, c.buf)
	clear(c.buf)
	c.buf = c.buf[:0]
	return dst, err
}

func (c *rsaCipher) MaxOutput(n int, once bool) int {
	if !once && n > 0 {
		return 0
	}
	return c.pub.Size()
}

// RSAPublicKey builds a public key from CKA_MODULUS and
// CKA_PUBLIC_EXPONENT (big-endian).
func RSAPublicKey(n, e []byte) (*rsa.PublicKey, error) {
	exp, err := rsaExponent(e)
	if err != nil {
		return nil, err
	}
	N := new(big.Int).SetBytes(n)
	if N.Sign() == 0 || N.Bit(0) == 0 {
		return nil, fmt.Errorf("mechanisms: rsa modulus: %w", ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	return &rsa.PublicKey{N: N, E: exp}, nil
}

// RSAPrivateKey builds a validated private key, with its CRT values
// precomputed, from CKA_MODULUS, CKA_PUBLIC_EXPONENT,
// CKA_PRIVATE_EXPONENT, CKA_PRIME_1 and CKA_PRIME_2 (big-endian). The
// spec lets a template omit the primes (PKCS#11 v3.0 "RSA private key objects"), but Go can
// validate a key only with them, so this token requires them.
func RSAPrivateKey(n, e, d, p, q []byte) (*rsa.PrivateKey, error) {
	if len(p) == 0 || len(q) == 0 {
		return nil, fmt.Errorf("mechanisms: rsa private key without primes: %w", ck.CKR_TEMPLATE_INCOMPLETE)
	}
	pub, err := RSAPublicKey(n, e)
	if err != nil {
		return nil, err
	}
	k := &rsa.PrivateKey{
		PublicKey: *pub,
		D:         new(big.Int).SetBytes(d),
		Primes:    []*big.Int{new(big.Int).SetBytes(p), new(big.Int).SetBytes(q)},
	}
	k.Precompute()
	if err := k.Validate(); err != nil {
		return nil, fmt.Errorf("mechanisms: rsa private key: %w (%w)", ck.CKR_ATTRIBUTE_VALUE_INVALID, err)
	}
	return k, nil
}

// rsaExponent decodes CKA_PUBLIC_EXPONENT into the int Go keeps it in.
func rsaExponent(e []byte) (int, error) {
	e = bytes.TrimLeft(e, "\x00")
	if len(e) == 0 || len(e) > 4 {
		return 0, fmt.Errorf("mechanisms: rsa public exponent %x: %w", e, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	var v uint64
	for _, b := range e {
		v = v<<8 | uint64(b)
	}
	if v < 3 || v&1 == 0 || v > 1<<31-1 {
		return 0, fmt.Errorf("mechanisms: rsa public exponent %d: %w", v, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	return int(v), nil
}

// rsaRows are the RSA mechanisms.
var rsaRows = []Mechanism{
	{Type: ck.CKM_RSA_PKCS_KEY_PAIR_GEN, KeyTypes: rsaKey, MinKeySize: rsaMinBits, MaxKeySize: rsaMaxBits,
		GenerateKeyPair: generateRSA},
	{Type: ck.CKM_RSA_PKCS, KeyTypes: rsaKey, MinKeySize: rsaMinBits, MaxKeySize: rsaMaxBits, SinglePart: true,
		Encrypt: rsaPKCSEncrypt, Decrypt: rsaPKCSDecrypt, Sign: rsaPKCSSign(0), Verify: rsaPKCSVerify(0)},
	{Type: ck.CKM_SHA256_RSA_PKCS, KeyTypes: rsaKey, MinKeySize: rsaMinBits, MaxKeySize: rsaMaxBits,
		Sign: rsaPKCSSign(crypto.SHA256), Verify: rsaPKCSVerify(crypto.SHA256)},
	{Type: ck.CKM_RSA_PKCS_PSS, KeyTypes: rsaKey, MinKeySize: rsaMinBits, MaxKeySize: rsaMaxBits, Param: ParamPSS, SinglePart: true,
		Sign: rsaPSSSign(0), Verify: rsaPSSVerify(0)},
	{Type: ck.CKM_SHA256_RSA_PKCS_PSS, KeyTypes: rsaKey, MinKeySize: rsaMinBits, MaxKeySize: rsaMaxBits, Param: ParamPSS,
		Sign: rsaPSSSign(crypto.SHA256), Verify: rsaPSSVerify(crypto.SHA256)},
}
