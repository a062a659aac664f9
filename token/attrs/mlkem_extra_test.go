package attrs

import "gohsm/internal/ck"

// The ML-KEM public and private key schemas, and the private key's seed
// and expanded key.
func init() {
	extraSchemas += 2
	type secret = struct {
		class ck.ObjectClass
		kt    ck.KeyType
		a     ck.AttributeType
	}
	extraSecrets = append(extraSecrets, secret{ck.CKO_PRIVATE_KEY, ck.CKK_ML_KEM, ck.CKA_SEED},
		secret{ck.CKO_PRIVATE_KEY, ck.CKK_ML_KEM, ck.CKA_VALUE})
}
