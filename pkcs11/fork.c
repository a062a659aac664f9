/*
 * fork.c - a fresh copy of this library for a forked child (glibc only).
 *
 * A Go runtime does not survive fork(): the child keeps the runtime's
 * records but not its threads, and the first call that must wait for one
 * of them hangs (see shim.c). What does work is a second, independent copy
 * of the library: dlmopen(LM_ID_NEWLM, <this very file>) maps it again in a
 * new link-map namespace with its own C state, its own libc and its own Go
 * runtime, which starts at load time in the child, with all its threads.
 * shim.c then forwards every C_* call of the original copy to the new
 * copy's 3.2 function list; the original's Go code is never entered again
 * in this process.
 *
 * Costs and limits (docs/fork.md): each forked generation that initialises
 * the module loads one copy (one namespace, one libc, one Go runtime, a few
 * MiB); glibc has 16 namespaces (DL_NNS) and a bounded static TLS surplus,
 * so a chain of fork generations runs out after about a dozen copies, and
 * then C_Initialize fails with CKR_FUNCTION_FAILED and one stderr line.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "shim.h"

#ifdef __GLIBC__
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>

/*
 * The absolute path of this library, found once at load time (pure C: a
 * dladdr and a realpath) so that a child that changed directory, or a host
 * that loaded us by a relative path, still finds the same file.
 */
static char gohsm_self_path[PATH_MAX];

__attribute__((constructor)) static void gohsm_fork_find_self(void)
{
	Dl_info info;

	if (dladdr((void *)&gohsm_fork_find_self, &info) == 0 || info.dli_fname == NULL)
		return;
	if (realpath(info.dli_fname, gohsm_self_path) == NULL)
		snprintf(gohsm_self_path, sizeof gohsm_self_path, "%s", info.dli_fname);
}

/* One line on stderr through write(2): no stdio lock taken after fork(). */
static void gohsm_fork_report(unsigned copy, const char *what, const char *detail)
{
	char line[1024];
	int n, i;

	n = snprintf(line, sizeof line,
		     "gohsm: C_Initialize in a forked child (pid %ld): cannot start a fresh copy of the "
		     "module (copy %u in this process's ancestry): %s: %s\n",
		     (long)getpid(), copy, what, detail ? detail : "unknown error");
	if (n > (int)sizeof line - 1)
		n = (int)sizeof line - 1;
	/* dlerror() text is one line in practice; make sure of it. */
	for (i = 0; i < n - 1; i++)
		if (line[i] == '\n')
			line[i] = ' ';
	if (n > 0)
		line[n - 1] = '\n';
	if (n > 0 && write(STDERR_FILENO, line, (size_t)n) < 0) {
		/* Nothing more to do: the caller still returns CKR_FUNCTION_FAILED. */
	}
}

/*
 * pthread keys across two C libraries. A key is an index into a table that
 * each libc keeps for itself, but the values live in the thread's
 * descriptor, which both share (the thread was made by the process's
 * libc). The copy's libc starts with an empty table, so the key its Go
 * runtime creates at the first call (cgo's pthread_g, for its thread exit
 * hook) would be index 0 - the index of the host's first key (OpenSSL's, in
 * nginx): Go's value overwrote it and the worker crashed in
 * OPENSSL_cleanup at exit. So before the copy's first call we reserve
 * GOHSM_COPY_KEYS keys in the process's libc (never used, never freed) and
 * arrange the copy's table so that its next keys are exactly those: take
 * every index up to the highest reserved one in the copy, give back the
 * reserved ones. The host never gets those indices; the copy gets nothing
 * else. Cost: GOHSM_COPY_KEYS of the 1024 keys per forked generation.
 */
#define GOHSM_COPY_KEYS 4

typedef int (*gohsm_key_create_fn)(pthread_key_t *, void (*)(void *));
typedef int (*gohsm_key_delete_fn)(pthread_key_t);

static const char *gohsm_fork_align_keys(void *handle)
{
	gohsm_key_create_fn copy_create = (gohsm_key_create_fn)dlsym(handle, "pthread_key_create");
	gohsm_key_delete_fn copy_delete = (gohsm_key_delete_fn)dlsym(handle, "pthread_key_delete");
	pthread_key_t reserved[GOHSM_COPY_KEYS], k;
	int i, got, placeholders = 0;

	if (copy_create == NULL || copy_delete == NULL)
		return "the copy's pthread_key_create/pthread_key_delete not found";
	if (copy_create == pthread_key_create)
		return NULL; /* one libc after all: nothing to align */
	for (i = 0; i < GOHSM_COPY_KEYS; i++)
		if (pthread_key_create(&reserved[i], NULL) != 0)
			return "no pthread key left in the process (PTHREAD_KEYS_MAX)";
	/* The copy hands out its lowest free index: walk up to the reserved ones. */
	for (got = 0; got < GOHSM_COPY_KEYS;) {
		if (copy_create(&k, NULL) != 0 || ++placeholders > PTHREAD_KEYS_MAX)
			return "cannot align the copy's pthread keys";
		for (i = 0; i < GOHSM_COPY_KEYS; i++)
			if (reserved[i] == k)
				got++;
	}
	for (i = 0; i < GOHSM_COPY_KEYS; i++)
		copy_delete(reserved[i]);
	return NULL;
}

CK_FUNCTION_LIST_3_2 *gohsm_fork_load_copy(unsigned copy)
{
	const char *why;
	CK_VERSION v32 = { 3, 2 };
	CK_INTERFACE_PTR iface = NULL;
	CK_C_GetInterface get_interface;
	void *handle;
	CK_RV rv;

	if (gohsm_self_path[0] == 0) {
		gohsm_fork_report(copy, "dladdr", "the path of the loaded library is unknown");
		return NULL;
	}
	/*
	 * RTLD_NOW: every relocation is resolved here, so a failure (no
	 * namespace left, static TLS exhausted) is reported now and not at
	 * the first call. The copy's constructors run inside dlmopen: the
	 * shim's records this child's pid as the copy's load pid, so the copy
	 * sees itself as not forked, and its Go runtime starts.
	 */
	handle = dlmopen(LM_ID_NEWLM, gohsm_self_path, RTLD_NOW | RTLD_LOCAL);
	if (handle == NULL) {
		gohsm_fork_report(copy, "dlmopen(LM_ID_NEWLM)", dlerror());
		return NULL;
	}
	/* Before any call enters the copy's Go code (C_GetInterface is pure C). */
	why = gohsm_fork_align_keys(handle);
	if (why != NULL) {
		gohsm_fork_report(copy, "pthread keys", why);
		return NULL;
	}
	get_interface = (CK_C_GetInterface)dlsym(handle, "C_GetInterface");
	if (get_interface == NULL) {
		gohsm_fork_report(copy, "dlsym C_GetInterface", dlerror());
		return NULL;
	}
	rv = get_interface((CK_UTF8CHAR_PTR) "PKCS 11", &v32, &iface, 0);
	if (rv != CKR_OK || iface == NULL || iface->pFunctionList == NULL) {
		gohsm_fork_report(copy, "C_GetInterface(\"PKCS 11\", 3.2)", "no 3.2 function list");
		return NULL;
	}
	/*
	 * The handle is deliberately kept open: the copy serves this process
	 * until it exits (and Go marks the library NODELETE anyway).
	 */
	return (CK_FUNCTION_LIST_3_2 *)iface->pFunctionList;
}

#else /* !__GLIBC__ */

/* dlmopen is a glibc extension (and musl cannot load a Go library twice). */
CK_FUNCTION_LIST_3_2 *gohsm_fork_load_copy(unsigned copy)
{
	(void)copy;
	return NULL;
}

#endif
