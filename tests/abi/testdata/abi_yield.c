/*
 * abi_yield: the rule by which a thread calling into the module yields to
 * the Go scheduler (pkcs11/yield.h): threads making many short calls yield
 * once an interval; threads making long calls only if those went into
 * libcrypto and as many threads as CPUs are calling. Pure functions of the
 * slot table and the time; the module argument is not used.
 */
#include "abi.h"
#include "yield.h"

#define MS 1000000LL

int main(int argc, char **argv)
{
	static struct gohsm_yield_slot slots[GOHSM_YIELD_SLOTS];
	int64_t now = 1000 * MS;

	(void)argc;
	(void)argv;
	abi_check("busy: empty table", !gohsm_busy(slots, GOHSM_YIELD_SLOTS, now, 1), "busy");
	abi_check("busy: slots never used do not count early on",
		  !gohsm_busy(slots, GOHSM_YIELD_SLOTS, 1 * MS, 1), "busy at 1 ms with an empty table");

	slots[3].ns = now;
	abi_check("busy: one caller, one CPU", gohsm_busy(slots, GOHSM_YIELD_SLOTS, now, 1), "not busy");
	abi_check("busy: one caller, two CPUs", !gohsm_busy(slots, GOHSM_YIELD_SLOTS, now, 2), "busy");

	slots[200].ns = now - GOHSM_BUSY_NS + 1;
	abi_check("busy: two callers, two CPUs", gohsm_busy(slots, GOHSM_YIELD_SLOTS, now, 2), "not busy");
	abi_check("busy: two callers, four CPUs", !gohsm_busy(slots, GOHSM_YIELD_SLOTS, now, 4), "busy");

	slots[200].ns = now - GOHSM_BUSY_NS;
	abi_check("busy: a caller quiet for the window no longer counts",
		  !gohsm_busy(slots, GOHSM_YIELD_SLOTS, now, 2), "busy");

	abi_check("yield: many short calls, machine not busy",
		  gohsm_yield_due(GOHSM_YIELD_MIN_CALLS, 0, slots, GOHSM_YIELD_SLOTS, now, 2), "no yield");
	abi_check("yield: few long calls in libcrypto, machine not busy",
		  !gohsm_yield_due(GOHSM_YIELD_MIN_CALLS - 1, 1, slots, GOHSM_YIELD_SLOTS, now, 2), "yield");
	slots[200].ns = now - 1 * MS;
	abi_check("yield: few long calls in libcrypto, as many callers as CPUs",
		  gohsm_yield_due(GOHSM_YIELD_MIN_CALLS - 1, 1, slots, GOHSM_YIELD_SLOTS, now, 2), "no yield");
	abi_check("yield: few long calls in Go code, as many callers as CPUs",
		  !gohsm_yield_due(GOHSM_YIELD_MIN_CALLS - 1, 0, slots, GOHSM_YIELD_SLOTS, now, 2), "yield");
	abi_check("yield: many short calls in Go code, as many callers as CPUs",
		  gohsm_yield_due(GOHSM_YIELD_MIN_CALLS, 0, slots, GOHSM_YIELD_SLOTS, now, 2), "no yield");
	abi_check("yield: the busy window spans two intervals", GOHSM_BUSY_NS >= 2 * GOHSM_YIELD_NS,
		  "a long-call thread starts an interval every %d ns at most, the window is %d ns",
		  GOHSM_YIELD_NS, GOHSM_BUSY_NS);
	return abi_exit();
}
