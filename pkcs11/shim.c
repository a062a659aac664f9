/*
 * shim.c - the C half of the Cryptoki boundary.
 *
 * This file owns every exported C_* symbol. It answers in pure C whatever
 * does not need Go (function lists, interfaces, argument checks on
 * C_Initialize/C_Finalize, unsupported functions, the fork guard) and
 * forwards the rest to the Go exports go_<Name>, declared by cgo in
 * _cgo_export.h. Which function goes where is listed once, in shim.h.
 *
 * Why a fork guard: fork() copies only the calling thread. The Go runtime's
 * bookkeeping survives in the child but its threads do not, so the first Go
 * call in the child that must block waits forever (golang/go#14767,
 * #15538). The runtime starts when the library is loaded, so even a child
 * of a process that only dlopen()ed us is affected. In a forked child we
 * therefore never enter this copy's Go code again:
 *  - until the child calls C_Initialize, every entry point answers
 *    CKR_CRYPTOKI_NOT_INITIALIZED (PKCS #11 "Applications and processes": a
 *    child process must call C_Initialize before using the library);
 *  - C_Initialize (glibc) loads a fresh copy of this library in a new
 *    link-map namespace (fork.c), initialises it with the same arguments,
 *    and from then on every entry point forwards to the copy's function
 *    list: one extra load, compare and indirect call. A grandchild does the
 *    same with a copy of its own. If no copy can be loaded, or without
 *    glibc, C_Initialize fails fast with CKR_FUNCTION_FAILED and one line
 *    on stderr, instead of hanging.
 * docs/fork.md has the measurements and the limits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <pthread.h>
#include <sched.h>

#include "shim.h"
#include "yield.h"
#include "csign.h"
#include <stdint.h>
#include <time.h>

#include "_cgo_export.h"

/*
 * Whether the calling thread has been into Go: its first call keeps the
 * host's blocked signals blocked (signals.c), later ones cost one check.
 * A pthread key, not a __thread variable: the library's TLS block is
 * static TLS (Go's), and every byte more of it costs a forked generation
 * (docs/fork.md). Made at the first call, so in a forked child's copy it
 * is one of the keys fork.c reserved. If no key can be made, every call
 * takes the first call's path: two signal-mask calls more, still correct.
 */
static pthread_key_t gohsm_entered_key;
static pthread_once_t gohsm_entered_once = PTHREAD_ONCE_INIT;
static int gohsm_entered_key_ok;

static void gohsm_entered_key_make(void)
{
	if (pthread_key_create(&gohsm_entered_key, NULL) == 0)
		__atomic_store_n(&gohsm_entered_key_ok, 1, __ATOMIC_RELEASE);
}

/*
 * A thread's first entry: an empty call into Go binds the thread to a Go
 * record and lets Go set its mask (it keeps both for the thread's life),
 * and signals.c blocks again the host's blocked asynchronous signals. Out
 * of line, so that the entry points keep their tail calls into Go.
 */
static __attribute__((noinline)) void gohsm_thread_enter(void)
{
	gohsm_signals_around_first_entry(go_Enter);
	pthread_once(&gohsm_entered_once, gohsm_entered_key_make);
	if (__atomic_load_n(&gohsm_entered_key_ok, __ATOMIC_ACQUIRE))
		pthread_setspecific(gohsm_entered_key, (void *)1);
}

/* Every path into Go starts here: one key lookup once entered. */
static inline void gohsm_thread_ensure_entered(void)
{
	if (__builtin_expect(!__atomic_load_n(&gohsm_entered_key_ok, __ATOMIC_ACQUIRE) ||
				     pthread_getspecific(gohsm_entered_key) == NULL,
			     0))
		gohsm_thread_enter();
}

/* ---- state ------------------------------------------------------------ */

/*
 * gohsm_state is read on every call: one acquire load and one compare.
 * STATE_INITIALIZED is set after go_Initialize succeeded and cleared by
 * C_Finalize; STATE_FORKED is set in a forked child and never cleared.
 * The only state that lets a call into Go is exactly STATE_INITIALIZED.
 * STATE_FORWARDING (only ever with STATE_FORKED) is set while a forked
 * child's fresh copy is initialised: calls go to gohsm_fwd. fork() clears
 * everything but STATE_FORKED in the child (gohsm_atfork_child).
 */
enum {
	STATE_INITIALIZED = 1,
	STATE_FORKED = 2,
	STATE_FORWARDING = 4,
};
static int gohsm_state;

/*
 * The forked child's side (never used in the process that loaded us):
 *  - gohsm_fwd: the function list calls are forwarded to; written before
 *    STATE_FORWARDING is set (release), read after it was seen (acquire);
 *  - gohsm_copy / gohsm_copy_pid: the fresh copy loaded in this process,
 *    kept for a C_Initialize after C_Finalize; a copy inherited from a
 *    parent (pid differs) is as unusable as the original;
 *  - gohsm_copies: copies loaded along this process's ancestry (inherited);
 *  - gohsm_fork_lock: serialises C_Initialize/C_Finalize in the child;
 *    re-initialised in every child, since a parent thread may have held it.
 */
static CK_FUNCTION_LIST_3_2 *gohsm_fwd;
#ifdef __GLIBC__
static CK_FUNCTION_LIST_3_2 *gohsm_copy;
static pid_t gohsm_copy_pid;
static unsigned gohsm_copies;
#endif
static pthread_mutex_t gohsm_fork_lock = PTHREAD_MUTEX_INITIALIZER;

/* pid of the process that loaded the library (set by the constructor). */
static pid_t gohsm_load_pid;

/*
 * Serialises C_Initialize and C_Finalize against each other. Never taken
 * in a forked child (a parent thread may have held it at fork time).
 */
static pthread_mutex_t gohsm_init_lock = PTHREAD_MUTEX_INITIALIZER;

static inline int gohsm_ready(void)
{
	return __builtin_expect(__atomic_load_n(&gohsm_state, __ATOMIC_ACQUIRE) == STATE_INITIALIZED, 1);
}

static int gohsm_in_forked_child(void)
{
	return (__atomic_load_n(&gohsm_state, __ATOMIC_ACQUIRE) & STATE_FORKED) != 0 ||
	       getpid() != gohsm_load_pid;
}

/*
 * Runs in the child right after fork(), before fork() returns there, with
 * one thread: the child starts uninitialised whatever the parent was
 * (initialised, or itself forwarding to a copy whose runtime lost its
 * threads in this fork just the same).
 */
static void gohsm_atfork_child(void)
{
	pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;

	gohsm_fork_lock = fresh;
	__atomic_store_n(&gohsm_state, STATE_FORKED, __ATOMIC_SEQ_CST);
}

/*
 * Pure C, runs at load time in the loading thread. It does not call Go and
 * reads no configuration ("nothing happens at load time" beyond this).
 */
__attribute__((constructor)) static void gohsm_shim_load(void)
{
	gohsm_load_pid = getpid();
	pthread_atfork(NULL, NULL, gohsm_atfork_child);
}

/* ---- function lists and interfaces ------------------------------------ */

static CK_FUNCTION_LIST gohsm_function_list_2_40;
static CK_FUNCTION_LIST_3_0 gohsm_function_list_3_0;
static CK_FUNCTION_LIST_3_2 gohsm_function_list_3_2;

/*
 * The interfaces offered by C_GetInterfaceList, default first (v3.0
 * section 5.4.6: C_GetInterface with a NULL name returns the default).
 * We do not set CKF_INTERFACE_FORK_SAFE: that flag promises that sessions,
 * logins and handles carry over into a forked child; ours must call
 * C_Initialize and start afresh (see the fork guard above).
 */
static CK_INTERFACE gohsm_interfaces[] = {
	{ (CK_CHAR *)"PKCS 11", &gohsm_function_list_3_2, 0 },
	{ (CK_CHAR *)"PKCS 11", &gohsm_function_list_3_0, 0 },
	{ (CK_CHAR *)"PKCS 11", &gohsm_function_list_2_40, 0 },
};
#define GOHSM_INTERFACE_COUNT (sizeof(gohsm_interfaces) / sizeof(gohsm_interfaces[0]))

/* The version of an interface is the version field of its function list. */
static CK_VERSION gohsm_interface_version(const CK_INTERFACE *iface)
{
	return ((CK_FUNCTION_LIST *)iface->pFunctionList)->version;
}

/* v2.40 section 5.4 / v3.0 section 5.4.3. Works without C_Initialize. */
CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList)
{
	if (ppFunctionList == NULL_PTR)
		return CKR_ARGUMENTS_BAD;
	*ppFunctionList = &gohsm_function_list_2_40;
	return CKR_OK;
}

/*
 * v3.0 section 5.4.5: NULL list -> count only; otherwise *pulCount is the
 * buffer size in CK_INTERFACE elements and is set to the number of
 * interfaces in either case; too small -> CKR_BUFFER_TOO_SMALL.
 */
CK_RV C_GetInterfaceList(CK_INTERFACE_PTR pInterfacesList, CK_ULONG_PTR pulCount)
{
	CK_ULONG have;

	if (pulCount == NULL_PTR)
		return CKR_ARGUMENTS_BAD;
	if (pInterfacesList == NULL_PTR) {
		*pulCount = GOHSM_INTERFACE_COUNT;
		return CKR_OK;
	}
	have = *pulCount;
	*pulCount = GOHSM_INTERFACE_COUNT;
	if (have < GOHSM_INTERFACE_COUNT)
		return CKR_BUFFER_TOO_SMALL;
	memcpy(pInterfacesList, gohsm_interfaces, sizeof(gohsm_interfaces));
	return CKR_OK;
}

/*
 * v3.0 section 5.4.6: NULL name -> the default interface; NULL version ->
 * any version; flags are the interface flags the caller requires. No
 * match -> CKR_ARGUMENTS_BAD.
 */
CK_RV C_GetInterface(CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion,
		     CK_INTERFACE_PTR_PTR ppInterface, CK_FLAGS flags)
{
	size_t i;

	if (ppInterface == NULL_PTR)
		return CKR_ARGUMENTS_BAD;
	for (i = 0; i < GOHSM_INTERFACE_COUNT; i++) {
		CK_INTERFACE *iface = &gohsm_interfaces[i];
		CK_VERSION v = gohsm_interface_version(iface);

		if (pInterfaceName != NULL_PTR &&
		    strcmp((const char *)pInterfaceName, (const char *)iface->pInterfaceName) != 0)
			continue;
		if (pVersion != NULL_PTR && (pVersion->major != v.major || pVersion->minor != v.minor))
			continue;
		if ((iface->flags & flags) != flags)
			continue;
		*ppInterface = iface;
		return CKR_OK;
	}
	return CKR_ARGUMENTS_BAD;
}

/* ---- C_Initialize / C_Finalize ---------------------------------------- */

#ifndef __GLIBC__
static void gohsm_report_fork(void)
{
	char line[360];
	int n = snprintf(line, sizeof line,
			 "gohsm: C_Initialize in a forked child (pid %ld, module loaded by pid %ld): "
			 "a Go runtime cannot run after fork() and this C library has no dlmopen; "
			 "initialise the module in the process that loaded it, or load it in a fresh "
			 "process (e.g. through p11-kit remoting)\n",
			 (long)getpid(), (long)gohsm_load_pid);
	if (n > (int)sizeof line - 1)
		n = (int)sizeof line - 1;
	/* write(2), not stdio: nothing here may wait for a lock held at fork time. */
	if (n > 0 && write(STDERR_FILENO, line, (size_t)n) < 0) {
		/* Nothing more we can do; the return value still reports the failure. */
	}
}
#endif

#ifdef __GLIBC__
/*
 * In a forked child, the state is still the parent's when no atfork
 * handler ran (a raw fork system call): not yet marked forked, or
 * forwarding to a copy that another process loaded.
 */
static int gohsm_inherited_state(pid_t self)
{
	int s = __atomic_load_n(&gohsm_state, __ATOMIC_ACQUIRE);

	return !(s & STATE_FORKED) || ((s & STATE_FORWARDING) && gohsm_copy_pid != self);
}

/*
 * C_Initialize in a forked child: load (or reuse) this process's fresh copy,
 * initialise it with the caller's arguments, and forward to it from now on.
 */
static CK_RV gohsm_fork_initialize(CK_VOID_PTR pInitArgs)
{
	pid_t self = getpid();
	CK_FUNCTION_LIST_3_2 *copy;
	CK_RV rv;

	/*
	 * A raw fork system call runs no pthread_atfork handler: then only the
	 * pid tells, and the inherited state (the parent's, or its forwarding
	 * to a copy loaded by another process) and lock are reset here.
	 */
	if (gohsm_inherited_state(self))
		gohsm_atfork_child();

	pthread_mutex_lock(&gohsm_fork_lock);
	if (__atomic_load_n(&gohsm_state, __ATOMIC_ACQUIRE) & STATE_FORWARDING) {
		rv = CKR_CRYPTOKI_ALREADY_INITIALIZED;
		goto out;
	}
	copy = gohsm_copy_pid == self ? gohsm_copy : NULL;
	if (copy == NULL) {
		copy = gohsm_fork_load_copy(++gohsm_copies);
		/* Forwarding to ourselves would recurse forever. */
		if (copy == NULL || copy == &gohsm_function_list_3_2) {
			rv = CKR_FUNCTION_FAILED;
			goto out;
		}
		gohsm_copy = copy;
		gohsm_copy_pid = self;
	}
	rv = copy->C_Initialize(pInitArgs);
	if (rv == CKR_OK) {
		gohsm_fwd = copy;
		__atomic_fetch_or(&gohsm_state, STATE_FORWARDING, __ATOMIC_RELEASE);
	}
out:
	pthread_mutex_unlock(&gohsm_fork_lock);
	return rv;
}

/* C_Finalize in a forked child: finalise the copy; it stays for reuse. */
static CK_RV gohsm_fork_finalize(void)
{
	CK_RV rv;

	if (gohsm_inherited_state(getpid())) {
		gohsm_atfork_child();
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	}
	pthread_mutex_lock(&gohsm_fork_lock);
	if (!(__atomic_load_n(&gohsm_state, __ATOMIC_ACQUIRE) & STATE_FORWARDING)) {
		rv = CKR_CRYPTOKI_NOT_INITIALIZED;
	} else {
		__atomic_fetch_and(&gohsm_state, ~STATE_FORWARDING, __ATOMIC_SEQ_CST);
		rv = gohsm_fwd->C_Finalize(NULL_PTR);
		if (rv != CKR_OK)
			__atomic_fetch_or(&gohsm_state, STATE_FORWARDING, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&gohsm_fork_lock);
	return rv;
}
#else
/* Without glibc there is no dlmopen: a forked child cannot use the module. */
static CK_RV gohsm_fork_initialize(CK_VOID_PTR pInitArgs)
{
	(void)pInitArgs;
	gohsm_report_fork();
	return CKR_FUNCTION_FAILED;
}

static CK_RV gohsm_fork_finalize(void)
{
	return CKR_CRYPTOKI_NOT_INITIALIZED;
}
#endif

/*
 * Whether a non-NULL pReserved is a NUL-terminated string of at most
 * GOHSM_CONFIG_MAX bytes that the process can read. Go reading an
 * unreadable address faults: at a low address a recovered panic with a
 * stack on stderr, elsewhere the whole process. So the bytes are first
 * passed through a pipe, page piece by page piece: write() reports an
 * unreadable source as EFAULT instead of faulting. Returns 0 if it is
 * readable and terminated, else -1.
 */
#define GOHSM_CONFIG_MAX 65536

static int gohsm_config_readable(const char *p)
{
	char chunk[256];
	int fd[2], ok = -1;
	size_t off = 0;

	if (pipe2(fd, O_CLOEXEC) != 0)
		return 0; /* cannot tell: trust the caller, as before */
	while (off < GOHSM_CONFIG_MAX) {
		uintptr_t a = (uintptr_t)p + off;
		size_t n = sizeof chunk, to_page = 4096 - (a & 4095);
		ssize_t w;

		if (a < (uintptr_t)p)
			break; /* wrapped around the address space */
		if (n > to_page)
			n = to_page; /* never across a page: all or nothing */
		do
			w = write(fd[1], (const void *)a, n);
		while (w < 0 && errno == EINTR);
		if (w <= 0 || read(fd[0], chunk, (size_t)w) != w)
			break;
		if (memchr(chunk, 0, (size_t)w) != NULL) {
			ok = 0;
			break;
		}
		off += (size_t)w;
	}
	close(fd[0]);
	close(fd[1]);
	return ok;
}

/*
 * v3.0 section 5.4.1. pInitArgs is NULL or a CK_C_INITIALIZE_ARGS:
 *  - the four mutex callbacks must be all NULL or all non-NULL, else
 *    CKR_ARGUMENTS_BAD;
 *  - CKF_OS_LOCKING_OK with or without callbacks, and callbacks without
 *    the flag, are accepted: the library always uses its own locks, which
 *    the spec allows in the flag case and which is safe in the other
 *    (the callbacks would only serialise what is already serialised);
 *  - CKF_LIBRARY_CANT_CREATE_OS_THREADS is ignored: the Go runtime has its
 *    threads already, and NSS and GnuTLS always pass it (flags 0x3);
 *    refusing it with CKR_NEED_TO_CREATE_THREADS breaks them;
 *  - pReserved "should be NULL_PTR"; a non-NULL value is taken as a NUL
 *    terminated configuration string (as NSS passes library parameters)
 *    and handed to Go; one that is not a readable string of at most
 *    64 KiB is CKR_ARGUMENTS_BAD, with one line on stderr.
 * In a forked child the same arguments go to the child's fresh copy.
 */
CK_RV C_Initialize(CK_VOID_PTR pInitArgs)
{
	char *config = NULL;
	CK_RV rv;

	if (pInitArgs != NULL_PTR) {
		CK_C_INITIALIZE_ARGS *args = (CK_C_INITIALIZE_ARGS *)pInitArgs;
		int callbacks = (args->CreateMutex != NULL_PTR) + (args->DestroyMutex != NULL_PTR) +
				(args->LockMutex != NULL_PTR) + (args->UnlockMutex != NULL_PTR);

		if (callbacks != 0 && callbacks != 4)
			return CKR_ARGUMENTS_BAD;
		config = (char *)args->pReserved;
		if (config != NULL && gohsm_config_readable(config) != 0) {
			fprintf(stderr, "gohsm: C_Initialize: pReserved %p is not a readable NUL-terminated "
					"configuration string of at most %d bytes\n",
				(void *)config, GOHSM_CONFIG_MAX);
			return CKR_ARGUMENTS_BAD;
		}
	}
	if (gohsm_in_forked_child())
		return gohsm_fork_initialize(pInitArgs);

	pthread_mutex_lock(&gohsm_init_lock);
	if (__atomic_load_n(&gohsm_state, __ATOMIC_ACQUIRE) & STATE_INITIALIZED) {
		rv = CKR_CRYPTOKI_ALREADY_INITIALIZED;
	} else {
		gohsm_thread_ensure_entered();
		rv = go_Initialize(config);
		if (rv == CKR_OK)
			__atomic_fetch_or(&gohsm_state, STATE_INITIALIZED, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&gohsm_init_lock);
	return rv;
}

/*
 * v3.0 section 5.4.2. The library stays loaded (Go marks c-shared
 * libraries NODELETE), so after C_Finalize it must accept C_Initialize
 * again. New calls are refused before Go tears down; if Go reports a
 * failure it is still initialised, and so is the C side.
 */
CK_RV C_Finalize(CK_VOID_PTR pReserved)
{
	CK_RV rv;

	if (pReserved != NULL_PTR)
		return CKR_ARGUMENTS_BAD;
	if (__atomic_load_n(&gohsm_state, __ATOMIC_ACQUIRE) & STATE_FORWARDING)
		return gohsm_fork_finalize();
	if (!gohsm_ready())
		return CKR_CRYPTOKI_NOT_INITIALIZED;

	pthread_mutex_lock(&gohsm_init_lock);
	if (!gohsm_ready()) {
		rv = CKR_CRYPTOKI_NOT_INITIALIZED;
	} else {
		__atomic_fetch_and(&gohsm_state, ~STATE_INITIALIZED, __ATOMIC_SEQ_CST);
		gohsm_thread_ensure_entered();
		rv = go_Finalize();
		if (rv != CKR_OK)
			__atomic_fetch_or(&gohsm_state, STATE_INITIALIZED, __ATOMIC_RELEASE);
		else
			gohsm_csign_sweep(); /* Go dropped every session's; this is the net */
	}
	pthread_mutex_unlock(&gohsm_init_lock);
	return rv;
}

/* ---- forwarded and unsupported entry points (tables in shim.h) -------- */

/*
 * Every entry point: the normal path is the one compare it always was;
 * only when that fails is the forwarding flag looked at (a forked child
 * that re-initialised: the same function of its fresh copy).
 */
/* When a calling thread yields to the Go scheduler: yield.h. */
static struct gohsm_yield_slot gohsm_last_yield[GOHSM_YIELD_SLOTS];
static int gohsm_ncpu; /* CPUs this process may run on, found at first need */

static int gohsm_cpus(void)
{
	int n = __atomic_load_n(&gohsm_ncpu, __ATOMIC_RELAXED);
	cpu_set_t set;

	if (n > 0)
		return n;
	n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 0;
	if (n < 1)
		n = 1;
	__atomic_store_n(&gohsm_ncpu, n, __ATOMIC_RELAXED);
	return n;
}

static inline struct gohsm_yield_slot *gohsm_yield_slot_of_self(void)
{
	uint64_t t = (uint64_t)pthread_self();

	t ^= t >> 17;
	t *= 0x9e3779b97f4a7c15ULL;
	return &gohsm_last_yield[t >> 56];
}

/*
 * gohsm_yield_mark_c: the calling thread is going into libcrypto (called
 * by internal/ossl on every call it makes there, through a weak reference:
 * its own tests link without this file). Written only when not yet set,
 * so a thread's own line is all it touches.
 */
__attribute__((visibility("hidden"))) void gohsm_yield_mark_c(void)
{
	struct gohsm_yield_slot *slot = gohsm_yield_slot_of_self();

	if (__atomic_load_n(&slot->cmark, __ATOMIC_RELAXED) == 0)
		__atomic_store_n(&slot->cmark, 1, __ATOMIC_RELAXED);
}

/* gohsm_test_cmark is the calling thread's mark (for pkcs11's tests). */
int gohsm_test_cmark(void) { return (int)__atomic_load_n(&gohsm_yield_slot_of_self()->cmark, __ATOMIC_RELAXED); }

/* gohsm_test_clear_cmarks clears every slot's mark (for pkcs11's tests). */
void gohsm_test_clear_cmarks(void)
{
	for (int i = 0; i < GOHSM_YIELD_SLOTS; i++)
		__atomic_store_n(&gohsm_last_yield[i].cmark, 0, __ATOMIC_RELAXED);
}

struct gohsm_test_probe {
	struct gohsm_yield_slot *slot;
	int mark;
};

static void *gohsm_test_probe_run(void *arg)
{
	struct gohsm_test_probe *p = arg;

	p->slot = gohsm_yield_slot_of_self();
	p->mark = (int)__atomic_load_n(&p->slot->cmark, __ATOMIC_RELAXED);
	return NULL;
}

/*
 * gohsm_test_other_thread_cmark is the mark a new thread sees, one whose
 * slot is not the caller's (slots are hashed from thread ids, so two
 * threads can share one): up to 16 threads are started, all alive at once
 * so that their ids differ, and the first with a slot of its own answers.
 * -1 if none did or a thread could not be started (for pkcs11's tests).
 */
int gohsm_test_other_thread_cmark(void)
{
	struct gohsm_test_probe probes[16];
	pthread_t threads[16];
	int started = 0, mark = -1;

	memset(probes, 0, sizeof probes);
	while (started < 16 && pthread_create(&threads[started], NULL, gohsm_test_probe_run, &probes[started]) == 0)
		started++;
	for (int i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	for (int i = 0; i < started && mark < 0; i++)
		if (probes[i].slot != gohsm_yield_slot_of_self())
			mark = probes[i].mark;
	return mark;
}

static inline void gohsm_tick(void)
{
	struct timespec ts;
	int64_t now;
	struct gohsm_yield_slot *slot = gohsm_yield_slot_of_self();
	uint32_t calls = __atomic_load_n(&slot->calls, __ATOMIC_RELAXED) + 1;
	__atomic_store_n(&slot->calls, calls, __ATOMIC_RELAXED);
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	if (__builtin_expect(now - __atomic_load_n(&slot->ns, __ATOMIC_RELAXED) >= GOHSM_YIELD_NS, 0)) {
		uint32_t cmark = __atomic_load_n(&slot->cmark, __ATOMIC_RELAXED);

		__atomic_store_n(&slot->ns, now, __ATOMIC_RELAXED);
		__atomic_store_n(&slot->calls, 0, __ATOMIC_RELAXED);
		if (cmark)
			__atomic_store_n(&slot->cmark, 0, __ATOMIC_RELAXED);
		if (gohsm_yield_due(calls, cmark, gohsm_last_yield, GOHSM_YIELD_SLOTS, now, gohsm_cpus()))
			go_Yield();
	}
}

/* gohsm_test_tick: an entry point's bookkeeping (for pkcs11's tests). */
void gohsm_test_tick(void) { gohsm_tick(); }

#define GOHSM_FORWARD(name, params, args)                                \
	CK_RV C_##name params                                            \
	{                                                                \
		int s = __atomic_load_n(&gohsm_state, __ATOMIC_ACQUIRE); \
		if (__builtin_expect(s == STATE_INITIALIZED, 1)) {       \
			gohsm_thread_ensure_entered();                   \
			gohsm_tick();                                    \
			return go_##name args;                           \
		}                                                        \
		if (s & STATE_FORWARDING)                                \
			return gohsm_fwd->C_##name args;                 \
		return CKR_CRYPTOKI_NOT_INITIALIZED;                     \
	}
GOHSM_GO_FUNCTIONS(GOHSM_FORWARD)
#undef GOHSM_FORWARD

/*
 * C_Sign: the one entry point answered in C for a live operation. When
 * C_SignInit (in Go) handed the session's CKM_ECDSA operation to C
 * (csign.h), the signature is made here, through internal/ossl's C side,
 * and the call never enters Go: no first-entry check, and no yield tick,
 * which exists for calls into Go (yield.h: a thread in Go's scheduler
 * that does not advance its P's tick). Everything else goes to Go as it
 * always has. A forked child that re-initialised forwards first: its
 * copy of the library has a table of its own, and this copy's records
 * (the parent's) are never read there.
 */
CK_RV C_Sign(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
	     CK_ULONG_PTR pulSignatureLen)
{
	int s = __atomic_load_n(&gohsm_state, __ATOMIC_ACQUIRE);
	CK_RV rv;

	if (__builtin_expect(s == STATE_INITIALIZED, 1)) {
		if (gohsm_csign_try(hSession, pData, ulDataLen, pSignature, pulSignatureLen, &rv))
			return rv;
		gohsm_thread_ensure_entered();
		gohsm_tick();
		return go_Sign(hSession, pData, ulDataLen, pSignature, pulSignatureLen);
	}
	if (s & STATE_FORWARDING)
		return gohsm_fwd->C_Sign(hSession, pData, ulDataLen, pSignature, pulSignatureLen);
	return CKR_CRYPTOKI_NOT_INITIALIZED;
}

#define GOHSM_NOT_SUPPORTED(name, params, args)                          \
	CK_RV C_##name params                                            \
	{                                                                \
		int s = __atomic_load_n(&gohsm_state, __ATOMIC_ACQUIRE); \
		if (__builtin_expect(s == STATE_INITIALIZED, 1))         \
			return CKR_FUNCTION_NOT_SUPPORTED;               \
		if (s & STATE_FORWARDING)                                \
			return gohsm_fwd->C_##name args;                 \
		return CKR_CRYPTOKI_NOT_INITIALIZED;                     \
	}
GOHSM_UNSUPPORTED_FUNCTIONS(GOHSM_NOT_SUPPORTED)
#undef GOHSM_NOT_SUPPORTED

/*
 * Legacy parallel-function management: v2.40 section 5.16 and v3.0
 * section 5.20 say these "should" return CKR_FUNCTION_NOT_PARALLEL.
 */
CK_RV C_GetFunctionStatus(CK_SESSION_HANDLE hSession)
{
	int s = __atomic_load_n(&gohsm_state, __ATOMIC_ACQUIRE);

	if (s == STATE_INITIALIZED)
		return CKR_FUNCTION_NOT_PARALLEL;
	if (s & STATE_FORWARDING)
		return gohsm_fwd->C_GetFunctionStatus(hSession);
	return CKR_CRYPTOKI_NOT_INITIALIZED;
}

CK_RV C_CancelFunction(CK_SESSION_HANDLE hSession)
{
	int s = __atomic_load_n(&gohsm_state, __ATOMIC_ACQUIRE);

	if (s == STATE_INITIALIZED)
		return CKR_FUNCTION_NOT_PARALLEL;
	if (s & STATE_FORWARDING)
		return gohsm_fwd->C_CancelFunction(hSession);
	return CKR_CRYPTOKI_NOT_INITIALIZED;
}

/*
 * C_GetInfo reports the Cryptoki version of the list it was reached
 * through: a client that asked for the 2.40 interface (C_GetFunctionList)
 * gets 2.40, the 3.0 list 3.0; the 3.2 list (and the exported C_GetInfo
 * symbol) 3.2.
 */
static CK_RV gohsm_GetInfo_version(CK_INFO_PTR pInfo, CK_BYTE major, CK_BYTE minor)
{
	CK_RV rv = C_GetInfo(pInfo);
	if (rv == CKR_OK) {
		pInfo->cryptokiVersion.major = major;
		pInfo->cryptokiVersion.minor = minor;
	}
	return rv;
}

static CK_RV gohsm_GetInfo_2_40(CK_INFO_PTR pInfo) { return gohsm_GetInfo_version(pInfo, 2, 40); }
static CK_RV gohsm_GetInfo_3_0(CK_INFO_PTR pInfo) { return gohsm_GetInfo_version(pInfo, 3, 0); }

/* ---- the lists themselves --------------------------------------------- */

/*
 * Designated initialisers so that field order follows the header, not
 * this file. The 2.40 list holds the 68 functions of CK_FUNCTION_LIST;
 * the 3.0 list adds the 24 of CK_FUNCTION_LIST_3_0 (v3.0 section 3.6).
 */
#define GOHSM_LIST_2_40_FIELDS(getinfo)                                     \
	.C_Initialize = C_Initialize,                                       \
	.C_Finalize = C_Finalize,                                           \
	.C_GetInfo = getinfo,                                               \
	.C_GetFunctionList = C_GetFunctionList,                             \
	.C_GetSlotList = C_GetSlotList,                                     \
	.C_GetSlotInfo = C_GetSlotInfo,                                     \
	.C_GetTokenInfo = C_GetTokenInfo,                                   \
	.C_GetMechanismList = C_GetMechanismList,                           \
	.C_GetMechanismInfo = C_GetMechanismInfo,                           \
	.C_InitToken = C_InitToken,                                         \
	.C_InitPIN = C_InitPIN,                                             \
	.C_SetPIN = C_SetPIN,                                               \
	.C_OpenSession = C_OpenSession,                                     \
	.C_CloseSession = C_CloseSession,                                   \
	.C_CloseAllSessions = C_CloseAllSessions,                           \
	.C_GetSessionInfo = C_GetSessionInfo,                               \
	.C_GetOperationState = C_GetOperationState,                         \
	.C_SetOperationState = C_SetOperationState,                         \
	.C_Login = C_Login,                                                 \
	.C_Logout = C_Logout,                                               \
	.C_CreateObject = C_CreateObject,                                   \
	.C_CopyObject = C_CopyObject,                                       \
	.C_DestroyObject = C_DestroyObject,                                 \
	.C_GetObjectSize = C_GetObjectSize,                                 \
	.C_GetAttributeValue = C_GetAttributeValue,                         \
	.C_SetAttributeValue = C_SetAttributeValue,                         \
	.C_FindObjectsInit = C_FindObjectsInit,                             \
	.C_FindObjects = C_FindObjects,                                     \
	.C_FindObjectsFinal = C_FindObjectsFinal,                           \
	.C_EncryptInit = C_EncryptInit,                                     \
	.C_Encrypt = C_Encrypt,                                             \
	.C_EncryptUpdate = C_EncryptUpdate,                                 \
	.C_EncryptFinal = C_EncryptFinal,                                   \
	.C_DecryptInit = C_DecryptInit,                                     \
	.C_Decrypt = C_Decrypt,                                             \
	.C_DecryptUpdate = C_DecryptUpdate,                                 \
	.C_DecryptFinal = C_DecryptFinal,                                   \
	.C_DigestInit = C_DigestInit,                                       \
	.C_Digest = C_Digest,                                               \
	.C_DigestUpdate = C_DigestUpdate,                                   \
	.C_DigestKey = C_DigestKey,                                         \
	.C_DigestFinal = C_DigestFinal,                                     \
	.C_SignInit = C_SignInit,                                           \
	.C_Sign = C_Sign,                                                   \
	.C_SignUpdate = C_SignUpdate,                                       \
	.C_SignFinal = C_SignFinal,                                         \
	.C_SignRecoverInit = C_SignRecoverInit,                             \
	.C_SignRecover = C_SignRecover,                                     \
	.C_VerifyInit = C_VerifyInit,                                       \
	.C_Verify = C_Verify,                                               \
	.C_VerifyUpdate = C_VerifyUpdate,                                   \
	.C_VerifyFinal = C_VerifyFinal,                                     \
	.C_VerifyRecoverInit = C_VerifyRecoverInit,                         \
	.C_VerifyRecover = C_VerifyRecover,                                 \
	.C_DigestEncryptUpdate = C_DigestEncryptUpdate,                     \
	.C_DecryptDigestUpdate = C_DecryptDigestUpdate,                     \
	.C_SignEncryptUpdate = C_SignEncryptUpdate,                         \
	.C_DecryptVerifyUpdate = C_DecryptVerifyUpdate,                     \
	.C_GenerateKey = C_GenerateKey,                                     \
	.C_GenerateKeyPair = C_GenerateKeyPair,                             \
	.C_WrapKey = C_WrapKey,                                             \
	.C_UnwrapKey = C_UnwrapKey,                                         \
	.C_DeriveKey = C_DeriveKey,                                         \
	.C_SeedRandom = C_SeedRandom,                                       \
	.C_GenerateRandom = C_GenerateRandom,                               \
	.C_GetFunctionStatus = C_GetFunctionStatus,                         \
	.C_CancelFunction = C_CancelFunction,                               \
	.C_WaitForSlotEvent = C_WaitForSlotEvent

static CK_FUNCTION_LIST gohsm_function_list_2_40 = {
	.version = { 2, 40 },
	GOHSM_LIST_2_40_FIELDS(gohsm_GetInfo_2_40),
};

#define GOHSM_LIST_3_0_FIELDS(getinfo)                                      \
	GOHSM_LIST_2_40_FIELDS(getinfo),                                    \
	.C_GetInterfaceList = C_GetInterfaceList,                           \
	.C_GetInterface = C_GetInterface,                                   \
	.C_LoginUser = C_LoginUser,                                         \
	.C_SessionCancel = C_SessionCancel,                                 \
	.C_MessageEncryptInit = C_MessageEncryptInit,                       \
	.C_EncryptMessage = C_EncryptMessage,                               \
	.C_EncryptMessageBegin = C_EncryptMessageBegin,                     \
	.C_EncryptMessageNext = C_EncryptMessageNext,                       \
	.C_MessageEncryptFinal = C_MessageEncryptFinal,                     \
	.C_MessageDecryptInit = C_MessageDecryptInit,                       \
	.C_DecryptMessage = C_DecryptMessage,                               \
	.C_DecryptMessageBegin = C_DecryptMessageBegin,                     \
	.C_DecryptMessageNext = C_DecryptMessageNext,                       \
	.C_MessageDecryptFinal = C_MessageDecryptFinal,                     \
	.C_MessageSignInit = C_MessageSignInit,                             \
	.C_SignMessage = C_SignMessage,                                     \
	.C_SignMessageBegin = C_SignMessageBegin,                           \
	.C_SignMessageNext = C_SignMessageNext,                             \
	.C_MessageSignFinal = C_MessageSignFinal,                           \
	.C_MessageVerifyInit = C_MessageVerifyInit,                         \
	.C_VerifyMessage = C_VerifyMessage,                                 \
	.C_VerifyMessageBegin = C_VerifyMessageBegin,                       \
	.C_VerifyMessageNext = C_VerifyMessageNext,                         \
	.C_MessageVerifyFinal = C_MessageVerifyFinal

static CK_FUNCTION_LIST_3_0 gohsm_function_list_3_0 = {
	.version = { 3, 0 },
	GOHSM_LIST_3_0_FIELDS(gohsm_GetInfo_3_0),
};

/* The 3.2 list: the 3.0 list and the 10 functions added in 3.2. */
static CK_FUNCTION_LIST_3_2 gohsm_function_list_3_2 = {
	.version = { 3, 2 },
	GOHSM_LIST_3_0_FIELDS(C_GetInfo),
	.C_EncapsulateKey = C_EncapsulateKey,
	.C_DecapsulateKey = C_DecapsulateKey,
	.C_VerifySignatureInit = C_VerifySignatureInit,
	.C_VerifySignature = C_VerifySignature,
	.C_VerifySignatureUpdate = C_VerifySignatureUpdate,
	.C_VerifySignatureFinal = C_VerifySignatureFinal,
	.C_GetSessionValidationFlags = C_GetSessionValidationFlags,
	.C_AsyncComplete = C_AsyncComplete,
	.C_AsyncGetID = C_AsyncGetID,
	.C_AsyncJoin = C_AsyncJoin,
};
