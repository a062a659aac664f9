/*
 * signals.c - the module's own threads leave the host's signals alone.
 *
 * The kernel hands a process-directed signal (kill(pid), a child's exit,
 * SIGIO, a terminal's SIGWINCH) to any thread that does not block it.
 * Hosts take their signals on their own threads: nginx's master blocks
 * them while it works and takes them only in sigsuspend(). Go's runtime
 * threads (its monitor, idle threads, GC workers) accepted them, so a
 * runtime thread could take SIGCHLD and run nginx's handler on itself
 * while the master slept on in sigsuspend(): `nginx -s quit` then hung
 * behind a master that never saw its last worker exit. Go installs no
 * handler of its own for these signals in a c-shared library (only for the
 * synchronous ones, SIGPIPE and its preemption signal), so its threads
 * have no use for them.
 *
 * Two things give Go's threads their mask, and both are handled here:
 *
 *  1. Every runtime thread starts from the mask of the thread that started
 *     the runtime, and a c-shared runtime starts in a thread created while
 *     the host's dlopen() runs its constructors, so from the host's loading
 *     thread (nginx loads modules while parsing its configuration, with
 *     nothing blocked). So, around Go's start-up and only then, the loading
 *     thread blocks every asynchronous signal and unblocks GOHSM_SIG_MASK
 *     (gohsm_signals_block), and its own mask is put back before dlopen()
 *     returns (gohsm_signals_restore).
 *  2. Go unblocks SIGCHLD and SIGPROF on each thread it starts, whatever
 *     that mask says (they are "_SigUnblock" in its signal table). A
 *     signal handler can change the mask its thread returns to (the saved
 *     uc_sigmask), so: runtime/cgo creates every runtime thread through
 *     pthread_create, which the link wraps (-Wl,--wrap=pthread_create in
 *     module.go) to send the new thread GOHSM_SIG_MASK. Go creates its
 *     threads with every signal blocked, so that signal waits until Go has
 *     set the thread's mask and is taken at once after it; the handler adds
 *     the blocked set back. The runtime's first thread is not made that
 *     way (it starts from the loading thread's mask, in the window of 1),
 *     so it is sent the signal once the runtime has started
 *     (gohsm_signals_runtime_started, from the package's init).
 *
 * Left unblocked on the runtime's threads:
 *  - SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT: synchronous,
 *    raised by the thread itself (Go turns the first four into panics);
 *  - SIGPIPE: raised by the writing thread; Go handles it in c-shared mode;
 *  - SIGURG: Go's preemption signal, sent to one thread;
 *  - GOHSM_SIG_MASK itself, and glibc's internal signals (cancellation,
 *    setxid), which pthread_sigmask never blocks.
 * Host threads that call into the module keep the asynchronous signals
 * they block blocked: Go sets a mask of its own on a thread's first call,
 * and the shim mends it (gohsm_thread_enter in shim.c, through
 * gohsm_signals_around_first_entry at the end of this file). tests/abi
 * abi_signals checks it.
 *
 * GOHSM_SIG_MASK is a real-time signal hosts leave alone (SIGRTMAX - 3).
 * The handler is installed only if that signal has no disposition yet, or
 * already has this library's handler (a forked child's fresh copy, see
 * fork.c, finds the parent copy's); if the host has taken the signal, or
 * takes it later, nothing is sent and the runtime's threads keep SIGCHLD
 * and SIGPROF, as before. A Go program that loads the module has Go's
 * handler on every signal, so there too. The window of 1 works only in a
 * library (in a Go executable the runtime starts after every constructor),
 * so nothing is sent in a program that links this package.
 *
 * Order: a constructor with a priority runs before every constructor
 * without one; the Go runtime's start-up (_rt0_*_lib) is an .init_array
 * entry without one, from the Go object that the link puts before the cgo
 * objects, so gohsm_signals_restore, also without one, runs after it.
 * tests/abi abi_signals checks both ends: the loading thread's mask is
 * unchanged and every runtime thread blocks the signals.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define GOHSM_SIG_MASK (SIGRTMAX - 3)

/* What the runtime's threads block: set once, by the first constructor. */
static sigset_t gohsm_block;
/* The loading thread and its mask during the window (1 above). */
static sigset_t gohsm_host_mask;
static int gohsm_window, gohsm_host_mask_saved;
static pid_t gohsm_loader_tid;
/*
 * The runtime's first thread: its start routine, and its thread id, which
 * it writes itself before Go runs on it (so no reader can see it too late
 * or see another thread's). 0 in a Go executable: nothing is then sent.
 */
static int gohsm_rt0_wrapped;
static void *(*gohsm_rt0_fn)(void *);
static pid_t gohsm_rt0_tid;
/* The handler GOHSM_SIG_MASK has while this file uses it; NULL: unused. */
static void (*gohsm_mask_handler)(int, siginfo_t *, void *);

static const int gohsm_thread_signals[] = {
	SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT, SIGPIPE, SIGURG,
};

static pid_t gohsm_gettid(void) { return (pid_t)syscall(SYS_gettid); }

/* Async-signal-safe: adds the blocked set to the mask the thread returns to. */
static void gohsm_mask_signal(int sig, siginfo_t *info, void *ctx)
{
	ucontext_t *uc = ctx;

	(void)sig;
	(void)info;
	for (int s = 1; s < 65; s++)
		if (sigismember(&gohsm_block, s) == 1)
			sigaddset(&uc->uc_sigmask, s);
}

/* The same library file, as two loaded copies of it are (fork.c). */
static int gohsm_same_file(const void *a, const void *b)
{
	Dl_info ia, ib;
	struct stat sa, sb;

	if (dladdr(a, &ia) == 0 || dladdr(b, &ib) == 0 || ia.dli_fname == NULL || ib.dli_fname == NULL)
		return 0;
	if (stat(ia.dli_fname, &sa) != 0 || stat(ib.dli_fname, &sb) != 0)
		return 0;
	return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static void gohsm_mask_handler_install(void)
{
	struct sigaction old, sa;

	if (sigaction(GOHSM_SIG_MASK, NULL, &old) != 0)
		return;
	if (old.sa_flags & SA_SIGINFO) {
		if (old.sa_sigaction == gohsm_mask_signal ||
		    (old.sa_sigaction != NULL && gohsm_same_file((const void *)old.sa_sigaction,
								  (const void *)gohsm_mask_signal)))
			__atomic_store_n(&gohsm_mask_handler, old.sa_sigaction, __ATOMIC_RELEASE);
		return;
	}
	if (old.sa_handler != SIG_DFL)
		return; /* the host's signal */
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = gohsm_mask_signal;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(GOHSM_SIG_MASK, &sa, NULL) == 0)
		__atomic_store_n(&gohsm_mask_handler, gohsm_mask_signal, __ATOMIC_RELEASE);
}

/* GOHSM_SIG_MASK still has the handler this file installed or found. */
static int gohsm_mask_usable(void)
{
	void (*h)(int, siginfo_t *, void *) = __atomic_load_n(&gohsm_mask_handler, __ATOMIC_ACQUIRE);
	struct sigaction cur;

	return h != NULL && sigaction(GOHSM_SIG_MASK, NULL, &cur) == 0 && (cur.sa_flags & SA_SIGINFO) &&
	       cur.sa_sigaction == h;
}

__attribute__((constructor(101))) static void gohsm_signals_block(void)
{
	sigfillset(&gohsm_block);
	for (unsigned i = 0; i < sizeof gohsm_thread_signals / sizeof gohsm_thread_signals[0]; i++)
		sigdelset(&gohsm_block, gohsm_thread_signals[i]);
	for (int s = 32; s < SIGRTMIN; s++)
		sigdelset(&gohsm_block, s); /* glibc's own */
	sigdelset(&gohsm_block, GOHSM_SIG_MASK);
	if (pthread_sigmask(SIG_BLOCK, &gohsm_block, &gohsm_host_mask) == 0) {
		sigset_t mask;

		gohsm_host_mask_saved = 1;
		/* the runtime's threads must take it, even if the host blocks it */
		sigemptyset(&mask);
		sigaddset(&mask, GOHSM_SIG_MASK);
		pthread_sigmask(SIG_UNBLOCK, &mask, NULL);
	}
	gohsm_loader_tid = gohsm_gettid();
	gohsm_window = 1;
}

__attribute__((constructor)) static void gohsm_signals_restore(void)
{
	gohsm_window = 0;
	if (gohsm_host_mask_saved) {
		pthread_sigmask(SIG_SETMASK, &gohsm_host_mask, NULL);
		gohsm_host_mask_saved = 0;
	}
}

static void *gohsm_rt0_start(void *arg)
{
	__atomic_store_n(&gohsm_rt0_tid, gohsm_gettid(), __ATOMIC_RELEASE);
	return gohsm_rt0_fn(arg);
}

int __real_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg);

/*
 * Every pthread_create of this library (runtime/cgo's included). The
 * loading thread's creation in the window is the runtime's first thread.
 * A thread created with GOHSM_SIG_MASK blocked is a runtime thread (Go
 * blocks every signal around its pthread_create): the signal waits on it
 * until Go sets its mask. Other threads inherit their creator's mask and
 * are left alone.
 */
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
	sigset_t cur;
	int blocked, err;

	sigemptyset(&cur);
	blocked = pthread_sigmask(SIG_BLOCK, NULL, &cur) == 0 && sigismember(&cur, GOHSM_SIG_MASK) == 1;
	if (gohsm_window && !gohsm_rt0_wrapped && gohsm_gettid() == gohsm_loader_tid) {
		/* a library, and its runtime starts now: before any of its threads */
		gohsm_mask_handler_install();
		gohsm_rt0_wrapped = 1;
		gohsm_rt0_fn = fn;
		fn = gohsm_rt0_start;
	}
	err = __real_pthread_create(t, attr, fn, arg);
	if (err == 0 && blocked && gohsm_mask_usable())
		pthread_kill(*t, GOHSM_SIG_MASK);
	return err;
}

/* Called once the runtime runs Go code: its first thread has its mask. */
void gohsm_signals_runtime_started(void)
{
	pid_t tid = __atomic_load_n(&gohsm_rt0_tid, __ATOMIC_ACQUIRE);

	if (tid > 0 && gohsm_mask_usable())
		syscall(SYS_tgkill, getpid(), tid, GOHSM_SIG_MASK);
}

/*
 * A host thread's first call into Go (enter): Go binds the thread to a
 * record of its own and sets its mask, unblocking SIGCHLD and SIGPROF and
 * the synchronous signals; the asynchronous ones the host had blocked are
 * blocked again. The synchronous ones and SIGURG stay unblocked: Go turns
 * a fault in its code into an error only if it gets the signal, and
 * preempts with SIGURG.
 */
void gohsm_signals_around_first_entry(void (*enter)(void))
{
	sigset_t host, again;

	sigemptyset(&host);
	pthread_sigmask(SIG_BLOCK, NULL, &host);
	enter();
	sigandset(&again, &host, &gohsm_block);
	pthread_sigmask(SIG_BLOCK, &again, NULL);
}
