/*
 * digestloop: C_DigestInit + C_Digest (CKM_SHA256) over one buffer, for
 * one or more modules in one C process, against libcrypto's SHA256() over
 * a buffer of the same size, for alternated timings.
 *
 *   digestloop [-n N] [-batch B] [-size S] NAME=MODULE.so[,CONF] ...
 *
 * Each module is loaded, C_Initialize'd with CKF_OS_LOCKING_OK and CONF
 * (if given) as pReserved (gohsm's configuration file; SoftHSM reads
 * SOFTHSM2_CONF), and digests in a read-only session on the first slot
 * with a token (no login: C_Digest needs none). Two sides need no module:
 * "openssl", SHA256() from libcrypto.so.3 (loaded at run time) over a
 * buffer of S bytes, and "copy+openssl", the same after copying the
 * input into a fresh malloc'd buffer (what a module that keeps its own
 * copy of the input pays). Every side has its own input buffer of S bytes
 * (default 1 MiB), filled once, as p11bench's sessions have.
 *
 * N operations of each side (default 2000) in batches of B (default 50),
 * the sides taking turns batch by batch, the order rotated every batch. It
 * prints each side's wall-clock and thread CPU time per operation (the
 * median over batches, and the mean over all), the thread's context
 * switches, and the load average before and after. The thread's CPU time
 * (CLOCK_THREAD_CPUTIME_ID) leaves out the time the thread waited for a
 * core, which on a loaded machine is most of the noise.
 *
 * The module's mask signal (SIGRTMAX-3) gets a handler first, as in
 * signloop.c. No instruction counts with it here: callgrind 3.19 stops
 * at RDTSCP, which the runtime's cputicks (Go 1.27) executes on this
 * machine. docs/bench.md, "SHA-256 1 MiB (2026-12-07)".
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include "pkcs11.h"
#include "loopstat.h"

#define MAX_SIDES 8

enum { SIDE_MODULE, SIDE_OPENSSL, SIDE_COPY };

struct side {
	const char *name;
	int kind;
	CK_FUNCTION_LIST_PTR p;
	CK_SESSION_HANDLE s;
	unsigned char *in;
	double *wall, *cpu; /* per batch, ns per operation */
	double wall_sum, cpu_sum;
	long nivcsw, nvcsw;
};

static struct side sides[MAX_SIDES];
static int nsides;
static size_t size = 1 << 20;
static unsigned char *(*sha256)(const unsigned char *, size_t, unsigned char *);

static int fail(const char *who, const char *what, CK_RV rv)
{
	fprintf(stderr, "digestloop: %s: %s: CKR 0x%lx\n", who, what, (unsigned long)rv);
	return 1;
}

__attribute__((noinline)) int loop_module(struct side *sd, long n)
{
	CK_MECHANISM mech = {CKM_SHA256, NULL, 0};
	CK_BYTE out[32];
	for (long i = 0; i < n; i++) {
		CK_ULONG outlen = sizeof out;
		CK_RV rv = sd->p->C_DigestInit(sd->s, &mech);
		if (rv == CKR_OK)
			rv = sd->p->C_Digest(sd->s, sd->in, size, out, &outlen);
		if (rv != CKR_OK || outlen != 32)
			return fail(sd->name, "C_DigestInit+C_Digest", rv);
	}
	return 0;
}

__attribute__((noinline)) int loop_openssl(struct side *sd, long n)
{
	unsigned char out[32];
	for (long i = 0; i < n; i++) {
		const unsigned char *in = sd->in;
		unsigned char *copy = NULL;
		if (sd->kind == SIDE_COPY) {
			if ((copy = malloc(size)) == NULL)
				return fail(sd->name, "malloc", 0);
			memcpy(copy, in, size);
			in = copy;
		}
		sha256(in, size, out);
		free(copy);
	}
	return 0;
}

static void noop_handler(int sig) { (void)sig; }

static int load_module(struct side *sd, char *arg)
{
	char *conf = strchr(arg, ',');
	if (conf)
		*conf++ = 0;
	void *lib = dlopen(arg, RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL) {
		fprintf(stderr, "digestloop: %s\n", dlerror());
		return 1;
	}
	CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
	CK_RV rv;
	if (get == NULL || (rv = get(&sd->p)) != CKR_OK)
		return fail(sd->name, "C_GetFunctionList", get ? rv : 0);
	CK_C_INITIALIZE_ARGS args = {0};
	args.flags = CKF_OS_LOCKING_OK;
	args.pReserved = conf;
	if ((rv = sd->p->C_Initialize(&args)) != CKR_OK)
		return fail(sd->name, "C_Initialize", rv);
	CK_SLOT_ID slots[16];
	CK_ULONG ns = 16;
	if ((rv = sd->p->C_GetSlotList(CK_TRUE, slots, &ns)) != CKR_OK || ns == 0)
		return fail(sd->name, "C_GetSlotList (a slot with a token)", rv);
	if ((rv = sd->p->C_OpenSession(slots[0], CKF_SERIAL_SESSION, NULL, NULL, &sd->s)) != CKR_OK)
		return fail(sd->name, "C_OpenSession", rv);
	return 0;
}

int main(int argc, char **argv)
{
	long n = 2000, batch = 50;
	int i;

	signal(SIGRTMAX - 3, noop_handler);
	for (i = 1; i < argc && argv[i][0] == '-'; i += 2) {
		if (i + 1 >= argc)
			break;
		if (strcmp(argv[i], "-n") == 0)
			n = atol(argv[i + 1]);
		else if (strcmp(argv[i], "-batch") == 0)
			batch = atol(argv[i + 1]);
		else if (strcmp(argv[i], "-size") == 0)
			size = (size_t)atol(argv[i + 1]);
		else
			break;
	}
	if (i >= argc || n <= 0 || batch <= 0 || n % batch || size == 0) {
		fprintf(stderr, "usage: digestloop [-n N] [-batch B (dividing N)] [-size S] NAME=MODULE.so[,CONF] ...\n");
		return 2;
	}
	void *crypto = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);
	if (crypto == NULL || (sha256 = dlsym(crypto, "SHA256")) == NULL) {
		fprintf(stderr, "digestloop: libcrypto.so.3 with SHA256: %s\n", dlerror());
		return 1;
	}
	sides[nsides++] = (struct side){.name = "openssl", .kind = SIDE_OPENSSL};
	sides[nsides++] = (struct side){.name = "copy+openssl", .kind = SIDE_COPY};
	for (; i < argc && nsides < MAX_SIDES; i++) {
		char *eq = strchr(argv[i], '=');
		if (eq == NULL) {
			fprintf(stderr, "digestloop: %s: want NAME=MODULE.so[,CONF]\n", argv[i]);
			return 2;
		}
		*eq = 0;
		struct side *sd = &sides[nsides++];
		*sd = (struct side){.name = argv[i], .kind = SIDE_MODULE};
		if (load_module(sd, eq + 1))
			return 1;
	}
	long nb = n / batch;
	for (i = 0; i < nsides; i++) {
		struct side *sd = &sides[i];
		sd->in = malloc(size);
		sd->wall = calloc(nb, sizeof(double));
		sd->cpu = calloc(nb, sizeof(double));
		if (sd->in == NULL || sd->wall == NULL || sd->cpu == NULL)
			return 1;
		for (size_t j = 0; j < size; j++)
			sd->in[j] = (unsigned char)(j * 131 + i);
		/* warm-up */
		if ((sd->kind == SIDE_MODULE ? loop_module(sd, batch) : loop_openssl(sd, batch)) != 0)
			return 1;
	}
	double load0 = loadavg();
	for (long b = 0; b < nb; b++) {
		for (int k = 0; k < nsides; k++) {
			struct side *sd = &sides[(k + b) % nsides];
			struct rusage r0, r1;
			getrusage(RUSAGE_THREAD, &r0);
			double w0 = clock_ns(CLOCK_MONOTONIC), c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
			int rc = sd->kind == SIDE_MODULE ? loop_module(sd, batch) : loop_openssl(sd, batch);
			double w = clock_ns(CLOCK_MONOTONIC) - w0, c = clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
			getrusage(RUSAGE_THREAD, &r1);
			if (rc)
				return 1;
			sd->wall[b] = w / batch;
			sd->cpu[b] = c / batch;
			sd->wall_sum += w;
			sd->cpu_sum += c;
			sd->nvcsw += r1.ru_nvcsw - r0.ru_nvcsw;
			sd->nivcsw += r1.ru_nivcsw - r0.ru_nivcsw;
		}
	}
	double load1 = loadavg();
	printf("digestloop: %ld operations of %zu bytes per side in batches of %ld, load %.2f -> %.2f\n", n, size, batch, load0, load1);
	printf("%-14s %12s %12s %12s %12s %8s %8s\n", "side", "wall p50 us", "wall mean", "cpu p50 us", "cpu mean", "invol/op", "vol/op");
	for (i = 0; i < nsides; i++) {
		struct side *sd = &sides[i];
		printf("%-14s %12.2f %12.2f %12.2f %12.2f %8.3f %8.3f\n", sd->name, median(sd->wall, nb) / 1e3,
		       sd->wall_sum / n / 1e3, median(sd->cpu, nb) / 1e3, sd->cpu_sum / n / 1e3,
		       (double)sd->nivcsw / n, (double)sd->nvcsw / n);
	}
	for (i = 0; i < nsides; i++)
		if (sides[i].kind == SIDE_MODULE)
			sides[i].p->C_Finalize(NULL);
	return 0;
}
