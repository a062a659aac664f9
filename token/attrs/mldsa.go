package attrs

import (
	"crypto/mldsa"
	"fmt"

	"gohsm/internal/ck"
	"gohsm/mechanisms"
)

// PKCS#11 3.2, "ML-DSA public key objects": CKA_PARAMETER_SET (footnotes
// 1, 3) and CKA_VALUE, the FIPS 204 public key (1, 4).
var mldsaPublicTable = table{
	ulong(ck.CKA_PARAMETER_SET, MustCreate|MustGenerate, nil),
	value(ck.CKA_VALUE, KindBytes, MustCreate|NotGenerate),
}

// PKCS#11 3.2, "ML-DSA private key objects": CKA_PARAMETER_SET (1, 4, 6),
// CKA_SEED (4, 6, 7), CKA_VALUE (1, 4, 6, 7). The spec asks for at least
// one of CKA_SEED and CKA_VALUE on C_CreateObject and lets a token refuse
// one alone: gohsm needs the seed (crypto/mldsa signs from the seed and
// cannot load an expanded key), so CKA_SEED is required; CKA_VALUE, the
// expanded key, is computed from it and, when given too, must match it
// (Derived: CKR_ATTRIBUTE_VALUE_INVALID otherwise).
var mldsaPrivateTable = table{
	ulong(ck.CKA_PARAMETER_SET, MustCreate|NotGenerate|NotUnwrap, nil),
	value(ck.CKA_SEED, KindBytes, MustCreate|NotGenerate|NotUnwrap|Sensitive),
	value(ck.CKA_VALUE, KindBytes, NotGenerate|NotUnwrap|Sensitive|Derived),
}

func mldsaSet(t Reader) (ck.ULong, error) {
	set, ok := t.ULong(ck.CKA_PARAMETER_SET)
	if !ok {
		return 0, fmt.Errorf("ml-dsa: CKA_PARAMETER_SET not a CK_ULONG: %w", ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	return set, nil
}

func mldsaPublicFromTemplate(_ ck.KeyType, t Reader) (any, error) {
	set, err := mldsaSet(t)
	if err != nil {
		return nil, err
	}
	return mechanisms.MLDSAPublicKey(set, attrOf(t, ck.CKA_VALUE))
}

func mldsaPrivateFromTemplate(_ ck.KeyType, t Reader) (any, error) {
	set, err := mldsaSet(t)
	if err != nil {
		return nil, err
	}
	return mechanisms.MLDSAPrivateKey(set, attrOf(t, ck.CKA_SEED))
}

func mldsaPublicTemplate(k *mldsa.PublicKey) Template {
	return Template{
		ck.CKA_PARAMETER_SET: ULong(mechanisms.MLDSAParameterSet(k.Parameters())),
		ck.CKA_VALUE:         k.Bytes(),
	}
}

func mldsaPrivateTemplate(k *mldsa.PrivateKey) Template {
	return Template{
		ck.CKA_PARAMETER_SET: ULong(mechanisms.MLDSAParameterSet(k.PublicKey().Parameters())),
		ck.CKA_SEED:          k.Bytes(), // a copy
		ck.CKA_VALUE:         mechanisms.MLDSAExpandedKey(k),
	}
}
