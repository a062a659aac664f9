/*
 * csign.c - the records of C_Sign answered in C (csign.h).
 */
#include <sched.h>

#include "csign.h"

struct gohsm_csign_rec gohsm_csign_recs[GOHSM_CSIGN_RECORDS];

void *gohsm_csign_records(void) { return gohsm_csign_recs; }

int gohsm_csign_ref(uintptr_t key)
{
	return gohsm_ossl_p256_ref != NULL && key != 0 && gohsm_ossl_p256_ref((void *)key);
}

void gohsm_csign_unref(uintptr_t key)
{
	if (gohsm_ossl_p256_unref != NULL && key != 0)
		gohsm_ossl_p256_unref((void *)key);
}

void gohsm_csign_sweep(void)
{
	for (int i = 0; i < GOHSM_CSIGN_RECORDS; i++) {
		struct gohsm_csign_rec *r = &gohsm_csign_recs[i];

		for (;;) {
			uint32_t st = __atomic_load_n(&r->state, __ATOMIC_ACQUIRE);

			if (st == GOHSM_CSIGN_FREE)
				break;
			if (st == GOHSM_CSIGN_BUSY || st == GOHSM_CSIGN_CLAIM) {
				sched_yield(); /* a C_Sign (or a publish) still running */
				continue;
			}
			if (__atomic_compare_exchange_n(&r->state, &st, GOHSM_CSIGN_CLAIM, 0, __ATOMIC_ACQUIRE,
							__ATOMIC_RELAXED)) {
				gohsm_csign_unref((uintptr_t)__atomic_exchange_n(&r->key, 0, __ATOMIC_RELAXED));
				__atomic_store_n(&r->h, 0, __ATOMIC_RELAXED);
				__atomic_store_n(&r->sha256, 0, __ATOMIC_RELAXED);
				__atomic_store_n(&r->state, GOHSM_CSIGN_FREE, __ATOMIC_RELEASE);
				break;
			}
		}
	}
}
