#ifndef P11BENCH_OSSLBASE_H
#define P11BENCH_OSSLBASE_H

#include <stddef.h>
#include <stdint.h>

enum { OSSL_BASE_ECDSA_P256 = 0, OSSL_BASE_RSA2048_PKCS1 = 1 };
#define OSSL_BASE_MAX_THREADS 8

/* ossl_base_load loads libcrypto.so.3 and makes one P-256 and one
 * RSA-2048 key; on failure it writes why and returns 0. */
int ossl_base_load(char *why, size_t n);
/* ossl_base_run signs with every thread for seconds and adds what thread i
 * did to ops[i] and elapsed_ns[i], and every signature's latency to hist
 * (HIST_BUCKETS counters, bench.h's layout); 0 on failure. */
int ossl_base_run(int kind, int threads, double seconds, uint64_t *ops, uint64_t *elapsed_ns, uint64_t *hist);

#endif
