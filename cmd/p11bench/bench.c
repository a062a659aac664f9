#include "bench.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* CLOCK_MONOTONIC through the vDSO: about 20 ns on a TSC clock source. */
uint64_t bench_now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline int hist_bucket(uint64_t v) {
	if (v < (1u << HIST_SUB_BITS))
		return (int)v;
	int e = 63 - __builtin_clzll(v);
	int sub = (int)((v >> (e - HIST_SUB_BITS)) & ((1u << HIST_SUB_BITS) - 1));
	return ((e - HIST_SUB_BITS + 1) << HIST_SUB_BITS) + sub;
}

int bench_hist_bucket(uint64_t v) { return hist_bucket(v); }

/* The middle of a bucket's range, in nanoseconds. */
uint64_t bench_hist_value(int b) {
	if (b < (1 << HIST_SUB_BITS))
		return (uint64_t)b;
	int e = (b >> HIST_SUB_BITS) - 1 + HIST_SUB_BITS;
	uint64_t sub = (uint64_t)(b & ((1 << HIST_SUB_BITS) - 1));
	uint64_t lo = ((1ull << HIST_SUB_BITS) + sub) << (e - HIST_SUB_BITS);
	return lo + ((1ull << (e - HIST_SUB_BITS)) >> 1);
}

/* The no-op the harness cost is measured with; noinline and called through
 * a pointer, as a module's functions are. */
__attribute__((noinline)) static CK_RV noop_fn(void) {
	__asm__ volatile("");
	return CKR_OK;
}

static CK_RV op_noop(bench_ctx *c) { return c->noop(); }

static CK_RV op_get_info(bench_ctx *c) { return c->f->C_GetInfo(&c->info); }

static CK_RV op_sign(bench_ctx *c) {
	CK_RV rv = c->f->C_SignInit(c->s, &c->mech, c->key);
	if (rv != CKR_OK)
		return rv;
	CK_ULONG n = c->outLen;
	rv = c->f->C_Sign(c->s, c->in, c->inLen, c->out, &n);
	if (rv != CKR_OK)
		return rv;
	return n == c->outLen ? CKR_OK : P11BENCH_WRONG_RESULT;
}

/* op_verify checks the signature in out (outLen bytes) over in with key,
 * the public key: bench_prepare_verify put them there. */
static CK_RV op_verify(bench_ctx *c) {
	CK_RV rv = c->f->C_VerifyInit(c->s, &c->mech, c->key);
	if (rv != CKR_OK)
		return rv;
	return c->f->C_Verify(c->s, c->in, c->inLen, c->out, c->outLen);
}

static CK_RV op_encrypt_gcm(bench_ctx *c) {
	/* A fresh IV per operation: 4 fixed bytes, 8 bytes of counter. */
	uint64_t ctr = ++c->ivctr;
	memcpy(c->iv + 4, &ctr, 8);
	CK_RV rv = c->f->C_EncryptInit(c->s, &c->mech, c->key);
	if (rv != CKR_OK)
		return rv;
	CK_ULONG n = c->outLen;
	rv = c->f->C_Encrypt(c->s, c->in, c->inLen, c->out, &n);
	if (rv != CKR_OK)
		return rv;
	return n == c->outLen ? CKR_OK : P11BENCH_WRONG_RESULT;
}

static CK_RV op_digest(bench_ctx *c) {
	CK_RV rv = c->f->C_DigestInit(c->s, &c->mech);
	if (rv != CKR_OK)
		return rv;
	CK_ULONG n = c->outLen;
	rv = c->f->C_Digest(c->s, c->in, c->inLen, c->out, &n);
	if (rv != CKR_OK)
		return rv;
	return n == c->outLen ? CKR_OK : P11BENCH_WRONG_RESULT;
}

static CK_RV op_gen_key(bench_ctx *c) {
	if (c->nmade >= c->madeCap)
		return CKR_HOST_MEMORY;
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	CK_RV rv = c->f->C_GenerateKey(c->s, &c->mech, c->t1, c->n1, &h);
	if (rv != CKR_OK)
		return rv;
	c->made[c->nmade++] = h;
	return CKR_OK;
}

static CK_RV op_gen_key_pair(bench_ctx *c) {
	if (c->nmade + 2 > c->madeCap)
		return CKR_HOST_MEMORY;
	CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE, priv = CK_INVALID_HANDLE;
	CK_RV rv = c->f->C_GenerateKeyPair(c->s, &c->mech, c->t1, c->n1, c->t2, c->n2, &pub, &priv);
	if (rv != CKR_OK)
		return rv;
	c->made[c->nmade++] = pub;
	c->made[c->nmade++] = priv;
	return CKR_OK;
}

void bench_format_label(char *dst, const char *prefix, CK_ULONG i) {
	size_t n = strlen(prefix);
	memcpy(dst, prefix, n);
	for (int d = 4; d >= 0; d--) {
		dst[n + d] = (char)('0' + i % 10);
		i /= 10;
	}
	dst[n + 5] = 0;
}

static CK_RV op_find(bench_ctx *c) {
	/* Visit the labels in a scattered order (7919 is prime, so coprime
	 * with any count not a multiple of it). */
	c->findIdx = (c->findIdx + 7919) % c->findCount;
	CK_ULONG i = (CK_ULONG)c->findIdx;
	for (int d = 4; d >= 0; d--) {
		c->label[c->prefixLen + d] = (char)('0' + i % 10);
		i /= 10;
	}
	CK_RV rv = c->f->C_FindObjectsInit(c->s, c->findTmpl, 2);
	if (rv != CKR_OK)
		return rv;
	CK_OBJECT_HANDLE found[2];
	CK_ULONG n = 0;
	rv = c->f->C_FindObjects(c->s, found, 2, &n);
	CK_RV rv2 = c->f->C_FindObjectsFinal(c->s);
	if (rv != CKR_OK)
		return rv;
	if (rv2 != CKR_OK)
		return rv2;
	return n == 1 ? CKR_OK : P11BENCH_WRONG_RESULT;
}

static CK_RV op_open_close(bench_ctx *c) {
	CK_SESSION_HANDLE h;
	CK_RV rv = c->f->C_OpenSession(c->slot, CKF_SERIAL_SESSION, NULL, NULL, &h);
	if (rv != CKR_OK)
		return rv;
	return c->f->C_CloseSession(h);
}

static CK_RV op_random(bench_ctx *c) { return c->f->C_GenerateRandom(c->s, c->out, c->outLen); }

/* ML-KEM: the new secret key's template is t1; key is the public key
 * (encapsulate) or the private key (decapsulate, of the in bytes: any
 * ciphertext of the right length decapsulates, a random one to the
 * implicit-rejection key, at the same cost). */
static CK_RV op_encapsulate(bench_ctx *c) {
	if (c->f32 == NULL)
		return CKR_FUNCTION_NOT_SUPPORTED;
	if (c->nmade >= c->madeCap)
		return CKR_HOST_MEMORY;
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	CK_ULONG n = c->outLen;
	CK_RV rv = c->f32->C_EncapsulateKey(c->s, &c->mech, c->key, c->t1, c->n1, c->out, &n, &h);
	if (rv != CKR_OK)
		return rv;
	c->made[c->nmade++] = h;
	return n == c->outLen ? CKR_OK : P11BENCH_WRONG_RESULT;
}

static CK_RV op_decapsulate(bench_ctx *c) {
	if (c->f32 == NULL)
		return CKR_FUNCTION_NOT_SUPPORTED;
	if (c->nmade >= c->madeCap)
		return CKR_HOST_MEMORY;
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	CK_RV rv = c->f32->C_DecapsulateKey(c->s, &c->mech, c->key, c->t1, c->n1, c->in, c->inLen, &h);
	if (rv != CKR_OK)
		return rv;
	c->made[c->nmade++] = h;
	return CKR_OK;
}

CK_FUNCTION_LIST_3_2_PTR bench_get_interface_3_2(void *lib) {
	CK_C_GetInterface get = (CK_C_GetInterface)dlsym(lib, "C_GetInterface");
	CK_VERSION v32 = { 3, 2 };
	CK_INTERFACE_PTR iface = NULL;

	if (!get || get((CK_UTF8CHAR_PTR) "PKCS 11", &v32, &iface, 0) != CKR_OK || iface == NULL)
		return NULL;
	return (CK_FUNCTION_LIST_3_2_PTR)iface->pFunctionList;
}

typedef CK_RV (*op_fn)(bench_ctx *);

static const op_fn ops[OP_COUNT] = {
	[OP_NOOP] = op_noop,
	[OP_GET_INFO] = op_get_info,
	[OP_SIGN] = op_sign,
	[OP_ENCRYPT_GCM] = op_encrypt_gcm,
	[OP_DIGEST] = op_digest,
	[OP_GEN_KEY] = op_gen_key,
	[OP_GEN_KEY_PAIR] = op_gen_key_pair,
	[OP_FIND] = op_find,
	[OP_OPEN_CLOSE] = op_open_close,
	[OP_RANDOM] = op_random,
	[OP_ENCAPSULATE] = op_encapsulate,
	[OP_DECAPSULATE] = op_decapsulate,
	[OP_VERIFY] = op_verify,
};

/* bench_run runs op n times, timing each with one clock read between
 * operations (so an operation's latency includes one clock read and one
 * histogram increment: the OP_NOOP row shows that cost). It stops at the
 * first error. */
CK_RV bench_run(bench_ctx *c, int op, uint64_t n, uint64_t *hist, uint64_t *done, uint64_t *elapsed) {
	if (op < 0 || op >= OP_COUNT)
		return CKR_ARGUMENTS_BAD;
	op_fn fn = ops[op];
	c->noop = noop_fn;
	uint64_t start = bench_now(), t0 = start;
	for (uint64_t i = 0; i < n; i++) {
		CK_RV rv = fn(c);
		uint64_t t1 = bench_now();
		if (rv != CKR_OK) {
			*done = i;
			*elapsed = t1 - start;
			return rv;
		}
		hist[hist_bucket(t1 - t0)]++;
		t0 = t1;
	}
	*done = n;
	*elapsed = t0 - start;
	return CKR_OK;
}

/* Session threads (bench.h). */
enum { BT_IDLE, BT_RUN, BT_DONE, BT_QUIT };

struct bench_thread {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int state;
	/* the run, set while BT_IDLE, read while BT_RUN */
	bench_ctx *c;
	int op;
	uint64_t *hist, ns, cap;
	bench_share *share;
};

#define BATCH_NS 10000000u /* a batch: about 10 ms */

/* run_slice is one thread's part of bench_threads_run. */
static void run_slice(struct bench_thread *t) {
	bench_share *sh = t->share;
	uint64_t n = 1, deadline = bench_now() + t->ns;

	memset(sh, 0, sizeof *sh);
	while (bench_now() < deadline) {
		uint64_t done = 0, elapsed = 0, per;
		CK_RV rv = bench_run(t->c, t->op, n, t->hist, &done, &elapsed);

		sh->ops += done;
		sh->timed += elapsed;
		if (t->c->nmade > 0) {
			CK_RV d = bench_destroy_made(t->c);
			if (d != CKR_OK && sh->destroy_rv == CKR_OK)
				sh->destroy_rv = d;
		}
		if (rv != CKR_OK) {
			sh->rv = rv;
			return;
		}
		if (sh->destroy_rv != CKR_OK)
			return;
		per = elapsed / (done ? done : 1);
		n = BATCH_NS / (per ? per : 1);
		if (n < 1)
			n = 1;
		if (n > t->cap)
			n = t->cap;
	}
}

static void *thread_main(void *arg) {
	struct bench_thread *t = arg;

	pthread_mutex_lock(&t->mu);
	for (;;) {
		while (t->state == BT_IDLE || t->state == BT_DONE)
			pthread_cond_wait(&t->cv, &t->mu);
		if (t->state == BT_QUIT)
			break;
		pthread_mutex_unlock(&t->mu);
		run_slice(t);
		pthread_mutex_lock(&t->mu);
		t->state = BT_DONE;
		pthread_cond_broadcast(&t->cv);
	}
	pthread_mutex_unlock(&t->mu);
	return NULL;
}

bench_thread *bench_thread_start(void) {
	struct bench_thread *t = calloc(1, sizeof *t);
	int err;

	if (t == NULL)
		return NULL;
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->cv, NULL);
	t->state = BT_IDLE;
	if ((err = pthread_create(&t->th, NULL, thread_main, t)) != 0) {
		pthread_cond_destroy(&t->cv);
		pthread_mutex_destroy(&t->mu);
		free(t);
		errno = err;
		return NULL;
	}
	return t;
}

void bench_thread_stop(bench_thread *t) {
	if (t == NULL)
		return;
	pthread_mutex_lock(&t->mu);
	t->state = BT_QUIT;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
	pthread_join(t->th, NULL);
	pthread_cond_destroy(&t->cv);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

void bench_threads_run(bench_thread **ts, bench_ctx **ctxs, uint64_t **hists, bench_share *shares, int n, int op,
		       uint64_t ns, uint64_t batch_cap) {
	for (int i = 0; i < n; i++) {
		struct bench_thread *t = ts[i];
		pthread_mutex_lock(&t->mu);
		t->c = ctxs[i];
		t->op = op;
		t->hist = hists[i];
		t->ns = ns;
		t->cap = batch_cap ? batch_cap : 1;
		t->share = &shares[i];
		t->state = BT_RUN;
		pthread_cond_broadcast(&t->cv);
		pthread_mutex_unlock(&t->mu);
	}
	for (int i = 0; i < n; i++) {
		struct bench_thread *t = ts[i];
		pthread_mutex_lock(&t->mu);
		while (t->state != BT_DONE)
			pthread_cond_wait(&t->cv, &t->mu);
		t->state = BT_IDLE;
		pthread_mutex_unlock(&t->mu);
	}
}

CK_RV bench_destroy_made(bench_ctx *c) {
	CK_RV first = CKR_OK;
	for (CK_ULONG i = 0; i < c->nmade; i++) {
		CK_RV rv = c->f->C_DestroyObject(c->s, c->made[i]);
		if (rv != CKR_OK && first == CKR_OK)
			first = rv;
	}
	c->nmade = 0;
	return first;
}

void bench_set_gcm(bench_ctx *c) {
	memset(c->iv, 0xA5, sizeof c->iv);
	c->gcm.pIv = c->iv;
	c->gcm.ulIvLen = sizeof c->iv;
	c->gcm.ulIvBits = 8 * sizeof c->iv;
	c->gcm.pAAD = NULL;
	c->gcm.ulAADLen = 0;
	c->gcm.ulTagBits = 128;
	c->mech.mechanism = CKM_AES_GCM;
	c->mech.pParameter = &c->gcm;
	c->mech.ulParameterLen = sizeof c->gcm;
}

void bench_set_pss(bench_ctx *c, CK_MECHANISM_TYPE hash, CK_RSA_PKCS_MGF_TYPE mgf, CK_ULONG slen) {
	c->pss.hashAlg = hash;
	c->pss.mgf = mgf;
	c->pss.sLen = slen;
	c->mech.pParameter = &c->pss;
	c->mech.ulParameterLen = sizeof c->pss;
}

/* bench_prepare_verify signs in with priv into out (untimed), then points
 * the context at pub for OP_VERIFY. */
CK_RV bench_prepare_verify(bench_ctx *c, CK_OBJECT_HANDLE priv, CK_OBJECT_HANDLE pub) {
	c->key = priv;
	CK_RV rv = op_sign(c);
	c->key = pub;
	return rv;
}

void bench_set_find(bench_ctx *c, const char *prefix, CK_ULONG count, CK_OBJECT_CLASS cls) {
	c->prefixLen = strlen(prefix);
	bench_format_label(c->label, prefix, 0);
	c->findCount = count;
	c->findIdx = 0;
	c->findClass = cls;
	c->findTmpl[0].type = CKA_CLASS;
	c->findTmpl[0].pValue = &c->findClass;
	c->findTmpl[0].ulValueLen = sizeof c->findClass;
	c->findTmpl[1].type = CKA_LABEL;
	c->findTmpl[1].pValue = c->label;
	c->findTmpl[1].ulValueLen = c->prefixLen + 5;
}

void *bench_dlopen(const char *path, char **err) {
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h)
		*err = dlerror();
	return h;
}

CK_RV bench_get_function_list(void *lib, CK_FUNCTION_LIST_PTR_PTR out) {
	CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
	if (!get)
		return CKR_FUNCTION_NOT_SUPPORTED;
	return get(out);
}

CK_RV t_Initialize(CK_FUNCTION_LIST_PTR f, CK_VOID_PTR args) { return f->C_Initialize(args); }
CK_RV t_Finalize(CK_FUNCTION_LIST_PTR f) { return f->C_Finalize(NULL); }
CK_RV t_GetInfo(CK_FUNCTION_LIST_PTR f, CK_INFO_PTR info) { return f->C_GetInfo(info); }
CK_RV t_GetSlotList(CK_FUNCTION_LIST_PTR f, CK_BBOOL present, CK_SLOT_ID_PTR list, CK_ULONG_PTR n) {
	return f->C_GetSlotList(present, list, n);
}
CK_RV t_GetTokenInfo(CK_FUNCTION_LIST_PTR f, CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info) {
	return f->C_GetTokenInfo(slot, info);
}
CK_RV t_GetMechanismList(CK_FUNCTION_LIST_PTR f, CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR n) {
	return f->C_GetMechanismList(slot, list, n);
}
CK_RV t_InitToken(CK_FUNCTION_LIST_PTR f, CK_SLOT_ID slot, CK_UTF8CHAR_PTR pin, CK_ULONG n, CK_UTF8CHAR_PTR label) {
	return f->C_InitToken(slot, pin, n, label);
}
CK_RV t_InitPIN(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_UTF8CHAR_PTR pin, CK_ULONG n) {
	return f->C_InitPIN(s, pin, n);
}
CK_RV t_OpenSession(CK_FUNCTION_LIST_PTR f, CK_SLOT_ID slot, CK_FLAGS flags, CK_SESSION_HANDLE_PTR s) {
	return f->C_OpenSession(slot, flags, NULL, NULL, s);
}
CK_RV t_CloseSession(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s) { return f->C_CloseSession(s); }
CK_RV t_Login(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_USER_TYPE u, CK_UTF8CHAR_PTR pin, CK_ULONG n) {
	return f->C_Login(s, u, pin, n);
}
CK_RV t_Logout(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s) { return f->C_Logout(s); }
CK_RV t_CreateObject(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_OBJECT_HANDLE_PTR o) {
	return f->C_CreateObject(s, t, n, o);
}
CK_RV t_DestroyObject(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o) {
	return f->C_DestroyObject(s, o);
}
CK_RV t_FindObjectsInit(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR t, CK_ULONG n) {
	return f->C_FindObjectsInit(s, t, n);
}
CK_RV t_FindObjects(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE_PTR o, CK_ULONG max, CK_ULONG_PTR n) {
	return f->C_FindObjects(s, o, max, n);
}
CK_RV t_FindObjectsFinal(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s) { return f->C_FindObjectsFinal(s); }
CK_RV t_GenerateKey(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR t, CK_ULONG n,
		    CK_OBJECT_HANDLE_PTR o) {
	return f->C_GenerateKey(s, m, t, n, o);
}
CK_RV t_GenerateKeyPair(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR pub,
			CK_ULONG npub, CK_ATTRIBUTE_PTR priv, CK_ULONG npriv, CK_OBJECT_HANDLE_PTR hpub,
			CK_OBJECT_HANDLE_PTR hpriv) {
	return f->C_GenerateKeyPair(s, m, pub, npub, priv, npriv, hpub, hpriv);
}
