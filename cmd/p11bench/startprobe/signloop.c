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
 * and divide each loop's inclusive count by N.
 *
 * Two sessions at once (docs/bench.md, "Two sessions (2026-12-07)"):
 * -threads T signs on T threads, each with a session of its own (with
 * -only: N signatures on each); -sessions S opens S sessions in all (at
 * least T; gohsm raises its Ps when the second one opens, as p11bench,
 * which opens every session before it measures, always sees). -scaling R
 * runs R rounds of four cells - the module and OpenSSL, each from 1 and
 * from 2 threads, in alternating order - of N signatures a thread, and
 * prints for each cell the rate (the threads' own rates summed, as
 * p11bench), the signing threads' CPU time and the whole process's per
 * signature (the difference is the work of every other thread: Go's
 * runtime, its collector), and the signing threads' context switches,
 * then the medians of the rounds' ratios. The module's mask signal
 * (SIGRTMAX-3) gets a handler first: valgrind 3.19 asserts on a signal
 * Go's runtime would install while it runs. docs/bench.md, "ECDSA P-256
 * path (2026-12-07)". The Makefile builds it as build/signloop.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include "pkcs11.h"
#include "loopstat.h"

typedef struct ec_key_st EC_KEY;
typedef struct ECDSA_SIG_st ECDSA_SIG;

static struct {
	EC_KEY *(*EC_KEY_new_by_curve_name)(int);
	int (*EC_KEY_generate_key)(EC_KEY *);
	ECDSA_SIG *(*ECDSA_do_sign)(const unsigned char *, int, EC_KEY *);
	void (*ECDSA_SIG_free)(ECDSA_SIG *);
} ossl;

static CK_FUNCTION_LIST_PTR p;
static CK_OBJECT_HANDLE key;
static EC_KEY *eck;

#define MAX_THREADS 8

/* One signing thread: its session and digest, and what its last run took. */
struct worker {
	pthread_t th;
	CK_SESSION_HANDLE s;
	unsigned char digest[32];
	int side; /* 0: the module, 1: OpenSSL, 2: C_GetInfo */
	long n;
	int rc;
	double wall, cpu;  /* ns */
	long nvcsw, nivcsw; /* context switches, voluntary and not */
} __attribute__((aligned(64)));

static struct worker workers[MAX_THREADS];

static int fail(const char *what, CK_RV rv)
{
	fprintf(stderr, "signloop: %s: CKR 0x%lx\n", what, (unsigned long)rv);
	return 1;
}

__attribute__((noinline)) int loop_module(struct worker *w, long n)
{
	CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
	CK_BYTE sig[64];
	unsigned char *digest = w->digest;
	for (long i = 0; i < n; i++) {
		CK_ULONG siglen = sizeof sig;
		CK_RV rv = p->C_SignInit(w->s, &mech, key);
		if (rv == CKR_OK)
			rv = p->C_Sign(w->s, digest, 32, sig, &siglen);
		if (rv != CKR_OK || siglen != 64)
			return fail("C_SignInit+C_Sign", rv);
		digest[i & 31] ^= sig[0];
	}
	return 0;
}

// loop_getinfo: C_GetInfo, the module's cheapest call into Go (a
// callback that fills a struct): the floor under each of C_SignInit and
// C_Sign.
__attribute__((noinline)) int loop_getinfo(struct worker *w, long n)
{
	(void)w;
	CK_INFO info;
	for (long i = 0; i < n; i++) {
		CK_RV rv = p->C_GetInfo(&info);
		if (rv != CKR_OK)
			return fail("C_GetInfo", rv);
	}
	return 0;
}

__attribute__((noinline)) int loop_openssl(struct worker *w, long n)
{
	unsigned char *digest = w->digest;
	for (long i = 0; i < n; i++) {
		ECDSA_SIG *s = ossl.ECDSA_do_sign(digest, 32, eck);
		if (s == NULL)
			return fail("ECDSA_do_sign", 0);
		ossl.ECDSA_SIG_free(s);
		digest[i & 31]++;
	}
	return 0;
}

static double now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }
static double cpu_ns(void) { return clock_ns(CLOCK_THREAD_CPUTIME_ID); }

static double tv_ns(struct timeval t) { return t.tv_sec * 1e9 + t.tv_usec * 1e3; }

/* The pool: workers[0..nthreads) wait for a new generation, run their side
 * if their index is below active, and count themselves done. */
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_go = PTHREAD_COND_INITIALIZER, pool_done = PTHREAD_COND_INITIALIZER;
static unsigned long pool_gen;
static int pool_active, pool_running;

static int run_side(struct worker *w, int side, long n)
{
	return side == 0 ? loop_module(w, n) : side == 1 ? loop_openssl(w, n) : loop_getinfo(w, n);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	unsigned long seen = 0;

	for (;;) {
		struct rusage r0, r1;
		double t, c;

		pthread_mutex_lock(&pool_mu);
		while (pool_gen == seen)
			pthread_cond_wait(&pool_go, &pool_mu);
		seen = pool_gen;
		if (w - workers >= pool_active) {
			pthread_mutex_unlock(&pool_mu);
			continue;
		}
		pthread_mutex_unlock(&pool_mu);
		getrusage(RUSAGE_THREAD, &r0);
		t = now_ns(), c = cpu_ns();
		w->rc = run_side(w, w->side, w->n);
		w->wall = now_ns() - t, w->cpu = cpu_ns() - c;
		getrusage(RUSAGE_THREAD, &r1);
		w->nvcsw = r1.ru_nvcsw - r0.ru_nvcsw, w->nivcsw = r1.ru_nivcsw - r0.ru_nivcsw;
		pthread_mutex_lock(&pool_mu);
		if (--pool_running == 0)
			pthread_cond_signal(&pool_done);
		pthread_mutex_unlock(&pool_mu);
	}
	return NULL;
}

/* What one cell (a side from k threads) did. */
struct cell {
	double rate;      /* the threads' own rates summed, signatures/s */
	double cpu;       /* the signing threads' CPU per signature, ns */
	double proc;      /* the whole process's CPU per signature, ns */
	double csw, icsw; /* voluntary and involuntary switches per 1,000 signatures */
};

/* run_cell has the first k workers sign n each on side, at once. */
static int run_cell(int side, int k, long n, struct cell *out)
{
	struct rusage r0, r1;
	double cpu = 0;
	long vc = 0, ic = 0;

	memset(out, 0, sizeof *out);
	getrusage(RUSAGE_SELF, &r0);
	pthread_mutex_lock(&pool_mu);
	for (int i = 0; i < k; i++)
		workers[i].side = side, workers[i].n = n;
	pool_active = k, pool_running = k;
	pool_gen++;
	pthread_cond_broadcast(&pool_go);
	while (pool_running > 0)
		pthread_cond_wait(&pool_done, &pool_mu);
	pthread_mutex_unlock(&pool_mu);
	getrusage(RUSAGE_SELF, &r1);
	for (int i = 0; i < k; i++) {
		if (workers[i].rc)
			return 1;
		out->rate += n / workers[i].wall * 1e9;
		cpu += workers[i].cpu, vc += workers[i].nvcsw, ic += workers[i].nivcsw;
	}
	out->cpu = cpu / (k * n);
	out->proc = (tv_ns(r1.ru_utime) + tv_ns(r1.ru_stime) - tv_ns(r0.ru_utime) - tv_ns(r0.ru_stime)) / (k * n);
	out->csw = vc * 1000.0 / (k * n), out->icsw = ic * 1000.0 / (k * n);
	return 0;
}

/*
 * scaling: rounds of the four cells (module and OpenSSL from 1 and 2
 * threads), the order reversed every other round; per round, each cell's
 * figures and the ratios, then the medians of those ratios.
 */
static int scaling(int rounds, long n)
{
	static const char *names[4] = {"module 1", "module 2", "openssl 1", "openssl 2"};
	double *r1 = calloc(rounds, sizeof(double)), *r2 = calloc(rounds, sizeof(double)),
	       *sm = calloc(rounds, sizeof(double)), *so = calloc(rounds, sizeof(double));
	double l0 = loadavg();

	for (int r = 0; r < rounds; r++) {
		struct cell c[4];
		for (int j = 0; j < 4; j++) {
			int i = r & 1 ? 3 - j : j;
			if (run_cell(i / 2, i % 2 + 1, n, &c[i]))
				return 1;
		}
		for (int i = 0; i < 4; i++)
			printf("round %d %-9s %8.0f/s  thread cpu %6.0f ns  process cpu %6.0f ns  switches %.2f + %.2f /1000\n", r,
			       names[i], c[i].rate, c[i].cpu, c[i].proc, c[i].csw, c[i].icsw);
		r1[r] = c[0].rate / c[2].rate, r2[r] = c[1].rate / c[3].rate;
		sm[r] = c[1].rate / c[0].rate, so[r] = c[3].rate / c[2].rate;
		printf("round %d module/openssl %.3fx (1) %.3fx (2); scaling module %.3fx openssl %.3fx\n", r, r1[r], r2[r],
		       sm[r], so[r]);
	}
	printf("median of %d rounds of %ld signatures a thread: module/openssl %.3fx (1 thread) %.3fx (2 threads); "
	       "scaling module %.3fx openssl %.3fx (load %.2f -> %.2f)\n",
	       rounds, n, median(r1, rounds), median(r2, rounds), median(sm, rounds), median(so, rounds), l0, loadavg());
	return 0;
}

static void on_signal(int sig) { (void)sig; }

int main(int argc, char **argv)
{
	long n = 100000, batch = 1000;
	int threads = 1, nsess = 0, rounds = 0;
	const char *only = NULL;
	struct worker *w0 = &workers[0];
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
		else if (strcmp(argv[1], "-threads") == 0)
			threads = atoi(argv[2]);
		else if (strcmp(argv[1], "-sessions") == 0)
			nsess = atoi(argv[2]);
		else if (strcmp(argv[1], "-scaling") == 0)
			rounds = atoi(argv[2]);
		else
			break;
	}
	if (rounds > 0 && threads < 2)
		threads = 2;
	if (nsess < threads)
		nsess = threads;
	if (argc != 4 || n <= 0 || batch <= 0 || threads < 1 || nsess > MAX_THREADS || rounds < 0 ||
	    (only && strcmp(only, "module") != 0 && strcmp(only, "openssl") != 0 && strcmp(only, "getinfo") != 0)) {
		fprintf(stderr, "usage: signloop [-n N] [-batch B] [-only module|openssl|getinfo] [-threads T] "
				"[-sessions S] [-scaling ROUNDS] MODULE.so CONF PIN\n");
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
	for (int i = 0; i < nsess; i++)
		if ((rv = p->C_OpenSession(slots[0], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &workers[i].s)) !=
		    CKR_OK)
			return fail("C_OpenSession", rv);
	if ((rv = p->C_Login(w0->s, CKU_USER, (CK_UTF8CHAR_PTR)argv[3], strlen(argv[3]))) != CKR_OK)
		return fail("C_Login", rv);
	if ((rv = p->C_FindObjectsInit(w0->s, tmpl, 2)) != CKR_OK ||
	    (rv = p->C_FindObjects(w0->s, &key, 1, &found)) != CKR_OK || (rv = p->C_FindObjectsFinal(w0->s)) != CKR_OK)
		return fail("C_FindObjects", rv);
	if (found != 1)
		return fail("no EC private key on the token", CKR_KEY_HANDLE_INVALID);

	for (int i = 0; i < nsess; i++)
		memcpy(workers[i].digest, "signloop digest of thirty-two by", 32);
	if (threads > 1 || rounds > 0 || nsess > 1) {
		/* Every session and signing thread warms up, then the cells run. */
		for (int i = 0; i < threads; i++)
			if (pthread_create(&workers[i].th, NULL, worker_main, &workers[i]) != 0)
				return fail("pthread_create", 0);
		for (int side = 0; side < 2; side++) {
			struct cell c;
			if (run_cell(side, threads, 200, &c))
				return 1;
		}
		if (rounds > 0) {
			if (scaling(rounds, n))
				return 1;
		} else {
			struct cell c;
			int side = strcmp(only ? only : "module", "module") == 0 ? 0 : strcmp(only, "openssl") == 0 ? 1 : 2;
			double t = now_ns();
			if (run_cell(side, threads, n, &c))
				return 1;
			printf("%s: %d threads, %ld calls each, %.0f ns wall each, %.0f/s; per call: thread cpu %.0f ns, "
			       "process cpu %.0f ns, switches %.2f + %.2f /1000\n",
			       only ? only : "module", threads, n, (now_ns() - t) / n, c.rate, c.cpu, c.proc, c.csw, c.icsw);
		}
		p->C_Logout(w0->s);
		p->C_Finalize(NULL);
		return 0;
	}
	if (loop_module(w0, 200) || loop_openssl(w0, 200))
		return 1;
	if (only) {
		double t = now_ns();
		double c = cpu_ns();
		if (strcmp(only, "module") == 0 ? loop_module(w0, n)
		    : strcmp(only, "getinfo") == 0 ? loop_getinfo(w0, n)
						   : loop_openssl(w0, n))
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
				if (mod ? loop_module(w0, batch) : loop_openssl(w0, batch))
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
		qsort(ratio, rounds, sizeof *ratio, cmp_double);
		qsort(cratio, rounds, sizeof *cratio, cmp_double);
		printf("wall: module %.0f ns, openssl %.0f ns per signature, median batch ratio openssl/module %.4fx\n"
		       "thread cpu: module %.0f ns, openssl %.0f ns per signature, median batch ratio openssl/module %.4fx\n"
		       "(%ld batches of %ld each, alternated; load %.2f -> %.2f)\n",
		       tm / (rounds * batch), to / (rounds * batch), 1 / ratio[rounds / 2], cm / (rounds * batch),
		       co / (rounds * batch), 1 / cratio[rounds / 2], rounds, batch, l0, loadavg());
	}
	p->C_Logout(w0->s);
	p->C_Finalize(NULL);
	return 0;
}
