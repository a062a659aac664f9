/*
 * loopstat.h: the clocks, load average and median that the alternating
 * drivers (signloop.c, digestloop.c) report with.
 */
#ifndef LOOPSTAT_H
#define LOOPSTAT_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double clock_ns(clockid_t c)
{
	struct timespec t;
	clock_gettime(c, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

/* loadavg is the 1-minute load average, -1 when unreadable. */
static double loadavg(void)
{
	double l = -1;
	FILE *f = fopen("/proc/loadavg", "r");
	if (f) {
		if (fscanf(f, "%lf", &l) != 1)
			l = -1;
		fclose(f);
	}
	return l;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* median sorts v in place. */
static double median(double *v, int n)
{
	qsort(v, n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#endif
