package mechanisms

import (
	"crypto"
	"crypto/mldsa"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/sha512"
	"fmt"
	"hash"

	"gohsm/internal/ck"
)

// HashML-DSA (FIPS 204 Algorithms 4 and 5, section 5.4; PKCS#11 3.2
// CKM_HASH_ML_DSA and CKM_HASH_ML_DSA_<hash>). The signed representative
// is μ = H(tr || M', 64) with M' = 1 || len(ctx) || ctx || OID(PH) || PH(M).
// crypto/mldsa signs μ (crypto.MLDSAMu); verifyMu (mldsa_verify.go)
// verifies it.

// HashSignContextParams is CK_HASH_SIGN_ADDITIONAL_CONTEXT decoded.
type HashSignContextParams struct {
	Hedge   ck.ULong // CKH_HEDGE_PREFERRED, CKH_HEDGE_REQUIRED, CKH_DETERMINISTIC_REQUIRED
	Context []byte
	Hash    ck.MechanismType // the pre-hash: CKM_SHA256, CKM_SHA3_384, ...
}

// mldsaPreHash is one pre-hash function of HashML-DSA.
type mldsaPreHash struct {
	digest  ck.MechanismType // names it in CK_HASH_SIGN_ADDITIONAL_CONTEXT.hash; 0: none does
	variant ck.MechanismType // CKM_HASH_ML_DSA_<hash>; 0: none
	arc     byte             // last arc of its OID, 2.16.840.1.101.3.4.2.<arc>
	size    int              // output length in bytes
	new     func() hash.Hash
}

// oid is the DER encoding of the function's OID, as FIPS 204 puts it in M'.
func (h *mldsaPreHash) oid() []byte {
	return []byte{0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, h.arc}
}

// shakeHash is SHAKE128 or SHAKE256 read to a fixed length (FIPS 204
// section 5.4.1: 256 and 512 bits) as a hash.Hash.
type shakeHash struct {
	*sha3.SHAKE
	size, block int
	new         func() *sha3.SHAKE
}

func (s *shakeHash) Sum(b []byte) []byte {
	out := make([]byte, s.size)
	c := *s.SHAKE // a copy: Sum must not change the running state
	c.Read(out)
	return append(b, out...)
}
func (s *shakeHash) Reset()         { s.SHAKE = s.new() }
func (s *shakeHash) Size() int      { return s.size }
func (s *shakeHash) BlockSize() int { return s.block }

// mldsaPreHashes are FIPS 204's pre-hash functions with the OIDs of NIST's
// registry (hashAlgs) and the PKCS#11 3.2 mechanisms naming them. SHAKE128
// and SHAKE256 have no digest mechanism in gohsm's headers: only their
// CKM_HASH_ML_DSA_SHAKE* variants reach them. SHA-512/224 and SHA-512/256
// have no variant: only CKM_HASH_ML_DSA's parameter reaches them.
var mldsaPreHashes = []mldsaPreHash{
	{ck.CKM_SHA224, ck.CKM_HASH_ML_DSA_SHA224, 4, 28, sha256.New224},
	{ck.CKM_SHA256, ck.CKM_HASH_ML_DSA_SHA256, 1, 32, sha256.New},
	{ck.CKM_SHA384, ck.CKM_HASH_ML_DSA_SHA384, 2, 48, sha512.New384},
	{ck.CKM_SHA512, ck.CKM_HASH_ML_DSA_SHA512, 3, 64, sha512.New},
	{ck.CKM_SHA512_224, 0, 5, 28, sha512.New512_224},
	{ck.CKM_SHA512_256, 0, 6, 32, sha512.New512_256},
	{ck.CKM_SHA3_224, ck.CKM_HASH_ML_DSA_SHA3_224, 7, 28, func() hash.Hash { return sha3.New224() }},
	{ck.CKM_SHA3_256, ck.CKM_HASH_ML_DSA_SHA3_256, 8, 32, func() hash.Hash { return sha3.New256() }},
	{ck.CKM_SHA3_384, ck.CKM_HASH_ML_DSA_SHA3_384, 9, 48, func() hash.Hash { return sha3.New384() }},
	{ck.CKM_SHA3_512, ck.CKM_HASH_ML_DSA_SHA3_512, 10, 64, func() hash.Hash { return sha3.New512() }},
	{0, ck.CKM_HASH_ML_DSA_SHAKE128, 11, 32, func() hash.Hash {
		return &shakeHash{SHAKE: sha3.NewSHAKE128(), size: 32, block: 168, new: sha3.NewSHAKE128}
	}},
	{0, ck.CKM_HASH_ML_DSA_SHAKE256, 12, 64, func() hash.Hash {
		return &shakeHash{SHAKE: sha3.NewSHAKE256(), size: 64, block: 136, new: sha3.NewSHAKE256}
	}},
}

func mldsaPreHashBy(match func(*mldsaPreHash) bool) *mldsaPreHash {
	for i := range mldsaPreHashes {
		if match(&mldsaPreHashes[i]) {
			return &mldsaPreHashes[i]
		}
	}
	return nil
}

// mldsaContextCheck checks a hedge variant and a context length.
func mldsaContextCheck(hedge ck.ULong, ctx []byte) (deterministic bool, err error) {
	if len(ctx) > maxMLDSAContext {
		return false, fmt.Errorf("mechanisms: hash-ml-dsa: %d-byte context: %w", len(ctx), ck.CKR_MECHANISM_PARAM_INVALID)
	}
	switch hedge {
	case ck.CKH_HEDGE_PREFERRED, ck.CKH_HEDGE_REQUIRED:
		return false, nil
	case ck.CKH_DETERMINISTIC_REQUIRED:
		return true, nil
	}
	return false, fmt.Errorf("mechanisms: hash-ml-dsa: hedgeVariant %d: %w", hedge, ck.CKR_MECHANISM_PARAM_INVALID)
}

// hashMLDSAOp is what one HashML-DSA operation is set up with.
type hashMLDSAOp struct {
	ph            *mldsaPreHash
	ctx           []byte
	deterministic bool
	h             hash.Hash // the module hashes (CKM_HASH_ML_DSA_<hash>)
	in            []byte    // the caller's PH(M) (CKM_HASH_ML_DSA)
}

// hashMLDSASetup decodes the parameter of mech: CKM_HASH_ML_DSA takes a
// CK_HASH_SIGN_ADDITIONAL_CONTEXT naming the pre-hash and the caller
// gives PH(M); a CKM_HASH_ML_DSA_<hash> variant takes an optional
// CK_SIGN_ADDITIONAL_CONTEXT and hashes the message itself.
func hashMLDSASetup(mech ck.MechanismType, param any) (*hashMLDSAOp, error) {
	op := &hashMLDSAOp{}
	var err error
	if mech == ck.CKM_HASH_ML_DSA {
		p, ok := param.(*HashSignContextParams)
		if !ok {
			return nil, fmt.Errorf("mechanisms: hash-ml-dsa: parameter %T: %w", param, ck.CKR_MECHANISM_PARAM_INVALID)
		}
		if op.ph = mldsaPreHashBy(func(h *mldsaPreHash) bool { return h.digest != 0 && h.digest == p.Hash }); op.ph == nil {
			return nil, fmt.Errorf("mechanisms: hash-ml-dsa: pre-hash %v: %w", p.Hash, ck.CKR_MECHANISM_PARAM_INVALID)
		}
		op.deterministic, err = mldsaContextCheck(p.Hedge, p.Context)
		op.ctx = p.Context
		return op, err
	}
	op.ph = mldsaPreHashBy(func(h *mldsaPreHash) bool { return h.variant == mech })
	if op.ph == nil {
		return nil, fmt.Errorf("mechanisms: hash-ml-dsa: mechanism %v: %w", mech, ck.CKR_MECHANISM_INVALID)
	}
	switch p := param.(type) {
	case nil:
	case *SignContextParams:
		op.deterministic, err = mldsaContextCheck(p.Hedge, p.Context)
		op.ctx = p.Context
	default:
		return nil, fmt.Errorf("mechanisms: hash-ml-dsa: parameter %T: %w", param, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	op.h = op.ph.new()
	return op, err
}

func (op *hashMLDSAOp) Update(p []byte) error {
	if op.h != nil {
		op.h.Write(p)
		return nil
	}
	var err error
	op.in, err = buffer(op.in, p, "hash-ml-dsa")
	return err
}

// mu is μ for the public key pk over what Update was given.
func (op *hashMLDSAOp) mu(pk []byte) ([]byte, error) {
	ph := op.in
	if op.h != nil {
		ph = op.h.Sum(nil)
	} else if len(ph) != op.ph.size {
		return nil, fmt.Errorf("mechanisms: hash-ml-dsa: %d-byte hash, want %d: %w", len(ph), op.ph.size, ck.CKR_DATA_LEN_RANGE)
	}
	return mldsaMu(pk, []byte{1, byte(len(op.ctx))}, op.ctx, op.ph.oid(), ph), nil
}

type hashMLDSASigner struct {
	hashMLDSAOp
	sk *mldsa.PrivateKey
}

func (s *hashMLDSASigner) Size() int { return s.sk.PublicKey().Parameters().SignatureSize() }

// Sign is HashML-DSA.Sign (FIPS 204 Algorithm 4): ML-DSA.Sign_internal of
// μ, hedged unless CKH_DETERMINISTIC_REQUIRED asked for the deterministic
// variant.
func (s *hashMLDSASigner) Sign(dst []byte) ([]byte, error) {
	return signByMu(dst, "hash-ml-dsa", s.sk, s.deterministic, s.mu)
}

// signByMu appends ML-DSA.Sign_internal (FIPS 204 Algorithm 7) of the μ
// that mu gives for sk's public key to dst, hedged unless deterministic.
func signByMu(dst []byte, what string, sk *mldsa.PrivateKey, deterministic bool, mu func(pk []byte) ([]byte, error)) ([]byte, error) {
	m, err := mu(sk.PublicKey().Bytes())
	if err != nil {
		return dst, err
	}
	var sig []byte
	if deterministic {
		sig, err = sk.SignDeterministic(m, crypto.MLDSAMu)
	} else {
		sig, err = sk.Sign(nil, m, crypto.MLDSAMu)
	}
	if err != nil {
		return dst, cryptoErr(what+" sign", err)
	}
	return append(dst, sig...), nil
}

type hashMLDSAVerifier struct {
	hashMLDSAOp
	pk *mldsa.PublicKey
}

// Verify is HashML-DSA.Verify (FIPS 204 Algorithm 5) through verifyMu.
func (v *hashMLDSAVerifier) Verify(sig []byte) error {
	return verifyByMu("hash-ml-dsa", v.pk, sig, v.mu)
}

// verifyByMu is ML-DSA.Verify_internal (FIPS 204 Algorithm 8) of sig over
// the μ that mu gives for pk's encoding, through verifyMu.
func verifyByMu(what string, pk *mldsa.PublicKey, sig []byte, mu func(pk []byte) ([]byte, error)) error {
	params := pk.Parameters()
	if n := params.SignatureSize(); len(sig) != n {
		return fmt.Errorf("mechanisms: %s signature of %d bytes, want %d: %w", what, len(sig), n, ck.CKR_SIGNATURE_LEN_RANGE)
	}
	enc := pk.Bytes()
	m, err := mu(enc)
	if err != nil {
		return err
	}
	if !verifyMu(params, enc, m, sig) {
		return fmt.Errorf("mechanisms: %s verify: %w", what, ck.CKR_SIGNATURE_INVALID)
	}
	return nil
}

func hashMLDSASign(mech ck.MechanismType) func(key, param any) (Signer, error) {
	return func(key, param any) (Signer, error) {
		sk, ok := key.(*mldsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("mechanisms: hash-ml-dsa sign with %T: %w", key, ck.CKR_KEY_TYPE_INCONSISTENT)
		}
		op, err := hashMLDSASetup(mech, param)
		if err != nil {
			return nil, err
		}
		return &hashMLDSASigner{hashMLDSAOp: *op, sk: sk}, nil
	}
}

func hashMLDSAVerify(mech ck.MechanismType) func(key, param any) (Verifier, error) {
	return func(key, param any) (Verifier, error) {
		pk, ok := key.(*mldsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("mechanisms: hash-ml-dsa verify with %T: %w", key, ck.CKR_KEY_TYPE_INCONSISTENT)
		}
		op, err := hashMLDSASetup(mech, param)
		if err != nil {
			return nil, err
		}
		return &hashMLDSAVerifier{hashMLDSAOp: *op, pk: pk}, nil
	}
}

// hashMLDSARows are CKM_HASH_ML_DSA, single-part (the caller gives PH(M),
// of the pre-hash's output length), and the CKM_HASH_ML_DSA_<hash>
// variants, single- and multi-part (the module hashes), with the key
// sizes and flags of CKM_ML_DSA.
func hashMLDSARows() []Mechanism {
	rows := []Mechanism{{Type: ck.CKM_HASH_ML_DSA, KeyTypes: mldsaKey,
		MinKeySize: mldsaMinKey, MaxKeySize: mldsaMaxKey, Param: ParamHashContext, SinglePart: true,
		Sign: hashMLDSASign(ck.CKM_HASH_ML_DSA), Verify: hashMLDSAVerify(ck.CKM_HASH_ML_DSA)}}
	for _, h := range mldsaPreHashes {
		if h.variant == 0 {
			continue
		}
		rows = append(rows, Mechanism{Type: h.variant, KeyTypes: mldsaKey,
			MinKeySize: mldsaMinKey, MaxKeySize: mldsaMaxKey, Param: ParamSignContext, ParamOptional: true,
			Sign: hashMLDSASign(h.variant), Verify: hashMLDSAVerify(h.variant)})
	}
	return rows
}
