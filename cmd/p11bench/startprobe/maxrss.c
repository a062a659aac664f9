/*
 * maxrss: run a command and report its own peak resident memory.
 *
 *   maxrss CMD [ARG...]
 *
 * fork()s, execs CMD in the child, waits for it and writes
 * "maxrss_kb=N wall_us=T" on descriptor 3 (its ru_maxrss from wait4 and the
 * time from fork to wait4), exiting with the child's status (128+signal if
 * it was killed). Why: a child that a Go program starts shares the
 * parent's memory until its exec (clone with CLONE_VM), and Linux carries
 * the old memory's high-water mark into the new program's ru_maxrss, so
 * every command `p11bench proc` timed read at least p11bench's own peak
 * (16 MiB by December 2026). This launcher is a small C process: its
 * fork()ed child starts from this process's few hundred kB, so the
 * number is the command's own peak. docs/bench.md, "Whole process".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
	struct timespec t0, t1;
	struct rusage ru;
	int st;
	pid_t pid;
	FILE *out;

	if (argc < 2) {
		fprintf(stderr, "usage: maxrss CMD [ARG...]  (the result on descriptor 3)\n");
		return 2;
	}
	out = fdopen(3, "w");
	if (!out) {
		perror("maxrss: descriptor 3");
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid = fork();
	if (pid < 0) {
		perror("maxrss: fork");
		return 2;
	}
	if (pid == 0) {
		close(3);
		execvp(argv[1], argv + 1);
		perror("maxrss: exec");
		_exit(127);
	}
	if (wait4(pid, &st, 0, &ru) != pid) {
		perror("maxrss: wait4");
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	fprintf(out, "maxrss_kb=%ld wall_us=%ld\n", ru.ru_maxrss,
		(long)((t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000));
	fclose(out);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WEXITSTATUS(st);
}
