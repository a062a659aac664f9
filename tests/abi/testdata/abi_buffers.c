/*
 * abi_buffers.c - the output-buffer convention (PKCS #11 v3.0 section 5.2)
 * and the end-of-operation rules (v3.0 sections 5.8-5.15) through the real
 * function list, plus C_GetAttributeValue's per-attribute answers
 * (v3.0 section 5.7.5).
 *
 * usage: abi_buffers /path/to/libgohsm.so   (with $GOHSM_CONF set by abi_test.go)
 *
 * Token state: initialises the fresh token in slot index 0 and works as the
 * normal user (see abi_setup_user_session in abi.h).
 */
#include "abi.h"

static CK_FUNCTION_LIST_3_2_PTR f;
static CK_SESSION_HANDLE sess;

static const CK_BYTE data[] = "gohsm abi buffers: the message to sign";

/*
 * ECDSA P-256 with SHA-256: the signature is r || s, 64 bytes (PKCS #11
 * v3.0 current mechanisms, ECDSA section).
 */
static void check_sign(CK_OBJECT_HANDLE pub, CK_OBJECT_HANDLE priv)
{
	CK_MECHANISM mech = { CKM_ECDSA_SHA256, NULL, 0 };
	CK_BYTE sig1[128], sig2[128], sig3[128], small[10];
	CK_ULONG n, n1, n2;
	CK_RV rv;

	abi_check_rv("C_SignInit(wrong key handle)", f->C_SignInit(sess, &mech, 0x7eadbeef), CKR_KEY_HANDLE_INVALID);
	abi_check_rv("C_Sign after failed C_SignInit", f->C_Sign(sess, (CK_BYTE_PTR)data, sizeof data, sig1, &n),
		     CKR_OPERATION_NOT_INITIALIZED);

	if (!abi_check_rv("C_SignInit ECDSA_SHA256", f->C_SignInit(sess, &mech, priv), CKR_OK))
		return;
	abi_check_rv("C_SignInit while active", f->C_SignInit(sess, &mech, priv), CKR_OPERATION_ACTIVE);
	n = 0;
	rv = f->C_Sign(sess, (CK_BYTE_PTR)data, sizeof data, NULL, &n);
	abi_check("C_Sign length query (NULL output)", rv == CKR_OK && n == 64, "rv %s len %lu", abi_rv_name(rv),
		  (unsigned long)n);
	n = sizeof small;
	memset(small, 0xee, sizeof small);
	rv = f->C_Sign(sess, (CK_BYTE_PTR)data, sizeof data, small, &n);
	abi_check("C_Sign 10-byte buffer -> CKR_BUFFER_TOO_SMALL, length 64", rv == CKR_BUFFER_TOO_SMALL && n == 64,
		  "rv %s len %lu", abi_rv_name(rv), (unsigned long)n);
	n1 = sizeof sig1;
	rv = f->C_Sign(sess, (CK_BYTE_PTR)data, sizeof data, sig1, &n1);
	abi_check("C_Sign full buffer after short one (operation kept)", rv == CKR_OK && n1 == 64, "rv %s len %lu",
		  abi_rv_name(rv), (unsigned long)n1);
	n = sizeof sig3;
	abi_check_rv("C_Sign after success -> operation ended",
		     f->C_Sign(sess, (CK_BYTE_PTR)data, sizeof data, sig3, &n), CKR_OPERATION_NOT_INITIALIZED);

	/*
	 * Second operation: query, short buffer, exact buffer. Whether the
	 * retry hands out the very bytes computed for the query cannot be seen
	 * through the API (success ends the operation, and any fresh ECDSA
	 * signature verifies too); the token's Go tests own that. What is
	 * checked here: the operation survives the query and the short buffer,
	 * and the answer verifies. ECDSA nonces are fresh per signature (as an
	 * HSM's are), so the two operations' signatures differ.
	 */
	if (abi_check_rv("C_SignInit again", f->C_SignInit(sess, &mech, priv), CKR_OK)) {
		n = 0;
		rv = f->C_Sign(sess, (CK_BYTE_PTR)data, sizeof data, NULL, &n);
		abi_check("second C_Sign length query", rv == CKR_OK && n == 64, "rv %s len %lu", abi_rv_name(rv),
			  (unsigned long)n);
		n = 63;
		rv = f->C_Sign(sess, (CK_BYTE_PTR)data, sizeof data, sig2, &n);
		abi_check("C_Sign 63-byte buffer -> CKR_BUFFER_TOO_SMALL", rv == CKR_BUFFER_TOO_SMALL && n == 64,
			  "rv %s len %lu", abi_rv_name(rv), (unsigned long)n);
		n2 = 64;
		rv = f->C_Sign(sess, (CK_BYTE_PTR)data, sizeof data, sig2, &n2);
		abi_check("C_Sign exact buffer after query + short", rv == CKR_OK && n2 == 64, "rv %s len %lu",
			  abi_rv_name(rv), (unsigned long)n2);
		abi_check("ECDSA signatures of two operations over the same data differ (fresh nonces)",
			  memcmp(sig1, sig2, 64) != 0, "two operations returned the same signature");
	}

	/* Verify: v3.0 section 5.15. */
	if (abi_check_rv("C_VerifyInit", f->C_VerifyInit(sess, &mech, pub), CKR_OK))
		abi_check_rv("C_Verify first signature", f->C_Verify(sess, (CK_BYTE_PTR)data, sizeof data, sig1, 64),
			     CKR_OK);
	if (abi_check_rv("C_VerifyInit", f->C_VerifyInit(sess, &mech, pub), CKR_OK))
		abi_check_rv("C_Verify second signature", f->C_Verify(sess, (CK_BYTE_PTR)data, sizeof data, sig2, 64),
			     CKR_OK);
	sig1[10] ^= 0x01;
	if (abi_check_rv("C_VerifyInit", f->C_VerifyInit(sess, &mech, pub), CKR_OK))
		abi_check_rv("C_Verify tampered signature", f->C_Verify(sess, (CK_BYTE_PTR)data, sizeof data, sig1, 64),
			     CKR_SIGNATURE_INVALID);
	abi_check_rv("C_Verify after failure -> operation ended",
		     f->C_Verify(sess, (CK_BYTE_PTR)data, sizeof data, sig2, 64), CKR_OPERATION_NOT_INITIALIZED);
	if (abi_check_rv("C_VerifyInit", f->C_VerifyInit(sess, &mech, pub), CKR_OK))
		abi_check_rv("C_Verify wrong length", f->C_Verify(sess, (CK_BYTE_PTR)data, sizeof data, sig2, 63),
			     CKR_SIGNATURE_LEN_RANGE);

	/*
	 * "A call to C_Sign always terminates the active signing operation
	 * unless it returns CKR_BUFFER_TOO_SMALL or is a successful call ... to
	 * determine the length" (v3.0 section 5.13.2): an argument error ends it.
	 */
	if (abi_check_rv("C_SignInit for the error case", f->C_SignInit(sess, &mech, priv), CKR_OK)) {
		abi_check_rv("C_Sign(pulSignatureLen NULL)", f->C_Sign(sess, (CK_BYTE_PTR)data, sizeof data, sig3, NULL),
			     CKR_ARGUMENTS_BAD);
		n = sizeof sig3;
		abi_check_rv("C_Sign after an error -> operation ended",
			     f->C_Sign(sess, (CK_BYTE_PTR)data, sizeof data, sig3, &n), CKR_OPERATION_NOT_INITIALIZED);
	}
}

/* AES-256-GCM, 12-byte IV, 16 bytes of AAD, 128-bit tag (v3.0 current mechanisms, AES-GCM). */
static void check_gcm(void)
{
	CK_BBOOL t = CK_TRUE, fl = CK_FALSE;
	CK_ULONG len32 = 32;
	CK_MECHANISM gen = { CKM_AES_KEY_GEN, NULL, 0 };
	CK_ATTRIBUTE tmpl[] = {
		{ CKA_VALUE_LEN, &len32, sizeof len32 },
		{ CKA_ENCRYPT, &t, sizeof t },
		{ CKA_DECRYPT, &t, sizeof t },
		{ CKA_TOKEN, &fl, sizeof fl },
		{ CKA_SENSITIVE, &t, sizeof t },
	};
	CK_OBJECT_HANDLE key;
	CK_BYTE iv[12] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
	CK_BYTE aad[16] = "sixteen byte aad";
	CK_BYTE pt[32] = "thirty-two bytes of plaintext!!";
	CK_GCM_PARAMS gcm;
	CK_MECHANISM mech = { CKM_AES_GCM, &gcm, sizeof gcm };
	CK_BYTE ct[128], out[128], small[10];
	CK_ULONG n, nct, nout;
	CK_RV rv;

	memset(&gcm, 0, sizeof gcm);
	gcm.pIv = iv;
	gcm.ulIvLen = sizeof iv;
	gcm.ulIvBits = 8 * sizeof iv;
	gcm.pAAD = aad;
	gcm.ulAADLen = sizeof aad;
	gcm.ulTagBits = 128;

	if (!abi_check_rv("C_GenerateKey AES-256", f->C_GenerateKey(sess, &gen, tmpl, sizeof tmpl / sizeof tmpl[0], &key),
			  CKR_OK))
		return;

	if (!abi_check_rv("C_EncryptInit AES-GCM", f->C_EncryptInit(sess, &mech, key), CKR_OK))
		return;
	n = 0;
	rv = f->C_Encrypt(sess, pt, sizeof pt, NULL, &n);
	abi_check("C_Encrypt length query", rv == CKR_OK && n >= sizeof pt + 16, "rv %s len %lu", abi_rv_name(rv),
		  (unsigned long)n);
	n = sizeof small;
	rv = f->C_Encrypt(sess, pt, sizeof pt, small, &n);
	abi_check("C_Encrypt short buffer", rv == CKR_BUFFER_TOO_SMALL && n >= sizeof pt + 16, "rv %s len %lu",
		  abi_rv_name(rv), (unsigned long)n);
	nct = sizeof ct;
	rv = f->C_Encrypt(sess, pt, sizeof pt, ct, &nct);
	abi_check("C_Encrypt", rv == CKR_OK && nct == sizeof pt + 16, "rv %s len %lu", abi_rv_name(rv),
		  (unsigned long)nct);
	n = sizeof out;
	abi_check_rv("C_Encrypt after success -> operation ended", f->C_Encrypt(sess, pt, sizeof pt, out, &n),
		     CKR_OPERATION_NOT_INITIALIZED);

	if (abi_check_rv("C_DecryptInit AES-GCM", f->C_DecryptInit(sess, &mech, key), CKR_OK)) {
		n = 0;
		rv = f->C_Decrypt(sess, ct, nct, NULL, &n);
		abi_check("C_Decrypt length query", rv == CKR_OK && n >= sizeof pt, "rv %s len %lu", abi_rv_name(rv),
			  (unsigned long)n);
		n = sizeof small;
		rv = f->C_Decrypt(sess, ct, nct, small, &n);
		abi_check("C_Decrypt short buffer", rv == CKR_BUFFER_TOO_SMALL && n >= sizeof pt, "rv %s len %lu",
			  abi_rv_name(rv), (unsigned long)n);
		nout = sizeof out;
		rv = f->C_Decrypt(sess, ct, nct, out, &nout);
		abi_check("C_Decrypt round trip", rv == CKR_OK && nout == sizeof pt && memcmp(out, pt, sizeof pt) == 0,
			  "rv %s len %lu", abi_rv_name(rv), (unsigned long)nout);
	}

	/* A failed decryption (not a short buffer) ends the operation. */
	ct[0] ^= 0x80;
	if (abi_check_rv("C_DecryptInit for tampered input", f->C_DecryptInit(sess, &mech, key), CKR_OK)) {
		nout = sizeof out;
		abi_check_rv2("C_Decrypt tampered ciphertext", f->C_Decrypt(sess, ct, nct, out, &nout),
			      CKR_ENCRYPTED_DATA_INVALID, CKR_AEAD_DECRYPT_FAILED);
		nout = sizeof out;
		abi_check_rv("C_Decrypt after failure -> operation ended", f->C_Decrypt(sess, ct, nct, out, &nout),
			     CKR_OPERATION_NOT_INITIALIZED);
	}
}

/* C_GetAttributeValue, v3.0 section 5.7.5. */
static void check_attributes(CK_OBJECT_HANDLE pub, CK_OBJECT_HANDLE priv)
{
	CK_OBJECT_CLASS cls = 0;
	CK_BYTE value[256], params[64], tiny[2];
	CK_KEY_TYPE kt = 0;
	const CK_ATTRIBUTE_TYPE invalid_type = CKA_VENDOR_DEFINED | 0x7e57;
	CK_RV rv;

	{
		/* valid, sensitive, invalid, valid */
		CK_ATTRIBUTE t[] = {
			{ CKA_CLASS, &cls, sizeof cls },
			{ CKA_VALUE, value, sizeof value },
			{ invalid_type, value, sizeof value },
			{ CKA_EC_PARAMS, params, sizeof params },
		};
		rv = f->C_GetAttributeValue(sess, priv, t, 4);
		abi_check_rv2("C_GetAttributeValue mixed -> sensitive or type invalid", rv, CKR_ATTRIBUTE_SENSITIVE,
			      CKR_ATTRIBUTE_TYPE_INVALID);
		abi_check("mixed: CKA_CLASS still returned", t[0].ulValueLen == sizeof cls && cls == CKO_PRIVATE_KEY,
			  "len %lu class %lu", (unsigned long)t[0].ulValueLen, (unsigned long)cls);
		abi_check("mixed: sensitive CKA_VALUE -> CK_UNAVAILABLE_INFORMATION",
			  t[1].ulValueLen == CK_UNAVAILABLE_INFORMATION, "len %lu", (unsigned long)t[1].ulValueLen);
		abi_check("mixed: invalid type -> CK_UNAVAILABLE_INFORMATION", t[2].ulValueLen == CK_UNAVAILABLE_INFORMATION,
			  "len %lu", (unsigned long)t[2].ulValueLen);
		abi_check("mixed: CKA_EC_PARAMS still returned",
			  t[3].ulValueLen == sizeof abi_p256_oid && memcmp(params, abi_p256_oid, sizeof abi_p256_oid) == 0,
			  "len %lu", (unsigned long)t[3].ulValueLen);
	}
	{
		CK_ATTRIBUTE t[] = {
			{ CKA_KEY_TYPE, &kt, sizeof kt },
			{ CKA_VALUE, value, sizeof value },
		};
		rv = f->C_GetAttributeValue(sess, priv, t, 2);
		abi_check("sensitive only -> CKR_ATTRIBUTE_SENSITIVE",
			  rv == CKR_ATTRIBUTE_SENSITIVE && kt == CKK_EC && t[1].ulValueLen == CK_UNAVAILABLE_INFORMATION,
			  "rv %s key type %lu len %lu", abi_rv_name(rv), (unsigned long)kt, (unsigned long)t[1].ulValueLen);
	}
	{
		CK_ATTRIBUTE t[] = {
			{ CKA_CLASS, &cls, sizeof cls },
			{ invalid_type, value, sizeof value },
		};
		rv = f->C_GetAttributeValue(sess, pub, t, 2);
		abi_check("invalid type only -> CKR_ATTRIBUTE_TYPE_INVALID",
			  rv == CKR_ATTRIBUTE_TYPE_INVALID && cls == CKO_PUBLIC_KEY &&
				  t[1].ulValueLen == CK_UNAVAILABLE_INFORMATION,
			  "rv %s class %lu len %lu", abi_rv_name(rv), (unsigned long)cls, (unsigned long)t[1].ulValueLen);
	}
	{
		CK_ATTRIBUTE t[] = {
			{ CKA_EC_PARAMS, NULL, 0 },
			{ CKA_EC_POINT, NULL, 0 },
		};
		rv = f->C_GetAttributeValue(sess, pub, t, 2);
		abi_check("NULL pValue -> lengths", rv == CKR_OK && t[0].ulValueLen == sizeof abi_p256_oid &&
							    t[1].ulValueLen >= 65 && t[1].ulValueLen != CK_UNAVAILABLE_INFORMATION,
			  "rv %s lens %lu %lu", abi_rv_name(rv), (unsigned long)t[0].ulValueLen,
			  (unsigned long)t[1].ulValueLen);
	}
	{
		CK_ATTRIBUTE t[] = {
			{ CKA_CLASS, &cls, sizeof cls },
			{ CKA_EC_PARAMS, tiny, sizeof tiny },
		};
		rv = f->C_GetAttributeValue(sess, pub, t, 2);
		abi_check("short attribute buffer -> CKR_BUFFER_TOO_SMALL",
			  rv == CKR_BUFFER_TOO_SMALL && t[1].ulValueLen == CK_UNAVAILABLE_INFORMATION &&
				  t[0].ulValueLen == sizeof cls,
			  "rv %s len %lu", abi_rv_name(rv), (unsigned long)t[1].ulValueLen);
	}
	{
		CK_ATTRIBUTE t[] = { { CKA_CLASS, &cls, sizeof cls } };

		abi_check_rv("C_GetAttributeValue(wrong object handle)", f->C_GetAttributeValue(sess, 0x7eadbeef, t, 1),
			     CKR_OBJECT_HANDLE_INVALID);
		abi_check_rv("C_GetAttributeValue(NULL template)", f->C_GetAttributeValue(sess, pub, NULL, 1),
			     CKR_ARGUMENTS_BAD);
	}
}

int main(int argc, char **argv)
{
	struct abi_module m;
	CK_SLOT_ID slot;
	CK_OBJECT_HANDLE pub, priv;

	if (argc != 2) {
		fprintf(stderr, "usage: %s /path/to/libgohsm.so\n", argv[0]);
		return 2;
	}
	abi_load(argv[1], &m);
	f = m.f3;
	if (!abi_check_rv("C_Initialize", abi_initialize(&m), CKR_OK))
		return abi_exit();
	if (abi_first_slot(&m, &slot) && abi_setup_user_session(&m, slot, &sess) &&
	    abi_gen_p256(&m, sess, &pub, &priv)) {
		check_sign(pub, priv);
		check_gcm();
		check_attributes(pub, priv);
		abi_check_rv("C_Logout", f->C_Logout(sess), CKR_OK);
		abi_check_rv("C_CloseSession", f->C_CloseSession(sess), CKR_OK);
	}
	abi_check_rv("C_Finalize", f->C_Finalize(NULL), CKR_OK);
	return abi_exit();
}
