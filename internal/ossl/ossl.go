//go:build cgo

// Package ossl runs the private-key operations that dominate HSM workloads
// (RSA's private exponentiation, ECDSA P-256 signing) in the system's
// OpenSSL 3 libcrypto, loaded at run time.
//
// Why: on the x86-64 machines gohsm targets, libcrypto's constant-time
// RSA (bn_mul_mont with MULX/ADX, RSAZ) and its P-256 (ecp_nistz256) are
// about twice as fast as Go's: `openssl speed` measured 886 us per
// RSA-2048 signature and 27 us per P-256 one where crypto/rsa took 1,650 us
// and crypto/ecdsa 36 us. The padding, hashing and every check stay in Go
// (package mechanisms); only the raw private operation crosses.
//
// How it is loaded: dlmopen(LM_ID_BASE, "libcrypto.so.3") - the
// process's own libcrypto when the host already has one (nginx, curl), so
// there is one OpenSSL in the process, and the same one from a copy of
// libgohsm.so that a forked child runs in its own link-map namespace
// (pkcs11/fork.c): a second libcrypto there would allocate pthread keys
// from that namespace's libc, colliding with the host's. No headers are
// needed at build time: the few functions used are declared here with
// their OpenSSL 3 prototypes. Without libcrypto.so.3 (or without cgo, see
// ossl_stub.go), Available reports why and callers use Go's crypto.
//
// Forks: one libcrypto serves every copy of the module in a process, so a
// forked child uses the libcrypto memory its parent had at fork(), locks
// included. A parent thread inside ECDSA_do_sign at that moment can hold a
// DRBG lock, and the child's first signature (its DRBG reseeds after a
// fork) then waits for it forever: 1-7 children of 20 hung in 4 of about
// 170 runs of tests/fork's children case under load. So every call into
// libcrypto, the loading included, is bracketed (gohsm_ossl_enter/leave),
// and a fork handler registered with the process's C library waits,
// before the fork, until no thread of this copy is inside libcrypto (or
// exiting after using it: libcrypto's cleanup of a thread takes its global
// lock) and holds new callers back until the fork is done (forkguard.h,
// docs/fork.md).
//
// Keys are built with OpenSSL's own methods set explicitly
// (RSA_PKCS1_OpenSSL, EC_KEY_OpenSSL), never a default ENGINE a host may
// have configured: a pkcs11 engine as default would route the operation
// back into this module. RSA private operations keep OpenSSL's blinding and
// its check of the CRT result with the public exponent (rsa_ossl_mod_exp
// raises the result to e mod n and, when that is not the input,
// recomputes it without CRT from d). Package mechanisms relies on that
// check instead of repeating it, but only after a probe at the first RSA
// key has shown it working in this libcrypto (a key with a faulty CRT
// exponent still gives the right result through RSAKey.Private); otherwise
// it checks every result itself. The check covers the exponentiation, not
// the blinding around it.
package ossl

/*
#cgo LDFLAGS: -ldl -lpthread
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct bignum_st BIGNUM;
typedef struct rsa_st RSA;
typedef struct rsa_meth_st RSA_METHOD;
typedef struct ec_key_st EC_KEY;
typedef struct ec_key_method_st EC_KEY_METHOD;
typedef struct ECDSA_SIG_st ECDSA_SIG;

static struct {
	BIGNUM *(*BN_bin2bn)(const unsigned char *, int, BIGNUM *);
	void (*BN_clear_free)(BIGNUM *);
	int (*BN_bn2binpad)(const BIGNUM *, unsigned char *, int);
	RSA *(*RSA_new)(void);
	void (*RSA_free)(RSA *);
	int (*RSA_set_method)(RSA *, const RSA_METHOD *);
	const RSA_METHOD *(*RSA_PKCS1_OpenSSL)(void);
	int (*RSA_set0_key)(RSA *, BIGNUM *, BIGNUM *, BIGNUM *);
	int (*RSA_set0_factors)(RSA *, BIGNUM *, BIGNUM *);
	int (*RSA_set0_crt_params)(RSA *, BIGNUM *, BIGNUM *, BIGNUM *);
	int (*RSA_private_encrypt)(int, const unsigned char *, unsigned char *, RSA *, int);
	EC_KEY *(*EC_KEY_new_by_curve_name)(int);
	void (*EC_KEY_free)(EC_KEY *);
	int (*EC_KEY_up_ref)(EC_KEY *);
	int (*EC_KEY_set_method)(EC_KEY *, const EC_KEY_METHOD *);
	const EC_KEY_METHOD *(*EC_KEY_OpenSSL)(void);
	int (*EC_KEY_set_private_key)(EC_KEY *, const BIGNUM *);
	ECDSA_SIG *(*ECDSA_do_sign)(const unsigned char *, int, EC_KEY *);
	void (*ECDSA_SIG_get0)(const ECDSA_SIG *, const BIGNUM **, const BIGNUM **);
	void (*ECDSA_SIG_free)(ECDSA_SIG *);
	int (*SHA256_Init)(void *);
	int (*SHA256_Update)(void *, const void *, size_t);
	int (*SHA256_Final)(unsigned char *, void *);
	int (*ERR_set_mark)(void);
	int (*ERR_pop_to_mark)(void);
	unsigned long (*OpenSSL_version_num)(void);
	const char *(*OpenSSL_version)(int);
} gohsm_ossl;

#include "forkguard.h"

#define GOHSM_RSA_NO_PADDING 3
#define GOHSM_NID_X9_62_prime256v1 415

// gohsm_ossl_load_unguarded loads libcrypto and resolves every function;
// on failure it writes why.
static int gohsm_ossl_load_unguarded(char *why, size_t n)
{
	void *h;
	struct { void **slot; const char *name; } syms[] = {
#define SYM(f) { (void **)&gohsm_ossl.f, #f }
		SYM(BN_bin2bn), SYM(BN_clear_free), SYM(BN_bn2binpad),
		SYM(RSA_new), SYM(RSA_free), SYM(RSA_set_method), SYM(RSA_PKCS1_OpenSSL),
		SYM(RSA_set0_key), SYM(RSA_set0_factors), SYM(RSA_set0_crt_params), SYM(RSA_private_encrypt),
		SYM(EC_KEY_new_by_curve_name), SYM(EC_KEY_free), SYM(EC_KEY_up_ref), SYM(EC_KEY_set_method), SYM(EC_KEY_OpenSSL),
		SYM(EC_KEY_set_private_key), SYM(ECDSA_do_sign), SYM(ECDSA_SIG_get0), SYM(ECDSA_SIG_free),
		SYM(SHA256_Init), SYM(SHA256_Update), SYM(SHA256_Final),
		SYM(ERR_set_mark), SYM(ERR_pop_to_mark), SYM(OpenSSL_version_num), SYM(OpenSSL_version),
#undef SYM
	};
	size_t i;

#ifdef __GLIBC__
	h = dlmopen(LM_ID_BASE, "libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);
#else
	h = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);
#endif
	if (h == NULL) {
		const char *e = dlerror();
		snprintf(why, n, "%s", e ? e : "libcrypto.so.3 not found");
		return 0;
	}
	for (i = 0; i < sizeof syms / sizeof syms[0]; i++) {
		*syms[i].slot = dlsym(h, syms[i].name);
		if (*syms[i].slot == NULL) {
			snprintf(why, n, "libcrypto.so.3 has no %s", syms[i].name);
			return 0;
		}
	}
	if (gohsm_ossl.OpenSSL_version_num() < 0x30000000UL) {
		snprintf(why, n, "libcrypto.so.3 reports version %lx, want 3.x", gohsm_ossl.OpenSSL_version_num());
		return 0;
	}
	return 1;
}

// r and s to bytes. OpenSSL 3.0's BN_bn2binpad (and BN_bn2bin, which
// shares its loop) writes one byte per iteration without branching on the
// value, after a constant-time BN_num_bytes: about 800 instructions for
// each of a P-256 signature's r and s, which are public output; the view
// below takes about 20. (On a big-endian host the byte swap is wrong and
// the probe fails.) The BIGNUM is opaque in the
// public headers; its layout since OpenSSL 1.1.0 (crypto/bn/bn_local.h)
// is the view below: the limbs, least significant first, the count in
// use, the count allocated, the sign, the flags. gohsm_ossl_bn_direct
// relies on it only after the probe (gohsm_ossl_bn_probe, at load) has
// compared it with BN_bn2binpad on values of every length from 0 to 32
// bytes in this libcrypto; otherwise, and for any BIGNUM whose view does
// not look like a non-negative value of at most n bytes, BN_bn2binpad
// writes it.
struct gohsm_bn_view {
	unsigned long *d;
	int top, dmax, neg, flags;
};

// gohsm_ossl_bn_fast is set by the probe when the view is proven.
static int gohsm_ossl_bn_fast;

// gohsm_ossl_bn_direct writes b as n big-endian bytes (n a multiple of 8)
// from the view; 0 when the view does not hold a value of that size.
static int gohsm_ossl_bn_direct(const BIGNUM *b, uint8_t *out, size_t n)
{
	const struct gohsm_bn_view *v = (const struct gohsm_bn_view *)b;
	size_t i, limbs = n / 8;
	int top = v->top;

	if (sizeof(unsigned long) != 8 || n % 8 != 0 || top < 0 || (size_t)top > limbs || v->dmax < top ||
	    v->neg != 0 || (top > 0 && v->d == NULL))
		return 0;
	for (i = 0; i < limbs; i++) {
		unsigned long l = i < (size_t)top ? v->d[i] : 0;
		l = __builtin_bswap64(l);
		memcpy(out + n - 8 * (i + 1), &l, 8);
	}
	return 1;
}

// Readers the probe can be run with: the real one, and two wrong ones
// (limbs taken most significant first; bytes of a limb not swapped) that
// the tests show it refuses.
enum { GOHSM_BN_READ_VIEW, GOHSM_BN_READ_LIMBS_REVERSED, GOHSM_BN_READ_NO_BSWAP };

static int gohsm_ossl_bn_read(int how, const BIGNUM *b, uint8_t *out, size_t n)
{
	const struct gohsm_bn_view *v = (const struct gohsm_bn_view *)b;
	size_t i, limbs = n / 8;

	if (!gohsm_ossl_bn_direct(b, out, n))
		return 0;
	if (how == GOHSM_BN_READ_VIEW)
		return 1;
	for (i = 0; i < limbs; i++) {
		size_t j = how == GOHSM_BN_READ_LIMBS_REVERSED ? (size_t)v->top - 1 - i : i;
		unsigned long l = i < (size_t)v->top ? v->d[j] : 0;
		if (how != GOHSM_BN_READ_NO_BSWAP)
			l = __builtin_bswap64(l);
		memcpy(out + n - 8 * (i + 1), &l, 8);
	}
	return 1;
}

// gohsm_ossl_bn_probe reports whether reader how gives BN_bn2binpad's 32
// bytes for values of every length from 0 to 32 bytes (a pattern with no
// two bytes alike, a leading 0x80, a leading 0x01, all 0xff), each with
// the BIGNUM's top as the value's count of 64-bit limbs.
static int gohsm_ossl_bn_probe_unguarded(int how)
{
	uint8_t in[32], want[32], got[32];
	int len, pat, ok = 1;

	for (len = 0; len <= 32 && ok; len++)
		for (pat = 0; pat < 4 && ok; pat++) {
			BIGNUM *b;
			int i;

			for (i = 0; i < len; i++)
				in[i] = pat == 3 ? 0xff : (uint8_t)(0x11 * (i % 15 + 1) + i / 15);
			if (len > 0 && pat == 1)
				in[0] = 0x80;
			if (len > 0 && pat == 2)
				in[0] = 0x01;
			b = gohsm_ossl.BN_bin2bn(in, len, NULL);
			if (b == NULL)
				return 0;
			ok = gohsm_ossl.BN_bn2binpad(b, want, 32) == 32 &&
			     ((const struct gohsm_bn_view *)b)->top == (len + 7) / 8 &&
			     gohsm_ossl_bn_read(how, b, got, 32) && memcmp(want, got, 32) == 0;
			gohsm_ossl.BN_clear_free(b);
		}
	return ok;
}

// gohsm_ossl_bn2bin writes b as n big-endian bytes: from the view when
// the probe proved it and it holds such a value, else BN_bn2binpad.
static int gohsm_ossl_bn2bin(const BIGNUM *b, uint8_t *out, size_t n)
{
	if (gohsm_ossl_bn_fast && gohsm_ossl_bn_direct(b, out, n))
		return 1;
	return gohsm_ossl.BN_bn2binpad(b, out, (int)n) == (int)n;
}

// gohsm_ossl_load registers the fork guard's handlers and then loads
// libcrypto inside the guard: a fork() while another thread is in the
// middle of loading it gave a child a half-relocated libcrypto, and the
// child's first signature jumped to an unrelocated address (SIGSEGV).
// (libcrypto 3 registers no fork handlers of its own: nothing inside the
// guard waits for the C library's fork-handler lock, which a fork holds
// while the prepare handler waits.)
static int gohsm_ossl_load(char *why, size_t n)
{
	struct gohsm_ossl_slot *g;
	int ok;

	if (!gohsm_ossl_register_fork(why, n))
		return 0;
	g = gohsm_ossl_enter();
	ok = gohsm_ossl_load_unguarded(why, n);
	if (ok)
		gohsm_ossl_bn_fast = gohsm_ossl_bn_probe_unguarded(GOHSM_BN_READ_VIEW);
	gohsm_ossl_leave(g);
	return ok;
}

static const char *gohsm_ossl_version_unguarded(void) { return gohsm_ossl.OpenSSL_version(0); }

static BIGNUM *gohsm_bn(const uint8_t *b, size_t n)
{
	return gohsm_ossl.BN_bin2bn(b, (int)n, NULL);
}

// gohsm_ossl_rsa_unguarded builds an RSA private key with OpenSSL's own method from
// eight big-endian values laid end to end in v, of the lengths in len: n,
// e, d, p, q, dP, dQ, qInv.
static RSA *gohsm_ossl_rsa_unguarded(const uint8_t *v, const size_t *len)
{
	BIGNUM *b[8] = { 0 };
	RSA *r;
	int i;
	size_t off = 0;

	r = gohsm_ossl.RSA_new();
	if (r == NULL)
		return NULL;
	if (gohsm_ossl.RSA_set_method(r, gohsm_ossl.RSA_PKCS1_OpenSSL()) != 1)
		goto fail;
	for (i = 0; i < 8; off += len[i], i++)
		if ((b[i] = gohsm_bn(v + off, len[i])) == NULL)
			goto fail;
	if (gohsm_ossl.RSA_set0_key(r, b[0], b[1], b[2]) != 1)
		goto fail;
	b[0] = b[1] = b[2] = NULL;
	if (gohsm_ossl.RSA_set0_factors(r, b[3], b[4]) != 1)
		goto fail;
	b[3] = b[4] = NULL;
	if (gohsm_ossl.RSA_set0_crt_params(r, b[5], b[6], b[7]) != 1)
		goto fail;
	return r;
fail:
	for (i = 0; i < 8; i++)
		if (b[i] != NULL)
			gohsm_ossl.BN_clear_free(b[i]);
	gohsm_ossl.RSA_free(r);
	return NULL;
}

// gohsm_ossl_rsa_private_unguarded computes in^d mod n into out (both k bytes). Any
// error OpenSSL queued is taken off this thread's queue again, so that a
// host using the same libcrypto never sees it.
static int gohsm_ossl_rsa_private_unguarded(RSA *r, const uint8_t *in, uint8_t *out, size_t k)
{
	int n;

	gohsm_ossl.ERR_set_mark();
	n = gohsm_ossl.RSA_private_encrypt((int)k, in, out, r, GOHSM_RSA_NO_PADDING);
	gohsm_ossl.ERR_pop_to_mark();
	return n == (int)k;
}

static void gohsm_ossl_rsa_free_unguarded(RSA *r) { gohsm_ossl.RSA_free(r); }

static EC_KEY *gohsm_ossl_p256_unguarded(const uint8_t *d, size_t n)
{
	EC_KEY *k;
	BIGNUM *b;
	int ok;

	k = gohsm_ossl.EC_KEY_new_by_curve_name(GOHSM_NID_X9_62_prime256v1);
	if (k == NULL)
		return NULL;
	if (gohsm_ossl.EC_KEY_set_method(k, gohsm_ossl.EC_KEY_OpenSSL()) != 1) {
		gohsm_ossl.EC_KEY_free(k);
		return NULL;
	}
	b = gohsm_bn(d, n);
	ok = b != NULL && gohsm_ossl.EC_KEY_set_private_key(k, b) == 1;
	if (b != NULL)
		gohsm_ossl.BN_clear_free(b); // EC_KEY_set_private_key copies it
	if (!ok) {
		gohsm_ossl.EC_KEY_free(k);
		return NULL;
	}
	return k;
}

// gohsm_ossl_ecdsa_sign_unguarded signs a digest and writes r || s, each padded to
// half bytes.
static int gohsm_ossl_ecdsa_sign_unguarded(EC_KEY *k, const uint8_t *dg, size_t n, uint8_t *out, size_t half)
{
	ECDSA_SIG *sig;
	const BIGNUM *r, *s;
	int ok;

	gohsm_ossl.ERR_set_mark();
	sig = gohsm_ossl.ECDSA_do_sign(dg, (int)n, k);
	if (sig == NULL) {
		gohsm_ossl.ERR_pop_to_mark();
		return 0;
	}
	gohsm_ossl.ECDSA_SIG_get0(sig, &r, &s);
	ok = gohsm_ossl_bn2bin(r, out, half) && gohsm_ossl_bn2bin(s, out + half, half);
	gohsm_ossl.ECDSA_SIG_free(sig);
	gohsm_ossl.ERR_pop_to_mark();
	return ok;
}

static void gohsm_ossl_ec_free_unguarded(EC_KEY *k) { gohsm_ossl.EC_KEY_free(k); }

// gohsm_ossl_sha256_ecdsa_sign_unguarded is CKM_ECDSA_SHA256's signature
// in one call: SHA-256 of the data with libcrypto's low-level SHA256_*
// (SHA256() in OpenSSL 3 is EVP_Q_digest, an algorithm fetch per call
// behind a lock every thread takes), then the signature above.
// SHA256_CTX's layout is public (openssl/sha.h: 112 bytes); the buffer is
// larger and aligned.
static int gohsm_ossl_sha256_ecdsa_sign_unguarded(EC_KEY *k, const uint8_t *data, size_t n, uint8_t *out, size_t half)
{
	union {
		unsigned char b[256];
		uint64_t align;
	} ctx;
	uint8_t md[32];
	int ok;

	ok = gohsm_ossl.SHA256_Init(&ctx) == 1 && gohsm_ossl.SHA256_Update(&ctx, data, n) == 1 &&
	     gohsm_ossl.SHA256_Final(md, &ctx) == 1;
	memset(&ctx, 0, sizeof ctx);
	return ok && gohsm_ossl_ecdsa_sign_unguarded(k, md, sizeof md, out, half);
}
static int gohsm_ossl_ec_ref_unguarded(EC_KEY *k) { return gohsm_ossl.EC_KEY_up_ref(k); }

// The module's entry points (pkcs11/shim.c) define gohsm_yield_mark_c: a
// thread that calls into libcrypto yields to Go's scheduler on a busy
// machine (pkcs11/yield.h). Weak: this package's own tests link without
// it.
extern void gohsm_yield_mark_c(void) __attribute__((weak, visibility("hidden")));

static inline void gohsm_ossl_mark(void)
{
	if (gohsm_yield_mark_c)
		gohsm_yield_mark_c();
}

// The functions Go calls: each marks the thread (above) and runs its
// _unguarded body inside the fork guard (gohsm_ossl_enter /
// gohsm_ossl_leave).
#define GOHSM_GUARDED(type, name, params, args)                  \
	static type name params                                  \
	{                                                        \
		gohsm_ossl_mark();                               \
		struct gohsm_ossl_slot *g = gohsm_ossl_enter();  \
		type ret = name##_unguarded args;                \
		gohsm_ossl_leave(g);                             \
		return ret;                                      \
	}
#define GOHSM_GUARDED_VOID(name, params, args)                   \
	static void name params                                  \
	{                                                        \
		gohsm_ossl_mark();                               \
		struct gohsm_ossl_slot *g = gohsm_ossl_enter();  \
		name##_unguarded args;                           \
		gohsm_ossl_leave(g);                             \
	}
GOHSM_GUARDED(const char *, gohsm_ossl_version, (void), ())
GOHSM_GUARDED(RSA *, gohsm_ossl_rsa, (const uint8_t *v, const size_t *len), (v, len))
GOHSM_GUARDED(int, gohsm_ossl_rsa_private, (RSA *r, const uint8_t *in, uint8_t *out, size_t k), (r, in, out, k))
GOHSM_GUARDED_VOID(gohsm_ossl_rsa_free, (RSA *r), (r))
GOHSM_GUARDED(EC_KEY *, gohsm_ossl_p256, (const uint8_t *d, size_t n), (d, n))
GOHSM_GUARDED(int, gohsm_ossl_ecdsa_sign, (EC_KEY *k, const uint8_t *dg, size_t n, uint8_t *out, size_t half),
	      (k, dg, n, out, half))
GOHSM_GUARDED_VOID(gohsm_ossl_ec_free, (EC_KEY *k), (k))
GOHSM_GUARDED(int, gohsm_ossl_ec_ref, (EC_KEY *k), (k))
GOHSM_GUARDED(int, gohsm_ossl_sha256_ecdsa_sign, (EC_KEY *k, const uint8_t *data, size_t n, uint8_t *out, size_t half),
	      (k, data, n, out, half))
GOHSM_GUARDED(int, gohsm_ossl_bn_probe, (int how), (how))

// The C side of the module's C_Sign (pkcs11/csign.c) signs CKM_ECDSA with
// a P-256 key prepared here without entering Go: these three are what it
// calls, the same guarded code Go's path runs (fork guard, error-queue
// mark and pop, the probe-checked copy of r and s). Hidden: they are
// linked into the module, never exported from it.
//
// gohsm_ossl_p256_ref takes a reference to a key (EC_KEY_up_ref): 1 on
// success. gohsm_ossl_p256_unref drops one (EC_KEY_free).
// gohsm_ossl_p256_sign signs n digest bytes (dg may be NULL when n is 0)
// and writes r || s, 32 bytes each, into out: 1 on success.
// gohsm_ossl_p256_sign_sha256 does the same over the SHA-256 of n bytes
// of data (CKM_ECDSA_SHA256).
static const uint8_t gohsm_ossl_empty_digest;

__attribute__((visibility("hidden"))) int gohsm_ossl_p256_ref(void *k) { return gohsm_ossl_ec_ref((EC_KEY *)k) == 1; }
__attribute__((visibility("hidden"))) void gohsm_ossl_p256_unref(void *k) { gohsm_ossl_ec_free((EC_KEY *)k); }
__attribute__((visibility("hidden"))) int gohsm_ossl_p256_sign(void *k, const uint8_t *dg, size_t n, uint8_t *out)
{
	return gohsm_ossl_ecdsa_sign((EC_KEY *)k, dg != NULL ? dg : &gohsm_ossl_empty_digest, n, out, 32);
}
__attribute__((visibility("hidden"))) int gohsm_ossl_p256_sign_sha256(void *k, const uint8_t *data, size_t n, uint8_t *out)
{
	return gohsm_ossl_sha256_ecdsa_sign((EC_KEY *)k, data != NULL ? data : &gohsm_ossl_empty_digest, n, out, 32);
}

// For tests: whether r and s are read from the view, and turning it off
// or back on (on only where the probe passed).
static int gohsm_ossl_bn_fast_get(void) { return gohsm_ossl_bn_fast; }
static void gohsm_ossl_bn_fast_set(int on) { gohsm_ossl_bn_fast = on && gohsm_ossl_bn_probe(GOHSM_BN_READ_VIEW); }
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Cgo is true: this build can load libcrypto (ossl_stub.go is the other).
const Cgo = true

var load = sync.OnceValue(func() error {
	if disabled {
		return errors.New("ossl: disabled by GOHSM_CRYPTO=go")
	}
	var why [256]C.char
	if C.gohsm_ossl_load(&why[0], C.size_t(len(why))) == 0 {
		return fmt.Errorf("ossl: %s", C.GoString(&why[0]))
	}
	return nil
})

// Available loads libcrypto once and reports whether it can be used.
func Available() error { return load() }

// Version is libcrypto's version text ("" when it is not available).
func Version() string {
	if load() != nil {
		return ""
	}
	return C.GoString(C.gohsm_ossl_version())
}

// ptr is the address of a slice's first byte (nil for an empty slice):
// cgo lets C read Go memory that holds no Go pointers for the duration of
// a call.
func ptr(b []byte) *C.uint8_t {
	if len(b) == 0 {
		return nil
	}
	return (*C.uint8_t)(unsafe.Pointer(&b[0]))
}

// live is the set of libcrypto keys this package made and has not freed.
// A key is freed only by taking it out of the set, so a cleanup that
// comes twice for one key, or with a value that is no key of ours, frees
// nothing (and is counted) instead of handing libcrypto a pointer it never
// gave out. Once, a CI run of the cgo tests (built with Go 1.26.8) died in
// RSA_free called from a key's cleanup with an argument that was no RSA at
// all but the base of a malloc arena; not reproduced since, cause unknown.
// A crashed host is the one outcome an HSM module must not produce.
var live = struct {
	sync.Mutex
	m map[unsafe.Pointer]struct{}
}{m: map[unsafe.Pointer]struct{}{}}

// strayFrees counts cleanups whose key was not live (see live).
var strayFrees atomic.Uint64

// StrayFrees is how many key cleanups found their key already freed or
// never made here (0 unless something went wrong).
func StrayFrees() uint64 { return strayFrees.Load() }

func track(p unsafe.Pointer) {
	live.Lock()
	live.m[p] = struct{}{}
	live.Unlock()
}

// untrack takes p out of the live set and reports whether it was there.
func untrack(p unsafe.Pointer) bool {
	live.Lock()
	defer live.Unlock()
	if _, ok := live.m[p]; !ok {
		return false
	}
	delete(live.m, p)
	return true
}

func freeRSA(r *C.RSA) {
	if !untrack(unsafe.Pointer(r)) {
		strayFrees.Add(1)
		return
	}
	C.gohsm_ossl_rsa_free(r)
}

func freeP256(k *C.EC_KEY) {
	if !untrack(unsafe.Pointer(k)) {
		strayFrees.Add(1)
		return
	}
	C.gohsm_ossl_ec_free(k)
}

// RSAKey is an RSA private key held by libcrypto; its Montgomery contexts
// and blinding are made at the first use and kept. Safe for concurrent
// use (OpenSSL locks its blinding; a thread that did not make it uses the
// shared one).
type RSAKey struct {
	r *C.RSA
	k int
}

// NewRSAKey builds a key from big-endian n, e, d, p, q, dP, dQ, qInv. The
// caller keeps (and clears) its slices; libcrypto copies them.
func NewRSAKey(n, e, d, p, q, dP, dQ, qInv []byte) (*RSAKey, error) {
	if err := load(); err != nil {
		return nil, err
	}
	// One buffer of the values end to end: C reads it during the call,
	// and no Go pointer has to be stored in C memory.
	vals := [][]byte{n, e, d, p, q, dP, dQ, qInv}
	var lens [8]C.size_t
	total := 0
	for _, v := range vals {
		total += len(v)
	}
	buf := make([]byte, 0, total) // sized once: no stray copy of a secret
	for i, v := range vals {
		if len(v) == 0 {
			return nil, fmt.Errorf("ossl: rsa key value %d is empty", i)
		}
		buf = append(buf, v...)
		lens[i] = C.size_t(len(v))
	}
	defer clear(buf)
	r := C.gohsm_ossl_rsa(ptr(buf), &lens[0])
	if r == nil {
		return nil, errors.New("ossl: libcrypto refused the rsa key")
	}
	key := &RSAKey{r: r, k: len(n)}
	track(unsafe.Pointer(r))
	runtime.AddCleanup(key, freeRSA, r)
	return key, nil
}

// Private computes in^d mod n (RSADP / RSASP1, RFC 8017 §5.1.2, §5.2.1)
// into out. in and out are exactly the modulus length; in must be below
// the modulus (the caller has checked).
func (k *RSAKey) Private(out, in []byte) error {
	if len(in) != k.k || len(out) != k.k {
		return fmt.Errorf("ossl: rsa private operation on %d bytes into %d, want %d", len(in), len(out), k.k)
	}
	ok := C.gohsm_ossl_rsa_private(k.r, ptr(in), ptr(out), C.size_t(k.k))
	runtime.KeepAlive(k)
	if ok == 0 {
		return errors.New("ossl: rsa private operation failed")
	}
	return nil
}

// The fork guard's handlers and counters, for tests (a Go test cannot
// fork): forkPrepare and forkParent run what fork() runs around itself,
// threadsInside counts threads inside libcrypto, forkTimeouts counts
// prepare handlers that gave up waiting.
func forkPrepare()          { C.gohsm_ossl_fork_prepare() }
func forkParent()           { C.gohsm_ossl_fork_parent() }
func threadsInside() uint64 { return uint64(C.gohsm_ossl_inside()) }
func forkTimeouts() uint64  { return uint64(C.gohsm_ossl_timeouts()) }

// The probe of the BIGNUM view, for tests: bnProbe runs it with the real
// reader or a wrong one, bnFast reports whether signatures read r and s
// from the view, setBNFast turns that off or (where the probe passes) on.
const (
	bnReadView          = C.GOHSM_BN_READ_VIEW
	bnReadLimbsReversed = C.GOHSM_BN_READ_LIMBS_REVERSED
	bnReadNoByteSwap    = C.GOHSM_BN_READ_NO_BSWAP
)

func bnProbe(how C.int) bool { return C.gohsm_ossl_bn_probe(how) != 0 }
func bnFast() bool           { return C.gohsm_ossl_bn_fast_get() != 0 }
func setBNFast(on bool) {
	v := C.int(0)
	if on {
		v = 1
	}
	C.gohsm_ossl_bn_fast_set(v)
}

// P256Key is an ECDSA P-256 private key held by libcrypto. Safe for
// concurrent use.
type P256Key struct{ k *C.EC_KEY }

// NewP256Key builds a key from the big-endian private scalar.
func NewP256Key(d []byte) (*P256Key, error) {
	if err := load(); err != nil {
		return nil, err
	}
	if len(d) == 0 {
		return nil, errors.New("ossl: empty p-256 scalar")
	}
	k := C.gohsm_ossl_p256(ptr(d), C.size_t(len(d)))
	runtime.KeepAlive(d)
	if k == nil {
		return nil, errors.New("ossl: libcrypto refused the p-256 key")
	}
	key := &P256Key{k: k}
	track(unsafe.Pointer(k))
	runtime.AddCleanup(key, freeP256, k)
	return key, nil
}

// Handle is the key's libcrypto address (an EC_KEY *), for the module's
// C_Sign in C (pkcs11/csign.c), which takes its own reference to it
// (gohsm_ossl_p256_ref) while the key is alive; 0 for a nil key.
func (k *P256Key) Handle() uintptr {
	if k == nil {
		return 0
	}
	return uintptr(unsafe.Pointer(k.k))
}

// signSHA256 is the module's C_Sign of CKM_ECDSA_SHA256 in C
// (gohsm_ossl_p256_sign_sha256), for tests.
func (k *P256Key) signSHA256(out, data []byte) error {
	ok := C.gohsm_ossl_p256_sign_sha256(unsafe.Pointer(k.k), ptr(data), C.size_t(len(data)), ptr(out))
	runtime.KeepAlive(k)
	if ok == 0 {
		return errors.New("ossl: ecdsa p-256 sha-256 sign failed")
	}
	return nil
}

// emptyDigest is where an empty digest points. A package variable: a
// local one whose address goes to C moved to the heap, one allocation per
// signature.
var emptyDigest C.uint8_t

// Sign signs a digest (any length: ECDSA uses its leftmost 256 bits) with
// a fresh random nonce from libcrypto's DRBG and writes r || s, 32 bytes
// each, into out.
func (k *P256Key) Sign(out, digest []byte) error {
	if len(out) != 64 {
		return fmt.Errorf("ossl: p-256 signature buffer of %d bytes, want 64", len(out))
	}
	dg := ptr(digest)
	if dg == nil {
		dg = &emptyDigest // a valid pointer for libcrypto, 0 bytes read
	}
	ok := C.gohsm_ossl_ecdsa_sign(k.k, dg, C.size_t(len(digest)), ptr(out), 32)
	runtime.KeepAlive(k)
	if ok == 0 {
		return errors.New("ossl: ecdsa p-256 sign failed")
	}
	return nil
}
