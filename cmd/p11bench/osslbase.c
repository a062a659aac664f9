/*
 * osslbase.c - OpenSSL's own signing speed from plain C threads, in this
 * process: the ceiling for a module whose signatures run in the same
 * libcrypto, and for its 2-session scaling on this machine. libcrypto.so.3
 * is loaded at run time (no headers needed); the prototypes are OpenSSL
 * 3's.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "osslbase.h"

typedef struct bignum_st BIGNUM;
typedef struct rsa_st RSA;
typedef struct ec_key_st EC_KEY;
typedef struct ECDSA_SIG_st ECDSA_SIG;

static struct {
	BIGNUM *(*BN_new)(void);
	int (*BN_set_word)(BIGNUM *, unsigned long);
	void (*BN_free)(BIGNUM *);
	RSA *(*RSA_new)(void);
	int (*RSA_generate_key_ex)(RSA *, int, BIGNUM *, void *);
	int (*RSA_private_encrypt)(int, const unsigned char *, unsigned char *, RSA *, int);
	EC_KEY *(*EC_KEY_new_by_curve_name)(int);
	int (*EC_KEY_generate_key)(EC_KEY *);
	ECDSA_SIG *(*ECDSA_do_sign)(const unsigned char *, int, EC_KEY *);
	void (*ECDSA_SIG_free)(ECDSA_SIG *);
} o;

static void *rsa_key, *ec_key;

int ossl_base_load(char *why, size_t n)
{
	void *h = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);
	struct { void **slot; const char *name; } syms[] = {
#define SYM(f) { (void **)&o.f, #f }
		SYM(BN_new), SYM(BN_set_word), SYM(BN_free), SYM(RSA_new), SYM(RSA_generate_key_ex),
		SYM(RSA_private_encrypt), SYM(EC_KEY_new_by_curve_name), SYM(EC_KEY_generate_key),
		SYM(ECDSA_do_sign), SYM(ECDSA_SIG_free),
#undef SYM
	};
	BIGNUM *e;
	size_t i;

	if (h == NULL) {
		snprintf(why, n, "%s", dlerror());
		return 0;
	}
	for (i = 0; i < sizeof syms / sizeof syms[0]; i++)
		if ((*syms[i].slot = dlsym(h, syms[i].name)) == NULL) {
			snprintf(why, n, "libcrypto.so.3 has no %s", syms[i].name);
			return 0;
		}
	ec_key = o.EC_KEY_new_by_curve_name(415 /* NID_X9_62_prime256v1 */);
	if (ec_key == NULL || o.EC_KEY_generate_key(ec_key) != 1) {
		snprintf(why, n, "P-256 key generation failed");
		return 0;
	}
	rsa_key = o.RSA_new();
	e = o.BN_new();
	if (rsa_key == NULL || e == NULL || o.BN_set_word(e, 65537) != 1 ||
	    o.RSA_generate_key_ex(rsa_key, 2048, e, NULL) != 1) {
		snprintf(why, n, "RSA-2048 key generation failed");
		return 0;
	}
	o.BN_free(e);
	return 1;
}

struct worker {
	int kind;
	uint64_t ns;
	uint64_t ops;
	uint64_t elapsed;
	int failed;
	uint64_t *hist; /* HIST_BUCKETS, per-signature latency as bench_run's */
};

/* The SHA-256 DigestInfo prefix (RFC 8017 9.2) and a digest: what a
 * CKM_SHA256_RSA_PKCS signature pads and exponentiates. */
static const unsigned char digest_info[51] = {
	0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20,
	1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
};

/* work signs until w->ns have passed, timing each signature with one clock
 * read between signatures, as bench_run times a module's operations. */
static void *work(void *arg)
{
	struct worker *w = arg;
	unsigned char out[512];
	uint64_t start = bench_now(), end = start + w->ns, t0 = start;

	while (t0 < end) {
		uint64_t t1;

		if (w->kind == OSSL_BASE_ECDSA_P256) {
			ECDSA_SIG *s = o.ECDSA_do_sign(digest_info + 19, 32, ec_key);
			if (s == NULL) {
				w->failed = 1;
				return NULL;
			}
			o.ECDSA_SIG_free(s);
		} else if (o.RSA_private_encrypt(sizeof digest_info, digest_info, out, rsa_key, 1 /* RSA_PKCS1_PADDING */) != 256) {
			w->failed = 1;
			return NULL;
		}
		t1 = bench_now();
		w->hist[bench_hist_bucket(t1 - t0)]++;
		w->ops++;
		t0 = t1;
	}
	w->elapsed = t0 - start;
	return NULL;
}

int ossl_base_run(int kind, int threads, double seconds, uint64_t *ops, uint64_t *elapsed_ns, uint64_t *hist)
{
	pthread_t th[OSSL_BASE_MAX_THREADS];
	struct worker w[OSSL_BASE_MAX_THREADS];
	int i, b, started = 0, ok = 1;

	if (threads < 1 || threads > OSSL_BASE_MAX_THREADS)
		return 0;
	for (i = 0; i < threads; i++) {
		memset(&w[i], 0, sizeof w[i]);
		w[i].kind = kind;
		w[i].ns = (uint64_t)(seconds * 1e9);
		w[i].hist = calloc(HIST_BUCKETS, sizeof w[i].hist[0]);
		if (w[i].hist == NULL || pthread_create(&th[i], NULL, work, &w[i]) != 0) {
			free(w[i].hist);
			ok = 0;
			break;
		}
		started++;
	}
	for (i = 0; i < started; i++) {
		pthread_join(th[i], NULL);
		if (w[i].failed || w[i].elapsed == 0)
			ok = 0;
		ops[i] += w[i].ops;
		elapsed_ns[i] += w[i].elapsed;
		for (b = 0; b < HIST_BUCKETS; b++)
			hist[b] += w[i].hist[b];
		free(w[i].hist);
	}
	return ok;
}
