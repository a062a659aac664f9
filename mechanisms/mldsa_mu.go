package mechanisms

import (
	"crypto/mldsa"
	"fmt"
	"sync"

	"gohsm/internal/ck"
)

// MLDSAExternalMu signs and verifies an external μ (FIPS 204 Algorithm 7
// line 6's μ computed by the caller: SHAKE256(tr || M', 64)), what
// CloudHSM CLI's `crypto sign ml-dsa --data-type external-mu` signs.
// PKCS#11 3.2 defines no such mechanism, so it is no row of the table:
// no profile's PKCS#11 list holds it, C_GetMechanismList never reports it
// and a C_SignInit naming its value answers CKR_MECHANISM_INVALID. It is
// reached only through LookupCLI, by the emulated CloudHSM CLI. The value
// is in gohsm's own part of the vendor range, apart from CloudHSM's
// (0x8000xxxx).
const MLDSAExternalMu = ck.CKM_VENDOR_DEFINED | 0x474f0001

// mlDSAMuSize is μ's length in bytes (FIPS 204: 512 bits).
const mlDSAMuSize = 64

// cliRows are the rows only the emulated CloudHSM CLI reaches.
var cliRows = []Mechanism{
	{Type: MLDSAExternalMu, KeyTypes: mldsaKey,
		MinKeySize: mldsaMinKey, MaxKeySize: mldsaMaxKey, SinglePart: true,
		Sign: mldsaMuSign, Verify: mldsaMuVerify},
}

var cliTable = sync.OnceValue(func() map[ck.MechanismType]*Mechanism {
	m, _ := build(cliRows)
	return m
})

// LookupCLI returns a row that only the emulated CloudHSM CLI reaches
// (MLDSAExternalMu), guarded like every row of the table.
func LookupCLI(t ck.MechanismType) (*Mechanism, bool) {
	m, ok := cliTable()[t]
	return m, ok
}

// mldsaMuOp holds the μ given so far.
type mldsaMuOp struct{ mu []byte }

func (op *mldsaMuOp) Update(p []byte) error {
	var err error
	op.mu, err = buffer(op.mu, p, "ml-dsa external mu")
	return err
}

// given is the μ given, for signByMu and verifyByMu: it must be 64 bytes.
func (op *mldsaMuOp) given([]byte) ([]byte, error) {
	if len(op.mu) != mlDSAMuSize {
		return nil, fmt.Errorf("mechanisms: ml-dsa external mu of %d bytes, want %d: %w", len(op.mu), mlDSAMuSize, ck.CKR_DATA_LEN_RANGE)
	}
	return op.mu, nil
}

type mldsaMuSigner struct {
	mldsaMuOp
	sk *mldsa.PrivateKey
}

func (s *mldsaMuSigner) Size() int { return s.sk.PublicKey().Parameters().SignatureSize() }

// Sign is ML-DSA.Sign_internal of the caller's μ (FIPS 204 Algorithm 7),
// hedged: CloudHSM CLI has no deterministic option.
func (s *mldsaMuSigner) Sign(dst []byte) ([]byte, error) {
	return signByMu(dst, "ml-dsa external mu", s.sk, false, s.given)
}

type mldsaMuVerifier struct {
	mldsaMuOp
	pk *mldsa.PublicKey
}

// Verify is ML-DSA.Verify_internal of the caller's μ (FIPS 204 Algorithm
// 8) through verifyMu: crypto/mldsa verifies no external μ.
func (v *mldsaMuVerifier) Verify(sig []byte) error {
	return verifyByMu("ml-dsa external mu", v.pk, sig, v.given)
}

func mldsaMuSign(key, _ any) (Signer, error) {
	sk, ok := key.(*mldsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("mechanisms: ml-dsa external mu sign with %T: %w", key, ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	return &mldsaMuSigner{sk: sk}, nil
}

func mldsaMuVerify(key, _ any) (Verifier, error) {
	pk, ok := key.(*mldsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("mechanisms: ml-dsa external mu verify with %T: %w", key, ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	return &mldsaMuVerifier{pk: pk}, nil
}
