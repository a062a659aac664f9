/*
 * loginprobe: where a one-shot login+sign process's memory goes, step by
 * step, in a C process of its own (no Go runtime of the caller's).
 *
 *   loginprobe [-maps] MODULE.so PIN [KEY_ID_HEX]
 *
 * dlopen, C_Initialize, C_OpenSession (first slot with a token, R/O),
 * C_Login(CKU_USER, PIN), C_FindObjects (the private key with CKA_ID
 * KEY_ID_HEX, default 01), C_SignInit(CKM_ECDSA), C_Sign of a 32-byte
 * digest, C_Finalize. After each step it prints one line:
 *
 *   step=NAME us=T hwm_kb= rss_kb= threads= rss_anon_kb= rss_file_kb=
 *     lib_kb= lib_dirty_kb= crypto_kb= heap_kb= goarena_kb= anon_kb=
 *     stack_kb= other_kb= private_dirty_kb=
 *
 * us is the step's own time; the other fields are read after it from
 * /proc/self/status (VmHWM, VmRSS, RssAnon, RssFile, Threads) and
 * /proc/self/smaps, Rss summed by kind of mapping: the module file (lib,
 * and its Private_Dirty), libcrypto, [heap] (C malloc's brk heap), Go's
 * heap arenas (anonymous mappings at 0xc000000000, where the Go runtime
 * places its arenas on amd64/arm64), other anonymous mappings (Go's
 * off-heap metadata, thread stacks, malloc's mmap arenas), [stack], and
 * every other file. docs/bench.md, "Login and sign: where the memory
 * goes". With -maps it then prints every mapping with resident pages as it
 * was before C_Finalize, one line each (address range, size, Rss,
 * Private_Dirty, Anonymous kB, name). The Makefile builds it as
 * build/loginprobe.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "pkcs11.h"

static long now_us(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000L + t.tv_nsec / 1000;
}

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

enum { K_LIB, K_CRYPTO, K_HEAP, K_GOARENA, K_ANON, K_STACK, K_OTHER, K_N };
static const char *kname[K_N] = {"lib", "crypto", "heap", "goarena", "anon", "stack", "other"};

static const char *module_path;

static void report(const char *step, long us) {
	long rss[K_N] = {0}, libdirty = 0, pdirty = 0, v;
	int cur = K_OTHER;
	char line[512];
	FILE *f = fopen("/proc/self/smaps", "r");
	const char *base = strrchr(module_path, '/');
	base = base ? base + 1 : module_path;
	while (f && fgets(line, sizeof line, f)) {
		unsigned long a, b;
		char perms[8], path[400] = "";
		if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %399[^\n]", &a, &b, perms, path) >= 3 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			const char *p = path;
			while (*p == ' ')
				p++;
			if (!*p)
				cur = (a >= 0xc000000000UL && a < 0xc100000000UL) ? K_GOARENA : K_ANON;
			else if (strcmp(p, "[heap]") == 0)
				cur = K_HEAP;
			else if (strcmp(p, "[stack]") == 0)
				cur = K_STACK;
			else if (strstr(p, base))
				cur = K_LIB;
			else if (strstr(p, "libcrypto"))
				cur = K_CRYPTO;
			else
				cur = K_OTHER;
			continue;
		}
		if (sscanf(line, "Rss: %ld", &v) == 1)
			rss[cur] += v;
		else if (sscanf(line, "Private_Dirty: %ld", &v) == 1) {
			pdirty += v;
			if (cur == K_LIB)
				libdirty += v;
		}
	}
	if (f)
		fclose(f);
	printf("step=%s us=%ld hwm_kb=%ld rss_kb=%ld threads=%ld rss_anon_kb=%ld rss_file_kb=%ld", step, us,
	       status_kb("VmHWM:"), status_kb("VmRSS:"), status_kb("Threads:"), status_kb("RssAnon:"),
	       status_kb("RssFile:"));
	for (int k = 0; k < K_N; k++)
		printf(" %s_kb=%ld", kname[k], rss[k]);
	printf(" lib_dirty_kb=%ld private_dirty_kb=%ld\n", libdirty, pdirty);
	fflush(stdout);
}

/* dump_maps copies the mappings of /proc/self/smaps with resident pages. */
static char *dump_maps(void) {
	static char out[1 << 18];
	size_t used = 0;
	char line[512], head[512] = "";
	long rss = 0, pd = 0, an = 0, v;
	unsigned long a = 0, b = 0;
	FILE *f = fopen("/proc/self/smaps", "r");
	while (f) {
		char *ok = fgets(line, sizeof line, f);
		char perms[8], path[400] = "";
		unsigned long na, nb;
		int isHead = ok && sscanf(line, "%lx-%lx %7s %*s %*s %*s %399[^\n]", &na, &nb, perms, path) >= 3 &&
			     strchr(line, '-') < strchr(line, ' ');
		if (!ok || isHead) {
			if (head[0] && rss > 0 && used < sizeof out - 600)
				used += snprintf(out + used, sizeof out - used,
						 "map %lx-%lx size_kb=%lu rss_kb=%ld private_dirty_kb=%ld anon_kb=%ld %s\n", a, b,
						 (b - a) / 1024, rss, pd, an, head);
			if (!ok)
				break;
			const char *p = path;
			while (*p == ' ')
				p++;
			snprintf(head, sizeof head, "%s %s", perms, *p ? p : "[anon]");
			a = na, b = nb, rss = pd = an = 0;
			continue;
		}
		if (sscanf(line, "Rss: %ld", &v) == 1)
			rss = v;
		else if (sscanf(line, "Private_Dirty: %ld", &v) == 1)
			pd = v;
		else if (sscanf(line, "Anonymous: %ld", &v) == 1)
			an = v;
	}
	if (f)
		fclose(f);
	return out;
}

static int fail(const char *what, CK_RV rv) {
	fprintf(stderr, "loginprobe: %s: CKR 0x%lx\n", what, (unsigned long)rv);
	return 1;
}

#define STEP(name, call)                                   \
	do {                                               \
		long t_ = now_us();                        \
		CK_RV rv_ = (call);                        \
		t_ = now_us() - t_;                        \
		if (rv_ != CKR_OK)                         \
			return fail(name, rv_);            \
		report(name, t_);                          \
	} while (0)

int main(int argc, char **argv) {
	CK_FUNCTION_LIST_PTR p;
	CK_C_GetFunctionList gfl;
	CK_SLOT_ID slots[64];
	CK_ULONG nslots = 64, n = 0, siglen = 0;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE key;
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_BYTE id[64], digest[32], sig[512];
	CK_ULONG idlen = 0;
	CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
	const char *idhex;
	char *maps = NULL;
	int want_maps = 0;
	long t;
	void *h;

	if (argc > 1 && strcmp(argv[1], "-maps") == 0) {
		want_maps = 1;
		argc--, argv++;
	}
	idhex = argc > 3 ? argv[3] : "01";

	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: loginprobe [-maps] MODULE.so PIN [KEY_ID_HEX]\n");
		return 2;
	}
	module_path = argv[1];
	for (; idhex[0] && idhex[1] && idlen < sizeof id; idhex += 2) {
		unsigned x;
		if (sscanf(idhex, "%2x", &x) != 1)
			return fail("KEY_ID_HEX", CKR_ARGUMENTS_BAD);
		id[idlen++] = (CK_BYTE)x;
	}
	memset(digest, 0x5a, sizeof digest);
	report("start", 0);
	t = now_us();
	h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		fprintf(stderr, "loginprobe: %s\n", dlerror());
		return 1;
	}
	gfl = (CK_C_GetFunctionList)dlsym(h, "C_GetFunctionList");
	if (!gfl || gfl(&p) != CKR_OK)
		return fail("C_GetFunctionList", CKR_GENERAL_ERROR);
	report("dlopen", now_us() - t);
	STEP("C_Initialize", p->C_Initialize(NULL));
	if (p->C_GetSlotList(CK_TRUE, slots, &nslots) != CKR_OK || nslots == 0)
		return fail("C_GetSlotList", CKR_TOKEN_NOT_PRESENT);
	STEP("C_OpenSession", p->C_OpenSession(slots[0], CKF_SERIAL_SESSION, NULL, NULL, &s));
	STEP("C_Login", p->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)argv[2], strlen(argv[2])));
	{
		CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_ID, id, idlen}};
		long t0 = now_us();
		CK_RV rv = p->C_FindObjectsInit(s, tmpl, 2);
		if (rv == CKR_OK)
			rv = p->C_FindObjects(s, &key, 1, &n);
		if (rv == CKR_OK)
			rv = p->C_FindObjectsFinal(s);
		if (rv != CKR_OK)
			return fail("C_FindObjects", rv);
		if (n != 1)
			return fail("C_FindObjects: no key with that CKA_ID", CKR_KEY_HANDLE_INVALID);
		report("C_FindObjects", now_us() - t0);
	}
	STEP("C_SignInit", p->C_SignInit(s, &mech, key));
	siglen = sizeof sig;
	STEP("C_Sign", p->C_Sign(s, digest, sizeof digest, sig, &siglen));
	if (want_maps)
		maps = dump_maps();
	STEP("C_Finalize", p->C_Finalize(NULL));
	if (maps)
		fputs(maps, stdout);
	return 0;
}
