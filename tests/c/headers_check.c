/*
 * headers_check.c - compile-time checks of the Cryptoki headers in include/.
 *
 * Build (it produces no program; compiling is the test):
 *   gcc -Wall -Werror -std=c11 -Iinclude -c tests/c/headers_check.c -o /dev/null
 *
 * The asserted sizes and offsets are the LP64 ABI that every PKCS #11 client
 * on Linux/amd64 and arm64 is compiled against: a mismatch here means a
 * client would read garbage from libgohsm.so.
 */

#include <stddef.h>

#include "pkcs11.h"
#include "gohsm.h"

#define PTR sizeof(void *)

/* Basic types (spec 3.1). */
_Static_assert(sizeof(CK_BYTE) == 1, "CK_BYTE");
_Static_assert(sizeof(CK_BBOOL) == 1, "CK_BBOOL");
_Static_assert(sizeof(CK_ULONG) == 8, "CK_ULONG is unsigned long, 64 bits on LP64");
_Static_assert(sizeof(CK_LONG) == 8, "CK_LONG");
_Static_assert(CK_UNAVAILABLE_INFORMATION == 0xFFFFFFFFFFFFFFFFUL, "CK_UNAVAILABLE_INFORMATION is ~0UL");

/* General structures (spec 3.2-3.5). */
_Static_assert(sizeof(CK_VERSION) == 2, "CK_VERSION");
_Static_assert(offsetof(CK_INFO, manufacturerID) == 2, "CK_INFO.manufacturerID");
_Static_assert(offsetof(CK_INFO, flags) == 40, "CK_INFO.flags");
_Static_assert(offsetof(CK_INFO, libraryDescription) == 48, "CK_INFO.libraryDescription");
_Static_assert(offsetof(CK_INFO, libraryVersion) == 80, "CK_INFO.libraryVersion");
_Static_assert(sizeof(CK_INFO) == 88, "CK_INFO");
_Static_assert(offsetof(CK_SLOT_INFO, flags) == 96, "CK_SLOT_INFO.flags");
_Static_assert(sizeof(CK_SLOT_INFO) == 112, "CK_SLOT_INFO");
_Static_assert(offsetof(CK_TOKEN_INFO, flags) == 96, "CK_TOKEN_INFO.flags");
_Static_assert(offsetof(CK_TOKEN_INFO, ulMaxSessionCount) == 104, "CK_TOKEN_INFO.ulMaxSessionCount");
_Static_assert(offsetof(CK_TOKEN_INFO, ulFreePrivateMemory) == 176, "CK_TOKEN_INFO.ulFreePrivateMemory");
_Static_assert(offsetof(CK_TOKEN_INFO, hardwareVersion) == 184, "CK_TOKEN_INFO.hardwareVersion");
_Static_assert(offsetof(CK_TOKEN_INFO, utcTime) == 188, "CK_TOKEN_INFO.utcTime");
_Static_assert(sizeof(CK_TOKEN_INFO) == 208, "CK_TOKEN_INFO");
_Static_assert(sizeof(CK_SESSION_INFO) == 32, "CK_SESSION_INFO");
_Static_assert(sizeof(CK_ATTRIBUTE) == 24, "CK_ATTRIBUTE");
_Static_assert(offsetof(CK_ATTRIBUTE, ulValueLen) == 16, "CK_ATTRIBUTE.ulValueLen");
_Static_assert(sizeof(CK_DATE) == 8, "CK_DATE");
_Static_assert(sizeof(CK_MECHANISM) == 24, "CK_MECHANISM");
_Static_assert(sizeof(CK_MECHANISM_INFO) == 24, "CK_MECHANISM_INFO");
_Static_assert(sizeof(CK_C_INITIALIZE_ARGS) == 6 * PTR, "CK_C_INITIALIZE_ARGS");
_Static_assert(sizeof(CK_INTERFACE) == 24, "CK_INTERFACE");
_Static_assert(offsetof(CK_INTERFACE, flags) == 16, "CK_INTERFACE.flags");

/* Function lists (spec 3.7 / 5): the version padded to 8 bytes, then 68
 * pointers (v2.40) and, for 3.0, 24 more. */
_Static_assert(offsetof(CK_FUNCTION_LIST, C_Initialize) == PTR, "version padded to one pointer");
_Static_assert(sizeof(CK_FUNCTION_LIST) == PTR * (1 + 68), "CK_FUNCTION_LIST has 68 functions");
_Static_assert(sizeof(CK_FUNCTION_LIST_3_0) == PTR * (1 + 68 + 24), "CK_FUNCTION_LIST_3_0 has 92 functions");
_Static_assert(offsetof(CK_FUNCTION_LIST, C_GetFunctionList) == PTR * 4, "C_GetFunctionList is the 4th");
_Static_assert(offsetof(CK_FUNCTION_LIST, C_Login) == PTR * 19, "C_Login is the 19th");
_Static_assert(offsetof(CK_FUNCTION_LIST, C_EncryptInit) == PTR * 30, "C_EncryptInit is the 30th");
_Static_assert(offsetof(CK_FUNCTION_LIST, C_GenerateKey) == PTR * 59, "C_GenerateKey is the 59th");
_Static_assert(offsetof(CK_FUNCTION_LIST, C_WaitForSlotEvent) == PTR * 68, "C_WaitForSlotEvent is the 68th");
_Static_assert(offsetof(CK_FUNCTION_LIST_3_0, C_WaitForSlotEvent) == offsetof(CK_FUNCTION_LIST, C_WaitForSlotEvent),
               "the 3.0 list starts with the 2.40 list");
_Static_assert(offsetof(CK_FUNCTION_LIST_3_0, C_GetInterfaceList) == offsetof(CK_FUNCTION_LIST, C_WaitForSlotEvent) + PTR,
               "C_GetInterfaceList follows C_WaitForSlotEvent");
_Static_assert(offsetof(CK_FUNCTION_LIST_3_0, C_LoginUser) == PTR * 71, "C_LoginUser");
_Static_assert(offsetof(CK_FUNCTION_LIST_3_0, C_MessageEncryptInit) == PTR * 73, "C_MessageEncryptInit");
_Static_assert(offsetof(CK_FUNCTION_LIST_3_0, C_MessageDecryptInit) == PTR * 78, "C_MessageDecryptInit");
_Static_assert(offsetof(CK_FUNCTION_LIST_3_0, C_MessageSignInit) == PTR * 83, "C_MessageSignInit");
_Static_assert(offsetof(CK_FUNCTION_LIST_3_0, C_MessageVerifyInit) == PTR * 88, "C_MessageVerifyInit");
_Static_assert(offsetof(CK_FUNCTION_LIST_3_0, C_MessageVerifyFinal) == PTR * 92, "C_MessageVerifyFinal is last");

/* The 3.2 list: the 3.0 list followed by the 10 functions added in 3.2, in
 * the spec's order (C_EncapsulateKey .. C_AsyncJoin). */
_Static_assert(sizeof(CK_FUNCTION_LIST_3_2) == PTR * (1 + 68 + 24 + 10), "CK_FUNCTION_LIST_3_2 has 102 functions");
_Static_assert(offsetof(CK_FUNCTION_LIST_3_2, C_MessageVerifyFinal) == offsetof(CK_FUNCTION_LIST_3_0, C_MessageVerifyFinal),
               "the 3.2 list starts with the 3.0 list");
_Static_assert(offsetof(CK_FUNCTION_LIST_3_2, C_EncapsulateKey) == PTR * 93, "C_EncapsulateKey follows C_MessageVerifyFinal");
_Static_assert(offsetof(CK_FUNCTION_LIST_3_2, C_DecapsulateKey) == PTR * 94, "C_DecapsulateKey");
_Static_assert(offsetof(CK_FUNCTION_LIST_3_2, C_VerifySignatureInit) == PTR * 95, "C_VerifySignatureInit");
_Static_assert(offsetof(CK_FUNCTION_LIST_3_2, C_VerifySignatureFinal) == PTR * 98, "C_VerifySignatureFinal");
_Static_assert(offsetof(CK_FUNCTION_LIST_3_2, C_GetSessionValidationFlags) == PTR * 99, "C_GetSessionValidationFlags");
_Static_assert(offsetof(CK_FUNCTION_LIST_3_2, C_AsyncComplete) == PTR * 100, "C_AsyncComplete");
_Static_assert(offsetof(CK_FUNCTION_LIST_3_2, C_AsyncJoin) == PTR * 102, "C_AsyncJoin is last");

/* Mechanism parameters. */
_Static_assert(sizeof(CK_GCM_PARAMS) == 48, "CK_GCM_PARAMS with ulIvBits");
_Static_assert(offsetof(CK_GCM_PARAMS, ulIvBits) == 16, "CK_GCM_PARAMS.ulIvBits");
_Static_assert(offsetof(CK_GCM_PARAMS, ulTagBits) == 40, "CK_GCM_PARAMS.ulTagBits");
_Static_assert(sizeof(CK_AES_GCM_PARAMS) == sizeof(CK_GCM_PARAMS), "CK_AES_GCM_PARAMS");
_Static_assert(sizeof(CK_GCM_MESSAGE_PARAMS) == 48, "CK_GCM_MESSAGE_PARAMS");
_Static_assert(sizeof(CK_CCM_PARAMS) == 48, "CK_CCM_PARAMS");
_Static_assert(sizeof(CK_CCM_MESSAGE_PARAMS) == 56, "CK_CCM_MESSAGE_PARAMS");
_Static_assert(sizeof(CK_AES_CTR_PARAMS) == 24, "CK_AES_CTR_PARAMS");
_Static_assert(sizeof(CK_AES_CBC_ENCRYPT_DATA_PARAMS) == 32, "CK_AES_CBC_ENCRYPT_DATA_PARAMS");
_Static_assert(sizeof(CK_RSA_PKCS_PSS_PARAMS) == 24, "CK_RSA_PKCS_PSS_PARAMS");
_Static_assert(sizeof(CK_RSA_PKCS_OAEP_PARAMS) == 40, "CK_RSA_PKCS_OAEP_PARAMS");
_Static_assert(sizeof(CK_RSA_AES_KEY_WRAP_PARAMS) == 16, "CK_RSA_AES_KEY_WRAP_PARAMS");
_Static_assert(sizeof(CK_ECDH1_DERIVE_PARAMS) == 40, "CK_ECDH1_DERIVE_PARAMS");
_Static_assert(sizeof(CK_EDDSA_PARAMS) == 24, "CK_EDDSA_PARAMS");
_Static_assert(sizeof(CK_HKDF_PARAMS) == 64, "CK_HKDF_PARAMS");
_Static_assert(offsetof(CK_HKDF_PARAMS, prfHashMechanism) == 8, "CK_HKDF_PARAMS.prfHashMechanism");
_Static_assert(sizeof(CK_KEY_DERIVATION_STRING_DATA) == 16, "CK_KEY_DERIVATION_STRING_DATA");
_Static_assert(sizeof(CK_PKCS5_PBKD2_PARAMS2) == 72, "CK_PKCS5_PBKD2_PARAMS2");
_Static_assert(sizeof(CK_SP800_108_KDF_PARAMS) == 40, "CK_SP800_108_KDF_PARAMS");
_Static_assert(sizeof(CK_PRF_DATA_PARAM) == 24, "CK_PRF_DATA_PARAM");
_Static_assert(sizeof(CK_SIGN_ADDITIONAL_CONTEXT) == 24, "CK_SIGN_ADDITIONAL_CONTEXT");
_Static_assert(offsetof(CK_SIGN_ADDITIONAL_CONTEXT, ulContextLen) == 16, "CK_SIGN_ADDITIONAL_CONTEXT.ulContextLen");
_Static_assert(sizeof(CK_HASH_SIGN_ADDITIONAL_CONTEXT) == 32, "CK_HASH_SIGN_ADDITIONAL_CONTEXT");
_Static_assert(offsetof(CK_HASH_SIGN_ADDITIONAL_CONTEXT, hash) == 24, "CK_HASH_SIGN_ADDITIONAL_CONTEXT.hash");
_Static_assert(sizeof(CK_ASYNC_DATA) == 40, "CK_ASYNC_DATA");
_Static_assert(offsetof(CK_ASYNC_DATA, hAdditionalObject) == 32, "CK_ASYNC_DATA.hAdditionalObject");

/* A few values that clients hard-code. */
_Static_assert(CKA_WRAP_TEMPLATE == 0x40000211UL, "CKA_WRAP_TEMPLATE");
_Static_assert(CKA_ALLOWED_MECHANISMS == 0x40000600UL, "CKA_ALLOWED_MECHANISMS");
_Static_assert(CKM_AES_GCM == 0x1087UL, "CKM_AES_GCM");
_Static_assert(CKM_EDDSA == 0x1057UL, "CKM_EDDSA");
_Static_assert(CKM_AES_KEY_WRAP_KWP == 0x210BUL, "CKM_AES_KEY_WRAP_KWP");
_Static_assert(CKR_FUNCTION_REJECTED == 0x200UL, "CKR_FUNCTION_REJECTED");
_Static_assert(CKK_EC == CKK_ECDSA, "CKK_EC alias");

/* Post-quantum values (v3.2). */
_Static_assert(CKK_ML_KEM == 0x49UL && CKK_ML_DSA == 0x4AUL && CKK_SLH_DSA == 0x4BUL, "CKK_ML_*");
_Static_assert(CKM_ML_KEM_KEY_PAIR_GEN == 0x0FUL && CKM_ML_KEM == 0x17UL, "CKM_ML_KEM*");
_Static_assert(CKM_ML_DSA_KEY_PAIR_GEN == 0x1CUL && CKM_ML_DSA == 0x1DUL && CKM_HASH_ML_DSA == 0x1FUL, "CKM_ML_DSA*");
_Static_assert(CKM_HASH_ML_DSA_SHA224 == 0x23UL && CKM_HASH_ML_DSA_SHAKE256 == 0x2CUL, "CKM_HASH_ML_DSA_*");
_Static_assert(CKA_PARAMETER_SET == 0x61DUL && CKA_SEED == 0x637UL, "CKA_PARAMETER_SET, CKA_SEED");
_Static_assert(CKA_ENCAPSULATE == 0x633UL && CKA_DECAPSULATE == 0x634UL, "CKA_ENCAPSULATE, CKA_DECAPSULATE");
_Static_assert(CKF_ENCAPSULATE == 0x10000000UL && CKF_DECAPSULATE == 0x20000000UL, "CKF_(EN|DE)CAPSULATE");
_Static_assert(CKP_ML_KEM_512 == 1 && CKP_ML_KEM_768 == 2 && CKP_ML_KEM_1024 == 3, "CKP_ML_KEM_*");
_Static_assert(CKP_ML_DSA_44 == 1 && CKP_ML_DSA_65 == 2 && CKP_ML_DSA_87 == 3, "CKP_ML_DSA_*");
_Static_assert(CKH_HEDGE_PREFERRED == 0 && CKH_HEDGE_REQUIRED == 1 && CKH_DETERMINISTIC_REQUIRED == 2, "CKH_*");
_Static_assert(CKR_PARAMETER_SET_NOT_SUPPORTED == 0x209UL, "CKR_PARAMETER_SET_NOT_SUPPORTED");

/* Vendor values (gohsm.h). */
_Static_assert(CKA_GOHSM_OWNER == 0xC7480001UL, "CKA_GOHSM_OWNER");
_Static_assert(CKA_GOHSM_SHARED_USERS == 0xC7480002UL, "CKA_GOHSM_SHARED_USERS");
_Static_assert(CKM_CLOUDHSM_AES_GCM == 0x80001087UL, "CKM_CLOUDHSM_AES_GCM");
_Static_assert(CKM_CLOUDHSM_AES_KEY_WRAP_NO_PAD == 0x80002109UL, "CKM_CLOUDHSM_AES_KEY_WRAP_NO_PAD");
_Static_assert(CKM_CLOUDHSM_AES_KEY_WRAP_PKCS5_PAD == 0x8000210AUL, "CKM_CLOUDHSM_AES_KEY_WRAP_PKCS5_PAD");
_Static_assert(CKM_CLOUDHSM_AES_KEY_WRAP_ZERO_PAD == 0x8000216FUL, "CKM_CLOUDHSM_AES_KEY_WRAP_ZERO_PAD");

/* CloudHSM's SP 800-108 KDF parameters (cloudhsm_pkcs11_vendor_defs.h):
 * all CK_ULONG and pointer fields, no CK_BBOOL. */
_Static_assert(CKM_CLOUDHSM_SP800_108_COUNTER_KDF == 0x80000001UL, "CKM_CLOUDHSM_SP800_108_COUNTER_KDF");
_Static_assert(sizeof(CK_CLOUDHSM_SP800_108_COUNTER_FORMAT) == 8, "CK_CLOUDHSM_SP800_108_COUNTER_FORMAT");
_Static_assert(sizeof(CK_CLOUDHSM_SP800_108_DKM_LENGTH_FORMAT) == 16, "CK_CLOUDHSM_SP800_108_DKM_LENGTH_FORMAT");
_Static_assert(offsetof(CK_CLOUDHSM_SP800_108_DKM_LENGTH_FORMAT, ulWidthInBits) == 8, "DKM format ulWidthInBits");
_Static_assert(sizeof(CK_CLOUDHSM_SP800_108_KDF_PARAMS) == 24, "CK_CLOUDHSM_SP800_108_KDF_PARAMS");
_Static_assert(offsetof(CK_CLOUDHSM_SP800_108_KDF_PARAMS, ulNumberOfDataParams) == 8, "KDF params count");
_Static_assert(offsetof(CK_CLOUDHSM_SP800_108_KDF_PARAMS, pDataParams) == 16, "KDF params pDataParams");
_Static_assert(sizeof(CK_PRF_DATA_PARAM) == 24, "CK_PRF_DATA_PARAM {type, pValue, ulValueLen}, CloudHSM's and v3.0's");
_Static_assert(SP800_108_COUNTER_FORMAT == 4 && SP800_108_PRF_LABEL == 5 && SP800_108_PRF_CONTEXT == 6 &&
		       SP800_108_DKM_FORMAT == 7 && SP800_108_BYTE_ARRAY == 8,
	       "CloudHSM's PRF data types");
_Static_assert(SP800_108_DKM_LENGTH_SUM_OF_KEYS == 1 && SP800_108_DKM_LENGTH_SUM_OF_SEGMENTS == 2, "DKM methods");

/* The prototypes and the function-pointer types must agree: assigning each
 * function to its list member fails to compile if either is wrong. */
CK_FUNCTION_LIST_3_0 headers_check_list = {
	.version = {3, 0},
	.C_Initialize = C_Initialize,
	.C_GetFunctionList = C_GetFunctionList,
	.C_Login = C_Login,
	.C_WaitForSlotEvent = C_WaitForSlotEvent,
	.C_GetInterfaceList = C_GetInterfaceList,
	.C_GetInterface = C_GetInterface,
	.C_LoginUser = C_LoginUser,
	.C_EncryptMessageNext = C_EncryptMessageNext,
	.C_MessageVerifyFinal = C_MessageVerifyFinal,
};
CK_C_GetInterface headers_check_get_interface = C_GetInterface;

CK_FUNCTION_LIST_3_2 headers_check_list_3_2 = {
	.version = {3, 2},
	.C_Initialize = C_Initialize,
	.C_MessageVerifyFinal = C_MessageVerifyFinal,
	.C_EncapsulateKey = C_EncapsulateKey,
	.C_DecapsulateKey = C_DecapsulateKey,
	.C_VerifySignatureInit = C_VerifySignatureInit,
	.C_VerifySignature = C_VerifySignature,
	.C_VerifySignatureUpdate = C_VerifySignatureUpdate,
	.C_VerifySignatureFinal = C_VerifySignatureFinal,
	.C_GetSessionValidationFlags = C_GetSessionValidationFlags,
	.C_AsyncComplete = C_AsyncComplete,
	.C_AsyncGetID = C_AsyncGetID,
	.C_AsyncJoin = C_AsyncJoin,
};
