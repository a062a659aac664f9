package mechanisms

import (
	"crypto"
	"crypto/ed25519"
	"crypto/sha512"
	"fmt"
	"hash"
	"io"
	"slices"

	"gohsm/internal/ck"
)

// generateEd25519 is CKM_EC_EDWARDS_KEY_PAIR_GEN (PKCS#11 v3.0 Current
// Mechanisms, "Edwards Elliptic curve key pair generation") for Ed25519,
// the one Edwards curve supported (CKA_EC_PARAMS id-Ed25519 or
// "edwards25519").
func generateEd25519(r io.Reader, p KeyGenParams) (pub, priv any, err error) {
	if err := EdwardsCurveFromParams(p.ECParams); err != nil {
		return nil, nil, err
	}
	pk, sk, err := ed25519.GenerateKey(r)
	if err != nil {
		return nil, nil, cryptoErr("ed25519 key pair gen", err)
	}
	return pk, sk, nil
}

// maxEdDSAContext is the longest RFC 8032 context (one length byte).
const maxEdDSAContext = 255

// eddsaOptions decodes CK_EDDSA_PARAMS into the RFC 8032 variant (PKCS#11
// v3.0, "EdDSA"): no parameter is Ed25519; phFlag selects Ed25519ph; a
// context without phFlag is Ed25519ctx. An empty context without phFlag is
// plain Ed25519, as in crypto/ed25519 (RFC 8032 §8.3 advises against
// Ed25519ctx with an empty context).
func eddsaOptions(param any) (*ed25519.Options, error) {
	var p *EdDSAParams
	switch v := param.(type) {
	case nil:
	case *EdDSAParams:
		p = v
	default:
		return nil, fmt.Errorf("mechanisms: eddsa: parameter %T: %w", param, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	o := &ed25519.Options{}
	if p == nil {
		return o, nil
	}
	if len(p.Context) > maxEdDSAContext {
		return nil, fmt.Errorf("mechanisms: eddsa: %d-byte context: %w", len(p.Context), ck.CKR_MECHANISM_PARAM_INVALID)
	}
	o.Context = string(p.Context)
	if p.PreHash {
		o.Hash = crypto.SHA512
	}
	return o, nil
}

// eddsaInput collects the message: buffered for Ed25519 and Ed25519ctx,
// which hash it twice, and streamed into SHA-512 for Ed25519ph.
type eddsaInput struct {
	opts *ed25519.Options
	ph   hash.Hash
	buf  []byte
}

func newEdDSAInput(param any) (eddsaInput, error) {
	o, err := eddsaOptions(param)
	if err != nil {
		return eddsaInput{}, err
	}
	in := eddsaInput{opts: o}
	if o.Hash == crypto.SHA512 {
		in.ph = sha512.New()
	}
	return in, nil
}

func (in *eddsaInput) Update(p []byte) error {
	if in.ph != nil {
		in.ph.Write(p)
		return nil
	}
	var err error
	in.buf, err = buffer(in.buf, p, "eddsa")
	return err
}

func (in *eddsaInput) message() []byte {
	if in.ph != nil {
		return in.ph.Sum(nil)
	}
	return in.buf
}

type eddsaSigner struct {
	eddsaInput
	priv ed25519.PrivateKey
}

func (s *eddsaSigner) Size() int { return ed25519.SignatureSize }

func (s *eddsaSigner) Sign(dst []byte) ([]byte, error) {
	sig, err := s.priv.Sign(nil, s.message(), s.opts)
	if err != nil {
		return dst, cryptoErr("eddsa sign", err)
	}
	return append(dst, sig...), nil
}

type eddsaVerifier struct {
	eddsaInput
	pub ed25519.PublicKey
}

// Verify checks an RFC 8032 signature; crypto/ed25519 rejects a
// non-canonical S (S >= L), so signatures are not malleable.
func (v *eddsaVerifier) Verify(sig []byte) error {
	if len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("mechanisms: eddsa signature of %d bytes: %w", len(sig), ck.CKR_SIGNATURE_LEN_RANGE)
	}
	if err := ed25519.VerifyWithOptions(v.pub, v.message(), sig, v.opts); err != nil {
		return fmt.Errorf("mechanisms: eddsa verify: %w", ck.CKR_SIGNATURE_INVALID)
	}
	return nil
}

func eddsaSign(key, param any) (Signer, error) {
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("mechanisms: eddsa sign with %T: %w", key, ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	in, err := newEdDSAInput(param)
	if err != nil {
		return nil, err
	}
	return &eddsaSigner{eddsaInput: in, priv: priv}, nil
}

func eddsaVerify(key, param any) (Verifier, error) {
	pub, ok := key.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("mechanisms: eddsa verify with %T: %w", key, ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	in, err := newEdDSAInput(param)
	if err != nil {
		return nil, err
	}
	return &eddsaVerifier{eddsaInput: in, pub: pub}, nil
}

var edwardsKey = []ck.KeyType{ck.CKK_EC_EDWARDS}

// edwardsRows are the Ed25519 mechanisms. CKM_EDDSA is multi-part: the
// message is buffered (Ed25519, Ed25519ctx) or hashed as it comes
// (Ed25519ph).
func edwardsRows() []Mechanism {
	return []Mechanism{
		{Type: ck.CKM_EC_EDWARDS_KEY_PAIR_GEN, KeyTypes: edwardsKey,
			MinKeySize: curve25519Bits, MaxKeySize: curve25519Bits, GenerateKeyPair: generateEd25519},
		{Type: ck.CKM_EDDSA, KeyTypes: edwardsKey, MinKeySize: curve25519Bits, MaxKeySize: curve25519Bits,
			Param: ParamEdDSA, ParamOptional: true, Sign: eddsaSign, Verify: eddsaVerify},
	}
}

// curve25519Rows are the Ed25519 and X25519 rows.
func curve25519Rows() []Mechanism {
	return slices.Concat(edwardsRows(), montgomeryRows())
}
