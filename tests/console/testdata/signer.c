/*
 * signer.c - a library process for the console's live chart test
 * (tests/console/metrics_test.go): it loads libgohsm.so through dlopen and
 * its function list, as any client does, logs in as a crypto user, makes
 * a session P-256 key and signs with CKM_ECDSA for SECONDS, each call a
 * C_SignInit and a C_Sign into a buffer large enough (no length query).
 *
 *   signer LIB SECONDS
 *
 * The configuration comes from $GOHSM_CONF, the crypto user's PIN
 * (name:password) from $SIGNER_PIN. It prints "READY" once signing
 * starts, then "RESULT ok=N failed=N" and exits 0; any setup error is a
 * line on stderr and exit 1.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pkcs11.h"

static CK_FUNCTION_LIST_PTR f;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

#define CHECK(call)                                                                   \
	do {                                                                          \
		CK_RV rv_ = (call);                                                   \
		if (rv_ != CKR_OK) {                                                  \
			fprintf(stderr, "signer: %s: rv 0x%lx\n", #call, (unsigned long)rv_); \
			return 1;                                                     \
		}                                                                     \
	} while (0)

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: signer LIB SECONDS\n");
		return 2;
	}
	double seconds = atof(argv[2]);
	const char *pin = getenv("SIGNER_PIN");
	if (pin == NULL) {
		fprintf(stderr, "signer: SIGNER_PIN is not set\n");
		return 2;
	}
	void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL) {
		fprintf(stderr, "signer: dlopen: %s\n", dlerror());
		return 1;
	}
	CK_C_GetFunctionList getList = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
	if (getList == NULL) {
		fprintf(stderr, "signer: no C_GetFunctionList\n");
		return 1;
	}
	CHECK(getList(&f));
	CHECK(f->C_Initialize(NULL));
	CK_SLOT_ID slots[8];
	CK_ULONG n = 8;
	CHECK(f->C_GetSlotList(CK_TRUE, slots, &n));
	if (n == 0) {
		fprintf(stderr, "signer: no slot with a token\n");
		return 1;
	}
	CK_SESSION_HANDLE s;
	CHECK(f->C_OpenSession(slots[0], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s));
	CHECK(f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)));

	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_BYTE p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
	char label[] = "console-signer";
	CK_ATTRIBUTE pubT[] = {
		{CKA_TOKEN, &no, sizeof no},
		{CKA_EC_PARAMS, p256, sizeof p256},
		{CKA_VERIFY, &yes, sizeof yes},
	};
	CK_ATTRIBUTE privT[] = {
		{CKA_TOKEN, &no, sizeof no},
		{CKA_SIGN, &yes, sizeof yes},
		{CKA_LABEL, label, sizeof label - 1},
	};
	CK_MECHANISM gen = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
	CK_OBJECT_HANDLE pub, priv;
	CHECK(f->C_GenerateKeyPair(s, &gen, pubT, 3, privT, 3, &pub, &priv));

	CK_MECHANISM ecdsa = {CKM_ECDSA, NULL, 0};
	CK_BYTE digest[32] = {1, 2, 3};
	CK_BYTE sig[128];
	unsigned long ok = 0, failed = 0;
	struct timespec backoff = {0, 1000000};
	printf("READY\n");
	fflush(stdout);
	double start = now();
	while (now() - start < seconds) {
		CK_ULONG len = sizeof sig;
		CK_RV rv = f->C_SignInit(s, &ecdsa, priv);
		if (rv == CKR_OK)
			rv = f->C_Sign(s, digest, sizeof digest, sig, &len);
		if (rv == CKR_OK) {
			ok++;
		} else {
			/* Throttled (or failed): back off a millisecond, as an
			 * application would, rather than spin on refusals. */
			failed++;
			nanosleep(&backoff, NULL);
		}
	}
	printf("RESULT ok=%lu failed=%lu\n", ok, failed);
	f->C_Logout(s);
	f->C_CloseSession(s);
	f->C_Finalize(NULL);
	return 0;
}
