/*
 * gohsm-demo: load a PKCS#11 module through dlopen and its C ABI, as any
 * client does, and use it: initialise the token on first use, log in as the
 * crypto user, generate an EC P-256 key pair, sign a message with
 * CKM_ECDSA_SHA256 and verify the signature.
 *
 *   gohsm-demo /path/to/libgohsm.so
 *
 * The demo's token uses fixed demo passwords (below). A token initialised
 * otherwise is left alone: the demo then asks for GOHSM_DEMO_PIN.
 *
 * `make demo` runs it with GOHSM_CONF=build/demo/gohsm.conf, a token of its
 * own under build/demo/tokens, so the user's default token is never
 * touched; run again, it logs in to the token it made. `make demo-reset`
 * erases that token.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pkcs11.h"

static const char *SO_PIN = "admin:demo-officer-pw";
static const char *USER_PIN = "user:demo-user-pw";

static CK_FUNCTION_LIST_PTR p11;

static const char *rvname(CK_RV rv) {
	switch (rv) {
	case CKR_OK: return "CKR_OK";
	case CKR_PIN_INCORRECT: return "CKR_PIN_INCORRECT";
	case CKR_PIN_LOCKED: return "CKR_PIN_LOCKED";
	case CKR_USER_PIN_NOT_INITIALIZED: return "CKR_USER_PIN_NOT_INITIALIZED";
	case CKR_GENERAL_ERROR: return "CKR_GENERAL_ERROR";
	case CKR_SIGNATURE_INVALID: return "CKR_SIGNATURE_INVALID";
	}
	return "see pkcs11t.h";
}

#define CHECK(call)                                                                  \
	do {                                                                         \
		CK_RV rv_ = (call);                                                  \
		if (rv_ != CKR_OK) {                                                 \
			fprintf(stderr, "gohsm-demo: %s failed: 0x%lx (%s)\n", #call, rv_, \
				rvname(rv_));                                        \
			exit(1);                                                     \
		}                                                                    \
	} while (0)

static void hex(const char *what, const CK_BYTE *b, CK_ULONG n) {
	printf("%s (%lu bytes): ", what, n);
	for (CK_ULONG i = 0; i < n; i++)
		printf("%02x", b[i]);
	printf("\n");
}

int main(int argc, char **argv) {
	if (argc != 2) {
		fprintf(stderr, "usage: gohsm-demo /path/to/libgohsm.so\n");
		return 2;
	}
	void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		fprintf(stderr, "gohsm-demo: dlopen: %s\n", dlerror());
		return 1;
	}
	CK_C_GetFunctionList getList = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
	if (!getList) {
		fprintf(stderr, "gohsm-demo: no C_GetFunctionList in %s\n", argv[1]);
		return 1;
	}
	CHECK(getList(&p11));
	CHECK(p11->C_Initialize(NULL));

	CK_INFO info;
	CHECK(p11->C_GetInfo(&info));
	printf("module: %.32s, Cryptoki %d.%d\n", info.libraryDescription, info.cryptokiVersion.major,
	       info.cryptokiVersion.minor);
	printf("configuration: %s\n", getenv("GOHSM_CONF") ? getenv("GOHSM_CONF") : "(the module's search order)");

	CK_SLOT_ID slots[8];
	CK_ULONG nslots = 8;
	CHECK(p11->C_GetSlotList(CK_TRUE, slots, &nslots));
	if (nslots == 0) {
		fprintf(stderr, "gohsm-demo: no slots\n");
		return 1;
	}
	CK_SLOT_ID slot = slots[0];
	CK_TOKEN_INFO ti;
	CHECK(p11->C_GetTokenInfo(slot, &ti));
	const char *userPin = getenv("GOHSM_DEMO_PIN") ? getenv("GOHSM_DEMO_PIN") : USER_PIN;
	if (!(ti.flags & CKF_TOKEN_INITIALIZED)) {
		printf("slot %lu: token not initialised: C_InitToken with crypto officer 'admin', C_InitPIN for crypto user 'user'\n",
		       slot);
		CK_UTF8CHAR label[32];
		memset(label, ' ', sizeof label);
		memcpy(label, "gohsm-demo", 10);
		CHECK(p11->C_InitToken(slot, (CK_UTF8CHAR_PTR)SO_PIN, strlen(SO_PIN), label));
		CK_SESSION_HANDLE so;
		CHECK(p11->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &so));
		CHECK(p11->C_Login(so, CKU_SO, (CK_UTF8CHAR_PTR)SO_PIN, strlen(SO_PIN)));
		CHECK(p11->C_InitPIN(so, (CK_UTF8CHAR_PTR)USER_PIN, strlen(USER_PIN)));
		CHECK(p11->C_Logout(so));
		CHECK(p11->C_CloseSession(so));
	}
	CHECK(p11->C_GetTokenInfo(slot, &ti));
	printf("slot %lu: token '%.32s', serial %.16s\n", slot, ti.label, ti.serialNumber);

	CK_SESSION_HANDLE s;
	CHECK(p11->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s));
	CK_RV rv = p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)userPin, strlen(userPin));
	if (rv != CKR_OK) {
		fprintf(stderr, "gohsm-demo: C_Login as crypto user failed: 0x%lx (%s); "
				"a token not made by this demo needs GOHSM_DEMO_PIN=name:password "
				"(`make demo-reset` erases the demo's own token)\n",
			rv, rvname(rv));
		return 1;
	}
	printf("logged in as crypto user\n");

	/* prime256v1 / P-256 as a DER OID */
	CK_BYTE p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_UTF8CHAR label[] = "gohsm-demo-key";
	CK_ATTRIBUTE pub[] = {
		{CKA_EC_PARAMS, p256, sizeof p256},
		{CKA_VERIFY, &yes, sizeof yes},
		{CKA_TOKEN, &no, sizeof no},
		{CKA_LABEL, label, sizeof label - 1},
	};
	CK_ATTRIBUTE priv[] = {
		{CKA_SIGN, &yes, sizeof yes},
		{CKA_TOKEN, &no, sizeof no},
		{CKA_LABEL, label, sizeof label - 1},
	};
	CK_MECHANISM gen = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
	CK_OBJECT_HANDLE hpub, hpriv;
	CHECK(p11->C_GenerateKeyPair(s, &gen, pub, 4, priv, 3, &hpub, &hpriv));
	printf("generated EC P-256 key pair (session objects %lu, %lu)\n", hpub, hpriv);

	CK_BYTE point[80];
	CK_ATTRIBUTE get = {CKA_EC_POINT, point, sizeof point};
	CHECK(p11->C_GetAttributeValue(s, hpub, &get, 1));
	hex("public point (DER)", point, get.ulValueLen);

	CK_BYTE msg[] = "hello from gohsm";
	CK_MECHANISM ecdsa = {CKM_ECDSA_SHA256, NULL, 0};
	CK_BYTE sig[128];
	CK_ULONG siglen = 0;
	CHECK(p11->C_SignInit(s, &ecdsa, hpriv));
	CHECK(p11->C_Sign(s, msg, sizeof msg - 1, NULL, &siglen)); /* length query */
	CHECK(p11->C_Sign(s, msg, sizeof msg - 1, sig, &siglen));
	hex("ECDSA-SHA256 signature", sig, siglen);

	CHECK(p11->C_VerifyInit(s, &ecdsa, hpub));
	CHECK(p11->C_Verify(s, msg, sizeof msg - 1, sig, siglen));
	printf("signature verified\n");

	sig[0] ^= 1;
	CHECK(p11->C_VerifyInit(s, &ecdsa, hpub));
	rv = p11->C_Verify(s, msg, sizeof msg - 1, sig, siglen);
	if (rv != CKR_SIGNATURE_INVALID) {
		fprintf(stderr, "gohsm-demo: tampered signature gave 0x%lx, want CKR_SIGNATURE_INVALID\n", rv);
		return 1;
	}
	printf("tampered signature rejected (CKR_SIGNATURE_INVALID)\n");

	CHECK(p11->C_Logout(s));
	CHECK(p11->C_CloseSession(s));
	CHECK(p11->C_Finalize(NULL));
	printf("demo OK\n");
	return 0;
}
