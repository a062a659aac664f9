/*
 * cluster_driver.c - drives libgohsm.so's emulated cluster from C, through
 * the function list alone (cdriver_test.go builds and runs it): the proofs
 * of tests/cluster without a second Go runtime in the process.
 *
 *   cluster_driver LIB throttle SECONDS WARM
 *       signs with a new token P-256 key (C_SignInit, a length query,
 *       C_Sign) as fast as it can for SECONDS; prints
 *       "RESULT ok=N failed=N other=N window=S" for the calls that ended
 *       after WARM seconds.
 *   cluster_driver LIB availability
 *       a cluster of one HSM with the key availability check on: token
 *       keys cannot be made (CKR_FUNCTION_FAILED, nothing stored), session
 *       keys can and work.
 *
 * The configuration comes from $GOHSM_CONF, the crypto user's PIN from
 * $CLUSTER_PIN. One line per check, "PASS name" or "FAIL name: detail";
 * the exit status is 1 when a check failed.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pkcs11.h"

static CK_FUNCTION_LIST_PTR f;
static int failures;

static void pass(const char *name) { printf("PASS %s\n", name); }

static void fail(const char *name, const char *detail, CK_RV rv)
{
	failures++;
	printf("FAIL %s: %s (rv 0x%lx)\n", name, detail, (unsigned long)rv);
}

/* expect checks that rv is want. */
static int expect(const char *name, CK_RV rv, CK_RV want)
{
	if (rv != want) {
		char detail[64];
		snprintf(detail, sizeof detail, "want rv 0x%lx", (unsigned long)want);
		fail(name, detail, rv);
		return 0;
	}
	pass(name);
	return 1;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static CK_BBOOL yes = CK_TRUE;
static CK_BBOOL no = CK_FALSE;
/* DER of the P-256 curve's OID. */
static CK_BYTE p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static CK_BYTE digest[32];

/* genEC generates a P-256 key pair labelled label, a token one or not. */
static CK_RV genEC(CK_SESSION_HANDLE s, CK_BBOOL *token, char *label, CK_OBJECT_HANDLE *priv)
{
	CK_MECHANISM m = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
	CK_ATTRIBUTE pub[] = {
		{CKA_TOKEN, token, sizeof *token},
		{CKA_EC_PARAMS, p256, sizeof p256},
		{CKA_VERIFY, &yes, sizeof yes},
		{CKA_LABEL, label, strlen(label)},
	};
	CK_ATTRIBUTE prv[] = {
		{CKA_TOKEN, token, sizeof *token},
		{CKA_PRIVATE, &yes, sizeof yes},
		{CKA_SENSITIVE, &yes, sizeof yes},
		{CKA_SIGN, &yes, sizeof yes},
		{CKA_LABEL, label, strlen(label)},
	};
	CK_OBJECT_HANDLE pubH;
	return f->C_GenerateKeyPair(s, &m, pub, 4, prv, 5, &pubH, priv);
}

/* sign is C_SignInit, C_Sign's length query and C_Sign with k; *lenRV
 * gets the length query's answer. */
static CK_RV sign(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE k, CK_RV *lenRV)
{
	CK_MECHANISM m = {CKM_ECDSA, NULL, 0};
	CK_BYTE sig[128];
	CK_ULONG n = 0;
	CK_RV rv = f->C_SignInit(s, &m, k);
	*lenRV = CKR_OK;
	if (rv != CKR_OK)
		return rv;
	*lenRV = f->C_Sign(s, digest, sizeof digest, NULL, &n);
	if (*lenRV != CKR_OK)
		return *lenRV;
	if (n > sizeof sig)
		return CKR_GENERAL_ERROR;
	return f->C_Sign(s, digest, sizeof digest, sig, &n);
}

static int throttle(CK_SESSION_HANDLE s, double seconds, double warm)
{
	CK_OBJECT_HANDLE k;
	CK_RV rv, lenRV;
	unsigned long ok = 0, failed = 0, other = 0, lenFailed = 0;
	CK_RV firstOther = CKR_OK;
	double start, t0 = 0, t1 = 0, t;

	if (!expect("C_GenerateKeyPair token P-256", genEC(s, &yes, "c-throttled", &k), CKR_OK))
		return 1;
	if (!expect("first sign, within the budget", sign(s, k, &lenRV), CKR_OK))
		return 1;
	start = now();
	for (;;) {
		rv = sign(s, k, &lenRV);
		t = now();
		if (t - start >= seconds)
			break;
		if (t - start < warm)
			continue;
		if (t0 == 0)
			t0 = t;
		t1 = t;
		if (lenRV != CKR_OK)
			lenFailed++;
		if (rv == CKR_OK) {
			ok++;
		} else if (rv == CKR_FUNCTION_FAILED) {
			failed++;
		} else {
			if (other++ == 0)
				firstOther = rv;
		}
	}
	if (lenFailed == 0)
		pass("length queries are never throttled");
	else
		fail("length queries are never throttled", "a length query failed", CKR_FUNCTION_FAILED);
	if (other == 0)
		pass("only CKR_OK and CKR_FUNCTION_FAILED");
	else
		fail("only CKR_OK and CKR_FUNCTION_FAILED", "another answer", firstOther);
	printf("RESULT ok=%lu failed=%lu other=%lu window=%.6f\n", ok, failed, other, t1 - t0);
	return 0;
}

static int availability(CK_SESSION_HANDLE s)
{
	CK_OBJECT_HANDLE k, found[4];
	CK_ULONG n = 99;
	CK_RV lenRV;
	CK_MECHANISM aes = {CKM_AES_KEY_GEN, NULL, 0};
	CK_ULONG len = 32;
	char label[] = "c-refused";
	CK_ATTRIBUTE aesTmpl[] = {
		{CKA_TOKEN, &yes, sizeof yes},
		{CKA_VALUE_LEN, &len, sizeof len},
		{CKA_ENCRYPT, &yes, sizeof yes},
		{CKA_LABEL, label, strlen(label)},
	};
	CK_ATTRIBUTE byLabel[] = {{CKA_LABEL, label, strlen(label)}};

	expect("token key pair, one HSM: CKR_FUNCTION_FAILED", genEC(s, &yes, label, &k), CKR_FUNCTION_FAILED);
	expect("token AES key, one HSM: CKR_FUNCTION_FAILED", f->C_GenerateKey(s, &aes, aesTmpl, 4, &k), CKR_FUNCTION_FAILED);
	if (expect("C_FindObjectsInit", f->C_FindObjectsInit(s, byLabel, 1), CKR_OK)) {
		expect("C_FindObjects", f->C_FindObjects(s, found, 4, &n), CKR_OK);
		f->C_FindObjectsFinal(s);
		if (n == 0)
			pass("the refused keys were not stored");
		else
			fail("the refused keys were not stored", "found some", CKR_OK);
	}
	if (expect("session key pair, one HSM", genEC(s, &no, "c-session", &k), CKR_OK))
		expect("sign with the session key", sign(s, k, &lenRV), CKR_OK);
	return 0;
}

int main(int argc, char **argv)
{
	CK_C_GetFunctionList get;
	CK_SLOT_ID slots[4];
	CK_ULONG nslots = 4;
	CK_SESSION_HANDLE s;
	const char *pin = getenv("CLUSTER_PIN");
	void *lib;

	if (argc < 3 || pin == NULL) {
		fprintf(stderr, "usage: CLUSTER_PIN=... %s LIB throttle SECONDS WARM | availability\n", argv[0]);
		return 2;
	}
	memset(digest, 0x5a, sizeof digest);
	lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL) {
		fprintf(stderr, "dlopen: %s\n", dlerror());
		return 1;
	}
	get = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
	if (get == NULL || get(&f) != CKR_OK) {
		fprintf(stderr, "C_GetFunctionList failed\n");
		return 1;
	}
	if (!expect("C_Initialize", f->C_Initialize(NULL), CKR_OK) ||
	    !expect("C_GetSlotList", f->C_GetSlotList(CK_TRUE, slots, &nslots), CKR_OK) ||
	    !expect("C_OpenSession", f->C_OpenSession(slots[0], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s), CKR_OK) ||
	    !expect("C_Login", f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)), CKR_OK))
		return 1;
	if (strcmp(argv[2], "throttle") == 0 && argc == 5)
		throttle(s, atof(argv[3]), atof(argv[4]));
	else if (strcmp(argv[2], "availability") == 0)
		availability(s);
	else {
		fprintf(stderr, "unknown mode %s\n", argv[2]);
		return 2;
	}
	expect("C_Finalize", f->C_Finalize(NULL), CKR_OK);
	return failures ? 1 : 0;
}
