/*
 * abi_fork.c - the module in forked children. A Go runtime cannot run in a
 * forked child (fork copies one thread; the runtime's threads are gone), so
 * in a child the module never enters the parent's copy of Go:
 *  - before the child calls C_Initialize, every call answers
 *    CKR_CRYPTOKI_NOT_INITIALIZED (the spec: a child must call C_Initialize);
 *  - C_Initialize loads a fresh copy of the library for the child (glibc's
 *    dlmopen, pkcs11/fork.c) and every call is forwarded to it: the child
 *    gets a working module, quickly and silently;
 *  - C_Finalize in the child finalises that copy.
 * tests/fork has the heavy harness (20 busy children, fork depth, signals).
 *
 * usage: abi_fork /path/to/libgohsm.so   (with $GOHSM_CONF set by abi_test.go)
 *
 * Cases:
 *   1. library only loaded (no C_Initialize), then fork();
 *   2. library only loaded, then a raw fork system call that skips
 *      pthread_atfork handlers (exercises the getpid() check);
 *   3. library initialised, a key in use, two threads signing in a loop
 *      while the main thread forks; the child logs in, makes a key, signs.
 * A child that does not finish within CHILD_TIMEOUT seconds is killed and
 * reported as hung.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "abi.h"

#define CHILD_TIMEOUT 10 /* seconds; a hang is what we test for */
#define FAST_NS 5000000000LL /* C_Initialize in a child must answer within 5 s */

static struct abi_module m;

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/*
 * In the child: C_Initialize gives a working module (a fresh copy of the
 * library), quickly, and says nothing on stderr (captured through a pipe).
 */
static int child_check_initialize(const char *tag)
{
	char name[160], msg[1024];
	int fds[2], saved = -1, ok;
	ssize_t got = 0;
	long long t0, dt;
	CK_RV rv;

	if (pipe(fds) == 0) {
		fflush(stderr);
		saved = dup(STDERR_FILENO);
		dup2(fds[1], STDERR_FILENO);
	}
	t0 = now_ns();
	rv = abi_initialize(&m);
	dt = now_ns() - t0;
	if (saved >= 0) {
		fflush(stderr);
		dup2(saved, STDERR_FILENO);
		close(saved);
		close(fds[1]);
		fcntl(fds[0], F_SETFL, O_NONBLOCK);
		got = read(fds[0], msg, sizeof msg - 1);
		close(fds[0]);
	}
	msg[got > 0 ? got : 0] = 0;

	snprintf(name, sizeof name, "%s child: C_Initialize -> CKR_OK (a fresh copy of the module)", tag);
	ok = abi_check_rv(name, rv, CKR_OK);
	snprintf(name, sizeof name, "%s child: C_Initialize answers fast", tag);
	abi_check(name, dt < FAST_NS, "took %lld ms", dt / 1000000);
	snprintf(name, sizeof name, "%s child: C_Initialize is silent on stderr", tag);
	abi_check(name, got <= 0, "stderr was \"%s\"", msg);
	if (got > 0)
		fprintf(stderr, "%s child stderr: %s", tag, msg);
	snprintf(name, sizeof name, "%s child: C_Initialize again -> CKR_CRYPTOKI_ALREADY_INITIALIZED", tag);
	abi_check_rv(name, m.f3->C_Initialize(NULL), CKR_CRYPTOKI_ALREADY_INITIALIZED);
	return ok;
}

/*
 * The re-initialised child's module works: general calls through both
 * lists and, when the token is set up (can_sign), a login, a key pair of
 * the child's own and a verified signature.
 */
static void child_check_working(const char *tag, int can_sign)
{
	char name[160];
	CK_INFO info;
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE pub, priv;
	CK_MECHANISM mech = { CKM_ECDSA_SHA256, NULL, 0 };
	static const CK_BYTE data[] = "signed in a forked child";
	CK_BYTE sig[128];
	CK_ULONG n = sizeof sig;
	CK_RV rv;

	snprintf(name, sizeof name, "%s child: C_GetInfo (3.2 list) -> CKR_OK, version 3.2", tag);
	rv = m.f3->C_GetInfo(&info);
	abi_check(name, rv == CKR_OK && info.cryptokiVersion.major == 3 && info.cryptokiVersion.minor == 2,
		  "rv %s version %d.%d", abi_rv_name(rv), info.cryptokiVersion.major, info.cryptokiVersion.minor);
	snprintf(name, sizeof name, "%s child: C_GetInfo (2.40 list) -> CKR_OK, version 2.40", tag);
	rv = m.fl->C_GetInfo(&info);
	abi_check(name, rv == CKR_OK && info.cryptokiVersion.major == 2 && info.cryptokiVersion.minor == 40,
		  "rv %s version %d.%d", abi_rv_name(rv), info.cryptokiVersion.major, info.cryptokiVersion.minor);
	snprintf(name, sizeof name, "%s child: C_GetOperationState (answered in C) -> CKR_FUNCTION_NOT_SUPPORTED",
		 tag);
	n = 0;
	abi_check_rv(name, m.f3->C_GetOperationState(1, NULL, &n), CKR_FUNCTION_NOT_SUPPORTED);
	n = sizeof sig;
	if (!abi_first_slot(&m, &slot) || !can_sign)
		return;
	snprintf(name, sizeof name, "%s child: C_OpenSession + C_Login USER", tag);
	rv = m.f3->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
	if (rv == CKR_OK)
		rv = m.f3->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)ABI_USER_PIN, strlen(ABI_USER_PIN));
	if (!abi_check_rv(name, rv, CKR_OK) || !abi_gen_p256(&m, s, &pub, &priv))
		return;
	snprintf(name, sizeof name, "%s child: ECDSA sign and verify", tag);
	rv = m.f3->C_SignInit(s, &mech, priv);
	if (rv == CKR_OK)
		rv = m.f3->C_Sign(s, (CK_BYTE_PTR)data, sizeof data, sig, &n);
	if (rv == CKR_OK)
		rv = m.f3->C_VerifyInit(s, &mech, pub);
	if (rv == CKR_OK)
		rv = m.f3->C_Verify(s, (CK_BYTE_PTR)data, sizeof data, sig, n);
	abi_check_rv(name, rv, CKR_OK);
	m.f3->C_Logout(s);
}

/* Pure-C entry points keep working in the child. */
static void child_check_pure_c(const char *tag)
{
	char name[160];
	CK_FUNCTION_LIST_PTR fl = NULL;
	CK_INTERFACE_PTR ip = NULL;
	CK_ULONG n = 0;

	snprintf(name, sizeof name, "%s child: C_GetFunctionList works", tag);
	abi_check(name, m.get_function_list(&fl) == CKR_OK && fl == m.fl, "list %p", (void *)fl);
	snprintf(name, sizeof name, "%s child: C_GetInterface works", tag);
	abi_check(name, m.get_interface(NULL, NULL, &ip, 0) == CKR_OK && ip && ip->pFunctionList == (void *)m.f3,
		  "interface %p", (void *)ip);
	snprintf(name, sizeof name, "%s child: C_GetInterfaceList works", tag);
	abi_check(name, m.get_interface_list(NULL, &n) == CKR_OK && n == 3, "count %lu", (unsigned long)n);
}

static void child_check_not_initialised(const char *tag, CK_SESSION_HANDLE sess)
{
	char name[160];
	CK_INFO info;
	CK_BYTE sig[128];
	CK_ULONG n = sizeof sig;
	CK_MECHANISM mech = { CKM_ECDSA_SHA256, NULL, 0 };

#define NI(call, label)                                                \
	snprintf(name, sizeof name, "%s child: %s", tag, label);       \
	abi_check_rv(name, call, CKR_CRYPTOKI_NOT_INITIALIZED);
	NI(m.f3->C_GetInfo(&info), "C_GetInfo -> not initialised")
	NI(m.f3->C_SignInit(sess, &mech, 1), "C_SignInit -> not initialised")
	NI(m.f3->C_Sign(sess, (CK_BYTE_PTR) "x", 1, sig, &n), "C_Sign -> not initialised")
	NI(m.f3->C_CloseAllSessions(0), "C_CloseAllSessions -> not initialised")
	NI(m.f3->C_DigestKey(sess, 1), "C_DigestKey -> not initialised")
	NI(m.f3->C_GetOperationState(sess, NULL, &n), "C_GetOperationState (answered in C) -> not initialised")
	NI(m.f3->C_Finalize(NULL), "C_Finalize -> not initialised")
#undef NI
}

/* Runs in the child; never returns. */
static void child_main(const char *tag, CK_SESSION_HANDLE sess, int can_sign)
{
	char name[160];

	alarm(CHILD_TIMEOUT); /* the parent also kills us; belt and braces */
	abi_failures = abi_passes = 0;
	child_check_not_initialised(tag, sess);
	child_check_pure_c(tag);
	if (child_check_initialize(tag)) {
		child_check_working(tag, can_sign);
		/* The function lists are still the parent copy's (they forward). */
		child_check_pure_c(tag);
		snprintf(name, sizeof name, "%s child: C_Finalize -> CKR_OK", tag);
		abi_check_rv(name, m.f3->C_Finalize(NULL), CKR_OK);
		/* Finalised: not initialised again, as before C_Initialize. */
		child_check_not_initialised(tag, sess);
	}
	fflush(stdout);
	fflush(stderr);
	_exit(abi_failures == 0 ? 0 : 1);
}

/* Waits for the child with a timeout; reports hung or failed children. */
static void wait_child(const char *tag, pid_t pid)
{
	char name[160];
	long long deadline = now_ns() + (long long)(CHILD_TIMEOUT + 5) * 1000000000LL;
	int status = 0;
	pid_t r;

	snprintf(name, sizeof name, "%s: child finished in time with all checks passed", tag);
	for (;;) {
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR) {
			abi_fail(name, "waitpid: %s", strerror(errno));
			return;
		}
		if (now_ns() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			abi_fail(name, "child hung (killed after %d s)", CHILD_TIMEOUT + 5);
			return;
		}
		usleep(10000);
	}
	if (WIFEXITED(status))
		abi_check(name, WEXITSTATUS(status) == 0, "child exited %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		abi_fail(name, "child killed by signal %d%s", WTERMSIG(status),
			 WTERMSIG(status) == SIGALRM ? " (hung: its alarm fired)" : "");
	else
		abi_fail(name, "child status 0x%x", status);
}

/* ---- case 3: busy parent ---------------------------------------------- */

static CK_OBJECT_HANDLE g_priv;
static CK_SLOT_ID g_slot;
static volatile int g_stop;

struct worker {
	pthread_t th;
	long signatures;
	CK_RV last;
};

static int sign_once(CK_SESSION_HANDLE s, CK_RV *last)
{
	static const CK_BYTE data[] = "fork test";
	CK_MECHANISM mech = { CKM_ECDSA_SHA256, NULL, 0 };
	CK_BYTE sig[128];
	CK_ULONG n = sizeof sig;
	CK_RV rv = m.f3->C_SignInit(s, &mech, g_priv);

	if (rv == CKR_OK)
		rv = m.f3->C_Sign(s, (CK_BYTE_PTR)data, sizeof data, sig, &n);
	*last = rv;
	return rv == CKR_OK && n == 64;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	CK_SESSION_HANDLE s;

	w->last = m.f3->C_OpenSession(g_slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
	if (w->last != CKR_OK)
		return NULL;
	while (!__atomic_load_n(&g_stop, __ATOMIC_ACQUIRE) && sign_once(s, &w->last))
		w->signatures++;
	m.f3->C_CloseSession(s);
	return NULL;
}

static void case_busy_parent(void)
{
	struct worker w[2];
	CK_SESSION_HANDLE sess;
	CK_OBJECT_HANDLE pub;
	CK_RV rv;
	pid_t pid;
	int i;

	if (!abi_check_rv("busy: C_Initialize", abi_initialize(&m), CKR_OK))
		return;
	if (!abi_first_slot(&m, &g_slot) || !abi_setup_user_session(&m, g_slot, &sess) ||
	    !abi_gen_p256(&m, sess, &pub, &g_priv))
		goto out;
	if (!abi_check("busy: sign once", sign_once(sess, &rv), "rv %s", abi_rv_name(rv)))
		goto out;

	memset(w, 0, sizeof w);
	for (i = 0; i < 2; i++)
		pthread_create(&w[i].th, NULL, worker_main, &w[i]);
	usleep(300000);

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0)
		child_main("busy", sess, 1);
	abi_check("busy: fork()", pid > 0, "%s", strerror(errno));
	if (pid > 0)
		wait_child("busy", pid);

	/* The parent is unaffected by the child. */
	usleep(100000);
	__atomic_store_n(&g_stop, 1, __ATOMIC_RELEASE);
	for (i = 0; i < 2; i++)
		pthread_join(w[i].th, NULL);
	abi_check("busy: both threads signed before and after the fork",
		  w[0].signatures > 0 && w[1].signatures > 0 && w[0].last == CKR_OK && w[1].last == CKR_OK,
		  "signatures %ld/%ld, last %s/%s", w[0].signatures, w[1].signatures, abi_rv_name(w[0].last),
		  abi_rv_name(w[1].last));
	abi_check("busy: parent signs after the child exited", sign_once(sess, &rv), "rv %s", abi_rv_name(rv));
	m.f3->C_Logout(sess);
out:
	abi_check_rv("busy: C_Finalize", m.f3->C_Finalize(NULL), CKR_OK);
}

int main(int argc, char **argv)
{
	pid_t pid;

	if (argc != 2) {
		fprintf(stderr, "usage: %s /path/to/libgohsm.so\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	abi_load(argv[1], &m);

	/* Case 1: loaded only; the Go runtime started at load time. */
	fflush(stdout);
	pid = fork();
	if (pid == 0)
		child_main("loaded", 1, 0);
	abi_check("loaded: fork()", pid > 0, "%s", strerror(errno));
	if (pid > 0)
		wait_child("loaded", pid);

	/*
	 * Case 2: a fork system call made directly, so no pthread_atfork
	 * handler runs; only the pid comparison in C_Initialize can tell.
	 * clone(SIGCHLD) is fork() on every Linux architecture.
	 */
	fflush(stdout);
	pid = (pid_t)syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
	if (pid == 0) {
		/*
		 * No atfork handler ran: the pid comparison in C_Initialize must
		 * still see the fork and load a fresh copy.
		 */
		alarm(CHILD_TIMEOUT);
		abi_failures = abi_passes = 0;
		if (child_check_initialize("raw-fork")) {
			child_check_working("raw-fork", 0);
			abi_check_rv("raw-fork child: C_Finalize -> CKR_OK", m.f3->C_Finalize(NULL), CKR_OK);
		}
		fflush(stdout);
		_exit(abi_failures == 0 ? 0 : 1);
	}
	abi_check("raw-fork: clone()", pid > 0, "%s", strerror(errno));
	if (pid > 0)
		wait_child("raw-fork", pid);

	/* The parent can still initialise after its children did. */
	case_busy_parent();
	return abi_exit();
}
