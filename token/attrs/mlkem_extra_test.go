package attrs

import "gohsm/internal/ck"

// The ML-KEM public and private key schemas, and the private key's seed.
func init() {
	extraSchemas += 2
	extraSecrets = append(extraSecrets, struct {
		class ck.ObjectClass
		kt    ck.KeyType
		a     ck.AttributeType
	}{ck.CKO_PRIVATE_KEY, ck.CKK_ML_KEM, ck.CKA_SEED})
}
