/*
 * csign.h - C_Sign answered in C: the per-session records that C_SignInit
 * (in Go, pkcs11/csign.go and token/csign.go) publishes when it hands a
 * CKM_ECDSA or CKM_ECDSA_SHA256 operation on a P-256 libcrypto key to C,
 * and the check that C_Sign (shim.c) makes before it enters Go.
 *
 * A record is one cache line (64 bytes): a session signing on one thread
 * writes its own line only. Records are indexed by the low bits of the
 * session handle (handles are consecutive from 1) and hold the full
 * handle: a session whose slot holds another session's record simply
 * stays in Go. GOHSM_CSIGN_RECORDS lines: 8 KiB of zeroed static memory,
 * of which a process touches only the pages its sessions' records are on.
 *
 * States (the word is changed only by compare-and-swap or by its owner):
 *   FREE     no record; no key reference.
 *   CLAIM    being written (Go's publish or drop); the owner ends it.
 *   READY    session h's operation is C's: C_Sign may claim it.
 *   BUSY     a C_Sign is running on it (C owns it; Go waits).
 *   IDLE     no operation in C (C_Sign ended it, or Go took it back);
 *            the key reference is kept for the session's next C_SignInit
 *            with the same key, which then needs no libcrypto call.
 *   RETURNED C_Sign gave the operation back to Go (a case it does not
 *            answer: a short buffer, a NULL length pointer, ...); Go
 *            continues it as if it had never left.
 * Every state but FREE and CLAIM holds one reference to the key
 * (EC_KEY_up_ref), dropped exactly once, by whoever moves the record to
 * FREE (Go's Drop at a session's close or logout, or the sweep at
 * C_Finalize).
 */
#ifndef GOHSM_CSIGN_H
#define GOHSM_CSIGN_H

#include <stddef.h>
#include <stdint.h>

#include "pkcs11.h"

#define GOHSM_CSIGN_RECORDS 128

enum {
	GOHSM_CSIGN_FREE = 0,
	GOHSM_CSIGN_CLAIM = 1,
	GOHSM_CSIGN_READY = 2,
	GOHSM_CSIGN_BUSY = 3,
	GOHSM_CSIGN_IDLE = 4,
	GOHSM_CSIGN_RETURNED = 5,
};

/* The signature's length: r || s, 32 bytes each (P-256). */
#define GOHSM_CSIGN_SIG_LEN 64
/* Longer inputs go to Go, which answers them exactly as before (a
 * CKM_ECDSA input is a hash, 64 bytes at most in practice; a
 * CKM_ECDSA_SHA256 one is hashed here up to this length). */
#define GOHSM_CSIGN_MAX_INPUT 65536

struct gohsm_csign_rec {
	uint64_t h;     /* the session handle */
	uint64_t key;   /* EC_KEY * (one reference held unless FREE) */
	uint32_t state;  /* GOHSM_CSIGN_* */
	uint32_t sha256; /* nonzero: CKM_ECDSA_SHA256 (hash the input first) */
	char pad[64 - 2 * sizeof(uint64_t) - 2 * sizeof(uint32_t)];
} __attribute__((aligned(64)));

extern struct gohsm_csign_rec gohsm_csign_recs[GOHSM_CSIGN_RECORDS];

/* internal/ossl's C side (ossl.go): weak, so that this package's cgo
 * link check passes without it; the module always has them. */
extern int gohsm_ossl_p256_ref(void *k) __attribute__((weak, visibility("hidden")));
extern void gohsm_ossl_p256_unref(void *k) __attribute__((weak, visibility("hidden")));
extern int gohsm_ossl_p256_sign(void *k, const uint8_t *dg, size_t n, uint8_t *out)
	__attribute__((weak, visibility("hidden")));
extern int gohsm_ossl_p256_sign_sha256(void *k, const uint8_t *data, size_t n, uint8_t *out)
	__attribute__((weak, visibility("hidden")));

/* For Go (csign.go): the table, and a key reference taken or dropped. */
void *gohsm_csign_records(void);
int gohsm_csign_ref(uintptr_t key);
void gohsm_csign_unref(uintptr_t key);
/* C_Finalize: every record back to FREE, its key reference dropped. */
void gohsm_csign_sweep(void);

/*
 * gohsm_csign_try answers C_Sign for session h in C when h's record is
 * READY and the call is one C answers (a length query, or a buffer of at
 * least 64 bytes): returns 1 with the CK_RV in *rv. Otherwise returns 0
 * and the call goes to Go: no record, or the record given back (RETURNED)
 * for a call Go answers (NULL pulSignatureLen, NULL pData with a length,
 * a short buffer, a long input), exactly as it always has.
 */
static inline int gohsm_csign_try(CK_SESSION_HANDLE h, CK_BYTE_PTR pData, CK_ULONG n, CK_BYTE_PTR pSig,
				  CK_ULONG_PTR pLen, CK_RV *rv)
{
	struct gohsm_csign_rec *r = &gohsm_csign_recs[h & (GOHSM_CSIGN_RECORDS - 1)];
	uint32_t ready = GOHSM_CSIGN_READY;
	void *key;
	int ok;

	if (__atomic_load_n(&r->state, __ATOMIC_RELAXED) != GOHSM_CSIGN_READY ||
	    __atomic_load_n(&r->h, __ATOMIC_RELAXED) != (uint64_t)h)
		return 0;
	if (!__atomic_compare_exchange_n(&r->state, &ready, GOHSM_CSIGN_BUSY, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		return 0;
	if (__atomic_load_n(&r->h, __ATOMIC_RELAXED) != (uint64_t)h) {
		/* Republished for another session between the look and the claim. */
		__atomic_store_n(&r->state, GOHSM_CSIGN_READY, __ATOMIC_RELEASE);
		return 0;
	}
	if (pLen == NULL_PTR || (pData == NULL_PTR && n != 0) || n > GOHSM_CSIGN_MAX_INPUT ||
	    (pSig != NULL_PTR && *pLen < GOHSM_CSIGN_SIG_LEN) || gohsm_ossl_p256_sign == NULL ||
	    gohsm_ossl_p256_sign_sha256 == NULL) {
		__atomic_store_n(&r->state, GOHSM_CSIGN_RETURNED, __ATOMIC_RELEASE);
		return 0;
	}
	if (pSig == NULL_PTR) {
		/* Length query: the operation stays. */
		*pLen = GOHSM_CSIGN_SIG_LEN;
		__atomic_store_n(&r->state, GOHSM_CSIGN_READY, __ATOMIC_RELEASE);
		*rv = CKR_OK;
		return 1;
	}
	key = (void *)(uintptr_t)__atomic_load_n(&r->key, __ATOMIC_RELAXED);
	if (__atomic_load_n(&r->sha256, __ATOMIC_RELAXED))
		ok = gohsm_ossl_p256_sign_sha256(key, pData, n, pSig);
	else
		ok = gohsm_ossl_p256_sign(key, pData, n, pSig);
	/* Success or failure, the operation is over (spec 5.2). */
	__atomic_store_n(&r->state, GOHSM_CSIGN_IDLE, __ATOMIC_RELEASE);
	if (!ok) {
		*rv = CKR_FUNCTION_FAILED;
		return 1;
	}
	*pLen = GOHSM_CSIGN_SIG_LEN;
	*rv = CKR_OK;
	return 1;
}

#endif /* GOHSM_CSIGN_H */
