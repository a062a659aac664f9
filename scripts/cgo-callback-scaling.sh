#!/usr/bin/env bash
# Measures how calls from C threads into a Go c-shared library scale from one
# thread to two, with nothing of gohsm in it: an exported Go function that
# does nothing, called in a loop from plain pthreads. Every such call
# receives from runtime.main_init_done in cgocallbackg1 (a blocking receive
# from a closed channel, which always takes the channel's lock), so
# concurrent calls contend on one lock. This is the reproducer for the
# 2-session scaling of gohsm's sub-microsecond operations (docs/bench.md).
#
#   scripts/cgo-callback-scaling.sh [seconds]      (needs go and cc)
#   PERF=1 scripts/cgo-callback-scaling.sh         also profile 2 threads with perf
set -euo pipefail
secs=${1:-1}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/lib.go" <<'GO'
package main

import "C"

//export Noop
func Noop() {}

func main() {}
GO
cat >"$work/go.mod" <<'MOD'
module cgoscaling
MOD
cat >"$work/drv.c" <<'C'
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void (*noop)(void);
static volatile int stop;
static long counts[2];

static void *run(void *arg)
{
	long i = (long)arg, n = 0;
	while (!stop) {
		for (int k = 0; k < 1000; k++)
			noop();
		n += 1000;
	}
	counts[i] = n;
	return NULL;
}

static double measure(int threads, int secs)
{
	pthread_t t[2];
	long total = 0;
	stop = 0;
	for (long i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, run, (void *)i);
	struct timespec ts = {secs, 0};
	nanosleep(&ts, NULL);
	stop = 1;
	for (int i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
		total += counts[i];
	}
	return total / 1e6 / secs;
}

int main(int argc, char **argv)
{
	void *h = dlopen(argv[1], RTLD_NOW);
	if (!h || !(noop = (void (*)(void))dlsym(h, "Noop"))) {
		fprintf(stderr, "%s\n", dlerror());
		return 1;
	}
	int secs = atoi(argv[2]), only = argc > 3 ? atoi(argv[3]) : 0;
	noop();
	for (int round = 0; round < 3; round++) {
		double one = only == 2 ? 0 : measure(1, secs);
		double two = only == 1 ? 0 : measure(2, secs);
		printf("round %d: 1 thread %.2fM calls/s, 2 threads %.2fM calls/s, scaling %.2fx\n",
		       round + 1, one, two, one > 0 ? two / one : 0);
	}
	return 0;
}
C
(cd "$work" && go build -buildmode=c-shared -o libnoop.so . && cc -O2 -o drv drv.c -ldl -lpthread)
go version
"$work/drv" "$work/libnoop.so" "$secs"
if [ -n "${PERF:-}" ]; then
	perf record -q -o "$work/perf.data" "$work/drv" "$work/libnoop.so" "$secs" 2 >/dev/null
	perf report -i "$work/perf.data" --no-children --sort symbol 2>/dev/null | grep '%' | head -12
fi
