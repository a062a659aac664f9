/*
 * abi_env: the configuration is looked up through the C library's
 * environment at C_Initialize, so a variable the host sets with setenv()
 * after loading the module (as daemons and language runtimes do) counts.
 * A Go shared library's own view of the environment is frozen at load.
 */
#include <unistd.h>

#include "abi.h"

int main(int argc, char **argv)
{
	struct abi_module m;
	CK_SLOT_ID slots[8];
	CK_ULONG n = 8;
	char conf[4200], tokdir[4096];
	FILE *f;

	if (argc != 2) {
		fprintf(stderr, "usage: abi_env libgohsm.so\n");
		return 2;
	}
	/* Start over without the harness's GOHSM_CONF, so that the variable
	 * set below is new: glibc then moves the environment to a new array,
	 * which is what a Go runtime copying the start-up environment misses. */
	if (getenv("GOHSM_CONF")) {
		unsetenv("GOHSM_CONF");
		execv("/proc/self/exe", argv);
		perror("execv");
		return 2;
	}

	/* A three-slot configuration, set before the load, as a host that
	 * configures itself and then loads its modules would. */
	if (!getcwd(tokdir, sizeof tokdir - 16))
		return 2;
	snprintf(conf, sizeof conf, "%s/env.conf", tokdir);
	strcat(tokdir, "/envtok");
	f = fopen(conf, "w");
	if (!f)
		return 2;
	fprintf(f, "token_dir = %s\nkdf_time = 1\nkdf_memory = 64\nkdf_threads = 1\nlogin_cache = off\n[slot 5]\n[slot 6]\n[slot 7]\n", tokdir);
	fclose(f);
	setenv("GOHSM_CONF", conf, 1);
	abi_load(argv[1], &m);

	abi_check_rv("C_Initialize after setenv(GOHSM_CONF)", m.fl->C_Initialize(NULL), CKR_OK);
	abi_check_rv("C_GetSlotList", m.fl->C_GetSlotList(CK_FALSE, slots, &n), CKR_OK);
	abi_check("the configuration set with setenv() is used (3 slots, IDs 5-7)",
		  n == 3 && slots[0] == 5 && slots[2] == 7, "got %lu slots, first %lu", (unsigned long)n,
		  (unsigned long)(n ? slots[0] : 0));
	m.fl->C_Finalize(NULL);
	return abi_exit();
}
