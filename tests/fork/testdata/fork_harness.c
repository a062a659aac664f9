/*
 * fork_harness.c - gohsm in forked children (issue 4, "Forking hosts").
 *
 * A Go runtime does not survive fork(); the module's C front loads a fresh
 * copy of itself (dlmopen) in a child that calls C_Initialize and forwards
 * every call to it (pkcs11/shim.c, pkcs11/fork.c, docs/fork.md). This
 * harness is the host that forks: it loads libgohsm.so with dlopen, uses it
 * only through its function lists and prints "PASS name" / "FAIL name:
 * detail" lines, plus "MEASURE key=value ..." lines that fork_test.go
 * reports. Exit status non-zero on any failure.
 *
 * usage: fork_harness /path/to/libgohsm.so CASE   ($GOHSM_CONF names a
 * configuration with a fresh token in slot index 0)
 *
 * Every child also checks that pthread keys the host created before
 * loading the module keep their values (after its calls and at exit).
 *
 * Cases:
 *   children  the parent initialises, logs in, creates a token P-256 key,
 *             signs, starts 2 threads signing and 1 thread loading the Go
 *             heap, then forks 20 children at once; each checks that calls
 *             before C_Initialize answer CKR_CRYPTOKI_NOT_INITIALIZED,
 *             re-initialises, logs in and signs 2,000 times with varying
 *             buffers (and verifies, and draws random bytes: Go heap
 *             pressure), finalises; child 0 initialises a second time.
 *             20/20 must succeed within the timeout; the parent keeps
 *             working after its children exit.
 *   depth     a chain of generations: each child re-initialises, signs,
 *             forks the next one, signs again after it exited. Depth 3
 *             must work; the chain goes on until the module refuses, which
 *             must be a fast CKR_FUNCTION_FAILED with one stderr line.
 *   signals   a host with a SIGCHLD handler and SIGPIPE ignored (as nginx):
 *             in a re-initialised child (a fresh Go runtime installed its
 *             handlers) the host's SIGCHLD handler still runs and a write
 *             to a closed pipe still fails with EPIPE instead of killing.
 *   rawclone  a forwarding child makes a grandchild with a raw clone
 *             system call (no pthread_atfork handler runs): the grandchild
 *             still gets a copy of its own from C_Initialize.
 *   hang      a child that re-initialises and then never finishes: the
 *             parent describes it (/proc, gdb backtraces) and kills it -
 *             what every case does with a hung child.
 *   storm     children forked while new threads make their first
 *             signatures (libcrypto's per-thread state made under its
 *             locks); stormexit: the same with the threads exiting.
 *   measure   per-call latency in the parent and in a forwarding child
 *             (C_GetInfo, ECDSA P-256 sign p50), the child's C_Initialize
 *             time and memory. Reports; asserts only that it works.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "abi.h"

#define CHILDREN 20
#define SIGNS_PER_CHILD 2000
#define CHILD_TIMEOUT_S 90 /* per child; a hang is what we test for */
#define MAX_DEPTH 16       /* glibc's DL_NNS: no chain can be longer */
#define DOCUMENTED_DEPTH 11 /* docs/fork.md: 11 generations re-initialise (refused at 12) */
#define FAST_NS 5000000000LL

static struct abi_module m;
static CK_SLOT_ID g_slot;
static CK_BYTE g_key_id[] = { 0xf0, 0x4b };

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Resident set size of this process in KiB (/proc/self/statm). */
static long rss_kib(void)
{
	long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f == NULL)
		return -1;
	if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
		resident = -1;
	fclose(f);
	return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return (x > y) - (x < y);
}

static long long p50(long long *v, int n)
{
	qsort(v, (size_t)n, sizeof v[0], cmp_ll);
	return v[n / 2];
}

/*
 * pthread keys the host made before loading the module (OpenSSL does), with
 * a value on the main thread. A fresh copy of the module has its own libc
 * whose key table starts empty: if its keys alias the host's, the copy's Go
 * runtime overwrites the host's values (nginx workers crashed in
 * OPENSSL_cleanup at exit that way). Checked after the calls, and at exit.
 */
#define HOST_KEYS 8
static pthread_key_t g_host_keys[HOST_KEYS];

static void host_keys_create(void)
{
	int i;

	for (i = 0; i < HOST_KEYS; i++)
		if (pthread_key_create(&g_host_keys[i], NULL) != 0 ||
		    pthread_setspecific(g_host_keys[i], &g_host_keys[i]) != 0)
			abi_fail("host: pthread_key_create", "%s", strerror(errno));
}

static int host_keys_intact(void)
{
	int i;

	for (i = 0; i < HOST_KEYS; i++)
		if (pthread_getspecific(g_host_keys[i]) != &g_host_keys[i])
			return 0;
	return 1;
}

static void host_keys_report(const char *tag)
{
	char name[160];
	int i;

	snprintf(name, sizeof name, "%s: the host's pthread keys keep their values", tag);
	for (i = 0; i < HOST_KEYS; i++)
		if (pthread_getspecific(g_host_keys[i]) != &g_host_keys[i])
			break;
	abi_check(name, i == HOST_KEYS, "key %u (index %d) now holds %p", i < HOST_KEYS ? g_host_keys[i] : 0, i,
		  i < HOST_KEYS ? pthread_getspecific(g_host_keys[i]) : NULL);
}

/* Like OpenSSL's cleanup: an exit handler that reads the host's keys. */
static void at_exit_check(void)
{
	if (!host_keys_intact()) {
		printf("FAIL exit (pid %ld): the host's pthread keys were overwritten\n", (long)getpid());
		fflush(stdout);
		_exit(1);
	}
}

/* ---- the token, the key, signing ---------------------------------------- */

/* Parent: fresh token, user PIN, a logged-in R/W session, a token key pair. */
static int setup_token_key(CK_SESSION_HANDLE *sess)
{
	CK_BBOOL t = CK_TRUE;
	CK_UTF8CHAR label[] = "forkkey";
	CK_MECHANISM mech = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_ATTRIBUTE pubt[] = {
		{ CKA_EC_PARAMS, abi_p256_oid, sizeof abi_p256_oid },
		{ CKA_VERIFY, &t, sizeof t },
		{ CKA_TOKEN, &t, sizeof t },
		{ CKA_ID, g_key_id, sizeof g_key_id },
		{ CKA_LABEL, label, sizeof label - 1 },
	};
	CK_ATTRIBUTE privt[] = {
		{ CKA_SIGN, &t, sizeof t },
		{ CKA_SENSITIVE, &t, sizeof t },
		{ CKA_PRIVATE, &t, sizeof t },
		{ CKA_TOKEN, &t, sizeof t },
		{ CKA_ID, g_key_id, sizeof g_key_id },
		{ CKA_LABEL, label, sizeof label - 1 },
	};
	CK_OBJECT_HANDLE pub, priv;

	if (!abi_first_slot(&m, &g_slot) || !abi_setup_user_session(&m, g_slot, sess))
		return 0;
	return abi_check_rv("setup: C_GenerateKeyPair EC P-256 on the token",
			    m.f3->C_GenerateKeyPair(*sess, &mech, pubt, 5, privt, 6, &pub, &priv), CKR_OK);
}

/* The token key of the given class, found by CKA_ID. */
static CK_RV find_key(CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, CK_OBJECT_HANDLE *obj)
{
	CK_ATTRIBUTE tmpl[] = {
		{ CKA_CLASS, &cls, sizeof cls },
		{ CKA_ID, g_key_id, sizeof g_key_id },
	};
	CK_ULONG n = 0;
	CK_RV rv = m.f3->C_FindObjectsInit(s, tmpl, 2);

	if (rv != CKR_OK)
		return rv;
	rv = m.f3->C_FindObjects(s, obj, 1, &n);
	m.f3->C_FindObjectsFinal(s);
	if (rv == CKR_OK && n != 1)
		rv = CKR_OBJECT_HANDLE_INVALID;
	return rv;
}

/* A logged-in session with the key pair, in a process that initialised. */
struct keyed {
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE priv, pub;
};

static CK_RV open_keyed(struct keyed *k, int login)
{
	CK_RV rv = m.f3->C_OpenSession(g_slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &k->s);

	if (rv == CKR_OK && login)
		rv = m.f3->C_Login(k->s, CKU_USER, (CK_UTF8CHAR_PTR)ABI_USER_PIN, strlen(ABI_USER_PIN));
	if (rv == CKR_OK)
		rv = find_key(k->s, CKO_PRIVATE_KEY, &k->priv);
	if (rv == CKR_OK)
		rv = find_key(k->s, CKO_PUBLIC_KEY, &k->pub);
	return rv;
}

/* ECDSA with SHA-256 over data; sig gets 64 bytes (r||s). */
static CK_RV sign(struct keyed *k, const CK_BYTE *data, CK_ULONG len, CK_BYTE sig[64])
{
	CK_MECHANISM mech = { CKM_ECDSA_SHA256, NULL, 0 };
	CK_ULONG n = 64;
	CK_RV rv = m.f3->C_SignInit(k->s, &mech, k->priv);

	if (rv == CKR_OK)
		rv = m.f3->C_Sign(k->s, (CK_BYTE_PTR)data, len, sig, &n);
	if (rv == CKR_OK && n != 64)
		rv = CKR_SIGNATURE_LEN_RANGE;
	return rv;
}

static CK_RV verify(struct keyed *k, const CK_BYTE *data, CK_ULONG len, CK_BYTE sig[64])
{
	CK_MECHANISM mech = { CKM_ECDSA_SHA256, NULL, 0 };
	CK_RV rv = m.f3->C_VerifyInit(k->s, &mech, k->pub);

	if (rv == CKR_OK)
		rv = m.f3->C_Verify(k->s, (CK_BYTE_PTR)data, len, sig, 64);
	return rv;
}

/*
 * Signs n times over fresh malloc'd buffers of varying size and content;
 * every 100th signature is verified (and rejected once tampered), every
 * 50th iteration draws 64 KiB of random bytes. Returns the number of good
 * signatures; *last is the first failure's CK_RV (CKR_OK if none).
 */
static int sign_many(struct keyed *k, int n, int seed, CK_RV *last)
{
	CK_BYTE sig[64];
	int i, good = 0;

	*last = CKR_OK;
	for (i = 0; i < n; i++) {
		CK_ULONG len = 1 + (CK_ULONG)((i * 7919 + seed * 104729) % 16384);
		CK_BYTE *buf = malloc(len);
		CK_RV rv;

		if (buf == NULL) {
			*last = CKR_HOST_MEMORY;
			return good;
		}
		memset(buf, (i + seed) & 0xff, len);
		buf[0] = (CK_BYTE)i;
		rv = sign(k, buf, len, sig);
		if (rv == CKR_OK && i % 100 == 0) {
			rv = verify(k, buf, len, sig);
			buf[len - 1] ^= 1;
			if (rv == CKR_OK && verify(k, buf, len, sig) != CKR_SIGNATURE_INVALID)
				rv = CKR_GENERAL_ERROR;
		}
		if (rv == CKR_OK && i % 50 == 0) {
			CK_BYTE *rnd = malloc(65536);

			rv = rnd ? m.f3->C_GenerateRandom(k->s, rnd, 65536) : CKR_HOST_MEMORY;
			free(rnd);
		}
		free(buf);
		if (rv != CKR_OK) {
			*last = rv;
			return good;
		}
		good++;
	}
	return good;
}

/* ---- children ------------------------------------------------------------ */

/* Calls made in a child before C_Initialize: all refused, none enters Go. */
static void check_not_initialised(const char *tag, CK_SESSION_HANDLE inherited)
{
	char name[200];
	CK_INFO info;
	CK_SESSION_HANDLE s;
	CK_ULONG n = 0;
	CK_MECHANISM mech = { CKM_ECDSA_SHA256, NULL, 0 };

#define NI(call, label)                                                        \
	snprintf(name, sizeof name, "%s: %s before C_Initialize -> CKR_CRYPTOKI_NOT_INITIALIZED", tag, \
		 label);                                                       \
	abi_check_rv(name, call, CKR_CRYPTOKI_NOT_INITIALIZED);
	NI(m.f3->C_GetInfo(&info), "C_GetInfo")
	NI(m.fl->C_GetInfo(&info), "C_GetInfo (2.40 list)")
	NI(m.f3->C_GetSlotList(CK_FALSE, NULL, &n), "C_GetSlotList")
	NI(m.f3->C_OpenSession(g_slot, CKF_SERIAL_SESSION, NULL, NULL, &s), "C_OpenSession")
	NI(m.f3->C_SignInit(inherited, &mech, 1), "C_SignInit (inherited session)")
	NI(m.f3->C_GetOperationState(inherited, NULL, &n), "C_GetOperationState (answered in C)")
	NI(m.f3->C_Finalize(NULL), "C_Finalize")
#undef NI
}

/* C_Initialize in a child, timed, with stderr captured. */
static CK_RV child_initialize(long long *dt, char *msg, size_t msgsz)
{
	CK_C_INITIALIZE_ARGS args;
	int fds[2], saved = -1;
	ssize_t got = 0;
	long long t0;
	CK_RV rv;

	memset(&args, 0, sizeof args);
	args.flags = CKF_OS_LOCKING_OK;
	if (pipe(fds) == 0) {
		fflush(stderr);
		saved = dup(STDERR_FILENO);
		dup2(fds[1], STDERR_FILENO);
	}
	t0 = now_ns();
	rv = m.f3->C_Initialize(&args);
	*dt = now_ns() - t0;
	if (saved >= 0) {
		dup2(saved, STDERR_FILENO);
		close(saved);
		close(fds[1]);
		fcntl(fds[0], F_SETFL, O_NONBLOCK);
		got = read(fds[0], msg, msgsz - 1);
		close(fds[0]);
	}
	msg[got > 0 ? got : 0] = 0;
	if (got > 0) /* pass it on */
		fprintf(stderr, "%s", msg);
	return rv;
}

/* Prints the first line of a /proc file after a prefix (nothing if unreadable). */
static void print_proc_line(const char *prefix, const char *path)
{
	char line[512];
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return;
	if (fgets(line, sizeof line, f) != NULL) {
		line[strcspn(line, "\n")] = 0;
		printf("HANG %s %s\n", prefix, line);
	}
	fclose(f);
}

/*
 * Describes a hung child before it is killed, so that a hang seen once
 * (in CI, say) says where it waited: each thread's state, kernel wait
 * channel and system call from /proc, and when gdb is installed
 * (tests/deps.sh installs it) every thread's backtrace, for the first
 * few hung children of a run. Output goes to stdout as "HANG ..." lines,
 * which fork_test.go prints with the rest of a failed case.
 */
static void describe_hang(pid_t pid)
{
	static int backtraces;
	char dirpath[64], path[160], prefix[64];
	DIR *d;
	struct dirent *e;

	snprintf(dirpath, sizeof dirpath, "/proc/%ld/task", (long)pid);
	d = opendir(dirpath);
	if (d != NULL) {
		while ((e = readdir(d)) != NULL) {
			long tid = strtol(e->d_name, NULL, 10);

			if (tid <= 0)
				continue;
			snprintf(prefix, sizeof prefix, "pid %ld tid %ld", (long)pid, tid);
			snprintf(path, sizeof path, "%s/%ld/stat", dirpath, tid);
			print_proc_line(prefix, path);
			snprintf(path, sizeof path, "%s/%ld/wchan", dirpath, tid);
			print_proc_line(prefix, path);
			snprintf(path, sizeof path, "%s/%ld/syscall", dirpath, tid);
			print_proc_line(prefix, path);
		}
		closedir(d);
	}
	fflush(stdout);
	if (backtraces < 3 && system("command -v gdb >/dev/null 2>&1") == 0) {
		char cmd[256];

		backtraces++;
		snprintf(cmd, sizeof cmd,
			 "timeout 60 gdb -p %ld -batch -nx -ex 'info threads' -ex 'thread apply all bt 40' "
			 "</dev/null 2>&1 | sed 's/^/HANG gdb %ld: /'",
			 (long)pid, (long)pid);
		if (system(cmd) != 0)
			printf("HANG pid %ld: gdb failed\n", (long)pid);
		fflush(stdout);
	}
}

/* Waits for pid until deadline_ns; a child still running then is
 * described (describe_hang) and killed. */
static int wait_until(pid_t pid, long long deadline_ns, int *status)
{
	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);

		if (r == pid)
			return 1;
		if (r < 0 && errno != EINTR)
			return -1;
		if (now_ns() > deadline_ns) {
			describe_hang(pid);
			kill(pid, SIGKILL);
			waitpid(pid, status, 0);
			return 0;
		}
		usleep(5000);
	}
}

static void describe_status(char *out, size_t n, int status)
{
	if (WIFEXITED(status))
		snprintf(out, n, "exited %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(out, n, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(out, n, "status 0x%x", status);
}

/* ---- case: children ------------------------------------------------------ */

static volatile int g_stop;

struct worker {
	pthread_t th;
	int kind; /* 0: signer; 1: Go heap load (random + digests) */
	long ops;
	CK_RV last;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct keyed k;
	CK_BYTE *big = malloc(1 << 20);

	w->last = open_keyed(&k, 0); /* the token is logged in already */
	while (w->last == CKR_OK && big != NULL && !__atomic_load_n(&g_stop, __ATOMIC_ACQUIRE)) {
		if (w->kind == 0) {
			CK_BYTE sig[64];

			w->last = sign(&k, (CK_BYTE_PTR) "parent", 6, sig);
		} else {
			CK_MECHANISM sha = { CKM_SHA256, NULL, 0 };
			CK_BYTE d[32];
			CK_ULONG dn = sizeof d;

			w->last = m.f3->C_GenerateRandom(k.s, big, 1 << 20);
			if (w->last == CKR_OK)
				w->last = m.f3->C_DigestInit(k.s, &sha);
			if (w->last == CKR_OK)
				w->last = m.f3->C_Digest(k.s, big, 1 << 20, d, &dn);
		}
		if (w->last == CKR_OK)
			w->ops++;
	}
	free(big);
	m.f3->C_CloseSession(k.s);
	return NULL;
}

/* Waits until every worker has completed an operation (or failed), up to
 * 60 s, then 100 ms more; reports a failure and stops them otherwise. */
static int workers_started(struct worker *w, int n)
{
	long long deadline = now_ns() + 60 * 1000000000LL;
	int i, ready;

	do {
		ready = 1;
		for (i = 0; i < n; i++)
			if (__atomic_load_n(&w[i].ops, __ATOMIC_RELAXED) == 0 && w[i].last == CKR_OK)
				ready = 0;
		if (!ready)
			usleep(10000);
	} while (!ready && now_ns() < deadline);
	usleep(100000);
	for (i = 0; i < n; i++)
		if (w[i].ops == 0) {
			abi_fail("parent: worker threads started", "worker %d: no operation in 60 s, last %s", i,
				 abi_rv_name(w[i].last));
			__atomic_store_n(&g_stop, 1, __ATOMIC_RELEASE);
			for (i = 0; i < n; i++)
				pthread_join(w[i].th, NULL);
			return 0;
		}
	return 1;
}

static void child_children(int idx, CK_SESSION_HANDLE inherited)
{
	char tag[64], name[200], msg[1024];
	struct keyed k;
	long long dt;
	long rss0, rss1;
	CK_RV rv, last;
	CK_INFO info;
	int good;

	alarm(CHILD_TIMEOUT_S + 30); /* belt and braces: the parent kills us too */
	abi_failures = abi_passes = 0;
	snprintf(tag, sizeof tag, "child %02d", idx);
	check_not_initialised(tag, inherited);

	rss0 = rss_kib();
	rv = child_initialize(&dt, msg, sizeof msg);
	rss1 = rss_kib();
	snprintf(name, sizeof name, "%s: C_Initialize -> CKR_OK (fresh copy)", tag);
	if (!abi_check_rv(name, rv, CKR_OK))
		goto out;
	printf("MEASURE case=children child=%d init_ms=%.1f rss_before_kib=%ld rss_after_kib=%ld\n", idx,
	       dt / 1e6, rss0, rss1);
	snprintf(name, sizeof name, "%s: C_Initialize again -> CKR_CRYPTOKI_ALREADY_INITIALIZED", tag);
	abi_check_rv(name, m.f3->C_Initialize(NULL), CKR_CRYPTOKI_ALREADY_INITIALIZED);
	snprintf(name, sizeof name, "%s: login and find the parent's token key", tag);
	if (!abi_check_rv(name, open_keyed(&k, 1), CKR_OK))
		goto out;
	good = sign_many(&k, SIGNS_PER_CHILD, idx, &last);
	snprintf(name, sizeof name, "%s: %d ECDSA P-256 signatures (varying buffers, verified)", tag,
		 SIGNS_PER_CHILD);
	abi_check(name, good == SIGNS_PER_CHILD, "%d good, then %s", good, abi_rv_name(last));
	host_keys_report(tag);
	snprintf(name, sizeof name, "%s: C_GetInfo through the 2.40 list says 2.40", tag);
	abi_check(name, m.fl->C_GetInfo(&info) == CKR_OK && info.cryptokiVersion.major == 2 &&
				info.cryptokiVersion.minor == 40,
		  "version %d.%d", info.cryptokiVersion.major, info.cryptokiVersion.minor);
	m.f3->C_Logout(k.s);
	snprintf(name, sizeof name, "%s: C_Finalize -> CKR_OK", tag);
	abi_check_rv(name, m.f3->C_Finalize(NULL), CKR_OK);
	snprintf(name, sizeof name, "%s: C_GetInfo after C_Finalize -> CKR_CRYPTOKI_NOT_INITIALIZED", tag);
	abi_check_rv(name, m.f3->C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
	if (idx == 0) {
		/* Finalize, initialise again: the same copy serves again. */
		CK_BYTE sig[64];

		rss0 = rss_kib();
		snprintf(name, sizeof name, "%s: C_Initialize after C_Finalize -> CKR_OK", tag);
		if (abi_check_rv(name, m.f3->C_Initialize(NULL), CKR_OK)) {
			snprintf(name, sizeof name, "%s: signs after re-initialising", tag);
			rv = open_keyed(&k, 1);
			if (rv == CKR_OK)
				rv = sign(&k, (CK_BYTE_PTR) "again", 5, sig);
			abi_check_rv(name, rv, CKR_OK);
			snprintf(name, sizeof name, "%s: second C_Finalize -> CKR_OK", tag);
			abi_check_rv(name, m.f3->C_Finalize(NULL), CKR_OK);
		}
		printf("MEASURE case=children reinit_rss_growth_kib=%ld\n", rss_kib() - rss0);
	}
out:
	fflush(stdout);
	fflush(stderr);
	exit(abi_failures == 0 ? 0 : 1); /* exit handlers run, as in a real host */
}

static void case_children(void)
{
	struct worker w[3];
	CK_SESSION_HANDLE sess;
	pid_t pids[CHILDREN];
	long long deadline;
	long before[3];
	int i, ok = 0;
	CK_BYTE sig[64];
	struct keyed k;

	if (!abi_check_rv("parent: C_Initialize", abi_initialize(&m), CKR_OK))
		return;
	if (!setup_token_key(&sess))
		return;
	if (!abi_check_rv("parent: signs with the token key", open_keyed(&k, 0) == CKR_OK ?
			  sign(&k, (CK_BYTE_PTR) "x", 1, sig) : CKR_GENERAL_ERROR, CKR_OK))
		return;

	memset(w, 0, sizeof w);
	for (i = 0; i < 3; i++) {
		w[i].kind = i == 2;
		pthread_create(&w[i].th, NULL, worker_main, &w[i]);
	}
	/* Threads and goroutines busy inside the module: each has made calls
	 * (a fixed pause was not enough on a loaded machine: a signer had
	 * made none after 300 ms). */
	if (!workers_started(w, 3))
		return;

	fflush(stdout);
	fflush(stderr);
	for (i = 0; i < CHILDREN; i++) {
		pids[i] = fork();
		if (pids[i] == 0)
			child_children(i, sess);
		if (pids[i] < 0)
			abi_fail("parent: fork()", "%s", strerror(errno));
	}
	for (i = 0; i < 3; i++)
		before[i] = __atomic_load_n(&w[i].ops, __ATOMIC_RELAXED);

	deadline = now_ns() + CHILD_TIMEOUT_S * 1000000000LL;
	for (i = 0; i < CHILDREN; i++) {
		char name[120], how[120];
		int status = 0, r;

		if (pids[i] <= 0)
			continue;
		r = wait_until(pids[i], deadline, &status);
		snprintf(name, sizeof name, "parent: child %02d finished in time with all its checks passed", i);
		if (r == 0) {
			abi_fail(name, "hung: killed after %d s", CHILD_TIMEOUT_S);
			continue;
		}
		if (r < 0) {
			abi_fail(name, "waitpid: %s", strerror(errno));
			continue;
		}
		describe_status(how, sizeof how, status);
		if (abi_check(name, WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s", how))
			ok++;
	}
	abi_check("parent: 20/20 forked children re-initialised and signed 2000 times", ok == CHILDREN,
		  "%d/%d", ok, CHILDREN);

	usleep(200000);
	__atomic_store_n(&g_stop, 1, __ATOMIC_RELEASE);
	for (i = 0; i < 3; i++)
		pthread_join(w[i].th, NULL);
	abi_check("parent: its 3 threads kept working while and after the children ran",
		  w[0].last == CKR_OK && w[1].last == CKR_OK && w[2].last == CKR_OK && w[0].ops > before[0] &&
			  w[1].ops > before[1] && w[2].ops > before[2] && before[0] > 0 && before[2] > 0,
		  "ops before fork %ld/%ld/%ld, total %ld/%ld/%ld, last %s/%s/%s", before[0], before[1], before[2],
		  w[0].ops, w[1].ops, w[2].ops, abi_rv_name(w[0].last), abi_rv_name(w[1].last),
		  abi_rv_name(w[2].last));
	{
		CK_RV last;
		int good = sign_many(&k, 200, 99, &last);

		abi_check("parent: signs 200 more times after its children exited", good == 200, "%d good, then %s",
			  good, abi_rv_name(last));
	}
	m.f3->C_Logout(sess);
	abi_check_rv("parent: C_Finalize", m.f3->C_Finalize(NULL), CKR_OK);
}

/* ---- case: depth --------------------------------------------------------- */

/* Exit status of a generation whose descendants reached the module's limit cleanly. */
#define EXIT_LIMIT 3

static int depth_generation(int depth, CK_SESSION_HANDLE inherited);

/*
 * Forks generation depth+1 and waits for it. Returns its exit code
 * (0, EXIT_LIMIT) or 1 after reporting a failure.
 */
static int depth_fork(int depth, CK_SESSION_HANDLE inherited)
{
	char name[120], how[120];
	int status = 0, r, code;
	long long deadline = now_ns() + (long long)(MAX_DEPTH - depth + 1) * 20 * 1000000000LL;
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0)
		exit(depth_generation(depth + 1, inherited)); /* exit handlers run */
	snprintf(name, sizeof name, "depth %d: generation %d finished in time", depth, depth + 1);
	if (pid < 0) {
		abi_fail(name, "fork: %s", strerror(errno));
		return 1;
	}
	r = wait_until(pid, deadline, &status);
	if (r <= 0) {
		abi_fail(name, r == 0 ? "hung: killed" : "waitpid failed");
		return 1;
	}
	code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	describe_status(how, sizeof how, status);
	abi_check(name, code == 0 || code == EXIT_LIMIT, "%s", how);
	return code == 0 || code == EXIT_LIMIT ? code : 1;
}

/* One generation (depth >= 1) of the chain; returns its exit code. */
static int depth_generation(int depth, CK_SESSION_HANDLE inherited)
{
	char tag[32], name[200], msg[1024];
	struct keyed k;
	long long dt;
	long rss0, rss1;
	CK_RV rv, last;
	CK_INFO info;
	int good, code;

	alarm((MAX_DEPTH - depth + 2) * 20);
	abi_failures = abi_passes = 0;
	snprintf(tag, sizeof tag, "depth %d", depth);
	snprintf(name, sizeof name, "%s: C_GetInfo before C_Initialize -> CKR_CRYPTOKI_NOT_INITIALIZED", tag);
	abi_check_rv(name, m.f3->C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
	snprintf(name, sizeof name, "%s: C_Sign on an inherited session before C_Initialize -> not initialised", tag);
	abi_check_rv(name, m.f3->C_SignInit(inherited, NULL, 0), CKR_CRYPTOKI_NOT_INITIALIZED);

	rss0 = rss_kib();
	rv = child_initialize(&dt, msg, sizeof msg);
	rss1 = rss_kib();
	if (rv != CKR_OK) {
		/* The limit: it must be a clean, fast, explained refusal. */
		int lines = 0;
		const char *p;

		for (p = msg; *p; p++)
			lines += *p == '\n';
		printf("MEASURE case=depth limit_at_depth=%d init_ms=%.1f\n", depth, dt / 1e6);
		snprintf(name, sizeof name, "%s: past the limit C_Initialize -> CKR_FUNCTION_FAILED", tag);
		abi_check_rv(name, rv, CKR_FUNCTION_FAILED);
		snprintf(name, sizeof name, "%s: past the limit C_Initialize answers fast", tag);
		abi_check(name, dt < FAST_NS, "took %lld ms", dt / 1000000);
		snprintf(name, sizeof name, "%s: past the limit C_Initialize says why in one stderr line", tag);
		abi_check(name, lines == 1 && strstr(msg, "gohsm: C_Initialize in a forked child") != NULL,
			  "stderr was \"%s\"", msg);
		snprintf(name, sizeof name, "%s: past the limit calls answer CKR_CRYPTOKI_NOT_INITIALIZED", tag);
		abi_check_rv(name, m.f3->C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
		snprintf(name, sizeof name, "%s: the limit is past the documented depth %d", tag, DOCUMENTED_DEPTH);
		abi_check(name, depth > DOCUMENTED_DEPTH, "refused at depth %d", depth);
		fflush(stdout);
		return abi_failures ? 1 : EXIT_LIMIT;
	}
	abi_pass(strcat(strcpy(name, tag), ": C_Initialize -> CKR_OK"));
	printf("MEASURE case=depth depth=%d init_ms=%.1f rss_before_kib=%ld rss_after_kib=%ld rss_growth_kib=%ld\n",
	       depth, dt / 1e6, rss0, rss1, rss1 - rss0);
	snprintf(name, sizeof name, "%s: login, find the key and sign 200 times", tag);
	rv = open_keyed(&k, 1);
	good = rv == CKR_OK ? sign_many(&k, 200, depth, &last) : 0;
	if (!abi_check(name, good == 200, "%d good, then %s", good, abi_rv_name(rv != CKR_OK ? rv : last)))
		return 1;

	host_keys_report(tag);
	code = depth < MAX_DEPTH ? depth_fork(depth, k.s) : 0;

	snprintf(name, sizeof name, "%s: signs again after generation %d exited", tag, depth + 1);
	good = sign_many(&k, 20, depth + 50, &last);
	abi_check(name, good == 20, "%d good, then %s", good, abi_rv_name(last));
	m.f3->C_Logout(k.s);
	snprintf(name, sizeof name, "%s: C_Finalize -> CKR_OK", tag);
	abi_check_rv(name, m.f3->C_Finalize(NULL), CKR_OK);
	fflush(stdout);
	return abi_failures ? 1 : code;
}

static void case_depth(void)
{
	CK_SESSION_HANDLE sess;
	CK_RV last;
	struct keyed k;
	int code, good;

	if (!abi_check_rv("parent: C_Initialize", abi_initialize(&m), CKR_OK) || !setup_token_key(&sess) ||
	    !abi_check_rv("parent: finds its token key", open_keyed(&k, 0), CKR_OK))
		return;
	code = depth_fork(0, sess);
	if (code == 0)
		printf("MEASURE case=depth limit_at_depth=none max_depth_tested=%d\n", MAX_DEPTH);
	good = sign_many(&k, 20, 7, &last);
	abi_check("parent: signs after the chain of generations exited", good == 20, "%d good, then %s", good,
		  abi_rv_name(last));
	abi_check_rv("parent: C_Finalize", m.f3->C_Finalize(NULL), CKR_OK);
}

/* ---- case: signals ------------------------------------------------------- */

static volatile sig_atomic_t g_sigchld;

static void on_sigchld(int sig)
{
	(void)sig;
	g_sigchld++;
}

static const char *handler_name(void (*h)(int))
{
	if (h == SIG_IGN)
		return "SIG_IGN";
	if (h == SIG_DFL)
		return "SIG_DFL";
	if (h == on_sigchld)
		return "the host's handler";
	return "another handler (a Go runtime's)";
}

static void child_signals(CK_SESSION_HANDLE inherited)
{
	char msg[1024];
	struct sigaction sa;
	struct keyed k;
	long long dt;
	CK_BYTE sig[64];
	CK_RV last;
	int fds[2], n0, i, good;
	pid_t gc;
	ssize_t w;

	(void)inherited;
	alarm(60);
	abi_failures = abi_passes = 0;
	if (!abi_check_rv("signals child: C_Initialize -> CKR_OK", child_initialize(&dt, msg, sizeof msg), CKR_OK))
		_exit(1);
	abi_check_rv("signals child: signs", open_keyed(&k, 1) == CKR_OK ? sign(&k, (CK_BYTE_PTR) "s", 1, sig) :
							  CKR_GENERAL_ERROR,
		     CKR_OK);

	sigaction(SIGCHLD, NULL, &sa);
	abi_check("signals child: SIGCHLD still goes to the host's handler", sa.sa_handler == on_sigchld, "%s",
		  handler_name(sa.sa_handler));
	printf("MEASURE case=signals sigchld_flags_sa_onstack=%d\n", (sa.sa_flags & SA_ONSTACK) != 0);
	n0 = g_sigchld;
	gc = fork();
	if (gc == 0)
		_exit(0); /* a grandchild that never touches the module */
	for (i = 0; i < 400 && g_sigchld == n0; i++)
		usleep(5000);
	abi_check("signals child: the host's SIGCHLD handler runs when its own child exits", g_sigchld > n0,
		  "count %d -> %d", n0, (int)g_sigchld);
	abi_check("signals child: waitpid reaps that child", gc > 0 && waitpid(gc, NULL, 0) == gc, "%s",
		  strerror(errno));

	sigaction(SIGPIPE, NULL, &sa);
	printf("MEASURE case=signals sigpipe_disposition_in_child=\"%s\"\n", handler_name(sa.sa_handler));
	if (pipe(fds) == 0) {
		close(fds[0]);
		w = write(fds[1], "x", 1);
		abi_check("signals child: write to a closed pipe fails with EPIPE (SIGPIPE stays ignored)",
			  w < 0 && errno == EPIPE, "write returned %zd (%s)", w, strerror(errno));
		close(fds[1]);
	}
	good = sign_many(&k, 100, 3, &last);
	abi_check("signals child: still signs after SIGCHLD and SIGPIPE", good == 100, "%d good, then %s", good,
		  abi_rv_name(last));
	host_keys_report("signals child");
	abi_check_rv("signals child: C_Finalize", m.f3->C_Finalize(NULL), CKR_OK);
	fflush(stdout);
	exit(abi_failures ? 1 : 0);
}

static void case_signals(void)
{
	CK_SESSION_HANDLE sess;
	char how[120];
	int status = 0, r;
	pid_t pid;

	/* Like nginx: SIGPIPE ignored after the module (and its runtime) loaded. */
	signal(SIGPIPE, SIG_IGN);
	if (!abi_check_rv("parent: C_Initialize", abi_initialize(&m), CKR_OK) || !setup_token_key(&sess))
		return;
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0)
		child_signals(sess);
	r = wait_until(pid, now_ns() + 60 * 1000000000LL, &status);
	describe_status(how, sizeof how, status);
	abi_check("parent: signals child finished in time with all its checks passed",
		  r == 1 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s", r == 0 ? "hung: killed" : how);
	abi_check_rv("parent: C_Finalize", m.f3->C_Finalize(NULL), CKR_OK);
}

/* ---- case: rawclone ------------------------------------------------------ */

/*
 * A forwarding child makes a grandchild with a raw fork system call, so
 * that no pthread_atfork handler runs there: the grandchild inherits the
 * forwarding state, and its C_Initialize must still see the fork (by pid)
 * and load a copy of its own instead of using its parent's.
 */
static void child_rawclone(void)
{
	char msg[1024];
	struct keyed k;
	long long dt;
	CK_BYTE sig[64];
	CK_RV last;
	int status = 0, r, good;
	pid_t pid;

	alarm(60);
	abi_failures = abi_passes = 0;
	if (!abi_check_rv("rawclone child: C_Initialize -> CKR_OK", child_initialize(&dt, msg, sizeof msg), CKR_OK) ||
	    !abi_check_rv("rawclone child: login and sign",
			  open_keyed(&k, 1) == CKR_OK ? sign(&k, (CK_BYTE_PTR) "c", 1, sig) : CKR_GENERAL_ERROR,
			  CKR_OK))
		_exit(1);
	fflush(stdout);
	fflush(stderr);
	pid = (pid_t)syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
	if (pid == 0) {
		struct keyed g;

		abi_failures = abi_passes = 0;
		if (abi_check_rv("rawclone grandchild: C_Initialize -> CKR_OK (a copy of its own)",
				 child_initialize(&dt, msg, sizeof msg), CKR_OK)) {
			good = open_keyed(&g, 1) == CKR_OK ? sign_many(&g, 100, 5, &last) : 0;
			abi_check("rawclone grandchild: signs 100 times", good == 100, "%d good", good);
			abi_check_rv("rawclone grandchild: C_Finalize", m.f3->C_Finalize(NULL), CKR_OK);
		}
		fflush(stdout);
		_exit(abi_failures ? 1 : 0);
	}
	r = pid > 0 ? wait_until(pid, now_ns() + 30 * 1000000000LL, &status) : -1;
	abi_check("rawclone child: grandchild finished in time with all its checks passed",
		  r == 1 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "wait %d status 0x%x", r, status);
	good = sign_many(&k, 100, 6, &last);
	abi_check("rawclone child: still signs after the grandchild exited", good == 100, "%d good, then %s", good,
		  abi_rv_name(last));
	abi_check_rv("rawclone child: C_Finalize", m.f3->C_Finalize(NULL), CKR_OK);
	fflush(stdout);
	_exit(abi_failures ? 1 : 0);
}

static void case_rawclone(void)
{
	CK_SESSION_HANDLE sess;
	char how[120];
	int status = 0, r;
	pid_t pid;

	if (!abi_check_rv("parent: C_Initialize", abi_initialize(&m), CKR_OK) || !setup_token_key(&sess))
		return;
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0)
		child_rawclone();
	r = wait_until(pid, now_ns() + 60 * 1000000000LL, &status);
	describe_status(how, sizeof how, status);
	abi_check("parent: rawclone child finished in time with all its checks passed",
		  r == 1 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s", r == 0 ? "hung: killed" : how);
	abi_check_rv("parent: C_Finalize", m.f3->C_Finalize(NULL), CKR_OK);
}

/* ---- case: measure ------------------------------------------------------- */

#define GETINFO_BATCHES 200
#define GETINFO_BATCH 1000
#define SIGN_N 1000

static long long g_samples[SIGN_N];

/*
 * Prints p50 of C_GetInfo (per call, over batches of 1,000: a call is
 * shorter than reading the clock) and of SignInit+Sign for this process.
 */
static int measure_calls(const char *who, struct keyed *k)
{
	CK_INFO info;
	CK_BYTE sig[64];
	int i, j;

	for (i = 0; i < 1000; i++) /* warm up */
		m.f3->C_GetInfo(&info);
	for (i = 0; i < GETINFO_BATCHES; i++) {
		long long t0 = now_ns();

		for (j = 0; j < GETINFO_BATCH; j++)
			if (m.f3->C_GetInfo(&info) != CKR_OK)
				return 0;
		g_samples[i] = now_ns() - t0;
	}
	printf("MEASURE case=measure who=%s getinfo_p50_ns=%.1f\n", who,
	       p50(g_samples, GETINFO_BATCHES) / (double)GETINFO_BATCH);
	for (i = 0; i < 50; i++)
		sign(k, (CK_BYTE_PTR) "warm", 4, sig);
	for (i = 0; i < SIGN_N; i++) {
		long long t0 = now_ns();

		if (sign(k, (CK_BYTE_PTR) "measure", 7, sig) != CKR_OK)
			return 0;
		g_samples[i] = now_ns() - t0;
	}
	printf("MEASURE case=measure who=%s ecdsa_p256_sign_p50_ns=%lld\n", who, p50(g_samples, SIGN_N));
	return 1;
}

static void case_measure(void)
{
	CK_SESSION_HANDLE sess;
	struct keyed k;
	char how[120];
	int status = 0, r;
	pid_t pid;

	if (!abi_check_rv("parent: C_Initialize", abi_initialize(&m), CKR_OK) || !setup_token_key(&sess) ||
	    !abi_check_rv("parent: finds its token key", open_keyed(&k, 0), CKR_OK))
		return;
	abi_check("parent: measured C_GetInfo and sign", measure_calls("parent", &k), "a call failed");
	printf("MEASURE case=measure who=parent rss_kib=%ld\n", rss_kib());
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0) {
		char msg[1024];
		long long dt;
		long rss0 = rss_kib(), rss1;

		alarm(60);
		abi_failures = abi_passes = 0;
		if (!abi_check_rv("measure child: C_Initialize", child_initialize(&dt, msg, sizeof msg), CKR_OK))
			_exit(1);
		rss1 = rss_kib();
		printf("MEASURE case=measure who=child init_ms=%.2f rss_growth_kib=%ld\n", dt / 1e6, rss1 - rss0);
		if (abi_check_rv("measure child: login, find the key", open_keyed(&k, 1), CKR_OK))
			abi_check("measure child: measured C_GetInfo and sign (forwarded)", measure_calls("child", &k),
				  "a call failed");
		m.f3->C_Finalize(NULL);
		fflush(stdout);
		_exit(abi_failures ? 1 : 0);
	}
	r = wait_until(pid, now_ns() + 60 * 1000000000LL, &status);
	describe_status(how, sizeof how, status);
	abi_check("parent: measure child finished in time with all its checks passed",
		  r == 1 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s", r == 0 ? "hung: killed" : how);
	abi_check_rv("parent: C_Finalize", m.f3->C_Finalize(NULL), CKR_OK);
}

/* ---- case: storm --------------------------------------------------------- */

#define STORM_WAVES 20
#define STORM_CHILDREN 16 /* per wave, forked 1 ms apart */
#define STORM_SIGNERS 4   /* threads per wave, signing for the first time */
#define STORM_SIGNS 20    /* per signer thread */

/*
 * Forks while threads sign: a thread inside libcrypto at fork() may hold
 * one of its locks, and a child that needs it waits forever (or finds
 * libcrypto half loaded and crashes) unless the module keeps fork() out
 * while it is inside libcrypto (internal/ossl's fork guard). The locks
 * seen in such hangs are taken when a thread first uses libcrypto (its
 * error state, its DRBG, made from the primary DRBG) and while libcrypto
 * is being loaded, and a child's first signature takes them too. So each
 * of STORM_WAVES waves lets STORM_SIGNERS threads that never signed
 * before open a session and sign STORM_SIGNS times, while the parent
 * forks STORM_CHILDREN children 1 ms apart; each child re-initialises,
 * logs in and signs once. Every child must finish. Without the guard,
 * four runs of four each lost 3-6 children to hangs and 0-5 to SIGSEGV.
 * The threads stay alive to the end. Case stormexit: each thread exits
 * as soon as it has signed, so libcrypto's cleanup of exiting threads
 * (outside any module call) overlaps the forks; the guard's exit hook
 * keeps fork() out until such a thread is gone (docs/fork.md).
 */
struct storm_signer {
	pthread_t th;
	int wave;
	CK_RV last;
};

/* The wave whose signer threads may start (-1: none yet), and whether
 * every thread may exit (after the last wave's children finished);
 * g_storm_leave: each signer thread exits as soon as it has signed
 * (case stormexit). */
static int g_storm_wave = -1, g_storm_exit, g_storm_leave;

static void *storm_signer_main(void *arg)
{
	struct storm_signer *w = arg;
	struct keyed k;
	CK_BYTE sig[64];
	int i;

	while (__atomic_load_n(&g_storm_wave, __ATOMIC_ACQUIRE) < w->wave)
		usleep(200);
	w->last = open_keyed(&k, 0); /* the token is logged in already */
	for (i = 0; i < STORM_SIGNS && w->last == CKR_OK; i++)
		w->last = sign(&k, (CK_BYTE_PTR) "storm", 5, sig);
	if (w->last == CKR_OK)
		w->last = m.f3->C_CloseSession(k.s);
	/* Stay alive (see above) unless leaving is what is tested. */
	while (!g_storm_leave && !__atomic_load_n(&g_storm_exit, __ATOMIC_ACQUIRE))
		usleep(1000);
	return NULL;
}

static void child_storm(int idx)
{
	char tag[64];
	struct keyed k;
	CK_BYTE sig[64];
	CK_RV rv;

	alarm(120); /* the parent kills a hung child first */
	abi_failures = abi_passes = 0;
	snprintf(tag, sizeof tag, "storm child %03d", idx);
	rv = m.f3->C_Initialize(NULL);
	if (rv == CKR_OK)
		rv = open_keyed(&k, 1);
	if (rv == CKR_OK)
		rv = sign(&k, (CK_BYTE_PTR) "storm", 5, sig);
	if (rv != CKR_OK) {
		abi_fail(tag, "%s", abi_rv_name(rv));
		_exit(1);
	}
	m.f3->C_Finalize(NULL);
	_exit(0);
}

static void case_storm(void)
{
	struct storm_signer *w;
	CK_SESSION_HANDLE sess;
	pid_t pids[STORM_CHILDREN];
	int wave, i, ok = 0, hung = 0, failed = 0, signer_failures = 0;
	CK_RV signer_last = CKR_OK;

	if (!abi_check_rv("parent: C_Initialize", abi_initialize(&m), CKR_OK))
		return;
	if (!setup_token_key(&sess))
		return;
	w = calloc((size_t)(STORM_WAVES * STORM_SIGNERS), sizeof *w);
	if (w == NULL) {
		abi_fail("storm: calloc", "out of memory");
		return;
	}
	for (i = 0; i < STORM_WAVES * STORM_SIGNERS; i++) {
		w[i].wave = i / STORM_SIGNERS;
		pthread_create(&w[i].th, NULL, storm_signer_main, &w[i]);
	}
	for (wave = 0; wave < STORM_WAVES; wave++) {
		long long deadline;

		fflush(stdout);
		fflush(stderr);
		__atomic_store_n(&g_storm_wave, wave, __ATOMIC_RELEASE);
		if (g_storm_leave) /* this wave's threads sign and exit while the parent forks */
			usleep(2000);
		for (i = 0; i < STORM_CHILDREN; i++) {
			pids[i] = fork();
			if (pids[i] == 0)
				child_storm(wave * STORM_CHILDREN + i);
			if (pids[i] < 0)
				abi_fail("parent: fork()", "%s", strerror(errno));
			usleep(1000);
		}
		deadline = now_ns() + 30 * 1000000000LL;
		for (i = 0; i < STORM_CHILDREN; i++) {
			int status = 0, r;

			if (pids[i] <= 0)
				continue;
			r = wait_until(pids[i], deadline, &status);
			if (r == 0)
				hung++;
			else if (r > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
				ok++;
			else {
				char how[120];

				failed++;
				describe_status(how, sizeof how, status);
				printf("storm: child %d (pid %ld): %s\n", wave * STORM_CHILDREN + i, (long)pids[i],
				       r < 0 ? "waitpid failed" : how);
			}
		}
	}
	__atomic_store_n(&g_storm_exit, 1, __ATOMIC_RELEASE);
	for (i = 0; i < STORM_WAVES * STORM_SIGNERS; i++) {
		pthread_join(w[i].th, NULL);
		if (w[i].last != CKR_OK) {
			signer_failures++;
			signer_last = w[i].last;
		}
	}
	free(w);
	printf("MEASURE case=storm children=%d ok=%d hung=%d failed=%d\n", STORM_WAVES * STORM_CHILDREN, ok, hung,
	       failed);
	abi_check("storm: every child forked while new threads made their first signatures re-initialised and signed",
		  ok == STORM_WAVES * STORM_CHILDREN, "%d ok, %d hung (killed), %d failed", ok, hung, failed);
	abi_check("storm: the parent's signing threads all signed", signer_failures == 0, "%d failed, last %s",
		  signer_failures, abi_rv_name(signer_last));
	m.f3->C_Logout(sess);
	abi_check_rv("parent: C_Finalize", m.f3->C_Finalize(NULL), CKR_OK);
}

/* ---- case: hang ---------------------------------------------------------- */

/* Where the hang case's child waits; its name must show in the backtrace. */
__attribute__((noinline)) static void gohsm_test_hang_here(void)
{
	for (;;)
		pause();
}

/*
 * A forked child that re-initialises the module (a fresh copy with its Go
 * runtime) and then never finishes: the parent must describe it (/proc
 * lines, and gdb backtraces when gdb is installed) and kill it.
 */
static void case_hang(void)
{
	int status = 0, r;
	pid_t pid;

	if (!abi_check_rv("parent: C_Initialize", abi_initialize(&m), CKR_OK))
		return;
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0) {
		alarm(60);
		if (m.f3->C_Initialize(NULL) != CKR_OK)
			_exit(1);
		printf("hang child %ld: initialised, waiting\n", (long)getpid());
		fflush(stdout);
		gohsm_test_hang_here();
	}
	if (pid < 0) {
		abi_fail("hang: fork", "%s", strerror(errno));
		return;
	}
	r = wait_until(pid, now_ns() + 3 * 1000000000LL, &status);
	abi_check("hang: a child that never finishes is described and killed",
		  r == 0 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "wait result %d, status 0x%x", r,
		  status);
	abi_check_rv("parent: C_Finalize", m.f3->C_Finalize(NULL), CKR_OK);
}

/* ---- case: pgkill -------------------------------------------------------- */

/*
 * The token is on PostgreSQL (the test's configuration). The parent logs
 * in (its login is held by an advisory lock on a connection of its copy)
 * and forks a child that re-initialises, logs in and signs, and forks a
 * grandchild that does the same (with a copy of its own: the child's copy
 * registered its sockets too). Each prints "READY <who> <pid>" and waits
 * for SIGUSR1; the parent never ends by itself. The test counts their
 * sockets to the server, kills the parent with SIGKILL and checks that
 * its login and backends go while the others live, sends the child
 * SIGUSR1 (it signs again and waits to be killed), kills it, checks the
 * same for its login, and sends the grandchild SIGUSR1 (it signs and
 * exits). alarm() is the safety net.
 */
__attribute__((noreturn)) static void pgkill_descendant(const char *who, int generation)
{
	char msg[1024], name[160];
	struct keyed k;
	long long dt;
	CK_BYTE sig[64];
	CK_RV last;
	sigset_t set;
	int signo = 0, good;
	pid_t pid;

	alarm(60);
	abi_failures = abi_passes = 0;
	snprintf(name, sizeof name, "pgkill %s: C_Initialize -> CKR_OK", who);
	if (!abi_check_rv(name, child_initialize(&dt, msg, sizeof msg), CKR_OK))
		_exit(1);
	snprintf(name, sizeof name, "pgkill %s: login and sign", who);
	if (!abi_check_rv(name, open_keyed(&k, 1) == CKR_OK ? sign(&k, (CK_BYTE_PTR) "c", 1, sig) : CKR_GENERAL_ERROR,
			  CKR_OK))
		_exit(1);
	if (generation == 1) {
		fflush(stdout);
		fflush(stderr);
		pid = fork();
		if (pid == 0)
			pgkill_descendant("grandchild", 2); /* never returns */
		if (pid < 0) {
			abi_fail("pgkill child: fork", "%s", strerror(errno));
			_exit(1);
		}
	}
	printf("READY %s %ld\n", who, (long)getpid());
	fflush(stdout);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	if (sigwait(&set, &signo) != 0 || signo != SIGUSR1)
		_exit(1);
	good = sign_many(&k, 20, 7, &last);
	snprintf(name, sizeof name, "pgkill %s: signs after its parent was killed", who);
	abi_check(name, good == 20, "%d good, then %s", good, abi_rv_name(last));
	if (generation == 1) {
		printf("WAITING child\n");
		fflush(stdout);
		for (;;)
			pause(); /* until the test's SIGKILL */
	}
	snprintf(name, sizeof name, "pgkill %s: C_Finalize", who);
	abi_check_rv(name, m.f3->C_Finalize(NULL), CKR_OK);
	fflush(stdout);
	_exit(abi_failures ? 1 : 0);
}

static void case_pgkill(void)
{
	CK_SESSION_HANDLE sess;
	sigset_t set;
	pid_t pid;

	/* Blocked before fork(): the child inherits the mask and sigwaits. */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (!abi_check_rv("parent: C_Initialize", abi_initialize(&m), CKR_OK) || !setup_token_key(&sess))
		return;
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0)
		pgkill_descendant("child", 1);
	if (pid < 0) {
		abi_fail("pgkill: fork", "%s", strerror(errno));
		return;
	}
	printf("READY parent %ld\n", (long)getpid());
	fflush(stdout);
	alarm(90);
	for (;;)
		pause(); /* until the test's SIGKILL */
}

/* ---- case: metrics ------------------------------------------------------- */

/*
 * With metrics = on (fork_test.go's TestForkMetrics reads the file): the
 * parent signs METRICS_SIGNS times, a child that never calls C_Initialize
 * is refused in C (nothing reaches Go, nothing is counted), a child that
 * re-initialises signs METRICS_SIGNS times in its fresh copy (its own
 * region), and the parent signs METRICS_SIGNS times again: 3 x
 * METRICS_SIGNS ECDSA signatures in all, in two processes' regions.
 */
#define METRICS_SIGNS 40

static int sign_n(struct keyed *k, int n)
{
	CK_BYTE sig[64];
	int i;

	for (i = 0; i < n && sign(k, (CK_BYTE_PTR) "metrics", 7, sig) == CKR_OK; i++)
		;
	return i;
}

/* A session AES key (its creation is an audit record the module queues). */
static CK_RV session_key(CK_SESSION_HANDLE s)
{
	CK_MECHANISM mech = { CKM_AES_KEY_GEN, NULL, 0 };
	CK_ULONG len = 32;
	CK_BBOOL f = CK_FALSE;
	CK_ATTRIBUTE t[] = {
		{ CKA_VALUE_LEN, &len, sizeof len },
		{ CKA_TOKEN, &f, sizeof f },
	};
	CK_OBJECT_HANDLE h;

	return m.f3->C_GenerateKey(s, &mech, t, 2, &h);
}

static void case_metrics(void)
{
	CK_SESSION_HANDLE sess;
	struct keyed k;
	CK_BYTE sig[64];
	pid_t pid, child;
	int status = -1;

	if (!abi_check_rv("parent: C_Initialize", abi_initialize(&m), CKR_OK) || !setup_token_key(&sess) ||
	    !abi_check_rv("parent: finds the token key", open_keyed(&k, 0), CKR_OK))
		return;
	abi_check("parent: signs before forking", sign_n(&k, METRICS_SIGNS) == METRICS_SIGNS, "a signature failed");

	pid = fork();
	if (pid == 0)
		exit(sign(&k, (CK_BYTE_PTR) "a", 1, sig) == CKR_CRYPTOKI_NOT_INITIALIZED ? 0 : 1);
	while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	abi_check("child without C_Initialize: C_Sign -> CKR_CRYPTOKI_NOT_INITIALIZED",
		  pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);

	/*
	 * A session key made just before the fork: its audit record is most
	 * likely still queued in the parent (20 ms). The child, which makes a
	 * session key of its own, must not write the parent's record; the
	 * parent writes it (fork_test.go counts two such records).
	 */
	abi_check_rv("parent: a session key just before forking", session_key(sess), CKR_OK);
	child = fork();
	if (child == 0) {
		long long dt;
		char msg[1024];
		struct keyed kc;
		int good = 0;

		alarm(CHILD_TIMEOUT_S);
		if (child_initialize(&dt, msg, sizeof msg) == CKR_OK && open_keyed(&kc, 1) == CKR_OK &&
		    session_key(kc.s) == CKR_OK)
			good = sign_n(&kc, METRICS_SIGNS);
		m.f3->C_Finalize(NULL);
		fflush(stdout);
		_exit(good == METRICS_SIGNS ? 0 : 1);
	}
	status = -1;
	while (child > 0 && waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	abi_check("re-initialised child: signs in its fresh copy",
		  child > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
	abi_check("parent: signs after the children", sign_n(&k, METRICS_SIGNS) == METRICS_SIGNS, "a signature failed");
	printf("MEASURE case=metrics parent_pid=%d child_pid=%d signs=%d\n", (int)getpid(), (int)child,
	       3 * METRICS_SIGNS);
	m.f3->C_CloseSession(k.s);
}

/* ---- case: rsaprobe ------------------------------------------------------ */

/*
 * The module's probe of libcrypto's RSA check runs once per copy of the
 * module (fork_test.go's TestForkRSAProbe counts the log lines): the
 * parent makes an RSA key pair and signs twice, a child re-initialises and
 * signs twice in its fresh copy, each signature verified.
 */
static CK_RV rsa_sign_verify(struct keyed *k, const char *msg)
{
	CK_MECHANISM mech = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	CK_BYTE sig[256];
	CK_ULONG n = sizeof sig;
	CK_RV rv = m.f3->C_SignInit(k->s, &mech, k->priv);

	if (rv == CKR_OK)
		rv = m.f3->C_Sign(k->s, (CK_BYTE_PTR)msg, strlen(msg), sig, &n);
	if (rv == CKR_OK)
		rv = m.f3->C_VerifyInit(k->s, &mech, k->pub);
	if (rv == CKR_OK)
		rv = m.f3->C_Verify(k->s, (CK_BYTE_PTR)msg, strlen(msg), sig, n);
	return rv;
}

static void case_rsaprobe(void)
{
	CK_BBOOL t = CK_TRUE;
	CK_ULONG bits = 2048;
	CK_BYTE e[] = { 1, 0, 1 };
	CK_MECHANISM gen = { CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0 };
	CK_ATTRIBUTE pubt[] = {
		{ CKA_MODULUS_BITS, &bits, sizeof bits },
		{ CKA_PUBLIC_EXPONENT, e, sizeof e },
		{ CKA_VERIFY, &t, sizeof t },
		{ CKA_TOKEN, &t, sizeof t },
		{ CKA_ID, g_key_id, sizeof g_key_id },
	};
	CK_ATTRIBUTE privt[] = {
		{ CKA_SIGN, &t, sizeof t },
		{ CKA_SENSITIVE, &t, sizeof t },
		{ CKA_PRIVATE, &t, sizeof t },
		{ CKA_TOKEN, &t, sizeof t },
		{ CKA_ID, g_key_id, sizeof g_key_id },
	};
	CK_SESSION_HANDLE sess;
	CK_OBJECT_HANDLE pub, priv;
	struct keyed k;
	pid_t child;
	int status = -1;

	if (!abi_check_rv("parent: C_Initialize", abi_initialize(&m), CKR_OK) || !abi_first_slot(&m, &g_slot) ||
	    !abi_setup_user_session(&m, g_slot, &sess) ||
	    !abi_check_rv("setup: C_GenerateKeyPair RSA-2048 on the token",
			  m.f3->C_GenerateKeyPair(sess, &gen, pubt, 5, privt, 5, &pub, &priv), CKR_OK) ||
	    !abi_check_rv("parent: finds the token key", open_keyed(&k, 0), CKR_OK))
		return;
	abi_check_rv("parent: RSA signs and verifies", rsa_sign_verify(&k, "parent 1"), CKR_OK);
	abi_check_rv("parent: and again", rsa_sign_verify(&k, "parent 2"), CKR_OK);

	child = fork();
	if (child == 0) {
		long long dt;
		char msg[1024];
		struct keyed kc;
		CK_RV rv;

		alarm(CHILD_TIMEOUT_S);
		rv = child_initialize(&dt, msg, sizeof msg);
		if (rv == CKR_OK)
			rv = open_keyed(&kc, 1);
		if (rv == CKR_OK)
			rv = rsa_sign_verify(&kc, "child 1");
		if (rv == CKR_OK)
			rv = rsa_sign_verify(&kc, "child 2");
		m.f3->C_Finalize(NULL);
		fflush(stdout);
		_exit(rv == CKR_OK ? 0 : 1);
	}
	while (child > 0 && waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	abi_check("re-initialised child: RSA signs and verifies in its fresh copy",
		  child > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
	abi_check_rv("parent: RSA signs after the child", rsa_sign_verify(&k, "parent 3"), CKR_OK);
	m.f3->C_CloseSession(k.s);
}

int main(int argc, char **argv)
{
	struct sigaction sa;

	if (argc != 3) {
		fprintf(stderr, "usage: %s /path/to/libgohsm.so children|depth|signals|rawclone|measure|hang|storm|stormexit|pgkill|metrics|rsaprobe\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	host_keys_create();
	atexit(at_exit_check);
	/* A host SIGCHLD handler in place before the module loads (as a server's). */
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigchld;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGCHLD, &sa, NULL);
	abi_load(argv[1], &m);

	if (strcmp(argv[2], "children") == 0)
		case_children();
	else if (strcmp(argv[2], "depth") == 0)
		case_depth();
	else if (strcmp(argv[2], "signals") == 0)
		case_signals();
	else if (strcmp(argv[2], "rawclone") == 0)
		case_rawclone();
	else if (strcmp(argv[2], "measure") == 0)
		case_measure();
	else if (strcmp(argv[2], "hang") == 0)
		case_hang();
	else if (strcmp(argv[2], "storm") == 0)
		case_storm();
	else if (strcmp(argv[2], "pgkill") == 0)
		case_pgkill();
	else if (strcmp(argv[2], "metrics") == 0)
		case_metrics();
	else if (strcmp(argv[2], "rsaprobe") == 0)
		case_rsaprobe();
	else if (strcmp(argv[2], "stormexit") == 0) {
		g_storm_leave = 1;
		case_storm();
	}
	else {
		fprintf(stderr, "unknown case %s\n", argv[2]);
		return 2;
	}
	return abi_exit();
}
