/*
 * p11bench's C side: trampolines (one per function-list call the Go side
 * makes during setup), the timed operations, and the loop that runs them
 * with per-operation timing into a histogram. The timed loop stays in C so
 * no cgo transition falls inside a measured operation.
 */
#ifndef P11BENCH_H
#define P11BENCH_H

#include <stdint.h>

#include "pkcs11.h"

/* Operations the C loop knows; the Go table (ops.go) names them. */
enum {
	OP_NOOP = 0,     /* a no-op C function through a function pointer: harness cost */
	OP_GET_INFO,     /* C_GetInfo */
	OP_SIGN,         /* C_SignInit + C_Sign */
	OP_ENCRYPT_GCM,  /* C_EncryptInit (fresh 12-byte IV) + C_Encrypt */
	OP_DIGEST,       /* C_DigestInit + C_Digest */
	OP_GEN_KEY,      /* C_GenerateKey, handle kept for destroying later */
	OP_GEN_KEY_PAIR, /* C_GenerateKeyPair, handles kept for destroying later */
	OP_FIND,         /* C_FindObjectsInit(class, label) + C_FindObjects + C_FindObjectsFinal */
	OP_OPEN_CLOSE,   /* C_OpenSession + C_CloseSession */
	OP_RANDOM,       /* C_GenerateRandom */
	OP_ENCAPSULATE,  /* C_EncapsulateKey (3.2 list), new key kept for destroying later */
	OP_DECAPSULATE,  /* C_DecapsulateKey (3.2 list) of in, new key kept for destroying later */
	OP_VERIFY,       /* C_VerifyInit + C_Verify of the signature bench_prepare_verify made */
	OP_COUNT
};

/* A result the module returned with CKR_OK but that is wrong (signature of
 * the wrong length, find count != 1): reported as an error. */
#define P11BENCH_WRONG_RESULT (CKR_VENDOR_DEFINED | 0xBE1UL)

/* Histogram: 64 linear sub-buckets per power of two of nanoseconds, so a
 * percentile is within 1/64 (1.6%) of the true value. */
#define HIST_SUB_BITS 6
#define HIST_BUCKETS ((64 - HIST_SUB_BITS + 1) << HIST_SUB_BITS)

typedef struct bench_ctx {
	CK_FUNCTION_LIST_PTR f;
	CK_FUNCTION_LIST_3_2_PTR f32; /* NULL when the module offers no 3.2 interface */
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE s;
	CK_MECHANISM mech;
	CK_GCM_PARAMS gcm;
	CK_RSA_PKCS_PSS_PARAMS pss;
	CK_BYTE iv[12];
	uint64_t ivctr;
	CK_OBJECT_HANDLE key;
	CK_BYTE *in;
	CK_ULONG inLen;
	CK_BYTE *out;
	CK_ULONG outLen;    /* length handed to the module: exactly the expected output */
	CK_INFO info;
	/* key generation: templates, and handles made in this batch */
	CK_ATTRIBUTE *t1, *t2;
	CK_ULONG n1, n2;
	CK_OBJECT_HANDLE *made;
	CK_ULONG nmade, madeCap;
	/* find: labels "<prefix><5 digits>" for indices [0, findCount) */
	char label[64];
	CK_ULONG prefixLen;
	CK_ULONG findCount;
	uint64_t findIdx;
	CK_OBJECT_CLASS findClass;
	CK_ATTRIBUTE findTmpl[2];
	CK_RV (*noop)(void);
} bench_ctx;

uint64_t bench_now(void);
CK_RV bench_run(bench_ctx *c, int op, uint64_t n, uint64_t *hist, uint64_t *done, uint64_t *elapsed);
uint64_t bench_hist_value(int bucket);
int bench_hist_bucket(uint64_t v);
CK_RV bench_destroy_made(bench_ctx *c);
CK_FUNCTION_LIST_3_2_PTR bench_get_interface_3_2(void *lib);
void bench_set_gcm(bench_ctx *c);
void bench_set_pss(bench_ctx *c, CK_MECHANISM_TYPE hash, CK_RSA_PKCS_MGF_TYPE mgf, CK_ULONG slen);
CK_RV bench_prepare_verify(bench_ctx *c, CK_OBJECT_HANDLE priv, CK_OBJECT_HANDLE pub);
void bench_set_find(bench_ctx *c, const char *prefix, CK_ULONG count, CK_OBJECT_CLASS cls);
void bench_format_label(char *dst, const char *prefix, CK_ULONG i);

/*
 * Session threads. Each worker session has a thread of its own, made once,
 * that runs the timed loop when told; Go waits for a slice in one call
 * (bench_threads_run). So while modules are measured the process's Go
 * runtime has nothing running: with the loops on goroutines locked to their
 * threads, every one of them sat in a cgo call with its P, and Go's monitor
 * (no idle P left with two sessions on two CPUs) took those Ps and polled
 * every 20 us, waking ~600 times a second on the CPUs the sessions needed.
 * OpenSSL's own threads (osslbase.c) run the same way.
 */
typedef struct bench_thread bench_thread;

/* What one thread did in one run. */
typedef struct bench_share {
	uint64_t ops;      /* operations completed */
	uint64_t timed;    /* nanoseconds they took, from the first start to the last end */
	CK_RV rv;          /* the failing operation's return value, or CKR_OK */
	CK_RV destroy_rv;  /* the first failing C_DestroyObject of made handles, or CKR_OK */
} bench_share;

/* bench_thread_start makes a thread (NULL and errno set on failure). */
bench_thread *bench_thread_start(void);
/* bench_thread_stop ends and frees an idle thread. */
void bench_thread_stop(bench_thread *t);
/*
 * bench_threads_run has ts[i] run op on ctxs[i] into hists[i] for ns
 * nanoseconds, all n at once, in batches of about 10 ms of at most
 * batch_cap operations (handles made are destroyed, untimed, after each
 * batch), stopping at the first error; it returns when every thread has
 * finished, with each one's account in shares[i].
 */
void bench_threads_run(bench_thread **ts, bench_ctx **ctxs, uint64_t **hists, bench_share *shares, int n, int op,
		       uint64_t ns, uint64_t batch_cap);

/* Module loading. */
void *bench_dlopen(const char *path, char **err);
CK_RV bench_get_function_list(void *lib, CK_FUNCTION_LIST_PTR_PTR out);

/* Trampolines: each calls one function of the list, nothing more. */
CK_RV t_Initialize(CK_FUNCTION_LIST_PTR f, CK_VOID_PTR args);
CK_RV t_Finalize(CK_FUNCTION_LIST_PTR f);
CK_RV t_GetInfo(CK_FUNCTION_LIST_PTR f, CK_INFO_PTR info);
CK_RV t_GetSlotList(CK_FUNCTION_LIST_PTR f, CK_BBOOL present, CK_SLOT_ID_PTR list, CK_ULONG_PTR n);
CK_RV t_GetTokenInfo(CK_FUNCTION_LIST_PTR f, CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info);
CK_RV t_GetMechanismList(CK_FUNCTION_LIST_PTR f, CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR n);
CK_RV t_InitToken(CK_FUNCTION_LIST_PTR f, CK_SLOT_ID slot, CK_UTF8CHAR_PTR pin, CK_ULONG n, CK_UTF8CHAR_PTR label);
CK_RV t_InitPIN(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_UTF8CHAR_PTR pin, CK_ULONG n);
CK_RV t_OpenSession(CK_FUNCTION_LIST_PTR f, CK_SLOT_ID slot, CK_FLAGS flags, CK_SESSION_HANDLE_PTR s);
CK_RV t_CloseSession(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s);
CK_RV t_Login(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_USER_TYPE u, CK_UTF8CHAR_PTR pin, CK_ULONG n);
CK_RV t_Logout(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s);
CK_RV t_CreateObject(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_OBJECT_HANDLE_PTR o);
CK_RV t_DestroyObject(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o);
CK_RV t_FindObjectsInit(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR t, CK_ULONG n);
CK_RV t_FindObjects(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE_PTR o, CK_ULONG max, CK_ULONG_PTR n);
CK_RV t_FindObjectsFinal(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s);
CK_RV t_GenerateKey(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR t, CK_ULONG n,
		    CK_OBJECT_HANDLE_PTR o);
CK_RV t_GenerateKeyPair(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR pub,
			CK_ULONG npub, CK_ATTRIBUTE_PTR priv, CK_ULONG npriv, CK_OBJECT_HANDLE_PTR hpub,
			CK_OBJECT_HANDLE_PTR hpriv);

#endif
