package mechanisms

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"fmt"
	"io"
	"math/big"
	"slices"

	"gohsm/internal/ck"
)

// generateEC is CKM_EC_KEY_PAIR_GEN (PKCS#11 v3.0 "Elliptic curve key pair generation") on the curve
// CKA_EC_PARAMS names; the guard has checked it against the row.
func generateEC(r io.Reader, p KeyGenParams) (pub, priv any, err error) {
	c, err := CurveFromParams(p.ECParams)
	if err != nil {
		return nil, nil, err
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
		priv, ok := key.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("mechanisms: ecdsa sign with %T: %w", key, ck.CKR_KEY_TYPE_INCONSISTENT)
		}
		return &ecdsaSigner{input: newInput(h), priv: priv}, nil
	}
}

type ecdsaSigner struct {
	input
	priv *ecdsa.PrivateKey
}

func (s *ecdsaSigner) Size() int { return 2 * byteLen(s.priv.Curve) }

// Sign signs the hash, which Go truncates to the bit length of the group
// order as FIPS 186-5 §6.4.1 prescribes; any length is accepted.
func (s *ecdsaSigner) Sign(dst []byte) ([]byte, error) {
	r, ss, err := ecdsa.Sign(rand.Reader, s.priv, s.message())
	if err != nil {
		return dst, cryptoErr("ecdsa sign", err)
	}
	n := byteLen(s.priv.Curve)
	dst, out := grow(dst, 2*n)
	r.FillBytes(out[:n])
	ss.FillBytes(out[n:])
	return dst, nil
}

func ecdsaVerify(h crypto.Hash) func(key, param any) (Verifier, error) {
	return func(key, _ any) (Verifier, error) {
		pub, ok := key.(*ecdsa.PublicKey)
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
	r := new(big.Int).SetBytes(sig[:n])
	s := new(big.Int).SetBytes(sig[n:])
	if !ecdsa.Verify(v.pub, v.message(), r, s) {
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

// ecRows are the elliptic-curve mechanisms.
var ecRows = []Mechanism{
	{Type: ck.CKM_EC_KEY_PAIR_GEN, KeyTypes: ecKey, MinKeySize: ecMinBits, MaxKeySize: ecMaxBits,
		GenerateKeyPair: generateEC},
	{Type: ck.CKM_ECDSA, KeyTypes: ecKey, MinKeySize: ecMinBits, MaxKeySize: ecMaxBits, SinglePart: true,
		Sign: ecdsaSign(0), Verify: ecdsaVerify(0)},
	{Type: ck.CKM_ECDSA_SHA256, KeyTypes: ecKey, MinKeySize: ecMinBits, MaxKeySize: ecMaxBits,
		Sign: ecdsaSign(crypto.SHA256), Verify: ecdsaVerify(crypto.SHA256)},
}
