package mechanisms

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha3" // registers crypto.SHA3_* for the SHA-3 rows and parameters
	"crypto/subtle"
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
	k, ok := unprepared(key).(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("mechanisms: %s with %T: %w", what, key, ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	return k, nil
}

func rsaPublic(key any, what string) (*rsa.PublicKey, error) {
	k, ok := unprepared(key).(*rsa.PublicKey)
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
		return &rsaSigner{input: newInput(h), priv: priv, acc: rsaAccel(key), hash: h}, nil
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
	ph, err := rsaHashParams(p.Hash, p.MGF)
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
		return &rsaSigner{input: newInput(h), priv: priv, acc: rsaAccel(key), hash: opts.Hash, pss: opts}, nil
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
	acc  *rsaAccelKey    // non-nil: the private operation runs in libcrypto (accel.go)
	hash crypto.Hash     // of the message passed to rsa (0: raw PKCS#1 v1.5)
	pss  *rsa.PSSOptions // nil: PKCS#1 v1.5
}

func (s *rsaSigner) Size() int { return s.priv.Size() }

func (s *rsaSigner) Sign(dst []byte) ([]byte, error) {
	msg := s.message()
	if err := checkRSAInput(msg, s.priv.Size(), s.hash, s.pss, s.h == nil); err != nil {
		return dst, err
	}
	if s.acc != nil {
		var block []byte
		var err error
		ok := true
		if s.pss != nil {
			block, err = emsaPSS(rand.Reader, s.priv.Size(), s.priv.N.BitLen(), s.hash, msg, s.pss.SaltLength)
		} else {
			block, ok, err = emsaPKCS1(s.priv.Size(), s.hash, msg)
		}
		if err != nil {
			return dst, err
		}
		if ok {
			return rsaAccelSign(dst, s.priv, s.acc, block)
		}
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

// RSAMaxKeyBits bounds the RSA keys the token stores (created or
// unwrapped), checked before any work on the key: SoftHSMv2's limit. The
// mechanisms use keys up to rsaMaxBits (4096, as CloudHSM generates);
// larger ones may be kept, as other tokens keep them. Without a bound a
// 32768-bit private key took 6 s to reject and a 65536-bit public key was
// accepted.
const RSAMaxKeyBits = 16384

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
	if N.BitLen() > RSAMaxKeyBits {
		return nil, fmt.Errorf("mechanisms: rsa modulus of %d bits (at most %d): %w", N.BitLen(), RSAMaxKeyBits, ck.CKR_ATTRIBUTE_VALUE_INVALID)
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

// sha3Hashes extends hash.go's (hash mechanism, MGF1) table with SHA-3
// (PKCS#11 v3.0 CK_RSA_PKCS_MGF_TYPE: CKG_MGF1_SHA3_*), which PSS and OAEP
// parameters may name. Go's crypto/rsa knows the SHA-3 DigestInfo prefixes
// (RFC 8017 §9.2 note 1 lists SHA-2; the SHA-3 OIDs are NIST's
// 2.16.840.1.101.3.4.2.7..10), so SHA-3 rows need nothing else.
var sha3Hashes = []struct {
	mech ck.MechanismType
	mgf  ck.ULong
	hash crypto.Hash
}{
	{ck.CKM_SHA3_224, ck.CKG_MGF1_SHA3_224, crypto.SHA3_224},
	{ck.CKM_SHA3_256, ck.CKG_MGF1_SHA3_256, crypto.SHA3_256},
	{ck.CKM_SHA3_384, ck.CKG_MGF1_SHA3_384, crypto.SHA3_384},
	{ck.CKM_SHA3_512, ck.CKG_MGF1_SHA3_512, crypto.SHA3_512},
}

// rsaHash resolves a hash mechanism (SHA-1, SHA-2, SHA-3).
func rsaHash(mech ck.MechanismType) (crypto.Hash, error) {
	for _, h := range hashes {
		if h.mech == mech {
			return h.hash, nil
		}
	}
	for _, h := range sha3Hashes {
		if h.mech == mech {
			return h.hash, nil
		}
	}
	return 0, fmt.Errorf("mechanisms: hash %v: %w", mech, ck.CKR_MECHANISM_PARAM_INVALID)
}

// rsaMGFHash resolves a CKG_MGF1_* value to its hash.
func rsaMGFHash(mgf ck.ULong) (crypto.Hash, error) {
	for _, h := range hashes {
		if h.mgf == mgf {
			return h.hash, nil
		}
	}
	for _, h := range sha3Hashes {
		if h.mgf == mgf {
			return h.hash, nil
		}
	}
	return 0, fmt.Errorf("mechanisms: mgf 0x%x: %w", mgf, ck.CKR_MECHANISM_PARAM_INVALID)
}

// rsaHashParams is hashParams (SHA-1 and SHA-2) extended with SHA-3.
func rsaHashParams(mech ck.MechanismType, mgf ck.ULong) (crypto.Hash, error) {
	h, err := hashParams(mech, mgf)
	if err == nil {
		return h, nil
	}
	for _, s := range sha3Hashes {
		if s.mech != mech {
			continue
		}
		if s.mgf != mgf {
			return 0, fmt.Errorf("mechanisms: mgf 0x%x with hash %v: %w", mgf, mech, ck.CKR_MECHANISM_PARAM_INVALID)
		}
		return s.hash, nil
	}
	return 0, err
}

// generateRSAX931 is CKM_RSA_X9_31_KEY_PAIR_GEN (PKCS#11 v3.0 "ANSI X9.31
// RSA key pair generation"). The keys are ordinary RSA keys; what differs
// is how the primes are found. ANSI X9.31's auxiliary-prime procedure was
// withdrawn by FIPS 186-5; this row generates with Go's FIPS 186-5
// Appendix A.1.3 probable primes (p, q of nlen/2 bits with the top two bits
// set, Miller-Rabin per Appendix B.3, d > 2^(nlen/2), d = e^-1 mod
// lcm(p-1, q-1)), which also satisfy FIPS 186-4 B.3.3, the procedure X9.31
// key users are validated against today. X9.31 itself (§4.1.2) only allows
// moduli of 1024 + 256*s bits, so other sizes are refused here.
func generateRSAX931(r io.Reader, p KeyGenParams) (pub, priv any, err error) {
	if (p.ModulusBits-1024)%256 != 0 {
		return nil, nil, fmt.Errorf("mechanisms: rsa x9.31 key pair gen: %d bits is not 1024+256s: %w", p.ModulusBits, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	return generateRSA(r, p)
}

// rsaPKCSSignRecover is C_SignRecover with CKM_RSA_PKCS: the data (at most
// k-11 bytes) is padded as an EMSA-PKCS1-v1_5 block of type 1 without a
// DigestInfo and signed (PKCS#11 v3.0 "PKCS #1 v1.5 RSA", RFC 8017 §9.2
// steps 3-5), which is what rsa.SignPKCS1v15 does for hash 0.
func rsaPKCSSignRecover(key, _ any, data []byte) ([]byte, error) {
	priv, err := rsaPrivate(key, "rsa pkcs sign recover")
	if err != nil {
		return nil, err
	}
	if err := checkRSAInput(data, priv.Size(), 0, nil, true); err != nil {
		return nil, err
	}
	if acc := rsaAccel(key); acc != nil {
		block, _, err := emsaPKCS1(priv.Size(), 0, data)
		if err != nil {
			return nil, err
		}
		return rsaAccelSign(nil, priv, acc, block)
	}
	sig, err := rsa.SignPKCS1v15(nil, priv, 0, data)
	if err != nil {
		return nil, cryptoErr("rsa pkcs sign recover", err)
	}
	return sig, nil
}

// rsaPKCSVerifyRecover is C_VerifyRecover with CKM_RSA_PKCS: the signature
// is opened with the public key and the data after a well-formed type 1
// block (00 01 FF..FF 00, at least eight FF) is returned.
func rsaPKCSVerifyRecover(key, _ any, sig []byte) ([]byte, error) {
	pub, err := rsaPublic(key, "rsa pkcs verify recover")
	if err != nil {
		return nil, err
	}
	em, err := rsaRawPublicVerify(pub, sig)
	if err != nil {
		return nil, err
	}
	// The block is public (anyone can open a signature), so plain
	// comparisons are fine here.
	if em[0] != 0 || em[1] != 1 {
		return nil, fmt.Errorf("mechanisms: rsa pkcs verify recover: not a type 1 block: %w", ck.CKR_SIGNATURE_INVALID)
	}
	i := 2
	for i < len(em) && em[i] == 0xff {
		i++
	}
	if i-2 < 8 || i == len(em) || em[i] != 0 {
		return nil, fmt.Errorf("mechanisms: rsa pkcs verify recover: bad type 1 padding: %w", ck.CKR_SIGNATURE_INVALID)
	}
	return em[i+1:], nil
}

// rsaPKCSWrap is C_WrapKey with CKM_RSA_PKCS: the key's value is encrypted
// as a PKCS#1 v1.5 type 2 block, so it may be at most k-11 bytes (PKCS#11
// v3.0 "PKCS #1 v1.5 RSA": the mechanism wraps and unwraps secret keys).
func rsaPKCSWrap(key, _ any, material []byte) ([]byte, error) {
	pub, err := rsaPublic(key, "rsa pkcs wrap")
	if err != nil {
		return nil, err
	}
	if max := pub.Size() - pkcs1Overhead; len(material) > max {
		return nil, fmt.Errorf("mechanisms: rsa pkcs wrap: key of %d bytes, max %d: %w", len(material), max, ck.CKR_KEY_SIZE_RANGE)
	}
	out, err := rsa.EncryptPKCS1v15(rand.Reader, pub, material)
	if err != nil {
		return nil, cryptoErr("rsa pkcs wrap", err)
	}
	return out, nil
}

func rsaPKCSUnwrap(key, _ any, wrapped []byte) ([]byte, error) {
	priv, err := rsaPrivate(key, "rsa pkcs unwrap")
	if err != nil {
		return nil, err
	}
	if len(wrapped) != priv.Size() {
		return nil, fmt.Errorf("mechanisms: rsa pkcs unwrap: %d bytes, want %d: %w", len(wrapped), priv.Size(), ck.CKR_WRAPPED_KEY_LEN_RANGE)
	}
	out, err := rsa.DecryptPKCS1v15(nil, priv, wrapped)
	if err != nil {
		return nil, fmt.Errorf("mechanisms: rsa pkcs unwrap: %w", ck.CKR_WRAPPED_KEY_INVALID)
	}
	return out, nil
}

// rsaRawPublicVerify opens a signature with the public key (RSAVP1, RFC 8017
// §5.2.2) and returns the k-byte block. A signature of the wrong length is
// CKR_SIGNATURE_LEN_RANGE, one not below the modulus CKR_SIGNATURE_INVALID.
// Everything here is public, so math/big's variable time is harmless.
func rsaRawPublicVerify(pub *rsa.PublicKey, sig []byte) ([]byte, error) {
	k := pub.Size()
	if len(sig) != k {
		return nil, fmt.Errorf("mechanisms: rsa signature of %d bytes, want %d: %w", len(sig), k, ck.CKR_SIGNATURE_LEN_RANGE)
	}
	s := new(big.Int).SetBytes(sig)
	if s.Cmp(pub.N) >= 0 {
		return nil, fmt.Errorf("mechanisms: rsa signature not below the modulus: %w", ck.CKR_SIGNATURE_INVALID)
	}
	return rsaPublicOp(pub, s), nil
}

// rsaPublicOp returns x^e mod n as a k-byte block (RSAEP / RSAVP1).
func rsaPublicOp(pub *rsa.PublicKey, x *big.Int) []byte {
	m := new(big.Int).Exp(x, big.NewInt(int64(pub.E)), pub.N)
	return m.FillBytes(make([]byte, pub.Size()))
}

// equalBlocks compares two blocks in constant time.
func equalBlocks(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

// rsaHashed are the hash-and-sign rows: CKM_<hash>_RSA_PKCS and
// CKM_<hash>_RSA_PKCS_PSS (PKCS#11 v3.0 "PKCS #1 v1.5 RSA signature with
// ..." and "PKCS #1 RSA PSS signature with ..."; SHA-3 in "SHA-3 ...").
var rsaHashed = []struct {
	pkcs, pss ck.MechanismType
	hash      crypto.Hash
}{
	{ck.CKM_SHA1_RSA_PKCS, ck.CKM_SHA1_RSA_PKCS_PSS, crypto.SHA1},
	{ck.CKM_SHA224_RSA_PKCS, ck.CKM_SHA224_RSA_PKCS_PSS, crypto.SHA224},
	{ck.CKM_SHA256_RSA_PKCS, ck.CKM_SHA256_RSA_PKCS_PSS, crypto.SHA256},
	{ck.CKM_SHA384_RSA_PKCS, ck.CKM_SHA384_RSA_PKCS_PSS, crypto.SHA384},
	{ck.CKM_SHA512_RSA_PKCS, ck.CKM_SHA512_RSA_PKCS_PSS, crypto.SHA512},
	{ck.CKM_SHA3_224_RSA_PKCS, ck.CKM_SHA3_224_RSA_PKCS_PSS, crypto.SHA3_224},
	{ck.CKM_SHA3_256_RSA_PKCS, ck.CKM_SHA3_256_RSA_PKCS_PSS, crypto.SHA3_256},
	{ck.CKM_SHA3_384_RSA_PKCS, ck.CKM_SHA3_384_RSA_PKCS_PSS, crypto.SHA3_384},
	{ck.CKM_SHA3_512_RSA_PKCS, ck.CKM_SHA3_512_RSA_PKCS_PSS, crypto.SHA3_512},
}

// rsaRowHash is the hash a hash-and-sign RSA row applies (0 for the others).
func rsaRowHash(t ck.MechanismType) crypto.Hash {
	for _, r := range rsaHashed {
		if r.pkcs == t || r.pss == t {
			return r.hash
		}
	}
	return 0
}

// rsaRows are the RSA mechanisms. Sizes are modulus bits.
func rsaRows() []Mechanism {
	rows := []Mechanism{
		{Type: ck.CKM_RSA_PKCS_KEY_PAIR_GEN, KeyTypes: rsaKey, MinKeySize: rsaMinBits, MaxKeySize: rsaMaxBits,
			GenerateKeyPair: generateRSA},
		{Type: ck.CKM_RSA_X9_31_KEY_PAIR_GEN, KeyTypes: rsaKey, MinKeySize: rsaMinBits, MaxKeySize: rsaMaxBits,
			GenerateKeyPair: generateRSAX931},
		{Type: ck.CKM_RSA_PKCS, KeyTypes: rsaKey, MinKeySize: rsaMinBits, MaxKeySize: rsaMaxBits, SinglePart: true,
			Encrypt: rsaPKCSEncrypt, Decrypt: rsaPKCSDecrypt, Sign: rsaPKCSSign(0), Verify: rsaPKCSVerify(0),
			SignRecover: rsaPKCSSignRecover, VerifyRecover: rsaPKCSVerifyRecover,
			Wrap: rsaPKCSWrap, Unwrap: rsaPKCSUnwrap, Prepare: prepareRSA},
		{Type: ck.CKM_RSA_X_509, KeyTypes: rsaKey, MinKeySize: rsaMinBits, MaxKeySize: rsaMaxBits, SinglePart: true,
			Encrypt: rsaRawEncrypt, Decrypt: rsaRawDecrypt, Sign: rsaRawSign, Verify: rsaRawVerify,
			SignRecover: rsaRawSignRecover, VerifyRecover: rsaRawVerifyRecover, Prepare: prepareRSA},
		{Type: ck.CKM_RSA_PKCS_PSS, KeyTypes: rsaKey, MinKeySize: rsaMinBits, MaxKeySize: rsaMaxBits, Param: ParamPSS, SinglePart: true,
			Sign: rsaPSSSign(0), Verify: rsaPSSVerify(0), Prepare: prepareRSA},
		{Type: ck.CKM_RSA_PKCS_OAEP, KeyTypes: rsaKey, MinKeySize: rsaMinBits, MaxKeySize: rsaMaxBits, Param: ParamOAEP, SinglePart: true,
			Encrypt: rsaOAEPEncrypt, Decrypt: rsaOAEPDecrypt, Wrap: rsaOAEPWrap, Unwrap: rsaOAEPUnwrap},
		{Type: ck.CKM_RSA_AES_KEY_WRAP, KeyTypes: rsaKey, MinKeySize: rsaMinBits, MaxKeySize: rsaMaxBits, Param: ParamRSAAESKeyWrap,
			Wrap: rsaAESKeyWrap, Unwrap: rsaAESKeyUnwrap},
	}
	for _, h := range rsaHashed {
		rows = append(rows,
			Mechanism{Type: h.pkcs, KeyTypes: rsaKey, MinKeySize: rsaMinBits, MaxKeySize: rsaMaxBits,
				Sign: rsaPKCSSign(h.hash), Verify: rsaPKCSVerify(h.hash), Prepare: prepareRSA},
			Mechanism{Type: h.pss, KeyTypes: rsaKey, MinKeySize: rsaMinBits, MaxKeySize: rsaMaxBits, Param: ParamPSS,
				Sign: rsaPSSSign(h.hash), Verify: rsaPSSVerify(h.hash), Prepare: prepareRSA})
	}
	return rows
}
