package ck

// Temporary: the PKCS#11 3.2 ML-DSA names gohsm uses, until the 3.2
// headers land in include/ and zconst.go is regenerated from them (then
// this file is deleted). Values from the OASIS PKCS#11 3.2 pkcs11t.h.
const (
	CKK_ML_DSA KeyType = 0x4a

	CKA_PARAMETER_SET AttributeType = 0x61d
	CKA_SEED          AttributeType = 0x637

	CKM_ML_DSA_KEY_PAIR_GEN  MechanismType = 0x1c
	CKM_ML_DSA               MechanismType = 0x1d
	CKM_HASH_ML_DSA          MechanismType = 0x1f
	CKM_HASH_ML_DSA_SHA224   MechanismType = 0x23
	CKM_HASH_ML_DSA_SHA256   MechanismType = 0x24
	CKM_HASH_ML_DSA_SHA384   MechanismType = 0x25
	CKM_HASH_ML_DSA_SHA512   MechanismType = 0x26
	CKM_HASH_ML_DSA_SHA3_224 MechanismType = 0x27
	CKM_HASH_ML_DSA_SHA3_256 MechanismType = 0x28
	CKM_HASH_ML_DSA_SHA3_384 MechanismType = 0x29
	CKM_HASH_ML_DSA_SHA3_512 MechanismType = 0x2a
	CKM_HASH_ML_DSA_SHAKE128 MechanismType = 0x2b
	CKM_HASH_ML_DSA_SHAKE256 MechanismType = 0x2c

	CKP_ML_DSA_44 ULong = 1
	CKP_ML_DSA_65 ULong = 2
	CKP_ML_DSA_87 ULong = 3

	CKH_HEDGE_PREFERRED        ULong = 0
	CKH_HEDGE_REQUIRED         ULong = 1
	CKH_DETERMINISTIC_REQUIRED ULong = 2
)
