package attrs

import (
	"slices"

	"gohsm/internal/ck"
)

// The per-hash HMAC key types (PKCS#11 v3.0 Current Mechanisms, "SHA-2" and
// "SHA-3" key objects: CKK_SHA256_HMAC, ...) and CKK_HKDF ("HKDF key
// objects") are secret keys shaped like generic secrets: CKA_VALUE of any
// non-zero length and CKA_VALUE_LEN; they sign and verify (HMAC) or derive
// (HKDF) by default.
var hmacKeyTypes = []ck.KeyType{
	ck.CKK_SHA_1_HMAC, ck.CKK_SHA224_HMAC, ck.CKK_SHA256_HMAC, ck.CKK_SHA384_HMAC, ck.CKK_SHA512_HMAC,
	ck.CKK_SHA512_224_HMAC, ck.CKK_SHA512_256_HMAC,
	ck.CKK_SHA3_224_HMAC, ck.CKK_SHA3_256_HMAC, ck.CKK_SHA3_384_HMAC, ck.CKK_SHA3_512_HMAC,
}

// hmacSecretParts are the tables of an HMAC or HKDF key's schema, before
// its usage defaults.
var hmacSecretParts = []table{objectTable, storageTable, keyTable, secretTable, secretValueTable, valueLenTable}

// addHMACSchemas adds the HMAC and HKDF key types' schemas to m (schemas).
func addHMACSchemas(m map[schemaKey]*Schema) {
	add := func(kt ck.KeyType, use table) {
		parts := append(append([]table{}, hmacSecretParts...), use)
		m[schemaKey{ck.CKO_SECRET_KEY, kt}] = compose(ck.CKO_SECRET_KEY, kt, parts...)
	}
	for _, kt := range hmacKeyTypes {
		add(kt, usage(ck.CKA_SIGN, ck.CKA_VERIFY))
	}
	add(ck.CKK_HKDF, usage(ck.CKA_DERIVE))
}

// addHMACConverters gives the HMAC and HKDF key types the generic secret's
// conversion in m (converters).
func addHMACConverters(m map[schemaKey]converter) {
	generic := m[schemaKey{ck.CKO_SECRET_KEY, ck.CKK_GENERIC_SECRET}]
	for _, kt := range append(slices.Clone(hmacKeyTypes), ck.CKK_HKDF) {
		m[schemaKey{ck.CKO_SECRET_KEY, kt}] = generic
	}
}
