/*
 * abi_precedence.c - error precedence (issue 13, item 14): a session
 * handle that names no session makes every function that takes one answer
 * CKR_SESSION_HANDLE_INVALID, whatever else is wrong with the call: NULL
 * output and length pointers, NULL or unknown mechanisms, malformed
 * mechanism parameters, key and object handles that name nothing, NULL
 * templates, lengths no buffer has. PKCS #11 v3.0 section 5.1 leaves the
 * order between errors to the library; every client that checks for a
 * stale session after a reconnect (p11-kit, Java's SunPKCS11 session pool)
 * expects this one first, and SoftHSMv2 checks the session first too.
 *
 * Functions the module answers in C without a session (unsupported ones)
 * are not in the table.
 *
 * usage: abi_precedence /path/to/libgohsm.so   ($GOHSM_CONF set by abi_test.go)
 */
#include "abi.h"

static CK_FUNCTION_LIST_3_2_PTR f;

int main(int argc, char **argv)
{
	struct abi_module m;
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE live, closed, bad;
	CK_MECHANISM unknown = { 0x7ffffff1UL, NULL, 0 };
	CK_BYTE junk[64];
	CK_MECHANISM badparam = { CKM_AES_GCM, junk, 3 }; /* no CK_GCM_PARAMS is 3 bytes */
	CK_MECHANISM sha = { CKM_SHA256, NULL, 0 };
	CK_ATTRIBUTE tmpl[] = { { CKA_LABEL, NULL, 5 } }; /* NULL value with a length */
	CK_ULONG huge = ~0UL, n;
	CK_OBJECT_HANDLE h, h2;
	CK_SESSION_INFO info;
	char name[160];

	if (argc < 2) {
		fprintf(stderr, "usage: %s libgohsm.so\n", argv[0]);
		return 2;
	}
	memset(junk, 0xa5, sizeof junk);
	abi_load(argv[1], &m);
	f = m.f3;
	if (!abi_check_rv("C_Initialize", abi_initialize(&m), CKR_OK))
		return abi_exit();
	if (!abi_first_slot(&m, &slot) || !abi_setup_user_session(&m, slot, &live))
		return abi_exit();
	if (!abi_check_rv("setup: C_OpenSession", f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &closed),
			  CKR_OK) ||
	    !abi_check_rv("setup: C_CloseSession", f->C_CloseSession(closed), CKR_OK))
		return abi_exit();

	/* A handle that was closed, and one that was never issued. */
	CK_SESSION_HANDLE handles[] = { closed, 0x7ffffff0UL, 0 };
	for (size_t hi = 0; hi < sizeof handles / sizeof handles[0]; hi++) {
		bad = handles[hi];
#define CHECK(label, call)                                                                              \
	do {                                                                                            \
		snprintf(name, sizeof name, "%s with session 0x%lx", label, (unsigned long)bad);        \
		n = sizeof junk;                                                                        \
		abi_check_rv(name, call, CKR_SESSION_HANDLE_INVALID);                                   \
	} while (0)

		CHECK("C_CloseSession", f->C_CloseSession(bad));
		CHECK("C_GetSessionInfo(NULL info)", f->C_GetSessionInfo(bad, NULL));
		CHECK("C_GetSessionInfo", f->C_GetSessionInfo(bad, &info));
		CHECK("C_Login(bad user type, NULL PIN)", f->C_Login(bad, 77, NULL, 8));
		CHECK("C_LoginUser(NULL PIN, NULL name)", f->C_LoginUser(bad, CKU_USER, NULL, 8, NULL, 4));
		CHECK("C_Logout", f->C_Logout(bad));
		CHECK("C_InitPIN(NULL PIN)", f->C_InitPIN(bad, NULL, 8));
		CHECK("C_SetPIN(NULL PINs)", f->C_SetPIN(bad, NULL, 8, NULL, 8));
		CHECK("C_CreateObject(NULL template, NULL handle)", f->C_CreateObject(bad, NULL, 3, NULL));
		CHECK("C_CreateObject(NULL value, count ~0)", f->C_CreateObject(bad, tmpl, huge, &h));
		CHECK("C_CopyObject(no object, NULL out)", f->C_CopyObject(bad, 0, tmpl, 1, NULL));
		CHECK("C_DestroyObject(no object)", f->C_DestroyObject(bad, 0));
		CHECK("C_GetObjectSize(no object, NULL size)", f->C_GetObjectSize(bad, 0, NULL));
		CHECK("C_GetAttributeValue(no object, NULL template)", f->C_GetAttributeValue(bad, 0, NULL, 3));
		CHECK("C_GetAttributeValue(count ~0)", f->C_GetAttributeValue(bad, 0, tmpl, huge));
		CHECK("C_SetAttributeValue(NULL value)", f->C_SetAttributeValue(bad, 0, tmpl, 1));
		CHECK("C_FindObjectsInit(NULL template)", f->C_FindObjectsInit(bad, NULL, 3));
		CHECK("C_FindObjectsInit(NULL value)", f->C_FindObjectsInit(bad, tmpl, 1));
		CHECK("C_FindObjects(NULL out, NULL count)", f->C_FindObjects(bad, NULL, 5, NULL));
		CHECK("C_FindObjectsFinal", f->C_FindObjectsFinal(bad));

		CHECK("C_EncryptInit(NULL mechanism)", f->C_EncryptInit(bad, NULL, 0));
		CHECK("C_EncryptInit(unknown mechanism)", f->C_EncryptInit(bad, &unknown, 0));
		CHECK("C_EncryptInit(bad parameter)", f->C_EncryptInit(bad, &badparam, 0));
		CHECK("C_Encrypt(NULL data, NULL length)", f->C_Encrypt(bad, NULL, 16, NULL, NULL));
		CHECK("C_Encrypt(length ~0)", f->C_Encrypt(bad, junk, huge, junk, &n));
		CHECK("C_EncryptUpdate(NULL length)", f->C_EncryptUpdate(bad, NULL, 16, NULL, NULL));
		CHECK("C_EncryptFinal(NULL length)", f->C_EncryptFinal(bad, NULL, NULL));
		CHECK("C_DecryptInit(unknown mechanism)", f->C_DecryptInit(bad, &unknown, 0));
		CHECK("C_DecryptInit(NULL mechanism)", f->C_DecryptInit(bad, NULL, 0));
		CHECK("C_Decrypt(NULL data, NULL length)", f->C_Decrypt(bad, NULL, 16, NULL, NULL));
		CHECK("C_DecryptUpdate(NULL length)", f->C_DecryptUpdate(bad, NULL, 16, NULL, NULL));
		CHECK("C_DecryptFinal(NULL length)", f->C_DecryptFinal(bad, NULL, NULL));
		CHECK("C_DigestInit(NULL mechanism)", f->C_DigestInit(bad, NULL));
		CHECK("C_DigestInit(unknown mechanism)", f->C_DigestInit(bad, &unknown));
		CHECK("C_DigestInit(SHA256)", f->C_DigestInit(bad, &sha));
		CHECK("C_Digest(NULL data, NULL length)", f->C_Digest(bad, NULL, 16, NULL, NULL));
		CHECK("C_DigestUpdate(NULL data)", f->C_DigestUpdate(bad, NULL, 16));
		CHECK("C_DigestKey(no key)", f->C_DigestKey(bad, 0));
		CHECK("C_DigestFinal(NULL length)", f->C_DigestFinal(bad, NULL, NULL));
		CHECK("C_SignInit(unknown mechanism)", f->C_SignInit(bad, &unknown, 0));
		CHECK("C_SignInit(NULL mechanism)", f->C_SignInit(bad, NULL, 0));
		CHECK("C_Sign(NULL data, NULL length)", f->C_Sign(bad, NULL, 16, NULL, NULL));
		CHECK("C_SignUpdate(NULL data)", f->C_SignUpdate(bad, NULL, 16));
		CHECK("C_SignFinal(NULL length)", f->C_SignFinal(bad, NULL, NULL));
		CHECK("C_SignRecoverInit(unknown mechanism)", f->C_SignRecoverInit(bad, &unknown, 0));
		CHECK("C_SignRecover(NULL data, NULL length)", f->C_SignRecover(bad, NULL, 16, NULL, NULL));
		CHECK("C_VerifyInit(unknown mechanism)", f->C_VerifyInit(bad, &unknown, 0));
		CHECK("C_VerifyInit(bad parameter)", f->C_VerifyInit(bad, &badparam, 0));
		CHECK("C_Verify(NULL data, NULL signature)", f->C_Verify(bad, NULL, 16, NULL, 64));
		CHECK("C_VerifyUpdate(NULL data)", f->C_VerifyUpdate(bad, NULL, 16));
		CHECK("C_VerifyFinal(NULL signature)", f->C_VerifyFinal(bad, NULL, 64));
		CHECK("C_VerifyRecoverInit(NULL mechanism)", f->C_VerifyRecoverInit(bad, NULL, 0));
		CHECK("C_VerifyRecover(NULL signature, NULL length)", f->C_VerifyRecover(bad, NULL, 64, NULL, NULL));

		CHECK("C_GenerateKey(NULL mechanism, NULL out)", f->C_GenerateKey(bad, NULL, NULL, 3, NULL));
		CHECK("C_GenerateKey(unknown mechanism)", f->C_GenerateKey(bad, &unknown, tmpl, 1, &h));
		CHECK("C_GenerateKeyPair(NULL everything)", f->C_GenerateKeyPair(bad, NULL, NULL, 3, NULL, 3, NULL, NULL));
		CHECK("C_GenerateKeyPair(unknown mechanism)",
		      f->C_GenerateKeyPair(bad, &unknown, tmpl, 1, tmpl, 1, &h, &h2));
		CHECK("C_WrapKey(NULL mechanism, NULL length)", f->C_WrapKey(bad, NULL, 0, 0, NULL, NULL));
		CHECK("C_WrapKey(unknown mechanism)", f->C_WrapKey(bad, &unknown, 0, 0, junk, &n));
		CHECK("C_UnwrapKey(NULL everything)", f->C_UnwrapKey(bad, NULL, 0, NULL, 16, NULL, 3, NULL));
		CHECK("C_UnwrapKey(unknown mechanism)", f->C_UnwrapKey(bad, &unknown, 0, junk, 16, tmpl, 1, &h));
		CHECK("C_DeriveKey(NULL everything)", f->C_DeriveKey(bad, NULL, 0, NULL, 3, NULL));
		CHECK("C_DeriveKey(bad parameter)", f->C_DeriveKey(bad, &badparam, 0, tmpl, 1, &h));
		CHECK("C_SeedRandom(NULL seed)", f->C_SeedRandom(bad, NULL, 16));
		CHECK("C_GenerateRandom(NULL out)", f->C_GenerateRandom(bad, NULL, 16));
		CHECK("C_GenerateRandom(length ~0)", f->C_GenerateRandom(bad, junk, huge));
		CHECK("C_SessionCancel(bad flags)", f->C_SessionCancel(bad, ~0UL));

		CHECK("C_MessageEncryptInit(NULL mechanism)", f->C_MessageEncryptInit(bad, NULL, 0));
		CHECK("C_MessageEncryptInit(unknown mechanism)", f->C_MessageEncryptInit(bad, &unknown, 0));
		CHECK("C_EncryptMessage(NULL everything)",
		      f->C_EncryptMessage(bad, NULL, 3, NULL, 16, NULL, 16, NULL, NULL));
		CHECK("C_EncryptMessageBegin(NULL parameter)", f->C_EncryptMessageBegin(bad, NULL, 3, NULL, 16));
		CHECK("C_EncryptMessageNext(NULL everything)",
		      f->C_EncryptMessageNext(bad, NULL, 3, NULL, 16, NULL, NULL, CKF_END_OF_MESSAGE));
		CHECK("C_MessageEncryptFinal", f->C_MessageEncryptFinal(bad));
		CHECK("C_MessageDecryptInit(NULL mechanism)", f->C_MessageDecryptInit(bad, NULL, 0));
		CHECK("C_DecryptMessage(NULL everything)",
		      f->C_DecryptMessage(bad, NULL, 3, NULL, 16, NULL, 16, NULL, NULL));
		CHECK("C_DecryptMessageBegin(NULL parameter)", f->C_DecryptMessageBegin(bad, NULL, 3, NULL, 16));
		CHECK("C_DecryptMessageNext(NULL everything)",
		      f->C_DecryptMessageNext(bad, NULL, 3, NULL, 16, NULL, NULL, CKF_END_OF_MESSAGE));
		CHECK("C_MessageDecryptFinal", f->C_MessageDecryptFinal(bad));
#undef CHECK
	}

	/* The live session still answers: the checks above did not touch it. */
	abi_check_rv("the live session is intact", f->C_GetSessionInfo(live, &info), CKR_OK);
	f->C_Finalize(NULL);
	return abi_exit();
}
