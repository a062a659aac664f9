package mechanisms

import (
	"crypto/mlkem"
	"fmt"
	"io"

	"github.com/cloudflare/circl/kem/mlkem/mlkem1024"
	"github.com/cloudflare/circl/kem/mlkem/mlkem512"
	"github.com/cloudflare/circl/kem/mlkem/mlkem768"

	"gohsm/internal/ck"
)

// ML-KEM (FIPS 203; PKCS #11 3.2 "ML-KEM"): CKM_ML_KEM_KEY_PAIR_GEN and
// CKM_ML_KEM for C_EncapsulateKey / C_DecapsulateKey.
//
// Keys:
//
//	decapsulation (private) key  *mlkem.DecapsulationKey768 / 1024, *mlkem512Private
//	encapsulation (public) key   *mlkem.EncapsulationKey768 / 1024, *mlkem512Public
//
// ML-KEM-768 and -1024 run on Go's crypto/mlkem. ML-KEM-512 runs on
// github.com/cloudflare/circl's kem/mlkem/mlkem512: crypto/mlkem has no
// ML-KEM-512. A decapsulation key is made from, and stored as, its 64-byte
// seed (d || z) for every set; its expanded form (FIPS 203 dk, the private
// CKA_VALUE) is computed from the seed with circl (MLKEMExpandedKey), since
// crypto/mlkem does not encode it (docs/design.md, "ML-KEM").
//
// CK_MECHANISM_INFO gives key sizes as the parameter set's number (512,
// 768, 1024), the unit keyInfo reports.

// MLKEMSharedKeySize is the length of an ML-KEM shared secret (FIPS 203: 32
// bytes for every parameter set).
const MLKEMSharedKeySize = mlkem.SharedKeySize

// MLKEMSeedSize is the length of CKA_SEED of an ML-KEM private key (d || z).
const MLKEMSeedSize = mlkem.SeedSize

// mlkem512Private is an ML-KEM-512 decapsulation key: circl's key and the
// seed it was made from (the key object's CKA_SEED).
type mlkem512Private struct {
	seed []byte
	sk   *mlkem512.PrivateKey
	pub  *mlkem512Public
}

// mlkem512Public is an ML-KEM-512 encapsulation key and its encoding.
type mlkem512Public struct {
	pk *mlkem512.PublicKey
	ek []byte
}

var mlkemKey = []ck.KeyType{ck.CKK_ML_KEM}

func mlkemRows() []Mechanism {
	return []Mechanism{
		{
			Type: ck.CKM_ML_KEM_KEY_PAIR_GEN, KeyTypes: mlkemKey, MinKeySize: 512, MaxKeySize: 1024,
			GenerateKeyPair: mlkemGenerate,
		},
		{
			Type: ck.CKM_ML_KEM, KeyTypes: mlkemKey, MinKeySize: 512, MaxKeySize: 1024,
			Encapsulate: mlkemEncapsulate, Decapsulate: mlkemDecapsulate,
			CiphertextSize: MLKEMCiphertextSize,
		},
	}
}

// MLKEMParameterSetBits is the parameter set's number (768 for
// CKP_ML_KEM_768), or CKR_ATTRIBUTE_VALUE_INVALID for a value that names
// none.
func MLKEMParameterSetBits(set ck.ULong) (int, error) {
	switch set {
	case ck.CKP_ML_KEM_512:
		return 512, nil
	case ck.CKP_ML_KEM_768:
		return 768, nil
	case ck.CKP_ML_KEM_1024:
		return 1024, nil
	}
	return 0, fmt.Errorf("mechanisms: CKA_PARAMETER_SET %d is no ML-KEM parameter set: %w", set, ck.CKR_ATTRIBUTE_VALUE_INVALID)
}

// MLKEMPrivateKey makes a decapsulation key from its parameter set and
// 64-byte seed (CKA_SEED).
func MLKEMPrivateKey(set ck.ULong, seed []byte) (any, error) {
	bits, err := MLKEMParameterSetBits(set)
	if err != nil {
		return nil, err
	}
	if len(seed) != mlkem.SeedSize {
		return nil, fmt.Errorf("mechanisms: ML-KEM seed of %d bytes, want %d: %w", len(seed), mlkem.SeedSize, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	var k any
	switch bits {
	case 512:
		pk, sk := mlkem512.NewKeyFromSeed(seed) // length checked above
		ek := make([]byte, mlkem512.PublicKeySize)
		pk.Pack(ek)
		return &mlkem512Private{seed: append([]byte(nil), seed...), sk: sk, pub: &mlkem512Public{pk: pk, ek: ek}}, nil
	case 768:
		k, err = mlkem.NewDecapsulationKey768(seed)
	default:
		k, err = mlkem.NewDecapsulationKey1024(seed)
	}
	if err != nil {
		return nil, fmt.Errorf("mechanisms: ML-KEM seed: %v: %w", err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	return k, nil
}

// MLKEMPublicKey makes an encapsulation key from its parameter set and
// encoding (CKA_VALUE: FIPS 203 ek, 800, 1184 or 1568 bytes), checking it
// as FIPS 203 §7.2 requires.
func MLKEMPublicKey(set ck.ULong, ek []byte) (any, error) {
	bits, err := MLKEMParameterSetBits(set)
	if err != nil {
		return nil, err
	}
	var k any
	switch bits {
	case 512:
		pk := new(mlkem512.PublicKey)
		if err = pk.Unpack(ek); err == nil { // size and modulus check
			k = &mlkem512Public{pk: pk, ek: append([]byte(nil), ek...)}
		}
	case 768:
		k, err = mlkem.NewEncapsulationKey768(ek)
	default:
		k, err = mlkem.NewEncapsulationKey1024(ek)
	}
	if err != nil {
		return nil, fmt.Errorf("mechanisms: ML-KEM-%d encapsulation key of %d bytes: %v: %w", bits, len(ek), err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	return k, nil
}

// MLKEMKeyMaterial is what a key object stores: the parameter set, the
// encapsulation key's encoding, and for a private key its seed (nil for a
// public key). ok is false for a key that is not ML-KEM.
func MLKEMKeyMaterial(key any) (set ck.ULong, ek, seed []byte, ok bool) {
	switch k := key.(type) {
	case *mlkem512Private:
		return ck.CKP_ML_KEM_512, append([]byte(nil), k.pub.ek...), append([]byte(nil), k.seed...), true
	case *mlkem.DecapsulationKey768:
		return ck.CKP_ML_KEM_768, k.EncapsulationKey().Bytes(), k.Bytes(), true
	case *mlkem.DecapsulationKey1024:
		return ck.CKP_ML_KEM_1024, k.EncapsulationKey().Bytes(), k.Bytes(), true
	case *mlkem512Public:
		return ck.CKP_ML_KEM_512, append([]byte(nil), k.ek...), nil, true
	case *mlkem.EncapsulationKey768:
		return ck.CKP_ML_KEM_768, k.Bytes(), nil, true
	case *mlkem.EncapsulationKey1024:
		return ck.CKP_ML_KEM_1024, k.Bytes(), nil, true
	}
	return 0, nil, nil, false
}

// MLKEMExpandedKey is the expanded decapsulation key (FIPS 203 dk:
// dk_PKE || ek || H(ek) || z; 1632, 2400 or 3168 bytes) of an ML-KEM
// private key, the private key object's CKA_VALUE; nil for another key.
// crypto/mlkem does not encode it, so for 768 and 1024 circl computes it
// from the seed (checked against every Wycheproof keygen vector's dk).
func MLKEMExpandedKey(key any) []byte {
	switch k := unprepared(key).(type) {
	case *mlkem512Private:
		dk := make([]byte, mlkem512.PrivateKeySize)
		k.sk.Pack(dk)
		return dk
	case *mlkem.DecapsulationKey768:
		seed := k.Bytes()
		defer clear(seed)
		_, sk := mlkem768.NewKeyFromSeed(seed)
		dk := make([]byte, mlkem768.PrivateKeySize)
		sk.Pack(dk)
		return dk
	case *mlkem.DecapsulationKey1024:
		seed := k.Bytes()
		defer clear(seed)
		_, sk := mlkem1024.NewKeyFromSeed(seed)
		dk := make([]byte, mlkem1024.PrivateKeySize)
		sk.Pack(dk)
		return dk
	}
	return nil
}

// MLKEMCiphertextSize is the ciphertext length of an ML-KEM key (either
// half), 0 for another key.
func MLKEMCiphertextSize(key any) int {
	switch unprepared(key).(type) {
	case *mlkem512Private, *mlkem512Public:
		return mlkem512.CiphertextSize
	case *mlkem.DecapsulationKey768, *mlkem.EncapsulationKey768:
		return mlkem.CiphertextSize768
	case *mlkem.DecapsulationKey1024, *mlkem.EncapsulationKey1024:
		return mlkem.CiphertextSize1024
	}
	return 0
}

func mlkemGenerate(rand io.Reader, p KeyGenParams) (pub, priv any, err error) {
	// ML-KEM.KeyGen takes 64 random bytes (d || z); drawing them from the
	// token's source keeps generation on its random number generator.
	seed := make([]byte, mlkem.SeedSize)
	if _, err := io.ReadFull(rand, seed); err != nil {
		return nil, nil, fmt.Errorf("mechanisms: ML-KEM seed: %v: %w", err, ck.CKR_FUNCTION_FAILED)
	}
	defer clear(seed)
	dk, err := MLKEMPrivateKey(p.ParameterSet, seed)
	if err != nil {
		return nil, nil, err
	}
	switch k := dk.(type) {
	case *mlkem512Private:
		return k.pub, k, nil
	case *mlkem.DecapsulationKey768:
		return k.EncapsulationKey(), k, nil
	case *mlkem.DecapsulationKey1024:
		return k.EncapsulationKey(), k, nil
	}
	return nil, nil, fmt.Errorf("mechanisms: ML-KEM key of type %T: %w", dk, ck.CKR_GENERAL_ERROR)
}

func mlkemEncapsulate(pub any, _ any) (secret, ciphertext []byte, err error) {
	switch k := unprepared(pub).(type) {
	case *mlkem512Public:
		secret, ciphertext = make([]byte, mlkem512.SharedKeySize), make([]byte, mlkem512.CiphertextSize)
		k.pk.EncapsulateTo(ciphertext, secret, nil) // m from crypto/rand, as crypto/mlkem draws it
	case *mlkem.EncapsulationKey768:
		secret, ciphertext = k.Encapsulate()
	case *mlkem.EncapsulationKey1024:
		secret, ciphertext = k.Encapsulate()
	default:
		return nil, nil, fmt.Errorf("mechanisms: ML-KEM encapsulation with a %T: %w", pub, ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	return secret, ciphertext, nil
}

// mlkemDecapsulate never fails on a well-sized ciphertext: a tampered one
// yields FIPS 203's implicit-rejection key, a different 32-byte secret.
func mlkemDecapsulate(priv any, _ any, ciphertext []byte) ([]byte, error) {
	var (
		secret []byte
		err    error
		want   int
	)
	switch k := unprepared(priv).(type) {
	case *mlkem512Private:
		want = mlkem512.CiphertextSize
		if len(ciphertext) == want {
			secret = make([]byte, mlkem512.SharedKeySize)
			k.sk.DecapsulateTo(secret, ciphertext)
		}
	case *mlkem.DecapsulationKey768:
		want = mlkem.CiphertextSize768
		if len(ciphertext) == want {
			secret, err = k.Decapsulate(ciphertext)
		}
	case *mlkem.DecapsulationKey1024:
		want = mlkem.CiphertextSize1024
		if len(ciphertext) == want {
			secret, err = k.Decapsulate(ciphertext)
		}
	default:
		return nil, fmt.Errorf("mechanisms: ML-KEM decapsulation with a %T: %w", priv, ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	if len(ciphertext) != want {
		return nil, fmt.Errorf("mechanisms: ML-KEM ciphertext of %d bytes, want %d: %w", len(ciphertext), want, ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
	}
	if err != nil {
		return nil, fmt.Errorf("mechanisms: ML-KEM decapsulation: %v: %w", err, ck.CKR_ENCRYPTED_DATA_INVALID)
	}
	return secret, nil
}
