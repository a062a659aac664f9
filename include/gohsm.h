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

/* The numeric values of CloudHSM's ECDH KDF types
 * CKD_CLOUDHSM_X963_SHA{1,224,256,384,512}_KDF (X9.63 KDF, RFC 8418 2.1) are
 * not published in the documentation available to us; they are deliberately
 * not defined here rather than guessed. */

#endif /* GOHSM_VENDOR_H */
