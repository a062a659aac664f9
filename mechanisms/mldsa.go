package mechanisms

import (
	"crypto/mldsa"
	"fmt"
	"io"

	"github.com/cloudflare/circl/sign/mldsa/mldsa44"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"github.com/cloudflare/circl/sign/mldsa/mldsa87"

	"gohsm/internal/ck"
)

// ML-DSA (FIPS 204; PKCS#11 3.2, "ML-DSA"). Keys are the toolchain's
// crypto/mldsa values: *mldsa.PrivateKey (which holds the 32-byte seed ξ
// and signs from it) and *mldsa.PublicKey. crypto/mldsa does not encode
// the expanded private key sk (FIPS 204 skEncode), which PKCS#11 3.2 puts
// in a private key's CKA_VALUE; MLDSAExpandedKey computes it with
// github.com/cloudflare/circl from the same seed.

// SignContextParams is CK_SIGN_ADDITIONAL_CONTEXT decoded.
type SignContextParams struct {
	Hedge   ck.ULong // CKH_HEDGE_PREFERRED, CKH_HEDGE_REQUIRED, CKH_DETERMINISTIC_REQUIRED
	Context []byte
}

// maxMLDSAContext is FIPS 204's limit on the context string (one length byte).
const maxMLDSAContext = 255

// mldsaSets maps CKA_PARAMETER_SET to the parameter set.
var mldsaSets = map[ck.ULong]mldsa.Parameters{
	ck.CKP_ML_DSA_44: mldsa.MLDSA44(),
	ck.CKP_ML_DSA_65: mldsa.MLDSA65(),
	ck.CKP_ML_DSA_87: mldsa.MLDSA87(),
}

// MLDSAParameters returns the parameter set CKA_PARAMETER_SET names; an
// unknown value is CKR_ATTRIBUTE_VALUE_INVALID.
func MLDSAParameters(set ck.ULong) (mldsa.Parameters, error) {
	p, ok := mldsaSets[set]
	if !ok {
		return mldsa.Parameters{}, fmt.Errorf("mechanisms: ml-dsa parameter set %d: %w", set, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	return p, nil
}

// MLDSAParameterSet is the inverse of MLDSAParameters.
func MLDSAParameterSet(p mldsa.Parameters) ck.ULong {
	for set, q := range mldsaSets {
		if q == p {
			return set
		}
	}
	return 0
}

// MLDSAPrivateKey builds a private key from its 32-byte seed ξ.
func MLDSAPrivateKey(set ck.ULong, seed []byte) (*mldsa.PrivateKey, error) {
	p, err := MLDSAParameters(set)
	if err != nil {
		return nil, err
	}
	if len(seed) != mldsa.PrivateKeySize {
		return nil, fmt.Errorf("mechanisms: ml-dsa seed of %d bytes, want %d: %w", len(seed), mldsa.PrivateKeySize, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	sk, err := mldsa.NewPrivateKey(p, seed)
	if err != nil {
		return nil, fmt.Errorf("mechanisms: ml-dsa seed: %v: %w", err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	return sk, nil
}

// MLDSAPublicKey decodes a FIPS 204 public key (pkEncode).
func MLDSAPublicKey(set ck.ULong, enc []byte) (*mldsa.PublicKey, error) {
	p, err := MLDSAParameters(set)
	if err != nil {
		return nil, err
	}
	if len(enc) != p.PublicKeySize() {
		return nil, fmt.Errorf("mechanisms: %v public key of %d bytes, want %d: %w", p, len(enc), p.PublicKeySize(), ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	pk, err := mldsa.NewPublicKey(p, enc)
	if err != nil {
		return nil, fmt.Errorf("mechanisms: %v public key: %v: %w", p, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	return pk, nil
}

// MLDSAExpandedKey is the FIPS 204 encoding of sk's expanded private key
// (skEncode, 2560/4032/4896 bytes), computed from its seed.
func MLDSAExpandedKey(sk *mldsa.PrivateKey) []byte {
	seed := sk.Bytes()
	var s [32]byte
	copy(s[:], seed)
	clear(seed)
	defer clear(s[:])
	switch sk.PublicKey().Parameters() {
	case mldsa.MLDSA44():
		_, k := mldsa44.NewKeyFromSeed(&s)
		return k.Bytes()
	case mldsa.MLDSA65():
		_, k := mldsa65.NewKeyFromSeed(&s)
		return k.Bytes()
	default:
		_, k := mldsa87.NewKeyFromSeed(&s)
		return k.Bytes()
	}
}

// generateMLDSA is CKM_ML_DSA_KEY_PAIR_GEN: ML-DSA.KeyGen (FIPS 204
// Algorithm 1) with the seed ξ read from r, the token's random source.
func generateMLDSA(r io.Reader, p KeyGenParams) (pub, priv any, err error) {
	var seed [mldsa.PrivateKeySize]byte
	defer clear(seed[:])
	if _, err := io.ReadFull(r, seed[:]); err != nil {
		return nil, nil, cryptoErr("ml-dsa key pair gen", err)
	}
	sk, err := MLDSAPrivateKey(p.ParameterSet, seed[:])
	if err != nil {
		return nil, nil, err
	}
	return sk.PublicKey(), sk, nil
}

// mldsaOptions decodes the optional CK_SIGN_ADDITIONAL_CONTEXT: none is
// CKH_HEDGE_PREFERRED with an empty context.
func mldsaOptions(param any) (deterministic bool, opts *mldsa.Options, err error) {
	opts = &mldsa.Options{}
	switch p := param.(type) {
	case nil:
		return false, opts, nil
	case *SignContextParams:
		if len(p.Context) > maxMLDSAContext {
			return false, nil, fmt.Errorf("mechanisms: ml-dsa: %d-byte context: %w", len(p.Context), ck.CKR_MECHANISM_PARAM_INVALID)
		}
		switch p.Hedge {
		case ck.CKH_HEDGE_PREFERRED, ck.CKH_HEDGE_REQUIRED:
		case ck.CKH_DETERMINISTIC_REQUIRED:
			deterministic = true
		default:
			return false, nil, fmt.Errorf("mechanisms: ml-dsa: hedgeVariant %d: %w", p.Hedge, ck.CKR_MECHANISM_PARAM_INVALID)
		}
		opts.Context = string(p.Context)
		return deterministic, opts, nil
	}
	return false, nil, fmt.Errorf("mechanisms: ml-dsa: parameter %T: %w", param, ck.CKR_MECHANISM_PARAM_INVALID)
}

type mldsaSigner struct {
	sk            *mldsa.PrivateKey
	opts          *mldsa.Options
	deterministic bool
	msg           []byte
}

func (s *mldsaSigner) Update(p []byte) error {
	var err error
	s.msg, err = buffer(s.msg, p, "ml-dsa")
	return err
}

func (s *mldsaSigner) Size() int { return s.sk.PublicKey().Parameters().SignatureSize() }

// Sign is ML-DSA.Sign (FIPS 204 Algorithm 2), hedged unless
// CKH_DETERMINISTIC_REQUIRED asked for the deterministic variant.
func (s *mldsaSigner) Sign(dst []byte) ([]byte, error) {
	var sig []byte
	var err error
	if s.deterministic {
		sig, err = s.sk.SignDeterministic(s.msg, s.opts)
	} else {
		sig, err = s.sk.Sign(nil, s.msg, s.opts)
	}
	if err != nil {
		return dst, cryptoErr("ml-dsa sign", err)
	}
	return append(dst, sig...), nil
}

type mldsaVerifier struct {
	pk   *mldsa.PublicKey
	opts *mldsa.Options
	msg  []byte
}

func (v *mldsaVerifier) Update(p []byte) error {
	var err error
	v.msg, err = buffer(v.msg, p, "ml-dsa")
	return err
}

// Verify is ML-DSA.Verify (FIPS 204 Algorithm 3); the hedge variant is
// ignored, as the spec says.
func (v *mldsaVerifier) Verify(sig []byte) error {
	if n := v.pk.Parameters().SignatureSize(); len(sig) != n {
		return fmt.Errorf("mechanisms: ml-dsa signature of %d bytes, want %d: %w", len(sig), n, ck.CKR_SIGNATURE_LEN_RANGE)
	}
	if err := mldsa.Verify(v.pk, v.msg, sig, v.opts); err != nil {
		return fmt.Errorf("mechanisms: ml-dsa verify: %w", ck.CKR_SIGNATURE_INVALID)
	}
	return nil
}

func mldsaSign(key, param any) (Signer, error) {
	sk, ok := key.(*mldsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("mechanisms: ml-dsa sign with %T: %w", key, ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	det, opts, err := mldsaOptions(param)
	if err != nil {
		return nil, err
	}
	return &mldsaSigner{sk: sk, opts: opts, deterministic: det}, nil
}

func mldsaVerify(key, param any) (Verifier, error) {
	pk, ok := key.(*mldsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("mechanisms: ml-dsa verify with %T: %w", key, ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	_, opts, err := mldsaOptions(param)
	if err != nil {
		return nil, err
	}
	return &mldsaVerifier{pk: pk, opts: opts}, nil
}

var mldsaKey = []ck.KeyType{ck.CKK_ML_DSA}

// mldsaRows are the ML-DSA mechanisms. CK_MECHANISM_INFO's key sizes are
// public key lengths in bytes (PKCS#11 3.2, "ML-DSA key pair generation"):
// ML-DSA-44's 1312 to ML-DSA-87's 2592. CKM_ML_DSA signs in one or more
// parts (the message is buffered: crypto/mldsa takes it whole) and
// verifies in one part only (C_VerifyUpdate is for C_VerifySignatureInit,
// which gohsm does not implement).
func mldsaRows() []Mechanism {
	return []Mechanism{
		{Type: ck.CKM_ML_DSA_KEY_PAIR_GEN, KeyTypes: mldsaKey,
			MinKeySize: mldsaMinKey, MaxKeySize: mldsaMaxKey, GenerateKeyPair: generateMLDSA},
		{Type: ck.CKM_ML_DSA, KeyTypes: mldsaKey,
			MinKeySize: mldsaMinKey, MaxKeySize: mldsaMaxKey,
			Param: ParamSignContext, ParamOptional: true, VerifySinglePart: true, Sign: mldsaSign, Verify: mldsaVerify},
	}
}

// mldsaMinKey and mldsaMaxKey are ML-DSA-44's and ML-DSA-87's public key
// lengths in bytes (1312, 2592).
var (
	mldsaMinKey = uint(mldsa.MLDSA44().PublicKeySize())
	mldsaMaxKey = uint(mldsa.MLDSA87().PublicKeySize())
)
