/*
 * soak.c - the concurrency soak's worker (tests/soak/soak_test.go runs
 * several at once against one token).
 *
 *   soak LIB setup            init the token, users "user" and "storm", an EC signing key pair
 *   soak LIB work T ITER      T threads, ITER rounds: one thread logs in, all create,
 *                             destroy, sign and verify, the thread logs out
 *   soak LIB storm T          T threads send wrong passwords for "storm" until it is locked
 *   soak LIB count            the number of soak data objects left on the token
 *   soak LIB login-storm      C_Login of "storm" with its right password
 *
 * Each mode prints "KEY value" lines for the test to add up, and "FAIL ..."
 * for anything unexpected; it exits non-zero on a failure.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../abi/testdata/abi.h"

#define USER_PIN "user:userpin1"
#define STORM_PIN "storm:stormpw1"
#define STORM_BAD "storm:wrong-pw"
static const char app[] = "gohsm-soak";

static struct abi_module mod;
static CK_FUNCTION_LIST_PTR f;
static CK_SLOT_ID slot;
static pthread_barrier_t bar;
static int rounds;
static atomic_long created, destroyed, signed_, verified, errors, incorrect, locked, other;

#define MUST(call) do { CK_RV rv_ = (call); if (rv_ != CKR_OK) { \
	printf("FAIL %s:%d %s: %s\n", __FILE__, __LINE__, #call, abi_rv_name(rv_)); fflush(stdout); exit(1); } } while (0)
#define COUNT_ERR(call) do { CK_RV rv_ = (call); if (rv_ != CKR_OK) { atomic_fetch_add(&errors, 1); \
	printf("FAIL %s:%d %s: %s\n", __FILE__, __LINE__, #call, abi_rv_name(rv_)); fflush(stdout); } } while (0)

static void init(void)
{
	CK_ULONG n = 1;
	MUST(f->C_Initialize(NULL));
	MUST(f->C_GetSlotList(CK_FALSE, &slot, &n));
}

static CK_OBJECT_HANDLE find_one(CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls)
{
	CK_OBJECT_HANDLE h = 0;
	CK_ULONG n = 0;
	CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_LABEL, "soak-key", 8}};
	MUST(f->C_FindObjectsInit(s, t, 2));
	MUST(f->C_FindObjects(s, &h, 1, &n));
	MUST(f->C_FindObjectsFinal(s));
	if (n != 1) {
		printf("FAIL find soak-key class %lu: %lu found\n", (unsigned long)cls, (unsigned long)n);
		exit(1);
	}
	return h;
}

static void setup(void)
{
	CK_SESSION_HANDLE s;
	CK_UTF8CHAR label[32];
	CK_BYTE p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
	CK_BBOOL yes = CK_TRUE;
	CK_MECHANISM gen = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
	CK_ATTRIBUTE pub[] = {{CKA_EC_PARAMS, p256, sizeof p256}, {CKA_TOKEN, &yes, 1}, {CKA_VERIFY, &yes, 1},
			      {CKA_LABEL, "soak-key", 8}};
	CK_ATTRIBUTE priv[] = {{CKA_TOKEN, &yes, 1}, {CKA_SIGN, &yes, 1}, {CKA_PRIVATE, &yes, 1}, {CKA_LABEL, "soak-key", 8}};
	CK_OBJECT_HANDLE hp, hk;

	init();
	memset(label, ' ', sizeof label);
	memcpy(label, ABI_LABEL, strlen(ABI_LABEL));
	MUST(f->C_InitToken(slot, (CK_UTF8CHAR_PTR)ABI_SO_PIN, strlen(ABI_SO_PIN), label));
	MUST(f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s));
	MUST(f->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR)ABI_SO_PIN, strlen(ABI_SO_PIN)));
	MUST(f->C_InitPIN(s, (CK_UTF8CHAR_PTR)USER_PIN, strlen(USER_PIN)));
	MUST(f->C_InitPIN(s, (CK_UTF8CHAR_PTR)STORM_PIN, strlen(STORM_PIN)));
	MUST(f->C_Logout(s));
	MUST(f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, strlen(USER_PIN)));
	MUST(f->C_GenerateKeyPair(s, &gen, pub, 4, priv, 4, &hp, &hk));
	MUST(f->C_Logout(s));
	MUST(f->C_Finalize(NULL));
	printf("SETUP ok\n");
}

static void *worker(void *arg)
{
	long id = (long)arg;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE key = 0, pubkey = 0;
	CK_MECHANISM mech = {CKM_ECDSA_SHA256, NULL, 0};
	CK_OBJECT_CLASS data = CKO_DATA;
	CK_BBOOL yes = CK_TRUE;

	MUST(f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s));
	for (int r = 0; r < rounds; r++) {
		if (id == 0)
			MUST(f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, strlen(USER_PIN)));
		pthread_barrier_wait(&bar);
		if (key == 0) {
			key = find_one(s, CKO_PRIVATE_KEY);
			pubkey = find_one(s, CKO_PUBLIC_KEY);
		}
		for (int i = 0; i < 3; i++) {
			char lbl[64], msg[64];
			CK_OBJECT_HANDLE h[2];
			CK_BYTE sig[128];
			CK_ULONG sl = sizeof sig;
			int n = snprintf(lbl, sizeof lbl, "soak-%d-%ld-%d-%d", (int)getpid(), id, r, i);
			CK_ATTRIBUTE t[] = {{CKA_CLASS, &data, sizeof data}, {CKA_TOKEN, &yes, 1}, {CKA_PRIVATE, &yes, 1},
					    {CKA_APPLICATION, (void *)app, sizeof app - 1}, {CKA_LABEL, lbl, n}};
			for (int j = 0; j < 2; j++) {
				CK_RV rv = f->C_CreateObject(s, t, 5, &h[j]);
				if (rv == CKR_OK)
					atomic_fetch_add(&created, 1);
				else
					COUNT_ERR(rv);
			}
			if (f->C_DestroyObject(s, h[0]) == CKR_OK)
				atomic_fetch_add(&destroyed, 1);
			else
				atomic_fetch_add(&errors, 1);
			n = snprintf(msg, sizeof msg, "message %d %ld %d %d", (int)getpid(), id, r, i);
			COUNT_ERR(f->C_SignInit(s, &mech, key));
			CK_RV rv = f->C_Sign(s, (CK_BYTE_PTR)msg, n, sig, &sl);
			if (rv != CKR_OK) {
				COUNT_ERR(rv);
				continue;
			}
			atomic_fetch_add(&signed_, 1);
			COUNT_ERR(f->C_VerifyInit(s, &mech, pubkey));
			rv = f->C_Verify(s, (CK_BYTE_PTR)msg, n, sig, sl);
			if (rv == CKR_OK)
				atomic_fetch_add(&verified, 1);
			else
				COUNT_ERR(rv);
		}
		pthread_barrier_wait(&bar);
		if (id == 0)
			MUST(f->C_Logout(s));
		pthread_barrier_wait(&bar);
	}
	MUST(f->C_CloseSession(s));
	return NULL;
}

static void *stormer(void *arg)
{
	(void)arg;
	for (int i = 0; i < 100; i++) {
		CK_SESSION_HANDLE s;
		MUST(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s));
		CK_RV rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)STORM_BAD, strlen(STORM_BAD));
		MUST(f->C_CloseSession(s));
		if (rv == CKR_PIN_INCORRECT) {
			atomic_fetch_add(&incorrect, 1);
		} else if (rv == CKR_PIN_LOCKED) {
			atomic_fetch_add(&locked, 1);
			break;
		} else {
			atomic_fetch_add(&other, 1);
			printf("FAIL storm login: %s\n", abi_rv_name(rv));
		}
	}
	return NULL;
}

static void run_threads(int n, void *(*fn)(void *))
{
	pthread_t th[64];
	pthread_barrier_init(&bar, NULL, n);
	for (long i = 0; i < n; i++)
		pthread_create(&th[i], NULL, fn, (void *)i);
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: soak LIB setup|work T ITER|storm T|count|login-storm\n");
		return 2;
	}
	abi_load(argv[1], &mod);
	f = mod.fl;
	const char *mode = argv[2];
	if (!strcmp(mode, "setup")) {
		setup();
		return 0;
	}
	init();
	if (!strcmp(mode, "work") && argc == 5) {
		int n = atoi(argv[3]);
		rounds = atoi(argv[4]);
		if (n < 1 || n > 64)
			return 2;
		run_threads(n, worker);
		printf("CREATED %ld\nDESTROYED %ld\nSIGNED %ld\nVERIFIED %ld\nERRORS %ld\n", created, destroyed, signed_,
		       verified, errors);
	} else if (!strcmp(mode, "storm") && argc == 4) {
		int n = atoi(argv[3]);
		if (n < 1 || n > 64)
			return 2;
		run_threads(n, stormer);
		printf("INCORRECT %ld\nLOCKED %ld\nOTHER %ld\n", incorrect, locked, other);
	} else if (!strcmp(mode, "count")) {
		CK_SESSION_HANDLE s;
		CK_OBJECT_HANDLE h[256];
		CK_ULONG n, total = 0;
		CK_ATTRIBUTE t[] = {{CKA_APPLICATION, (void *)app, sizeof app - 1}};
		MUST(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s));
		MUST(f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, strlen(USER_PIN)));
		MUST(f->C_FindObjectsInit(s, t, 1));
		do {
			MUST(f->C_FindObjects(s, h, 256, &n));
			total += n;
		} while (n > 0);
		MUST(f->C_FindObjectsFinal(s));
		printf("COUNT %lu\n", (unsigned long)total);
	} else if (!strcmp(mode, "login-storm")) {
		CK_SESSION_HANDLE s;
		MUST(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s));
		printf("LOGIN 0x%lx\n", (unsigned long)f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)STORM_PIN, strlen(STORM_PIN)));
	} else {
		fprintf(stderr, "soak: bad mode %s\n", mode);
		return 2;
	}
	MUST(f->C_Finalize(NULL));
	return errors || other ? 1 : 0;
}
