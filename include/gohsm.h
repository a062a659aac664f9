/*
 * gohsm.h - vendor-defined Cryptoki values used by gohsm.
 *
 * Include after pkcs11.h. Every value here is in the vendor-defined range
 * that PKCS #11 reserves (CKA_VENDOR_DEFINED, CKM_VENDOR_DEFINED and
 * friends, base specification 3.0 section 3).
 *
 * Two groups:
 *   - gohsm's own values, in the 0x4748xxxx block ("GH") under the
 *     vendor-defined bit;
 *   - AWS CloudHSM (Client SDK 5) vendor mechanisms that gohsm emulates,
 *     named and numbered as in CloudHSM's PKCS #11 vendor header
 *     (cloudhsm_pkcs11_vendor_defs.h) and the AWS CloudHSM User Guide page
 *     "Supported mechanisms for the PKCS #11 library for AWS CloudHSM
 *     Client SDK 5" (pkcs11-mechanisms).
 */

#ifndef GOHSM_VENDOR_H
#define GOHSM_VENDOR_H 1

/* ------------------------------------------------------------------------
 * gohsm attributes (CloudHSM key ownership and sharing model)
 * ------------------------------------------------------------------------ */

/* CKA_GOHSM_OWNER: CK_UTF8CHAR string, read-only. The name of the crypto
 * user (CU) that owns the key; set by the token when the object is created. */
#define CKA_GOHSM_OWNER         (CKA_VENDOR_DEFINED|0x47480001UL)

/* CKA_GOHSM_SHARED_USERS: CK_UTF8CHAR string, the names of the crypto users
 * the key is shared with, comma separated. Shared users may use the key but
 * not modify or delete it. */
#define CKA_GOHSM_SHARED_USERS  (CKA_VENDOR_DEFINED|0x47480002UL)

/* ------------------------------------------------------------------------
 * AWS CloudHSM vendor mechanisms
 * ------------------------------------------------------------------------ */

/* Triple-DES key wrap per NIST SP 800-38F. */
#define CKM_DES3_NIST_WRAP                   (CKM_VENDOR_DEFINED|0x00008000UL)

/* AES-GCM with an HSM-generated 12-byte IV prepended to the ciphertext;
 * CK_GCM_PARAMS.pIV must be NULL (encrypt, decrypt, wrap, unwrap). */
#define CKM_CLOUDHSM_AES_GCM                 (CKM_VENDOR_DEFINED|CKM_AES_GCM)

/* AES key wrap variants: RFC 3394 without padding, with PKCS #5 padding,
 * and with zero padding (RFC 5649 / SP 800-38F). */
#define CKM_CLOUDHSM_AES_KEY_WRAP_NO_PAD     (CKM_VENDOR_DEFINED|CKM_AES_KEY_WRAP)
#define CKM_CLOUDHSM_AES_KEY_WRAP_PKCS5_PAD  (CKM_VENDOR_DEFINED|CKM_AES_KEY_WRAP_PAD)
#define CKM_CLOUDHSM_AES_KEY_WRAP_ZERO_PAD   (CKM_VENDOR_DEFINED|0x0000216FUL)

/* SP 800-108 counter-mode KDF. CloudHSM's older header calls this
 * CKM_SP800_108_COUNTER_KDF, which collides with the v3.0 standard
 * mechanism of that name (0x3AC); we use the newer CloudHSM name. */
#define CKM_CLOUDHSM_SP800_108_COUNTER_KDF   (CKM_VENDOR_DEFINED|0x00000001UL)

/* CKM_CLOUDHSM_SP800_108_COUNTER_KDF takes CloudHSM's own parameter
 * structures, not the v3.0 ones pkcs11t.h defines under the same names
 * (CloudHSM's have no endianness flags and no additional derived keys).
 * Their layout and values are those of CloudHSM's vendor header
 * (cloudhsm_pkcs11_vendor_defs.h, as published in
 * aws-samples/aws-cloudhsm-pkcs11-examples, include/pkcs11/v2.40); the
 * structures carry a CK_CLOUDHSM_ prefix here so that they can live beside
 * pkcs11t.h's. The data parameters are v3.0's CK_PRF_DATA_PARAM {type,
 * pValue, ulValueLen}, which has the same layout.
 *
 *   prftype: CKM_SHA_1_HMAC, CKM_SHA224_HMAC, CKM_SHA256_HMAC,
 *            CKM_SHA384_HMAC, CKM_SHA512_HMAC or CKM_AES_CMAC.
 *   With SP800_108_PRF_LABEL / _PRF_CONTEXT the PRF input is
 *   [i] || Label || 0x00 || Context || [L] (NIST SP 800-108 5.1); with
 *   SP800_108_BYTE_ARRAY the counter, byte arrays and DKM length are
 *   concatenated in the order given. Counters 16 or 32 bits, DKM lengths
 *   8, 16, 32 or 64 bits, big-endian; DKM method SUM_OF_KEYS only. */
typedef struct CK_CLOUDHSM_SP800_108_COUNTER_FORMAT {
	CK_ULONG ulWidthInBits;
} CK_CLOUDHSM_SP800_108_COUNTER_FORMAT;

typedef struct CK_CLOUDHSM_SP800_108_DKM_LENGTH_FORMAT {
	CK_ULONG dkmLengthMethod;
	CK_ULONG ulWidthInBits;
} CK_CLOUDHSM_SP800_108_DKM_LENGTH_FORMAT;

typedef struct CK_CLOUDHSM_SP800_108_KDF_PARAMS {
	CK_MECHANISM_TYPE prftype;
	CK_ULONG ulNumberOfDataParams;
	CK_PRF_DATA_PARAM_PTR pDataParams;
} CK_CLOUDHSM_SP800_108_KDF_PARAMS;

/* CK_PRF_DATA_PARAM types and the DKM length methods: CloudHSM's names
 * (which do not collide with v3.0's CK_SP800_108_*) are aliases of
 * CK_CLOUDHSM_-prefixed ones, the names gohsm's Go constants are generated
 * from (internal/ck takes only CK-prefixed names). */
#define CK_CLOUDHSM_PRF_COUNTER_FORMAT  0x00000004UL
#define CK_CLOUDHSM_PRF_LABEL           0x00000005UL
#define CK_CLOUDHSM_PRF_CONTEXT         0x00000006UL
#define CK_CLOUDHSM_PRF_DKM_FORMAT      0x00000007UL
#define CK_CLOUDHSM_PRF_BYTE_ARRAY      0x00000008UL
#define CK_CLOUDHSM_DKM_SUM_OF_KEYS     1UL
#define CK_CLOUDHSM_DKM_SUM_OF_SEGMENTS 2UL

#define SP800_108_COUNTER_FORMAT             CK_CLOUDHSM_PRF_COUNTER_FORMAT
#define SP800_108_PRF_LABEL                  CK_CLOUDHSM_PRF_LABEL
#define SP800_108_PRF_CONTEXT                CK_CLOUDHSM_PRF_CONTEXT
#define SP800_108_DKM_FORMAT                 CK_CLOUDHSM_PRF_DKM_FORMAT
#define SP800_108_BYTE_ARRAY                 CK_CLOUDHSM_PRF_BYTE_ARRAY
#define SP800_108_DKM_LENGTH_SUM_OF_KEYS     CK_CLOUDHSM_DKM_SUM_OF_KEYS
#define SP800_108_DKM_LENGTH_SUM_OF_SEGMENTS CK_CLOUDHSM_DKM_SUM_OF_SEGMENTS

/* The numeric values of CloudHSM's ECDH KDF types
 * CKD_CLOUDHSM_X963_SHA{1,224,256,384,512}_KDF (X9.63 KDF, RFC 8418 2.1) are
 * published neither in the User Guide (which names them) nor in the vendor
 * header or samples AWS publishes (ecdh_with_kdf.c takes them from the
 * installed SDK's header); they are deliberately not defined here rather
 * than guessed. */

#endif /* GOHSM_VENDOR_H */
