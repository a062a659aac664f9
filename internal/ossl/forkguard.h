/*
 * forkguard.h - keeps fork() out while this copy of the module is inside
 * libcrypto, and while a thread that used libcrypto through it is exiting
 * (internal/ossl, docs/fork.md). Included by ossl.go's cgo preamble and by
 * tests/abi/testdata/abi_forkguard.c, which checks it with real threads.
 */
#ifndef GOHSM_FORKGUARD_H
#define GOHSM_FORKGUARD_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

// The fork guard. A thread inside libcrypto counts itself in a slot of its
// own (by a hash of the thread; a slot per cache line, so two signing
// threads do not share one), then checks that no fork is being prepared;
// if one is, it steps out and waits. The fork's prepare handler raises
// gohsm_ossl_forking and then waits until every slot is empty. Both sides
// write, then read the other's variable, with sequentially consistent
// operations, so either the caller sees the fork or the fork sees the
// caller. The parent handler lowers the flag again; the child handler
// clears it (only the forking thread exists there, and it is not inside).
// A prepare handler that waited more than GOHSM_OSSL_FORK_WAIT_NS lets
// the fork go on and counts it (gohsm_ossl_fork_timeouts): a thread stuck
// inside libcrypto must not hang the host's fork.
#define GOHSM_OSSL_SLOTS 256
#define GOHSM_OSSL_FORK_WAIT_NS 5000000000LL

struct gohsm_ossl_slot {
	unsigned long inside;
	char pad[64 - sizeof(unsigned long)];
};

static struct gohsm_ossl_slot gohsm_ossl_slots[GOHSM_OSSL_SLOTS] __attribute__((aligned(64)));
static int gohsm_ossl_forking;
static unsigned long gohsm_ossl_fork_timeouts;

static void gohsm_ossl_nap(long ns)
{
	struct timespec ts = { 0, ns };

	nanosleep(&ts, NULL);
}

// Threads leaving. libcrypto frees a thread's state when the thread exits
// (a pthread key destructor), under its global thread lock, outside any
// call of the module: a fork() then could leave that lock held in the
// child. So a thread's first call registers an exit hook that runs before
// any key destructor (a thread_local destructor, __cxa_thread_atexit_impl
// of the process's C library); the hook puts the thread's id in
// gohsm_ossl_leaving (holding back, as gohsm_ossl_enter does, while a fork
// is being prepared), and the prepare handler also waits until every
// thread listed there is gone. The C library functions come from the
// process's C library (LM_ID_BASE): a copy's own would keep a table of
// their own (pthread keys) or never run (exit hooks). Found by tests/fork's
// stormexit case: 1 run in 6 hung a child in ERR_set_mark without it.
#define GOHSM_OSSL_LEAVING 256

static int gohsm_ossl_leaving[GOHSM_OSSL_LEAVING];
static pthread_key_t gohsm_ossl_hooked_key;
static int gohsm_ossl_hooks; // 1: the functions below were found
static void *(*gohsm_ossl_getspecific)(pthread_key_t);
static int (*gohsm_ossl_setspecific)(pthread_key_t, const void *);
static int (*gohsm_ossl_thread_atexit)(void (*)(void *), void *, void *);

// gohsm_ossl_gone reports whether thread tid of this process has exited.
static int gohsm_ossl_gone(int tid)
{
	return syscall(SYS_tgkill, getpid(), tid, 0) != 0 && errno == ESRCH;
}

static void gohsm_ossl_thread_leaving(void *unused)
{
	int tid = (int)syscall(SYS_gettid), i;

	(void)unused;
	for (;;) {
		int *slot = NULL;

		for (i = 0; i < GOHSM_OSSL_LEAVING && slot == NULL; i++) {
			int old = __atomic_load_n(&gohsm_ossl_leaving[i], __ATOMIC_RELAXED);

			if ((old == 0 || gohsm_ossl_gone(old)) &&
			    __atomic_compare_exchange_n(&gohsm_ossl_leaving[i], &old, tid, 0, __ATOMIC_SEQ_CST,
							__ATOMIC_RELAXED))
				slot = &gohsm_ossl_leaving[i];
		}
		if (slot == NULL) { // all in use by threads still exiting
			gohsm_ossl_nap(50000);
			continue;
		}
		if (__atomic_load_n(&gohsm_ossl_forking, __ATOMIC_SEQ_CST) == 0)
			return; // listed: libcrypto's cleanup may run now
		__atomic_store_n(slot, 0, __ATOMIC_SEQ_CST);
		while (__atomic_load_n(&gohsm_ossl_forking, __ATOMIC_ACQUIRE) != 0)
			gohsm_ossl_nap(50000);
	}
}

// gohsm_ossl_hook registers the calling thread's exit hook once.
static void gohsm_ossl_hook(void)
{
	if (!gohsm_ossl_hooks || gohsm_ossl_getspecific(gohsm_ossl_hooked_key) != NULL)
		return;
	// The third argument names this library (the C library counts the
	// hooks each library has pending; NULL is not accepted).
	if (gohsm_ossl_thread_atexit(gohsm_ossl_thread_leaving, NULL, (void *)&gohsm_ossl_thread_leaving) == 0)
		gohsm_ossl_setspecific(gohsm_ossl_hooked_key, (void *)1);
}

static struct gohsm_ossl_slot *gohsm_ossl_enter(void)
{
	uint64_t t = (uint64_t)pthread_self() * 0x9E3779B97F4A7C15ull;
	struct gohsm_ossl_slot *s = &gohsm_ossl_slots[t >> 56];

	gohsm_ossl_hook();
	for (;;) {
		__atomic_add_fetch(&s->inside, 1, __ATOMIC_SEQ_CST);
		if (__atomic_load_n(&gohsm_ossl_forking, __ATOMIC_SEQ_CST) == 0)
			return s;
		__atomic_sub_fetch(&s->inside, 1, __ATOMIC_SEQ_CST);
		while (__atomic_load_n(&gohsm_ossl_forking, __ATOMIC_ACQUIRE) != 0)
			gohsm_ossl_nap(50000);
	}
}

static void gohsm_ossl_leave(struct gohsm_ossl_slot *s)
{
	__atomic_sub_fetch(&s->inside, 1, __ATOMIC_RELEASE);
}

static long long gohsm_ossl_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void gohsm_ossl_fork_prepare(void)
{
	long long deadline = gohsm_ossl_now() + GOHSM_OSSL_FORK_WAIT_NS;
	int i;

	__atomic_add_fetch(&gohsm_ossl_forking, 1, __ATOMIC_SEQ_CST);
	for (i = 0; i < GOHSM_OSSL_SLOTS; i++)
		while (__atomic_load_n(&gohsm_ossl_slots[i].inside, __ATOMIC_SEQ_CST) != 0) {
			if (gohsm_ossl_now() > deadline) {
				__atomic_add_fetch(&gohsm_ossl_fork_timeouts, 1, __ATOMIC_RELAXED);
				return;
			}
			gohsm_ossl_nap(20000);
		}
	for (i = 0; i < GOHSM_OSSL_LEAVING; i++)
		for (;;) {
			int tid = __atomic_load_n(&gohsm_ossl_leaving[i], __ATOMIC_SEQ_CST);

			if (tid == 0)
				break;
			if (gohsm_ossl_gone(tid)) {
				// Clear it, so that a later thread given the same
				// id is not waited for.
				__atomic_compare_exchange_n(&gohsm_ossl_leaving[i], &tid, 0, 0, __ATOMIC_SEQ_CST,
							    __ATOMIC_RELAXED);
				break;
			}
			if (gohsm_ossl_now() > deadline) {
				__atomic_add_fetch(&gohsm_ossl_fork_timeouts, 1, __ATOMIC_RELAXED);
				return;
			}
			gohsm_ossl_nap(20000);
		}
}

static void gohsm_ossl_fork_parent(void)
{
	__atomic_sub_fetch(&gohsm_ossl_forking, 1, __ATOMIC_RELEASE);
}

static void gohsm_ossl_fork_child(void)
{
	// The parent's leaving threads are not this process's.
	memset(gohsm_ossl_leaving, 0, sizeof gohsm_ossl_leaving);
	__atomic_store_n(&gohsm_ossl_forking, 0, __ATOMIC_RELEASE);
}

static unsigned long gohsm_ossl_timeouts(void)
{
	return __atomic_load_n(&gohsm_ossl_fork_timeouts, __ATOMIC_RELAXED);
}

static unsigned long gohsm_ossl_inside(void)
{
	unsigned long n = 0;
	int i;

	for (i = 0; i < GOHSM_OSSL_SLOTS; i++)
		n += __atomic_load_n(&gohsm_ossl_slots[i].inside, __ATOMIC_RELAXED);
	return n;
}

// Registers the guard's handlers with the process's C library, the one
// whose fork() the host calls: in a copy of the module in its own link-map
// namespace, plain pthread_atfork would register them with the copy's C
// library, whose handlers no fork() runs.
static int gohsm_ossl_register_fork(char *why, size_t n)
{
#ifdef __GLIBC__
	typedef int (*register_fn)(void (*)(void), void (*)(void), void (*)(void), void *);
	void *libc = dlmopen(LM_ID_BASE, "libc.so.6", RTLD_NOW | RTLD_NOLOAD);
	register_fn reg = libc ? (register_fn)dlsym(libc, "__register_atfork") : NULL;

	if (reg == NULL) {
		snprintf(why, n, "the process's C library has no __register_atfork");
		return 0;
	}
	{
		int (*key_create)(pthread_key_t *, void (*)(void *)) =
			(int (*)(pthread_key_t *, void (*)(void *)))dlsym(libc, "pthread_key_create");

		gohsm_ossl_getspecific = (void *(*)(pthread_key_t))dlsym(libc, "pthread_getspecific");
		gohsm_ossl_setspecific = (int (*)(pthread_key_t, const void *))dlsym(libc, "pthread_setspecific");
		gohsm_ossl_thread_atexit =
			(int (*)(void (*)(void *), void *, void *))dlsym(libc, "__cxa_thread_atexit_impl");
		// Without them, threads leaving stay uncovered (docs/fork.md).
		gohsm_ossl_hooks = key_create != NULL && gohsm_ossl_getspecific != NULL &&
				   gohsm_ossl_setspecific != NULL && gohsm_ossl_thread_atexit != NULL &&
				   key_create(&gohsm_ossl_hooked_key, NULL) == 0;
	}
	if (reg(gohsm_ossl_fork_prepare, gohsm_ossl_fork_parent, gohsm_ossl_fork_child, NULL) != 0) {
#else
	if (pthread_atfork(gohsm_ossl_fork_prepare, gohsm_ossl_fork_parent, gohsm_ossl_fork_child) != 0) {
#endif
		snprintf(why, n, "cannot register the fork handlers");
		return 0;
	}
	return 1;
}

#endif
