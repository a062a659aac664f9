package mechanisms

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	_ "crypto/sha3" // registers crypto.SHA3_* for CKM_ECDSA_SHA3_*
	"fmt"
	"io"
	"math/big"
	"slices"
	"sync"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"gohsm/internal/ck"
	"gohsm/internal/ossl"
)

// generateEC is CKM_EC_KEY_PAIR_GEN (PKCS#11 v3.0 "Elliptic curve key pair generation") on the curve
// CKA_EC_PARAMS names; the guard has checked it against the row.
func generateEC(r io.Reader, p KeyGenParams) (pub, priv any, err error) {
	c, err := CurveFromParams(p.ECParams)
	if err != nil {
		return nil, nil, err
	}
	if isSecp256k1(c) {
		k, err := secp256k1.GeneratePrivateKeyFromRand(r)
		if err != nil {
			return nil, nil, cryptoErr("ec key pair gen", err)
		}
		defer k.Zero()
		d := k.Key.Bytes()
		defer clear(d[:])
		priv, err := ECPrivateKey(c, d[:])
		if err != nil {
			return nil, nil, err
		}
		return &priv.PublicKey, priv, nil
	}
	k, err := ecdsa.GenerateKey(c, r)
	if err != nil {
		return nil, nil, cryptoErr("ec key pair gen", err)
	}
	return &k.PublicKey, k, nil
}

// ecdsaSign returns the constructor for CKM_ECDSA (h == 0: the input is
// the hash, PKCS#11 v3.0 "ECDSA without hashing") or CKM_ECDSA_<h> ("ECDSA
// with hashing"). Signatures are
// r || s, each big-endian and padded to the byte length of the group order
// (PKCS#11 v3.0 "ECDSA signatures"), not DER.
func ecdsaSign(h crypto.Hash) func(key, param any) (Signer, error) {
	return func(key, _ any) (Signer, error) {
		priv, ok := unprepared(key).(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("mechanisms: ecdsa sign with %T: %w", key, ck.CKR_KEY_TYPE_INCONSISTENT)
		}
		if h == 0 {
			s, _ := ecdsaSigners.Get().(*ecdsaSigner)
			if s == nil {
				s = new(ecdsaSigner)
			}
			*s = ecdsaSigner{priv: priv, acc: ecdsaAccel(key), pooled: true}
			s.buf = s.raw[:0]
			return s, nil
		}
		return &ecdsaSigner{input: newInput(h), hash: h, priv: priv, acc: ecdsaAccel(key)}, nil
	}
}

// ecdsaSigners are CKM_ECDSA signers the token released (Release), for the
// next C_SignInit of any key: a signer per C_SignInit was the one
// allocation left on the path (about 140 bytes a signature; with two
// signing sessions the collector ran every 2-3 s, its workers taking the
// cores the sessions sign on; docs/bench.md, "Two sessions
// (2026-12-07)"). The hashing variants keep a signer each: their hash
// state is most of what they allocate.
var ecdsaSigners sync.Pool

// errECDSAReleased: a released signer was used (a caller bug).
var errECDSAReleased = fmt.Errorf("mechanisms: ecdsa: operation already ended: %w", ck.CKR_OPERATION_NOT_INITIALIZED)

type ecdsaSigner struct {
	input
	hash crypto.Hash // the row's hash (0: CKM_ECDSA)
	fed  bool        // Update was called
	priv *ecdsa.PrivateKey
	acc  *ossl.P256Key // non-nil: P-256 signing in libcrypto (accel.go)
	// raw holds CKM_ECDSA's input (a hash: 64 bytes at most for
	// SHA-512) inside the signer, so that C_SignInit + C_Sign allocates
	// the signer only (a separate buffer was a second allocation per
	// signature); a longer input moves to the heap as before.
	raw [64]byte
	// pooled: a CKM_ECDSA signer, which Release hands to ecdsaSigners;
	// released: it was, and refuses further use.
	pooled, released bool
}

func (s *ecdsaSigner) Size() int {
	if s.released {
		return 0
	}
	return 2 * byteLen(s.priv.Curve)
}

// Release drops the key and the input and, for CKM_ECDSA, hands the
// signer to the next C_SignInit (the token calls it once the operation is
// over).
func (s *ecdsaSigner) Release() {
	if !s.pooled || s.released {
		return
	}
	*s = ecdsaSigner{released: true}
	ecdsaSigners.Put(s)
}

// P256Handle is the libcrypto key of a CKM_ECDSA or CKM_ECDSA_SHA256
// operation that has not started (no input yet) and signs P-256 in
// libcrypto, whether it hashes the input with SHA-256 first, and its
// signature length (64): what the module's C_Sign needs to answer the
// whole call in C (pkcs11/csign.h). ok is false for anything else: the
// other hashing rows, other curves, Go's crypto.
func P256Handle(sg Signer) (key uintptr, sha256 bool, sigLen int, ok bool) {
	s, isECDSA := sg.(*ecdsaSigner)
	if !isECDSA || s.released || s.fed || s.acc == nil || byteLen(s.priv.Curve) != 32 ||
		s.hash != 0 && s.hash != crypto.SHA256 {
		return 0, false, 0, false
	}
	if key = s.acc.Handle(); key == 0 {
		return 0, false, 0, false
	}
	return key, s.hash == crypto.SHA256, 64, true
}

func (s *ecdsaSigner) Update(p []byte) error {
	if s.released {
		return errECDSAReleased
	}
	s.fed = true
	return s.input.Update(p)
}

// Sign signs the hash, truncated to the bit length of the group order as
// FIPS 186-5 §6.4.1 prescribes; any length is accepted. P-256 with a
// prepared key signs in libcrypto, with a fresh random nonce per signature
// (accel.go); the other NIST curves (and P-256 without libcrypto) use
// crypto/ecdsa (RFC 6979 nonces, see signNIST); secp256k1 uses the decred
// library, whose nonces are RFC 6979 deterministic and whose s is the low
// one of s and n-s (BIP 62). All are valid ECDSA signatures.
func (s *ecdsaSigner) Sign(dst []byte) ([]byte, error) {
	if s.released {
		return dst, errECDSAReleased
	}
	n := byteLen(s.priv.Curve)
	if s.acc != nil {
		whole, out := grow(dst, 2*n)
		if err := s.acc.Sign(out, s.message()); err != nil {
			return dst, fmt.Errorf("mechanisms: ecdsa sign: %w (%w)", ck.CKR_FUNCTION_FAILED, err)
		}
		return whole, nil
	}
	if isSecp256k1(s.priv.Curve) {
		k, err := secp256k1Private(s.priv)
		if err != nil {
			return dst, err
		}
		defer k.Zero()
		sig := secpecdsa.Sign(k, s.message())
		r, ss := sig.R(), sig.S()
		dst, out := grow(dst, 2*n)
		r.PutBytesUnchecked(out[:n])
		ss.PutBytesUnchecked(out[n:])
		return dst, nil
	}
	der, err := signNIST(s.priv, digestOrZero(s.message()))
	if err != nil {
		return dst, cryptoErr("ecdsa sign", err)
	}
	// crypto/ecdsa produces DER; PKCS#11 wants the two integers side by
	// side. Reading them as bytes avoids the big.Ints ecdsa.Sign makes.
	var inner, r, sv cryptobyte.String
	in := cryptobyte.String(der)
	if !in.ReadASN1(&inner, cbasn1.SEQUENCE) || !in.Empty() ||
		!inner.ReadASN1(&r, cbasn1.INTEGER) || !inner.ReadASN1(&sv, cbasn1.INTEGER) || !inner.Empty() {
		return dst, fmt.Errorf("mechanisms: ecdsa sign: malformed signature from crypto/ecdsa: %w", ck.CKR_FUNCTION_FAILED)
	}
	whole, out := grow(dst, 2*n)
	if !putInt(out[:n], r) || !putInt(out[n:], sv) {
		return dst, fmt.Errorf("mechanisms: ecdsa sign: integer too long: %w", ck.CKR_FUNCTION_FAILED)
	}
	return whole, nil
}

// zeroDigest stands for an empty digest: FIPS 186-5's conversion of a
// digest to an integer makes both the integer 0, so signatures over one
// verify over the other. crypto/ecdsa from Go 1.27 refuses an empty digest
// (Go 1.26 accepts it, libcrypto too); CKM_ECDSA takes any input length,
// so an empty input goes to crypto/ecdsa as one zero byte.
var zeroDigest = []byte{0}

func digestOrZero(d []byte) []byte {
	if len(d) == 0 {
		return zeroDigest
	}
	return d
}

// rfc6979Hash picks the hash of RFC 6979's nonce generation for a digest
// of n bytes (the hash that made a digest of that length).
var rfc6979Hash = map[int]crypto.Hash{20: crypto.SHA1, 28: crypto.SHA224, 32: crypto.SHA256, 48: crypto.SHA384, 64: crypto.SHA512}

// signNIST signs on a NIST curve with deterministic nonces (RFC 6979) when
// the digest has a standard hash length, else with crypto/ecdsa's hedged
// nonces. RFC 6979 is a standard ECDSA signature, verifiable by anyone;
// its nonce DRBG runs on the digest's own hash, where the hedged one
// always runs HMAC-SHA-512 with fresh entropy: 36 instead of 51 us per
// P-256 signature here (the extra SHA-512 blocks were a quarter of the
// signing time). A signature over the same digest with the same key is
// then always the same, which callers cannot tell from a random one.
func signNIST(priv *ecdsa.PrivateKey, digest []byte) ([]byte, error) {
	if h, ok := rfc6979Hash[len(digest)]; ok {
		return priv.Sign(nil, digest, h)
	}
	return ecdsa.SignASN1(rand.Reader, priv, digest)
}

// putInt writes a DER INTEGER's content (positive, minimal) right-aligned
// into out, zero-padded.
func putInt(out []byte, v []byte) bool {
	for len(v) > 0 && v[0] == 0 {
		v = v[1:]
	}
	if len(v) > len(out) {
		return false
	}
	pad := len(out) - len(v)
	clear(out[:pad])
	copy(out[pad:], v)
	return true
}

func ecdsaVerify(h crypto.Hash) func(key, param any) (Verifier, error) {
	return func(key, _ any) (Verifier, error) {
		pub, ok := unprepared(key).(*ecdsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("mechanisms: ecdsa verify with %T: %w", key, ck.CKR_KEY_TYPE_INCONSISTENT)
		}
		return &ecdsaVerifier{input: newInput(h), pub: pub}, nil
	}
}

type ecdsaVerifier struct {
	input
	pub *ecdsa.PublicKey
}

func (v *ecdsaVerifier) Verify(sig []byte) error {
	n := byteLen(v.pub.Curve)
	if len(sig) != 2*n {
		return fmt.Errorf("mechanisms: ecdsa signature of %d bytes, want %d: %w", len(sig), 2*n, ck.CKR_SIGNATURE_LEN_RANGE)
	}
	if isSecp256k1(v.pub.Curve) {
		return verifySecp256k1(v.pub, v.message(), sig)
	}
	r := new(big.Int).SetBytes(sig[:n])
	s := new(big.Int).SetBytes(sig[n:])
	if !ecdsa.Verify(v.pub, digestOrZero(v.message()), r, s) {
		return fmt.Errorf("mechanisms: ecdsa verify: %w", ck.CKR_SIGNATURE_INVALID)
	}
	return nil
}

// verifySecp256k1 checks r || s on secp256k1. Both halves must be in
// [1, n-1]; high s is accepted (plain ECDSA, not BIP 62).
func verifySecp256k1(pub *ecdsa.PublicKey, hash, sig []byte) error {
	k, err := secp256k1Public(pub)
	if err != nil {
		return err
	}
	var r, s secp256k1.ModNScalar
	if r.SetByteSlice(sig[:32]) || s.SetByteSlice(sig[32:]) || r.IsZero() || s.IsZero() {
		return fmt.Errorf("mechanisms: ecdsa verify: r or s out of range: %w", ck.CKR_SIGNATURE_INVALID)
	}
	if !secpecdsa.NewSignature(&r, &s).Verify(hash, k) {
		return fmt.Errorf("mechanisms: ecdsa verify: %w", ck.CKR_SIGNATURE_INVALID)
	}
	return nil
}

// grow extends dst by n bytes, returning the extended slice and its new
// tail. It allocates only when dst lacks the capacity.
func grow(dst []byte, n int) (whole, tail []byte) {
	dst = slices.Grow(dst, n)
	whole = dst[:len(dst)+n]
	return whole, whole[len(dst):]
}

// Key sizes of the EC rows, in bits of the field (PKCS#11 v3.0 Current
// Mechanisms: "the minimum and maximum supported number of bits in the
// field sizes"): P-224 up to P-521; secp256k1 is 256.
const (
	ecMinFieldBits = 224
	ecMaxFieldBits = 521
)

// ecdsaRow is one ECDSA row: h == 0 is raw CKM_ECDSA (single-part).
func ecdsaRow(t ck.MechanismType, h crypto.Hash) Mechanism {
	return Mechanism{Type: t, KeyTypes: ecKey, MinKeySize: ecMinFieldBits, MaxKeySize: ecMaxFieldBits,
		SinglePart: h == 0, Sign: ecdsaSign(h), Verify: ecdsaVerify(h), Prepare: prepareECDSA}
}

// ecRows are the elliptic-curve mechanisms: prime curves (this file and
// ecdh.go), Ed25519 (eddsa.go) and X25519 (x25519.go).
func ecRows() []Mechanism {
	return slices.Concat([]Mechanism{
		{Type: ck.CKM_EC_KEY_PAIR_GEN, KeyTypes: ecKey, MinKeySize: ecMinFieldBits, MaxKeySize: ecMaxFieldBits,
			GenerateKeyPair: generateEC},
		ecdsaRow(ck.CKM_ECDSA, 0),
		ecdsaRow(ck.CKM_ECDSA_SHA1, crypto.SHA1),
		ecdsaRow(ck.CKM_ECDSA_SHA224, crypto.SHA224),
		ecdsaRow(ck.CKM_ECDSA_SHA256, crypto.SHA256),
		ecdsaRow(ck.CKM_ECDSA_SHA384, crypto.SHA384),
		ecdsaRow(ck.CKM_ECDSA_SHA512, crypto.SHA512),
		ecdsaRow(ck.CKM_ECDSA_SHA3_224, crypto.SHA3_224),
		ecdsaRow(ck.CKM_ECDSA_SHA3_256, crypto.SHA3_256),
		ecdsaRow(ck.CKM_ECDSA_SHA3_384, crypto.SHA3_384),
		ecdsaRow(ck.CKM_ECDSA_SHA3_512, crypto.SHA3_512),
	}, ecdhRows(), curve25519Rows())
}
