/*
 * fds.c - this copy's PostgreSQL sockets, closed in a forked child.
 *
 * A forked child inherits every descriptor of its parent, the sockets of
 * this copy's PostgreSQL connections among them (token/store/postgres).
 * The child never uses them: its C_Initialize loads a fresh copy with
 * connections of its own (fork.c), and this copy's Go code is never
 * entered there again. But while the child holds them the server keeps
 * the parent's backends, and with them the session advisory locks that
 * say the parent's logins are alive: a parent killed with SIGKILL would
 * stay logged in as long as its children live (an nginx master and its
 * workers).
 *
 * So token/store/postgres reports each connection's descriptor (fds.go
 * sets its hook): gohsm_fds_opened right after the dial, gohsm_fds_closing
 * just before the close. The numbers sit in a fixed array (lock-free
 * compare-and-swap: a child must never wait for a lock a parent thread
 * held at fork()), and a child handler of fork() closes every one of them
 * before fork() returns in the child, before anything there can reuse a
 * number, and empties the array. The handler is registered with the
 * process's C library (the one whose fork() the host calls): in a copy
 * loaded by dlmopen, plain pthread_atfork would register it with the
 * copy's own C library, whose handlers no fork() runs. So in a grandchild
 * both the original's handler (its array already emptied in the child)
 * and the child's copy's handler run, each closing its own copy's sockets.
 *
 * Nothing here runs on a PKCS #11 call: only when a connection opens or
 * closes, and in a forked child. Not covered (docs/fork.md): a raw clone
 * system call (no atfork handler runs; closing later, in C_Initialize,
 * could close a number the host reused meanwhile), and a socket whose
 * dial is under way in another thread at fork() time.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <unistd.h>

#ifdef __GLIBC__
#include <dlfcn.h>
#endif

#include "fds.h"

/* fd + 1 per connection, 0 for a free entry (a zeroed array is empty). */
static int gohsm_fds[GOHSM_FDS_MAX];
static unsigned long gohsm_fds_full;
static int gohsm_fds_handler; /* 1: registered; -1: cannot be */
static pthread_once_t gohsm_fds_once = PTHREAD_ONCE_INIT;

/* Runs in the child inside fork(), with one thread: close is async-signal-safe. */
static void gohsm_fds_child(void)
{
	int i, v;

	for (i = 0; i < GOHSM_FDS_MAX; i++) {
		v = __atomic_exchange_n(&gohsm_fds[i], 0, __ATOMIC_RELAXED);
		if (v > 0)
			close(v - 1);
	}
}

static void gohsm_fds_register(void)
{
	int rc;
#ifdef __GLIBC__
	typedef int (*register_fn)(void (*)(void), void (*)(void), void (*)(void), void *);
	void *libc = dlmopen(LM_ID_BASE, "libc.so.6", RTLD_NOW | RTLD_NOLOAD);
	register_fn reg = libc ? (register_fn)dlsym(libc, "__register_atfork") : NULL;

	/* A NULL dso handle: never unregistered (the copy is never unloaded). */
	rc = reg != NULL ? reg(NULL, NULL, gohsm_fds_child, NULL) : -1;
#else
	rc = pthread_atfork(NULL, NULL, gohsm_fds_child);
#endif
	__atomic_store_n(&gohsm_fds_handler, rc == 0 ? 1 : -1, __ATOMIC_RELEASE);
}

int gohsm_fds_opened(int fd)
{
	int i, free;

	if (fd < 0)
		return 0;
	pthread_once(&gohsm_fds_once, gohsm_fds_register);
	if (__atomic_load_n(&gohsm_fds_handler, __ATOMIC_ACQUIRE) != 1)
		return 0;
	for (i = 0; i < GOHSM_FDS_MAX; i++) {
		free = 0;
		if (__atomic_compare_exchange_n(&gohsm_fds[i], &free, fd + 1, 0, __ATOMIC_SEQ_CST,
						__ATOMIC_RELAXED))
			return 1;
	}
	__atomic_fetch_add(&gohsm_fds_full, 1, __ATOMIC_RELAXED);
	return 0;
}

void gohsm_fds_closing(int fd)
{
	int i, want;

	for (i = 0; i < GOHSM_FDS_MAX; i++) {
		want = fd + 1;
		if (__atomic_compare_exchange_n(&gohsm_fds[i], &want, 0, 0, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
			return;
	}
}

int gohsm_fds_count(void)
{
	int i, n = 0;

	for (i = 0; i < GOHSM_FDS_MAX; i++)
		if (__atomic_load_n(&gohsm_fds[i], __ATOMIC_RELAXED) > 0)
			n++;
	return n;
}

unsigned long gohsm_fds_unregistered(void)
{
	return __atomic_load_n(&gohsm_fds_full, __ATOMIC_RELAXED);
}
