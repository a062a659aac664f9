/*
 * abi_signals.c - the module's own threads leave the host's signals to the
 * host.
 *
 * The kernel gives a process-directed signal (kill(pid), a child's exit) to
 * any thread of the process that does not block it. Hosts such as nginx's
 * master block their signals while they work and take them only in
 * sigsuspend(); nginx loads the module while parsing its configuration,
 * before it blocks anything. A runtime thread of the module (Go's monitor,
 * idle threads, GC workers) that accepted those signals would run the
 * host's handler on itself: the handler sets the host's flag, but the host's
 * own thread stays asleep in sigsuspend() and nginx's master never sees its
 * last worker exit. So the module's threads block every asynchronous signal
 * (pkcs11/signals.c) and only the host's threads take them.
 *
 * Checks:
 *  1. loading the module leaves the loading thread's signal mask as it was;
 *  2. after busy use from several threads, every thread of the process but
 *     the host's own blocks the host's signals, and none blocks the
 *     synchronous ones Go turns into panics;
 *  3. the nginx master's pattern: with the signals blocked on the main
 *     thread, a signal sent to the process (and a child's exit) stays
 *     pending until the main thread waits in sigsuspend(), and its handler
 *     runs there;
 *  4. a host thread that blocks everything keeps the host's signals
 *     blocked through its first calls (Go sets a mask of its own then);
 *  5. in a forked child, the fresh copy of the module that C_Initialize
 *     loads (pkcs11/fork.c) blocks them on its threads too.
 * All of it twice: first in a run of this program that loads the module
 * from a thread blocking every signal (run to its end before the second,
 * as both use the same token), then from one blocking none (nginx).
 *
 * usage: abi_signals /path/to/libgohsm.so [blocked]   (with $GOHSM_CONF set by abi_test.go)
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "abi.h"

static struct abi_module m;

/* The host's asynchronous signals: nginx's master takes all of these. */
static const int host_signals[] = {SIGHUP,  SIGINT,  SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2,
				   SIGALRM, SIGCHLD, SIGIO,   SIGWINCH, SIGPROF};
#define N_HOST_SIGNALS (int)(sizeof host_signals / sizeof host_signals[0])

/* Signals a thread must never block: Go turns them into panics. */
static const int sync_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL};
#define N_SYNC_SIGNALS (int)(sizeof sync_signals / sizeof sync_signals[0])

static pid_t gettid_(void) { return (pid_t)syscall(SYS_gettid); }

static volatile sig_atomic_t handled_sig, handled_tid, handled_count;

static void handler(int sig)
{
	handled_sig = sig;
	handled_tid = gettid_();
	handled_count++;
}

/* The calling thread's mask (only the kernel's part of a sigset_t is set). */
static int mask_of_self(sigset_t *set)
{
	sigemptyset(set);
	return pthread_sigmask(SIG_BLOCK, NULL, set);
}

static int same_mask(const sigset_t *a, const sigset_t *b)
{
	for (int sig = 1; sig < 65; sig++)
		if (sigismember(a, sig) != sigismember(b, sig))
			return 0;
	return 1;
}

/* The SigBlk mask of one thread, from /proc; 0 on success. */
static int thread_sigblk(pid_t pid, long tid, unsigned long long *blk, char *comm, size_t ncomm)
{
	char path[128], line[256];
	FILE *f;
	int found = 0;

	snprintf(path, sizeof path, "/proc/%ld/task/%ld/comm", (long)pid, tid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	if (fgets(comm, (int)ncomm, f) == NULL)
		comm[0] = 0;
	comm[strcspn(comm, "\n")] = 0;
	fclose(f);
	snprintf(path, sizeof path, "/proc/%ld/task/%ld/status", (long)pid, tid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "SigBlk: %llx", blk) == 1)
			found = 1;
	fclose(f);
	return found ? 0 : -1;
}

/*
 * Every thread of this process other than the calling one blocks all host
 * signals and no synchronous one. Returns the number of threads looked at
 * (or -1 if /proc could not be read) and fills why with the first problem.
 */
static int other_threads_block_host_signals(char *why, size_t nwhy, int *bad)
{
	char dir[64], comm[32];
	DIR *d;
	struct dirent *e;
	pid_t self = gettid_();
	int seen = 0;

	*bad = 0;
	why[0] = 0;
	snprintf(dir, sizeof dir, "/proc/%ld/task", (long)getpid());
	d = opendir(dir);
	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		unsigned long long blk = 0;
		long tid = atol(e->d_name);

		if (tid <= 0 || tid == (long)self)
			continue;
		if (thread_sigblk(getpid(), tid, &blk, comm, sizeof comm) != 0)
			continue; /* exited meanwhile */
		seen++;
		for (int i = 0; i < N_HOST_SIGNALS; i++)
			if (!(blk & (1ULL << (host_signals[i] - 1)))) {
				if (!*bad)
					snprintf(why, nwhy, "thread %ld (%s) accepts %s (SigBlk %llx)", tid, comm,
						 strsignal(host_signals[i]), blk);
				(*bad)++;
				break;
			}
		for (int i = 0; i < N_SYNC_SIGNALS; i++)
			if (blk & (1ULL << (sync_signals[i] - 1))) {
				if (!*bad)
					snprintf(why, nwhy, "thread %ld (%s) blocks %s (SigBlk %llx)", tid, comm,
						 strsignal(sync_signals[i]), blk);
				(*bad)++;
				break;
			}
	}
	closedir(d);
	return seen;
}

/* Busy use from several host threads: the runtime starts its threads. */
static void *busy(void *arg)
{
	static CK_BYTE data[1 << 20];
	CK_BYTE out[64];
	CK_ULONG n;
	CK_MECHANISM mech = {CKM_SHA256, NULL, 0};
	CK_SESSION_HANDLE s;

	(void)arg;
	if (m.f3->C_OpenSession(*(CK_SLOT_ID *)arg, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK)
		return (void *)1;
	for (int i = 0; i < 40; i++) {
		n = sizeof out;
		if (m.f3->C_DigestInit(s, &mech) != CKR_OK ||
		    m.f3->C_Digest(s, data, sizeof data, out, &n) != CKR_OK ||
		    m.f3->C_GenerateRandom(s, out, 32) != CKR_OK)
			return (void *)1;
	}
	m.f3->C_CloseSession(s);
	return NULL;
}

/*
 * A thread can be seen with every signal blocked for a moment (Go blocks
 * all of them around creating a thread, and a new thread starts so until
 * Go sets its mask), so a look that finds a problem is repeated, up to 20
 * times 10 ms apart; a thread that accepts a host signal does so for good.
 */
static void check_threads(const char *tag)
{
	char why[512], name[128];
	struct timespec pause = {0, 10 * 1000 * 1000};
	int bad, seen = other_threads_block_host_signals(why, sizeof why, &bad);

	for (int i = 0; i < 20 && seen >= 0 && bad != 0; i++) {
		nanosleep(&pause, NULL);
		seen = other_threads_block_host_signals(why, sizeof why, &bad);
	}

	snprintf(name, sizeof name, "%s: the module's threads block the host's signals", tag);
	if (seen < 0) {
		abi_fail(name, "cannot read /proc/self/task");
		return;
	}
	abi_check(name, seen > 0 && bad == 0, "%s%s; %d of %d threads wrong", why,
		  seen == 0 ? "no thread but the host's" : "", bad, seen);
}

/*
 * A host thread that blocks its signals (as nginx's master does) keeps
 * them blocked through its first call into the module, when Go binds the
 * thread to one of its own records and sets a mask of its own. Only the
 * synchronous ones (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP) and SIGURG
 * may come back unblocked: Go turns a fault in its code into an error
 * through them, and preempts with SIGURG.
 */
static void *first_call_blocked(void *arg)
{
	sigset_t all, before, after;
	CK_INFO info;
	CK_SESSION_HANDLE s;
	CK_BYTE r[32];
	int ok = 1;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, NULL);
	mask_of_self(&before);
	if (m.f3->C_GetInfo(&info) != CKR_OK ||
	    m.f3->C_OpenSession(*(CK_SLOT_ID *)arg, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK ||
	    m.f3->C_GenerateRandom(s, r, sizeof r) != CKR_OK || m.f3->C_CloseSession(s) != CKR_OK)
		ok = 0;
	mask_of_self(&after);
	if (!ok)
		return (void *)"a call failed";
	for (int i = 0; i < N_HOST_SIGNALS; i++)
		if (sigismember(&before, host_signals[i]) && !sigismember(&after, host_signals[i])) {
			static char why[96];

			snprintf(why, sizeof why, "%s was unblocked by the calls", strsignal(host_signals[i]));
			return why;
		}
	return NULL;
}

/* The nginx master's wait for one signal; sender makes it happen. */
static void check_pending_until_sigsuspend(int sig, const char *what)
{
	sigset_t all, none, pending;
	struct timespec pause = {0, 50 * 1000 * 1000};
	char name[256];
	pid_t child = -1;

	snprintf(name, sizeof name, "%s stays pending for the host's sigsuspend and is handled on its thread",
		 what);
	sigfillset(&all);
	sigemptyset(&none);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	handled_count = 0;
	if (sig == SIGCHLD) {
		siginfo_t info;

		child = fork();
		if (child == 0)
			_exit(0);
		if (child < 0) {
			abi_fail(name, "fork: %s", strerror(errno));
			pthread_sigmask(SIG_SETMASK, &none, NULL);
			return;
		}
		/* waits for the exit without reaping: SIGCHLD has been sent */
		while (waitid(P_PID, (id_t)child, &info, WEXITED | WNOWAIT) < 0 && errno == EINTR)
			;
	} else {
		kill(getpid(), sig);
	}
	nanosleep(&pause, NULL); /* a thread accepting it would have run the handler by now */
	sigpending(&pending);
	if (handled_count != 0 || !sigismember(&pending, sig)) {
		abi_fail(name, "taken by thread %d (main %d) before the host waited for it; pending %d",
			 (int)handled_tid, (int)getpid(), sigismember(&pending, sig));
	} else {
		sigsuspend(&none); /* returns once a handler has run on this thread */
		abi_check(name, handled_count == 1 && handled_sig == sig && handled_tid == getpid(),
			  "handled %d times, signal %d on thread %d (main %d)", (int)handled_count,
			  (int)handled_sig, (int)handled_tid, (int)getpid());
	}
	if (child > 0)
		waitpid(child, NULL, 0);
	pthread_sigmask(SIG_SETMASK, &none, NULL);
}

/* Only the host signals need to match: Go unblocks the synchronous ones. */
static int same_host_signals(const sigset_t *a, const sigset_t *b)
{
	for (int i = 0; i < N_HOST_SIGNALS; i++)
		if (sigismember(a, host_signals[i]) != sigismember(b, host_signals[i]))
			return 0;
	return 1;
}

int main(int argc, char **argv)
{
	sigset_t none, before, after;
	struct sigaction sa;
	pthread_t threads[4];
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE sess;
	int ok = 1, loaded_blocked = argc == 3 && strcmp(argv[2], "blocked") == 0;

	if (argc != 2 && !loaded_blocked) {
		fprintf(stderr, "usage: %s module.so [blocked]\n", argv[0]);
		return 2;
	}
	sigemptyset(&none);
	if (!loaded_blocked) {
		/*
		 * First the same checks in a run that loads the module from a
		 * thread blocking every signal (a host that takes its signals
		 * with sigwait or signalfd), to its end: the same token.
		 */
		pid_t run;
		int status = 0;

		fflush(stdout);
		run = fork();
		if (run == 0) {
			execl("/proc/self/exe", argv[0], argv[1], "blocked", (char *)NULL);
			_exit(127);
		}
		if (run > 0)
			waitpid(run, &status, 0);
		abi_check("the run loading the module with every signal blocked passed",
			  run > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "status 0x%x", status);
		/* Like nginx at configuration time: nothing blocked while loading. */
		pthread_sigmask(SIG_SETMASK, &none, NULL);
	} else {
		sigset_t all;

		printf("RUN loading the module with every signal blocked\n");
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, NULL);
	}
	mask_of_self(&before);
	abi_load(argv[1], &m);
	mask_of_self(&after);
	abi_check("loading the module leaves the loading thread's signal mask", same_mask(&before, &after),
		  "mask changed by dlopen");

	if (!abi_check_rv("C_Initialize", abi_initialize(&m), CKR_OK) || !abi_first_slot(&m, &slot) ||
	    !abi_setup_user_session(&m, slot, &sess))
		return abi_exit();
	for (int i = 0; i < 4; i++)
		if (pthread_create(&threads[i], NULL, busy, &slot) != 0)
			ok = 0;
	for (int i = 0; i < 4 && ok; i++) {
		void *r;

		pthread_join(threads[i], &r);
		if (r != NULL)
			ok = 0;
	}
	abi_check("busy use from four threads", ok, "a digest or random call failed");
	mask_of_self(&after);
	abi_check("calls leave the calling thread's blocked host signals", same_host_signals(&before, &after),
		  "mask changed by calls");
	check_threads("after use");
	{
		pthread_t th;
		void *why = (void *)"thread not started";

		if (pthread_create(&th, NULL, first_call_blocked, &slot) == 0)
			pthread_join(th, &why);
		abi_check("a host thread's first calls leave its blocked signals blocked", why == NULL, "%s",
			  why ? (const char *)why : "");
	}

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = handler;
	sigemptyset(&sa.sa_mask);
	for (int i = 0; i < N_HOST_SIGNALS; i++)
		sigaction(host_signals[i], &sa, NULL);
	for (int i = 0; i < N_HOST_SIGNALS; i++) {
		char what[64];

		snprintf(what, sizeof what, "%s%s", strsignal(host_signals[i]),
			 host_signals[i] == SIGCHLD ? " (a child's exit)" : " (kill)");
		check_pending_until_sigsuspend(host_signals[i], what);
	}

	/* A forked child: C_Initialize starts a fresh copy of the module. */
	{
		pid_t child;
		int status = 0;

		fflush(stdout);
		child = fork();
		if (child == 0) {
			abi_passes = abi_failures = 0;
			mask_of_self(&before);
			if (abi_check_rv("child: C_Initialize (a fresh copy)", abi_initialize(&m), CKR_OK)) {
				CK_SESSION_HANDLE s;
				CK_BYTE r[32];

				abi_check_rv("child: C_OpenSession",
					     m.f3->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s), CKR_OK);
				abi_check_rv("child: C_GenerateRandom", m.f3->C_GenerateRandom(s, r, sizeof r), CKR_OK);
				mask_of_self(&after);
				abi_check("child: calls leave the calling thread's blocked host signals",
					  same_host_signals(&before, &after), "mask changed");
				check_threads("child");
			}
			fflush(stdout);
			_exit(abi_failures == 0 ? 0 : 1);
		}
		if (child < 0)
			abi_fail("fork", "%s", strerror(errno));
		else {
			waitpid(child, &status, 0);
			abi_check("child exited cleanly", WIFEXITED(status) && WEXITSTATUS(status) == 0,
				  "status 0x%x", status);
		}
	}

	m.f3->C_Finalize(NULL);
	return abi_exit();
}
