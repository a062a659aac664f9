/*
 * yield.h - when a thread that calls into the module yields to the Go
 * scheduler (gohsm_tick in shim.c). Pure functions of a slot table and the
 * time, so that tests/abi can check the rule without a Go runtime.
 *
 * The Go runtime advances a P's schedule tick only when its scheduler runs
 * a goroutine, and a host thread's calls into Go never go through it: after
 * 10 ms on one P its monitor takes the call for a goroutine running too
 * long, preempts it, takes the P from the thread while it is in C (in
 * libcrypto, say) and falls back to polling every 20 us - about a thousand
 * preemptions and hand-offs a second with two signing threads. So a
 * thread that keeps calling yields once every few milliseconds
 * (go_Yield: runtime.Gosched), which advances the tick. The clock is the
 * coarse one (a few ns to read, a tick of 1-4 ms).
 */
#ifndef GOHSM_YIELD_H
#define GOHSM_YIELD_H

#include <stdint.h>

/* The interval: a thread yields at most once per GOHSM_YIELD_NS. */
#define GOHSM_YIELD_NS 4000000
/*
 * The time of each thread's last interval start, in a table indexed by a
 * hash of the thread (no thread-local variable: it would take static TLS,
 * which every forked generation's copy of the module spends - one
 * generation fewer in tests/fork). Two threads sharing a slot only yield
 * a little less often; a slot per cache line keeps threads from bouncing
 * lines.
 */
#define GOHSM_YIELD_SLOTS 256
/*
 * A thread whose calls are long (fewer than GOHSM_YIELD_MIN_CALLS in an
 * interval: a 1 MiB digest, an RSA signature) yields only while the
 * machine is busy, and only if its calls went into libcrypto: a yield is
 * two thread hand-offs (~70-150 us here), and with a CPU to spare the
 * monitor's polling costs the calling thread less than a yield every 4 ms
 * (1 MiB SHA-256 digests ran 1.5-2% faster without the yields). With as
 * many calling threads as CPUs, the polling takes CPU from them instead:
 * two RSA-2048 sessions on two CPUs gave the monitor 2.3% of all samples
 * and each session thread 1,000-2,300 involuntary switches a second. The
 * polling follows a thread that spends its calls in C (its P sits in a
 * system call, which the monitor takes and takes again); a long call in
 * Go code (SHA-256, AES-GCM) is preempted once per 10 ms instead, which
 * costs less than a yield every 4 ms (two SHA-256 1 MiB sessions: 1.3%
 * more digests without the yield; two RSA sessions: ~5% fewer
 * signatures). internal/ossl marks a thread that calls into libcrypto
 * (gohsm_yield_mark_c, cmark). The yield is for threads making many short
 * calls, which the polling hurts most, and for threads in libcrypto on a
 * busy machine.
 */
#define GOHSM_YIELD_MIN_CALLS 16
/* A thread counts as calling for GOHSM_BUSY_NS after an interval start. */
#define GOHSM_BUSY_NS (2 * GOHSM_YIELD_NS)

struct gohsm_yield_slot {
	int64_t ns;     /* coarse time of the last interval start */
	uint32_t calls; /* calls since then */
	uint32_t cmark; /* nonzero: a call since then went into libcrypto */
	char pad[64 - sizeof(int64_t) - 2 * sizeof(uint32_t)];
};

/* gohsm_busy reports whether at least cpus threads started an interval in
 * the last GOHSM_BUSY_NS: as many threads calling as there are CPUs. */
static inline int gohsm_busy(const struct gohsm_yield_slot *slots, int n, int64_t now, int cpus)
{
	int i, busy = 0;

	for (i = 0; i < n; i++) {
		int64_t ns = __atomic_load_n(&slots[i].ns, __ATOMIC_RELAXED);
		if (ns != 0 && now - ns < GOHSM_BUSY_NS && ++busy >= cpus)
			return 1;
	}
	return 0;
}

/* gohsm_yield_due: the call that ended an interval of calls calls yields
 * if they were many, or else if they went into libcrypto (cmark) and the
 * machine is busy (asked only then: it reads the whole table). */
static inline int gohsm_yield_due(uint32_t calls, uint32_t cmark, const struct gohsm_yield_slot *slots, int n, int64_t now,
				  int cpus)
{
	return calls >= GOHSM_YIELD_MIN_CALLS || (cmark && gohsm_busy(slots, n, now, cpus));
}

#endif
