/*
 * signloop: a module's CKM_ECDSA path against OpenSSL's ECDSA_do_sign, in
 * one C process, for instruction counts and alternated timings.
 *
 *   signloop [-n N] [-batch B] [-only module|openssl|getinfo] MODULE.so CONF PIN
 *
 * It loads the module, C_Initialize with CKF_OS_LOCKING_OK and CONF as
 * pReserved (gohsm's configuration file), opens a session on the first
 * slot with a token, logs in with PIN, takes the first EC private key
 * there, and makes an OpenSSL P-256 key in libcrypto.so.3 (loaded at run
 * time, as p11bench's baseline). One module signature is C_SignInit
 * (CKM_ECDSA) + C_Sign of a 32-byte digest into a 64-byte buffer; one
 * OpenSSL signature is ECDSA_do_sign + ECDSA_SIG_free, as p11bench's
 * baseline.
 *
 * Without -only: N signatures of each (default 100000) in batches of B
 * (default 1000), the two sides taking turns batch by batch, the order
 * swapped every batch; it prints each side's wall-clock and thread CPU
 * time per signature over all batches and the median over batch pairs of
 * OpenSSL's time over the module's (the module's rate as a share of
 * OpenSSL's), with the load average before and after. The thread's CPU
 * time (CLOCK_THREAD_CPUTIME_ID) leaves out the time the thread waited
 * for a core, which on a loaded machine is most of the noise.
 * With -only: N signatures of that side alone, after a warm-up of 200 of
 * each; -only getinfo times N calls of C_GetInfo, the module's cheapest
 * call into Go, the floor under each of C_SignInit and C_Sign. For callgrind, count only the loops:
 *
 *   GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind \
 *     --toggle-collect=loop_module --toggle-collect=loop_openssl \
 *     build/signloop -n 1000 MODULE.so CONF PIN
 *
 * and divide each loop's inclusive count by N. The module's mask signal
 * (SIGRTMAX-3) gets a handler first: valgrind 3.19 asserts on a signal
 * Go's runtime would install while it runs. docs/bench.md, "ECDSA P-256
 * path (2026-12-07)". The Makefile builds it as build/signloop.
 */
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "pkcs11.h"

typedef struct ec_key_st EC_KEY;
typedef struct ECDSA_SIG_st ECDSA_SIG;

static struct {
	EC_KEY *(*EC_KEY_new_by_curve_name)(int);
	int (*EC_KEY_generate_key)(EC_KEY *);
	ECDSA_SIG *(*ECDSA_do_sign)(const unsigned char *, int, EC_KEY *);
	void (*ECDSA_SIG_free)(ECDSA_SIG *);
} ossl;

static CK_FUNCTION_LIST_PTR p;
static CK_SESSION_HANDLE sess;
static CK_OBJECT_HANDLE key;
static EC_KEY *eck;
static unsigned char digest[32];

static int fail(const char *what, CK_RV rv)
{
	fprintf(stderr, "signloop: %s: CKR 0x%lx\n", what, (unsigned long)rv);
	return 1;
}

__attribute__((noinline)) int loop_module(long n)
{
	CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
	CK_BYTE sig[64];
	for (long i = 0; i < n; i++) {
		CK_ULONG siglen = sizeof sig;
		CK_RV rv = p->C_SignInit(sess, &mech, key);
		if (rv == CKR_OK)
			rv = p->C_Sign(sess, digest, sizeof digest, sig, &siglen);
		if (rv != CKR_OK || siglen != 64)
			return fail("C_SignInit+C_Sign", rv);
		digest[i & 31] ^= sig[0];
	}
	return 0;
}

// loop_getinfo: C_GetInfo, the module's cheapest call into Go (a
// callback that fills a struct): the floor under each of C_SignInit and
// C_Sign.
__attribute__((noinline)) int loop_getinfo(long n)
{
	CK_INFO info;
	for (long i = 0; i < n; i++) {
		CK_RV rv = p->C_GetInfo(&info);
		if (rv != CKR_OK)
			return fail("C_GetInfo", rv);
	}
	return 0;
}

__attribute__((noinline)) int loop_openssl(long n)
{
	for (long i = 0; i < n; i++) {
		ECDSA_SIG *s = ossl.ECDSA_do_sign(digest, sizeof digest, eck);
		if (s == NULL)
			return fail("ECDSA_do_sign", 0);
		ossl.ECDSA_SIG_free(s);
		digest[i & 31]++;
	}
	return 0;
}

static double clock_ns(clockid_t c)
{
	struct timespec t;
	clock_gettime(c, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

static double now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }
static double cpu_ns(void) { return clock_ns(CLOCK_THREAD_CPUTIME_ID); }

static double loadavg(void)
{
	double l = -1;
	FILE *f = fopen("/proc/loadavg", "r");
	if (f) {
		if (fscanf(f, "%lf", &l) != 1)
			l = -1;
		fclose(f);
	}
	return l;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void on_signal(int sig) { (void)sig; }

int main(int argc, char **argv)
{
	long n = 100000, batch = 1000;
	const char *only = NULL;
	CK_C_GetFunctionList gfl;
	CK_C_INITIALIZE_ARGS init = {0};
	CK_SLOT_ID slots[64];
	CK_ULONG nslots = 64, found = 0;
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_KEY_TYPE kt = CKK_EC;
	CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_KEY_TYPE, &kt, sizeof kt}};
	CK_RV rv;
	void *h, *c;

	for (; argc > 1 && argv[1][0] == '-'; argc -= 2, argv += 2) {
		if (argc < 3)
			break;
		if (strcmp(argv[1], "-n") == 0)
			n = atol(argv[2]);
		else if (strcmp(argv[1], "-batch") == 0)
			batch = atol(argv[2]);
		else if (strcmp(argv[1], "-only") == 0)
			only = argv[2];
		else
			break;
	}
	if (argc != 4 || n <= 0 || batch <= 0 ||
	    (only && strcmp(only, "module") != 0 && strcmp(only, "openssl") != 0 && strcmp(only, "getinfo") != 0)) {
		fprintf(stderr, "usage: signloop [-n N] [-batch B] [-only module|openssl|getinfo] MODULE.so CONF PIN\n");
		return 2;
	}
	signal(SIGRTMAX - 3, on_signal);

	c = dlopen("libcrypto.so.3", RTLD_NOW);
	if (!c || !(ossl.EC_KEY_new_by_curve_name = dlsym(c, "EC_KEY_new_by_curve_name")) ||
	    !(ossl.EC_KEY_generate_key = dlsym(c, "EC_KEY_generate_key")) ||
	    !(ossl.ECDSA_do_sign = dlsym(c, "ECDSA_do_sign")) || !(ossl.ECDSA_SIG_free = dlsym(c, "ECDSA_SIG_free"))) {
		fprintf(stderr, "signloop: libcrypto.so.3: %s\n", dlerror());
		return 1;
	}
	eck = ossl.EC_KEY_new_by_curve_name(415 /* NID_X9_62_prime256v1 */);
	if (!eck || ossl.EC_KEY_generate_key(eck) != 1)
		return fail("EC_KEY_generate_key", 0);

	h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		fprintf(stderr, "signloop: %s\n", dlerror());
		return 1;
	}
	gfl = (CK_C_GetFunctionList)dlsym(h, "C_GetFunctionList");
	if (!gfl || gfl(&p) != CKR_OK)
		return fail("C_GetFunctionList", CKR_GENERAL_ERROR);
	init.flags = CKF_OS_LOCKING_OK;
	init.pReserved = argv[2];
	if ((rv = p->C_Initialize(&init)) != CKR_OK)
		return fail("C_Initialize", rv);
	if ((rv = p->C_GetSlotList(CK_TRUE, slots, &nslots)) != CKR_OK || nslots == 0)
		return fail("C_GetSlotList", rv);
	if ((rv = p->C_OpenSession(slots[0], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &sess)) != CKR_OK)
		return fail("C_OpenSession", rv);
	if ((rv = p->C_Login(sess, CKU_USER, (CK_UTF8CHAR_PTR)argv[3], strlen(argv[3]))) != CKR_OK)
		return fail("C_Login", rv);
	if ((rv = p->C_FindObjectsInit(sess, tmpl, 2)) != CKR_OK ||
	    (rv = p->C_FindObjects(sess, &key, 1, &found)) != CKR_OK || (rv = p->C_FindObjectsFinal(sess)) != CKR_OK)
		return fail("C_FindObjects", rv);
	if (found != 1)
		return fail("no EC private key on the token", CKR_KEY_HANDLE_INVALID);

	if (loop_module(200) || loop_openssl(200))
		return 1;
	if (only) {
		double t = now_ns();
		double c = cpu_ns();
		if (strcmp(only, "module") == 0 ? loop_module(n)
		    : strcmp(only, "getinfo") == 0 ? loop_getinfo(n)
						   : loop_openssl(n))
			return 1;
		printf("%s: %ld calls, %.0f ns each, %.0f ns thread cpu\n", only, n, (now_ns() - t) / n,
		       (cpu_ns() - c) / n);
	} else {
		long rounds = (n + batch - 1) / batch;
		double *ratio = calloc(rounds, sizeof *ratio), *cratio = calloc(rounds, sizeof *cratio);
		double tm = 0, to = 0, cm = 0, co = 0, l0 = loadavg();
		for (long r = 0; r < rounds; r++) {
			double a = 0, b = 0, ca = 0, cb = 0, t, c;
			for (int side = 0; side < 2; side++) {
				int mod = (side ^ (int)(r & 1)) == 0;
				t = now_ns(), c = cpu_ns();
				if (mod ? loop_module(batch) : loop_openssl(batch))
					return 1;
				t = now_ns() - t, c = cpu_ns() - c;
				if (mod)
					a = t, ca = c;
				else
					b = t, cb = c;
			}
			tm += a, to += b, cm += ca, co += cb;
			ratio[r] = a / b, cratio[r] = ca / cb;
		}
		qsort(ratio, rounds, sizeof *ratio, cmp);
		qsort(cratio, rounds, sizeof *cratio, cmp);
		printf("wall: module %.0f ns, openssl %.0f ns per signature, median batch ratio openssl/module %.4fx\n"
		       "thread cpu: module %.0f ns, openssl %.0f ns per signature, median batch ratio openssl/module %.4fx\n"
		       "(%ld batches of %ld each, alternated; load %.2f -> %.2f)\n",
		       tm / (rounds * batch), to / (rounds * batch), 1 / ratio[rounds / 2], cm / (rounds * batch),
		       co / (rounds * batch), 1 / cratio[rounds / 2], rounds, batch, l0, loadavg());
	}
	p->C_Logout(sess);
	p->C_Finalize(NULL);
	return 0;
}
