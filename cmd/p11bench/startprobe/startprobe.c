/*
 * startprobe: the start-up of a PKCS#11 module, as a short-lived client
 * sees it, in a C process of its own (no Go runtime of the caller's).
 *
 *   startprobe [-smaps] MODULE.so
 *
 * dlopen + C_GetFunctionList + C_Initialize(NULL) + C_GetSlotList +
 * C_GetTokenInfo of every slot with a token + C_Finalize, then prints one
 * line of key=value pairs: the monotonic time each step ended (us since
 * main), VmRSS after each step and VmHWM (the peak; the kernel resets it at
 * exec, unlike ru_maxrss), and, after C_Initialize, smaps_rollup's Rss, Pss
 * and Private/Shared kB. With -smaps it then prints the mappings of
 * /proc/self/smaps read right after C_Initialize, one line each, grouped by
 * file (Rss, Pss, Private_Clean, Private_Dirty, Shared kB).
 * `p11bench startup` runs it (docs/bench.md, "Start-up"); the Makefile
 * builds it as build/startprobe.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "pkcs11.h"

static struct timespec t0;

static long us_since_start(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0.tv_sec) * 1000000L + (t.tv_nsec - t0.tv_nsec) / 1000;
}

/* status_kb returns the kB value of a /proc/self/status line (VmRSS:, VmHWM:). */
static long status_kb(const char *key) {
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	size_t n = strlen(key);
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, key, n) == 0) {
			v = strtol(line + n, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/* rollup prints smaps_rollup's fields as key=value pairs. */
static void rollup(void) {
	static const char *keys[] = {"Rss:", "Pss:", "Shared_Clean:", "Shared_Dirty:",
				     "Private_Clean:", "Private_Dirty:", "Anonymous:"};
	FILE *f = fopen("/proc/self/smaps_rollup", "r");
	char line[256];
	if (!f)
		return;
	while (fgets(line, sizeof line, f))
		for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
			size_t n = strlen(keys[i]);
			if (strncmp(line, keys[i], n) == 0)
				printf(" init_%.*s_kb=%ld", (int)(n - 1), keys[i], strtol(line + n, NULL, 10));
		}
	fclose(f);
}

struct mapsum {
	char name[200];
	long rss, pss, pclean, pdirty, shared;
};

/* smaps copies /proc/self/smaps summed by mapped file ("[anon]" for the
 * rest) into out, returning the count. */
static int smaps(struct mapsum *out, int max) {
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	int n = 0, cur = -1;
	if (!f)
		return 0;
	while (fgets(line, sizeof line, f)) {
		unsigned long a, b;
		char perms[8], path[400] = "";
		long v;
		if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %399[^\n]", &a, &b, perms, path) >= 3 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			const char *name = path[0] ? path : "[anon]";
			while (*name == ' ')
				name++;
			cur = -1;
			for (int i = 0; i < n; i++)
				if (strcmp(out[i].name, name) == 0)
					cur = i;
			if (cur < 0 && n < max) {
				cur = n++;
				memset(&out[cur], 0, sizeof out[cur]);
				snprintf(out[cur].name, sizeof out[cur].name, "%s", name);
			}
			continue;
		}
		if (cur < 0)
			continue;
		if (sscanf(line, "Rss: %ld", &v) == 1)
			out[cur].rss += v;
		else if (sscanf(line, "Pss: %ld", &v) == 1)
			out[cur].pss += v;
		else if (sscanf(line, "Private_Clean: %ld", &v) == 1)
			out[cur].pclean += v;
		else if (sscanf(line, "Private_Dirty: %ld", &v) == 1)
			out[cur].pdirty += v;
		else if (sscanf(line, "Shared_Clean: %ld", &v) == 1 ||
			 sscanf(line, "Shared_Dirty: %ld", &v) == 1)
			out[cur].shared += v;
	}
	fclose(f);
	return n;
}

static int fail(const char *what, CK_RV rv) {
	fprintf(stderr, "startprobe: %s: CKR 0x%lx\n", what, (unsigned long)rv);
	return 1;
}

int main(int argc, char **argv) {
	static struct mapsum maps[256];
	int nmaps = 0, want_smaps = 0;
	long t_open, t_init, t_info, t_fin, rss_open, rss_init, rss_info;
	CK_FUNCTION_LIST_PTR p;
	CK_C_GetFunctionList gfl;
	CK_SLOT_ID slots[64];
	CK_ULONG nslots = 64;
	CK_RV rv;
	void *h;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (argc > 1 && strcmp(argv[1], "-smaps") == 0) {
		want_smaps = 1;
		argc--, argv++;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: startprobe [-smaps] MODULE.so\n");
		return 2;
	}
	h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		fprintf(stderr, "startprobe: %s\n", dlerror());
		return 1;
	}
	gfl = (CK_C_GetFunctionList)dlsym(h, "C_GetFunctionList");
	if (!gfl || gfl(&p) != CKR_OK)
		return fail("C_GetFunctionList", CKR_GENERAL_ERROR);
	t_open = us_since_start();
	rss_open = status_kb("VmRSS:");

	if ((rv = p->C_Initialize(NULL)) != CKR_OK)
		return fail("C_Initialize", rv);
	t_init = us_since_start();
	rss_init = status_kb("VmRSS:");
	if (want_smaps)
		nmaps = smaps(maps, 256);
	printf("open_us=%ld init_us=%ld", t_open, t_init);
	rollup();
	t_init = us_since_start(); /* the rollup's reading is not the module's time */

	if ((rv = p->C_GetSlotList(CK_TRUE, slots, &nslots)) != CKR_OK)
		return fail("C_GetSlotList", rv);
	for (CK_ULONG i = 0; i < nslots; i++) {
		CK_TOKEN_INFO ti;
		if ((rv = p->C_GetTokenInfo(slots[i], &ti)) != CKR_OK)
			return fail("C_GetTokenInfo", rv);
	}
	t_info = us_since_start();
	rss_info = status_kb("VmRSS:");
	if ((rv = p->C_Finalize(NULL)) != CKR_OK)
		return fail("C_Finalize", rv);
	t_fin = us_since_start();
	printf(" info_us=%ld fin_us=%ld tokens=%lu rss_open_kb=%ld rss_init_kb=%ld rss_info_kb=%ld hwm_kb=%ld\n",
	       t_info - t_init, t_fin - t_info, (unsigned long)nslots, rss_open, rss_init, rss_info,
	       status_kb("VmHWM:"));
	for (int i = 0; i < nmaps; i++)
		printf("map rss_kb=%ld pss_kb=%ld private_clean_kb=%ld private_dirty_kb=%ld shared_kb=%ld %s\n",
		       maps[i].rss, maps[i].pss, maps[i].pclean, maps[i].pdirty, maps[i].shared, maps[i].name);
	return 0;
}
