/*
 * abi_forkguard: internal/ossl's fork guard (internal/ossl/forkguard.h)
 * with real threads and fork(), without libcrypto. fork() must wait for a
 * thread inside the guard and for a thread that used the guard and is
 * exiting (libcrypto frees a thread's state at its exit, under its global
 * lock); a thread entering or exiting while a fork is being prepared is
 * held back until it is done; the child starts with the guard open. The
 * module argument is not used.
 */
#define _GNU_SOURCE /* before any header: dlmopen, pthread_tryjoin_np */
#include "abi.h"
#include "forkguard.h"

#include <sys/wait.h>

#define MS 1000000LL

static int g_started, g_release, g_exit, g_entered;
static pthread_key_t g_slow_key;

static void wait_flag(int *flag)
{
	while (!__atomic_load_n(flag, __ATOMIC_ACQUIRE))
		gohsm_ossl_nap(1000000);
}

static void set_flag(int *flag, int v) { __atomic_store_n(flag, v, __ATOMIC_RELEASE); }

/* Inside the guard until released (a long libcrypto call). */
static void *inside_thread(void *arg)
{
	struct gohsm_ossl_slot *g = gohsm_ossl_enter();

	(void)arg;
	set_flag(&g_started, 1);
	wait_flag(&g_release);
	gohsm_ossl_leave(g);
	return NULL;
}

/* A key destructor that runs after the guard's exit hook and blocks until
 * released: the thread is exiting (as in libcrypto's own cleanup). */
static void slow_destructor(void *v)
{
	(void)v;
	wait_flag(&g_release);
}

static void *exiting_thread(void *arg)
{
	(void)arg;
	gohsm_ossl_leave(gohsm_ossl_enter()); /* registers the exit hook */
	pthread_setspecific(g_slow_key, (void *)1);
	set_flag(&g_started, 1);
	wait_flag(&g_exit);
	return NULL;
}

static void *entering_thread(void *arg)
{
	(void)arg;
	gohsm_ossl_leave(gohsm_ossl_enter());
	set_flag(&g_entered, 1);
	return NULL;
}

static void *releaser(void *arg)
{
	gohsm_ossl_nap((long)(intptr_t)arg);
	set_flag(&g_release, 1);
	return NULL;
}

/* Forks; the child checks that the guard is open and exits. Returns how
 * long fork() took in the parent, or -1 if the child failed. */
static long long timed_fork(void)
{
	long long t0 = gohsm_ossl_now(), dt;
	int status = 0, i, clean = 1;
	pid_t pid = fork();

	if (pid == 0) {
		for (i = 0; i < GOHSM_OSSL_LEAVING; i++)
			if (gohsm_ossl_leaving[i] != 0)
				clean = 0;
		_exit(gohsm_ossl_forking == 0 && clean ? 0 : 1);
	}
	dt = gohsm_ossl_now() - t0;
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return -1;
	return dt;
}

/* Starts a thread that holds fork() back until released 300 ms later
 * and checks that fork() took that long. */
static void fork_waits_for(const char *name, void *(*fn)(void *))
{
	pthread_t th, rel;
	long long dt;

	set_flag(&g_started, 0);
	set_flag(&g_release, 0);
	set_flag(&g_exit, 1);
	pthread_create(&th, NULL, fn, NULL);
	wait_flag(&g_started);
	gohsm_ossl_nap(50 * MS); /* an exiting thread: into its key destructors */
	pthread_create(&rel, NULL, releaser, (void *)(intptr_t)(300 * MS));
	dt = timed_fork();
	abi_check(name, dt >= 250 * MS && dt < 5000 * MS, "fork took %lld ms, the thread held it back for 300 ms",
		  dt / MS);
	pthread_join(th, NULL);
	pthread_join(rel, NULL);
}

int main(int argc, char **argv)
{
	char why[256];
	pthread_t th;
	long long dt;

	(void)argc;
	(void)argv;
	if (!abi_check("register the fork handlers with the process's C library",
		       gohsm_ossl_register_fork(why, sizeof why), "%s", why))
		return abi_exit();
	abi_check("the exit hook's C library functions were found", gohsm_ossl_hooks == 1, "hooks %d",
		  gohsm_ossl_hooks);
	pthread_key_create(&g_slow_key, slow_destructor);

	dt = timed_fork();
	abi_check("fork with nobody inside: no wait, the child starts with the guard open", dt >= 0 && dt < 200 * MS,
		  "fork took %lld ms (-1: the child saw the guard closed)", dt / MS);

	/* A thread inside the guard: fork() waits until it leaves. A thread
	 * that used the guard, exiting (blocked in a key destructor after
	 * the exit hook): fork() waits until it is gone. */
	fork_waits_for("fork waits for a thread inside the guard", inside_thread);
	fork_waits_for("fork waits for an exiting thread that used the guard", exiting_thread);
	{
		int i, listed = 0;

		for (i = 0; i < GOHSM_OSSL_LEAVING; i++)
			listed += gohsm_ossl_leaving[i] != 0;
		abi_check("the prepare handler unlists threads that are gone", listed == 0, "%d still listed", listed);
	}

	/* While a fork is being prepared, entering waits for its end. */
	set_flag(&g_entered, 0);
	gohsm_ossl_fork_prepare();
	pthread_create(&th, NULL, entering_thread, NULL);
	gohsm_ossl_nap(100 * MS);
	abi_check("a thread entering while a fork is prepared waits", !__atomic_load_n(&g_entered, __ATOMIC_ACQUIRE),
		  "it entered");
	gohsm_ossl_fork_parent();
	pthread_join(th, NULL);
	abi_check("and enters once the fork is done", __atomic_load_n(&g_entered, __ATOMIC_ACQUIRE), "it did not");

	/* While a fork is being prepared, a thread that used the guard does
	 * not get past its exit hook (into libcrypto's cleanup). */
	set_flag(&g_started, 0);
	set_flag(&g_release, 1);
	set_flag(&g_exit, 0);
	pthread_create(&th, NULL, exiting_thread, NULL);
	wait_flag(&g_started);
	gohsm_ossl_fork_prepare();
	set_flag(&g_exit, 1);
	gohsm_ossl_nap(100 * MS);
	abi_check("a thread exiting while a fork is prepared waits in its exit hook", pthread_tryjoin_np(th, NULL) == EBUSY,
		  "it exited");
	gohsm_ossl_fork_parent();
	abi_check("and exits once the fork is done", pthread_join(th, NULL) == 0, "join failed");

	abi_check("no prepare handler gave up waiting", gohsm_ossl_timeouts() == 0, "%lu timeouts",
		  gohsm_ossl_timeouts());
	abi_check("nobody inside at the end", gohsm_ossl_inside() == 0, "%lu inside", gohsm_ossl_inside());
	return abi_exit();
}
