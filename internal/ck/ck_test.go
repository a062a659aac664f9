package ck

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/testenv"
)

// Values every PKCS #11 client hard-codes (base spec 3.0 section 3, current
// mechanisms spec 3.0); a wrong header would break them all.
func TestWellKnownValues(t *testing.T) {
	assert.EqualValues(t, 0x0, CKR_OK)
	assert.EqualValues(t, 0xa0, CKR_PIN_INCORRECT)
	assert.EqualValues(t, 0x150, CKR_BUFFER_TOO_SMALL)
	assert.EqualValues(t, 0x200, CKR_FUNCTION_REJECTED)
	assert.EqualValues(t, 0x1b8, CKR_PIN_TOO_WEAK)
	assert.EqualValues(t, 0x202, CKR_OPERATION_CANCEL_FAILED)
	assert.EqualValues(t, 0x4, CKA_UNIQUE_ID)
	assert.EqualValues(t, 0x11, CKA_VALUE)
	assert.EqualValues(t, 0x40000211, CKA_WRAP_TEMPLATE)
	assert.EqualValues(t, 0x40000600, CKA_ALLOWED_MECHANISMS)
	assert.EqualValues(t, 0x1087, CKM_AES_GCM)
	assert.EqualValues(t, 0x1057, CKM_EDDSA)
	assert.EqualValues(t, 0x1055, CKM_EC_EDWARDS_KEY_PAIR_GEN)
	assert.EqualValues(t, 0x1056, CKM_EC_MONTGOMERY_KEY_PAIR_GEN)
	assert.EqualValues(t, 0x210b, CKM_AES_KEY_WRAP_KWP)
	assert.EqualValues(t, 0x402a, CKM_HKDF_DERIVE)
	assert.EqualValues(t, 0x3ac, CKM_SP800_108_COUNTER_KDF)
	assert.EqualValues(t, 0x40, CKK_EC_EDWARDS)
	assert.EqualValues(t, 0x41, CKK_EC_MONTGOMERY)
	assert.EqualValues(t, 0x9, CKO_PROFILE)
	assert.EqualValues(t, 2, CKU_CONTEXT_SPECIFIC)
	assert.EqualValues(t, 4, CKS_RW_SO_FUNCTIONS)
	assert.EqualValues(t, 0, CKC_X_509)
	assert.EqualValues(t, ^uint(0), CK_UNAVAILABLE_INFORMATION)

	// PKCS #11 3.2 (base specification 3.2, section 3 and the ML-KEM / ML-DSA
	// mechanism sections).
	assert.EqualValues(t, 0x49, CKK_ML_KEM)
	assert.EqualValues(t, 0x4a, CKK_ML_DSA)
	assert.EqualValues(t, 0x4b, CKK_SLH_DSA)
	assert.EqualValues(t, 0x0f, CKM_ML_KEM_KEY_PAIR_GEN)
	assert.EqualValues(t, 0x17, CKM_ML_KEM)
	assert.EqualValues(t, 0x1c, CKM_ML_DSA_KEY_PAIR_GEN)
	assert.EqualValues(t, 0x1d, CKM_ML_DSA)
	assert.EqualValues(t, 0x1f, CKM_HASH_ML_DSA)
	assert.EqualValues(t, 0x23, CKM_HASH_ML_DSA_SHA224)
	assert.EqualValues(t, 0x24, CKM_HASH_ML_DSA_SHA256)
	assert.EqualValues(t, 0x25, CKM_HASH_ML_DSA_SHA384)
	assert.EqualValues(t, 0x26, CKM_HASH_ML_DSA_SHA512)
	assert.EqualValues(t, 0x27, CKM_HASH_ML_DSA_SHA3_224)
	assert.EqualValues(t, 0x28, CKM_HASH_ML_DSA_SHA3_256)
	assert.EqualValues(t, 0x29, CKM_HASH_ML_DSA_SHA3_384)
	assert.EqualValues(t, 0x2a, CKM_HASH_ML_DSA_SHA3_512)
	assert.EqualValues(t, 0x2b, CKM_HASH_ML_DSA_SHAKE128)
	assert.EqualValues(t, 0x2c, CKM_HASH_ML_DSA_SHAKE256)
	assert.EqualValues(t, 0x61d, CKA_PARAMETER_SET)
	assert.EqualValues(t, 0x62a, CKA_ENCAPSULATE_TEMPLATE)
	assert.EqualValues(t, 0x62b, CKA_DECAPSULATE_TEMPLATE)
	assert.EqualValues(t, 0x633, CKA_ENCAPSULATE)
	assert.EqualValues(t, 0x634, CKA_DECAPSULATE)
	assert.EqualValues(t, 0x637, CKA_SEED)
	assert.EqualValues(t, 0x10000000, CKF_ENCAPSULATE)
	assert.EqualValues(t, 0x20000000, CKF_DECAPSULATE)
	assert.EqualValues(t, 1, CKP_ML_KEM_512)
	assert.EqualValues(t, 2, CKP_ML_KEM_768)
	assert.EqualValues(t, 3, CKP_ML_KEM_1024)
	assert.EqualValues(t, 1, CKP_ML_DSA_44)
	assert.EqualValues(t, 2, CKP_ML_DSA_65)
	assert.EqualValues(t, 3, CKP_ML_DSA_87)
	assert.EqualValues(t, 0, CKH_HEDGE_PREFERRED)
	assert.EqualValues(t, 1, CKH_HEDGE_REQUIRED)
	assert.EqualValues(t, 2, CKH_DETERMINISTIC_REQUIRED)
	assert.EqualValues(t, 0x204, CKR_PENDING)
	assert.EqualValues(t, 0x209, CKR_PARAMETER_SET_NOT_SUPPORTED)
	assert.EqualValues(t, 0xa, CKO_VALIDATION)
	assert.EqualValues(t, 0xb, CKO_TRUST)
	// The rest of the 3.1 and 3.2 additions, checked against the OASIS
	// header text (oasis-tcs/pkcs11 working/headers/pkcs11t.h at
	// 074bdbc316bc6b7566e723059a95e4ae638aa2c2, CRYPTOKI_VERSION 3.2).
	// That later working copy ORs CKF_ARRAY_ATTRIBUTE into
	// CKA_ENCAPSULATE_TEMPLATE / CKA_DECAPSULATE_TEMPLATE (oasis-tcs/pkcs11
	// PR #77, after issue #87 reported the published 3.2 CS01 header
	// without it) and adds CKM_ML_DSA_EXTERNAL_MU(_GEN); include/ follows
	// 3.2 as published, asserted above.
	for _, c := range []struct {
		got  ULong
		want ULong
		name string
	}{
		{ULong(CKF_SEED_RANDOM_REQUIRED), 0x02000000, "CKF_SEED_RANDOM_REQUIRED"},
		{ULong(CKF_ASYNC_SESSION_SUPPORTED), 0x04000000, "CKF_ASYNC_SESSION_SUPPORTED"},
		{ULong(CKF_ASYNC_SESSION), 0x8, "CKF_ASYNC_SESSION"},
		{ULong(CKP_COMPLETE_PROVIDER), 5, "CKP_COMPLETE_PROVIDER"},
		{ULong(CKP_HKDF_TLS_TOKEN), 6, "CKP_HKDF_TLS_TOKEN"},
		{ULong(CKK_HSS), 0x46, "CKK_HSS"},
		{ULong(CKK_XMSS), 0x47, "CKK_XMSS"},
		{ULong(CKK_XMSSMT), 0x48, "CKK_XMSSMT"},
		{ULong(CKA_HSS_LEVELS), 0x617, "CKA_HSS_LEVELS"},
		{ULong(CKA_HSS_LMS_TYPE), 0x618, "CKA_HSS_LMS_TYPE"},
		{ULong(CKA_HSS_LMOTS_TYPE), 0x619, "CKA_HSS_LMOTS_TYPE"},
		{ULong(CKA_HSS_LMS_TYPES), 0x61a, "CKA_HSS_LMS_TYPES"},
		{ULong(CKA_HSS_LMOTS_TYPES), 0x61b, "CKA_HSS_LMOTS_TYPES"},
		{ULong(CKA_HSS_KEYS_REMAINING), 0x61c, "CKA_HSS_KEYS_REMAINING"},
		{ULong(CKA_OBJECT_VALIDATION_FLAGS), 0x61e, "CKA_OBJECT_VALIDATION_FLAGS"},
		{ULong(CKA_VALIDATION_TYPE), 0x61f, "CKA_VALIDATION_TYPE"},
		{ULong(CKA_VALIDATION_VERSION), 0x620, "CKA_VALIDATION_VERSION"},
		{ULong(CKA_VALIDATION_LEVEL), 0x621, "CKA_VALIDATION_LEVEL"},
		{ULong(CKA_VALIDATION_MODULE_ID), 0x622, "CKA_VALIDATION_MODULE_ID"},
		{ULong(CKA_VALIDATION_FLAG), 0x623, "CKA_VALIDATION_FLAG"},
		{ULong(CKA_VALIDATION_AUTHORITY_TYPE), 0x624, "CKA_VALIDATION_AUTHORITY_TYPE"},
		{ULong(CKA_VALIDATION_COUNTRY), 0x625, "CKA_VALIDATION_COUNTRY"},
		{ULong(CKA_VALIDATION_CERTIFICATE_IDENTIFIER), 0x626, "CKA_VALIDATION_CERTIFICATE_IDENTIFIER"},
		{ULong(CKA_VALIDATION_CERTIFICATE_URI), 0x627, "CKA_VALIDATION_CERTIFICATE_URI"},
		{ULong(CKA_VALIDATION_VENDOR_URI), 0x628, "CKA_VALIDATION_VENDOR_URI"},
		{ULong(CKA_VALIDATION_PROFILE), 0x629, "CKA_VALIDATION_PROFILE"},
		{ULong(CKA_TRUST_SERVER_AUTH), 0x62c, "CKA_TRUST_SERVER_AUTH"},
		{ULong(CKA_TRUST_CLIENT_AUTH), 0x62d, "CKA_TRUST_CLIENT_AUTH"},
		{ULong(CKA_TRUST_CODE_SIGNING), 0x62e, "CKA_TRUST_CODE_SIGNING"},
		{ULong(CKA_TRUST_EMAIL_PROTECTION), 0x62f, "CKA_TRUST_EMAIL_PROTECTION"},
		{ULong(CKA_TRUST_IPSEC_IKE), 0x630, "CKA_TRUST_IPSEC_IKE"},
		{ULong(CKA_TRUST_TIME_STAMPING), 0x631, "CKA_TRUST_TIME_STAMPING"},
		{ULong(CKA_TRUST_OCSP_SIGNING), 0x632, "CKA_TRUST_OCSP_SIGNING"},
		{ULong(CKA_HASH_OF_CERTIFICATE), 0x635, "CKA_HASH_OF_CERTIFICATE"},
		{ULong(CKA_PUBLIC_CRC64_VALUE), 0x636, "CKA_PUBLIC_CRC64_VALUE"},
		{ULong(CKM_SLH_DSA_KEY_PAIR_GEN), 0x2d, "CKM_SLH_DSA_KEY_PAIR_GEN"},
		{ULong(CKM_SLH_DSA), 0x2e, "CKM_SLH_DSA"},
		{ULong(CKM_HASH_SLH_DSA), 0x34, "CKM_HASH_SLH_DSA"},
		{ULong(CKM_HASH_SLH_DSA_SHA224), 0x36, "CKM_HASH_SLH_DSA_SHA224"},
		{ULong(CKM_HASH_SLH_DSA_SHA256), 0x37, "CKM_HASH_SLH_DSA_SHA256"},
		{ULong(CKM_HASH_SLH_DSA_SHA384), 0x38, "CKM_HASH_SLH_DSA_SHA384"},
		{ULong(CKM_HASH_SLH_DSA_SHA512), 0x39, "CKM_HASH_SLH_DSA_SHA512"},
		{ULong(CKM_HASH_SLH_DSA_SHA3_224), 0x3a, "CKM_HASH_SLH_DSA_SHA3_224"},
		{ULong(CKM_HASH_SLH_DSA_SHA3_256), 0x3b, "CKM_HASH_SLH_DSA_SHA3_256"},
		{ULong(CKM_HASH_SLH_DSA_SHA3_384), 0x3c, "CKM_HASH_SLH_DSA_SHA3_384"},
		{ULong(CKM_HASH_SLH_DSA_SHA3_512), 0x3d, "CKM_HASH_SLH_DSA_SHA3_512"},
		{ULong(CKM_HASH_SLH_DSA_SHAKE128), 0x3e, "CKM_HASH_SLH_DSA_SHAKE128"},
		{ULong(CKM_HASH_SLH_DSA_SHAKE256), 0x3f, "CKM_HASH_SLH_DSA_SHAKE256"},
		{ULong(CKM_AES_KEY_WRAP_PKCS7), 0x210c, "CKM_AES_KEY_WRAP_PKCS7"},
		{ULong(CKM_IKE2_PRF_PLUS_DERIVE), 0x402e, "CKM_IKE2_PRF_PLUS_DERIVE"},
		{ULong(CKM_IKE_PRF_DERIVE), 0x402f, "CKM_IKE_PRF_DERIVE"},
		{ULong(CKM_IKE1_PRF_DERIVE), 0x4030, "CKM_IKE1_PRF_DERIVE"},
		{ULong(CKM_IKE1_EXTENDED_DERIVE), 0x4031, "CKM_IKE1_EXTENDED_DERIVE"},
		{ULong(CKM_HSS_KEY_PAIR_GEN), 0x4032, "CKM_HSS_KEY_PAIR_GEN"},
		{ULong(CKM_HSS), 0x4033, "CKM_HSS"},
		{ULong(CKM_XMSS_KEY_PAIR_GEN), 0x4034, "CKM_XMSS_KEY_PAIR_GEN"},
		{ULong(CKM_XMSSMT_KEY_PAIR_GEN), 0x4035, "CKM_XMSSMT_KEY_PAIR_GEN"},
		{ULong(CKM_XMSS), 0x4036, "CKM_XMSS"},
		{ULong(CKM_XMSSMT), 0x4037, "CKM_XMSSMT"},
		{ULong(CKM_ECDH_X_AES_KEY_WRAP), 0x4038, "CKM_ECDH_X_AES_KEY_WRAP"},
		{ULong(CKM_ECDH_COF_AES_KEY_WRAP), 0x4039, "CKM_ECDH_COF_AES_KEY_WRAP"},
		{ULong(CKM_PUB_KEY_FROM_PRIV_KEY), 0x403a, "CKM_PUB_KEY_FROM_PRIV_KEY"},
		{ULong(CKR_KEY_EXHAUSTED), 0x203, "CKR_KEY_EXHAUSTED"},
		{ULong(CKR_SESSION_ASYNC_NOT_SUPPORTED), 0x205, "CKR_SESSION_ASYNC_NOT_SUPPORTED"},
		{ULong(CKR_SEED_RANDOM_REQUIRED), 0x206, "CKR_SEED_RANDOM_REQUIRED"},
		{ULong(CKR_OPERATION_NOT_VALIDATED), 0x207, "CKR_OPERATION_NOT_VALIDATED"},
		{ULong(CKR_TOKEN_NOT_INITIALIZED), 0x208, "CKR_TOKEN_NOT_INITIALIZED"},
		{ULong(CKG_GENERATE_COUNTER_XOR), 4, "CKG_GENERATE_COUNTER_XOR"},
		{ULong(CKP_SLH_DSA_SHA2_128S), 1, "CKP_SLH_DSA_SHA2_128S"},
		{ULong(CKP_SLH_DSA_SHAKE_128S), 2, "CKP_SLH_DSA_SHAKE_128S"},
		{ULong(CKP_SLH_DSA_SHA2_128F), 3, "CKP_SLH_DSA_SHA2_128F"},
		{ULong(CKP_SLH_DSA_SHAKE_128F), 4, "CKP_SLH_DSA_SHAKE_128F"},
		{ULong(CKP_SLH_DSA_SHA2_192S), 5, "CKP_SLH_DSA_SHA2_192S"},
		{ULong(CKP_SLH_DSA_SHAKE_192S), 6, "CKP_SLH_DSA_SHAKE_192S"},
		{ULong(CKP_SLH_DSA_SHA2_192F), 7, "CKP_SLH_DSA_SHA2_192F"},
		{ULong(CKP_SLH_DSA_SHAKE_192F), 8, "CKP_SLH_DSA_SHAKE_192F"},
		{ULong(CKP_SLH_DSA_SHA2_256S), 9, "CKP_SLH_DSA_SHA2_256S"},
		{ULong(CKP_SLH_DSA_SHAKE_256S), 0xa, "CKP_SLH_DSA_SHAKE_256S"},
		{ULong(CKP_SLH_DSA_SHA2_256F), 0xb, "CKP_SLH_DSA_SHA2_256F"},
		{ULong(CKP_SLH_DSA_SHAKE_256F), 0xc, "CKP_SLH_DSA_SHAKE_256F"},
		{ULong(CKT_TRUST_UNKNOWN), 0, "CKT_TRUST_UNKNOWN"},
		{ULong(CKT_TRUSTED), 1, "CKT_TRUSTED"},
		{ULong(CKT_TRUST_ANCHOR), 2, "CKT_TRUST_ANCHOR"},
		{ULong(CKT_NOT_TRUSTED), 3, "CKT_NOT_TRUSTED"},
		{ULong(CKT_TRUST_MUST_VERIFY_TRUST), 4, "CKT_TRUST_MUST_VERIFY_TRUST"},
		{ULong(CKV_TYPE_UNSPECIFIED), 0, "CKV_TYPE_UNSPECIFIED"},
		{ULong(CKV_TYPE_SOFTWARE), 1, "CKV_TYPE_SOFTWARE"},
		{ULong(CKV_TYPE_HARDWARE), 2, "CKV_TYPE_HARDWARE"},
		{ULong(CKV_TYPE_FIRMWARE), 3, "CKV_TYPE_FIRMWARE"},
		{ULong(CKV_TYPE_HYBRID), 4, "CKV_TYPE_HYBRID"},
		{ULong(CKV_AUTHORITY_TYPE_UNSPECIFIED), 0, "CKV_AUTHORITY_TYPE_UNSPECIFIED"},
		{ULong(CKV_AUTHORITY_TYPE_NIST_CMVP), 1, "CKV_AUTHORITY_TYPE_NIST_CMVP"},
		{ULong(CKV_AUTHORITY_TYPE_COMMON_CRITERIA), 2, "CKV_AUTHORITY_TYPE_COMMON_CRITERIA"},
	} {
		assert.Equal(t, c.want, c.got, c.name)
	}
	// CKS_LAST_VALIDATION_OK shares CKS_RO_USER_FUNCTIONS's value; the state
	// keeps its name.
	assert.EqualValues(t, 1, CKS_LAST_VALIDATION_OK)
	assert.Equal(t, "CKS_RO_USER_FUNCTIONS", CKS_RO_USER_FUNCTIONS.String())
	assert.Equal(t, "CKM_ML_KEM", CKM_ML_KEM.String())
	assert.Equal(t, "CKK_ML_DSA", CKK_ML_DSA.String())

	// Deprecated aliases keep their values (v3.0 renamed, never renumbered).
	assert.EqualValues(t, CKK_EC, CKK_ECDSA)
	assert.EqualValues(t, CKM_EC_KEY_PAIR_GEN, CKM_ECDSA_KEY_PAIR_GEN)
	assert.EqualValues(t, CKA_EC_PARAMS, CKA_ECDSA_PARAMS)

	// Vendor values (include/gohsm.h): in the vendor range, values as
	// AWS CloudHSM documents them.
	assert.EqualValues(t, 0xc7480001, CKA_GOHSM_OWNER)
	assert.EqualValues(t, 0xc7480002, CKA_GOHSM_SHARED_USERS)
	assert.EqualValues(t, 0x80001087, CKM_CLOUDHSM_AES_GCM)
	assert.EqualValues(t, 0x80002109, CKM_CLOUDHSM_AES_KEY_WRAP_NO_PAD)
	assert.EqualValues(t, 0x8000210a, CKM_CLOUDHSM_AES_KEY_WRAP_PKCS5_PAD)
	assert.EqualValues(t, 0x8000216f, CKM_CLOUDHSM_AES_KEY_WRAP_ZERO_PAD)
	assert.EqualValues(t, 0x80000001, CKM_CLOUDHSM_SP800_108_COUNTER_KDF)
	// CloudHSM's SP 800-108 data parameter types and DKM methods.
	assert.Equal(t, []ULong{4, 5, 6, 7, 8, 1, 2}, []ULong{CK_CLOUDHSM_PRF_COUNTER_FORMAT, CK_CLOUDHSM_PRF_LABEL,
		CK_CLOUDHSM_PRF_CONTEXT, CK_CLOUDHSM_PRF_DKM_FORMAT, CK_CLOUDHSM_PRF_BYTE_ARRAY,
		CK_CLOUDHSM_DKM_SUM_OF_KEYS, CK_CLOUDHSM_DKM_SUM_OF_SEGMENTS})
}

func TestNames(t *testing.T) {
	assert.Equal(t, "CKR_PIN_INCORRECT", CKR_PIN_INCORRECT.Error())
	assert.Equal(t, "CKR_OK", CKR_OK.String())
	assert.Equal(t, "CKA_WRAP_TEMPLATE", CKA_WRAP_TEMPLATE.String())
	assert.Equal(t, "CKM_AES_GCM", CKM_AES_GCM.String())
	assert.Equal(t, "CKM_CLOUDHSM_AES_GCM", CKM_CLOUDHSM_AES_GCM.String())
	assert.Equal(t, "CKO_SECRET_KEY", CKO_SECRET_KEY.String())
	assert.Equal(t, "CKU_CONTEXT_SPECIFIC", CKU_CONTEXT_SPECIFIC.String())
	assert.Equal(t, "CKS_RW_USER_FUNCTIONS", CKS_RW_USER_FUNCTIONS.String())
	assert.Equal(t, "CKC_X_509", CKC_X_509.String())

	// Where the spec keeps a deprecated alias, String reports the current name.
	assert.Equal(t, "CKK_EC", CKK_ECDSA.String())
	assert.Equal(t, "CKM_EC_KEY_PAIR_GEN", CKM_ECDSA_KEY_PAIR_GEN.String())
	assert.Equal(t, "CKA_EC_PARAMS", CKA_ECDSA_PARAMS.String())
	assert.Equal(t, "CKK_CAST128", CKK_CAST5.String())

	// Unknown values print the family and the number.
	assert.Equal(t, "CKR(0x7ffffff0)", RV(0x7ffffff0).String())
	assert.Equal(t, "CKM(0x8000ffff)", MechanismType(0x8000ffff).String())

	m, ok := MechanismByName("CKM_EDDSA")
	require.True(t, ok)
	assert.Equal(t, CKM_EDDSA, m)
	_, ok = MechanismByName("CKM_NO_SUCH_THING")
	assert.False(t, ok)

	r, ok := RVByName("CKR_DEVICE_ERROR")
	require.True(t, ok)
	assert.Equal(t, CKR_DEVICE_ERROR, r)
	_, ok = RVByName("CKR_NO_SUCH_THING")
	assert.False(t, ok)
}

// Every entry of every value->name table names a constant of its own family
// and maps back to its value.
func TestNameTablesRoundTrip(t *testing.T) {
	check := func(family string, n int, each func(func(v uint, name, str string))) {
		t.Helper()
		assert.NotZero(t, n, family)
		each(func(v uint, name, str string) {
			assert.True(t, strings.HasPrefix(name, family+"_"), "%s in %s table", name, family)
			assert.Equal(t, name, str, "%s(0x%x)", family, v)
		})
	}
	check("CKR", len(rvNames()), func(f func(uint, string, string)) {
		for v, n := range rvNames() {
			f(uint(v), n, v.String())
		}
	})
	check("CKA", len(attributeTypeNames()), func(f func(uint, string, string)) {
		for v, n := range attributeTypeNames() {
			f(uint(v), n, v.String())
		}
	})
	check("CKM", len(mechanismTypeNames()), func(f func(uint, string, string)) {
		for v, n := range mechanismTypeNames() {
			f(uint(v), n, v.String())
			got, ok := MechanismByName(n)
			assert.True(t, ok, n)
			assert.Equal(t, v, got, n)
		}
	})
	check("CKO", len(objectClassNames()), func(f func(uint, string, string)) {
		for v, n := range objectClassNames() {
			f(uint(v), n, v.String())
		}
	})
	check("CKK", len(keyTypeNames()), func(f func(uint, string, string)) {
		for v, n := range keyTypeNames() {
			f(uint(v), n, v.String())
		}
	})
	check("CKU", len(userTypeNames()), func(f func(uint, string, string)) {
		for v, n := range userTypeNames() {
			f(uint(v), n, v.String())
		}
	})
	check("CKS", len(stateNames()), func(f func(uint, string, string)) {
		for v, n := range stateNames() {
			f(uint(v), n, v.String())
		}
	})
	check("CKC", len(certificateTypeNames()), func(f func(uint, string, string)) {
		for v, n := range certificateTypeNames() {
			f(uint(v), n, v.String())
		}
	})
}

// RV is an error: wrapped with context it is still found by errors.Is/As,
// which is how the C boundary recovers the return value.
func TestRVWrapping(t *testing.T) {
	err := fmt.Errorf("aes-gcm: tag %d bits: %w", 33, CKR_MECHANISM_PARAM_INVALID)
	assert.ErrorIs(t, err, CKR_MECHANISM_PARAM_INVALID)
	assert.NotErrorIs(t, err, CKR_ARGUMENTS_BAD)
	var rv RV
	require.ErrorAs(t, err, &rv)
	assert.Equal(t, CKR_MECHANISM_PARAM_INVALID, rv)
	assert.Equal(t, "aes-gcm: tag 33 bits: CKR_MECHANISM_PARAM_INVALID", err.Error())
}

// zconst.go must be exactly what the generator makes from include/ now: run
// the //go:generate command of ck.go with the output sent to a temp file.
func TestGeneratedFileUpToDate(t *testing.T) {
	goTool, err := exec.LookPath("go")
	require.NoError(t, err, "the go tool is needed to regenerate zconst.go")

	src, err := os.ReadFile("ck.go")
	require.NoError(t, err)
	var args []string
	for _, line := range strings.Split(string(src), "\n") {
		if rest, ok := strings.CutPrefix(line, "//go:generate go "); ok {
			args = strings.Fields(rest)
		}
	}
	require.NotEmpty(t, args, "ck.go has no //go:generate go ... line")
	out := filepath.Join(t.TempDir(), "zconst.go")
	replaced := false
	for i := range args {
		if args[i] == "-o" && i+1 < len(args) {
			args[i+1] = out
			replaced = true
		}
	}
	require.True(t, replaced, "the go:generate line has no -o flag: %q", args)

	cmd := exec.Command(goTool, args...)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Run(), "go %s", strings.Join(args, " "))

	want, err := os.ReadFile(out)
	require.NoError(t, err)
	have, err := os.ReadFile("zconst.go")
	require.NoError(t, err)
	if !bytes.Equal(want, have) {
		t.Fatal("zconst.go is stale: run `go generate ./internal/ck` after changing include/")
	}
}

// The C headers compile and have the LP64 ABI clients expect
// (tests/c/headers_check.c holds the _Static_asserts).
func TestHeadersCompile(t *testing.T) {
	name := os.Getenv("CC")
	if name == "" {
		name = "gcc"
	}
	cc, err := exec.LookPath(name)
	if err != nil {
		// CI has a compiler (tests/deps.sh): there a missing one fails.
		testenv.Missing(t, "C compiler %q not found: the header ABI check needs one: %v", name, err)
	}
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	cmd := exec.Command(cc, "-Wall", "-Werror", "-std=c11",
		"-I"+filepath.Join(root, "include"),
		"-c", filepath.Join(root, "tests", "c", "headers_check.c"),
		"-o", os.DevNull)
	outb, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", outb)
}

func TestErrorIsComparable(t *testing.T) {
	// errors.Is compares RVs with ==; distinct codes must not match.
	assert.False(t, errors.Is(CKR_PIN_INCORRECT, CKR_PIN_INVALID))
	assert.True(t, errors.Is(CKR_PIN_INCORRECT, CKR_PIN_INCORRECT))
}
