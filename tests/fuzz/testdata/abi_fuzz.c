/*
 * abi_fuzz.c - the C-ABI fuzzer (tests/fuzz/fuzz_test.go builds and runs it).
 *
 *   abi_fuzz LIB SEED MILLISECONDS
 *
 * Sets up a token (a crypto user, AES, HMAC and EC keys), then for the
 * given time three threads make random calls through the 2.40 function
 * list - random templates (nested templates included), mechanism
 * parameter structures with hostile inner lengths (NULL with a length, a
 * one-byte buffer said to hold 2^63 or 2^64-1 bytes), random call
 * sequences on random session and object handles - while a fourth thread
 * keeps closing sessions (C_CloseSession, now and then C_CloseAllSessions).
 * Each thread draws from its own generator seeded from SEED, so a seed
 * names the calls (the interleaving varies).
 *
 * A call must never crash or hang the process, and never answer
 * CKR_GENERAL_ERROR (the boundary's answer to a panic or an unmapped
 * error). At the end C_Finalize must succeed and a fresh C_Initialize must
 * find the token working: the user logs in and signs.
 *
 * Buffers are always as long as their lengths say, except for the hostile
 * lengths, which no address space can hold: a caller that lies within the
 * address space is undefined behaviour in C, and no library can tell.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "../../abi/testdata/abi.h"

#define SO_PIN ABI_SO_PIN
#define USER_PIN "fuzz:userpin1"
#define NTHREADS 3

static CK_FUNCTION_LIST_PTR f;
static CK_FUNCTION_LIST_3_2_PTR f3; /* the message-based functions */
static CK_SLOT_ID slot;
static atomic_int stop;
static atomic_long calls, general_errors, ok_calls, bad_session;
static unsigned long long seed0;
static CK_OBJECT_HANDLE keys[8];
static int nkeys;

/* Session handles the threads share (the closer closes them). */
#define NSESS 16
static _Atomic CK_SESSION_HANDLE sess[NSESS];

struct rng {
	uint64_t s;
};

static uint64_t next(struct rng *r)
{
	/* splitmix64 */
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static unsigned below(struct rng *r, unsigned n) { return (unsigned)(next(r) % n); }

/* Numbers that make decoders and size checks think. */
static CK_ULONG any_ulong(struct rng *r)
{
	static const CK_ULONG v[] = {0, 1, 2, 8, 12, 16, 24, 32, 64, 96, 128, 256, 1000, 0x7fffffffUL,
				     0xffffffffUL, 0x8000000000000000UL, ~0UL};
	if (below(r, 4) == 0)
		return next(r) & 0xff;
	return v[below(r, sizeof v / sizeof v[0])];
}

/* Per-call memory, freed at the end of the call. */
struct arena {
	void *p[256];
	int n;
};

static void *alloc(struct arena *a, size_t n)
{
	void *p = calloc(1, n ? n : 1);
	if (p == NULL)
		abort();
	if (a->n < 256)
		a->p[a->n++] = p;
	return p;
}

static void arena_free(struct arena *a)
{
	for (int i = 0; i < a->n; i++)
		free(a->p[i]);
	a->n = 0;
}

static void *random_bytes(struct rng *r, struct arena *a, size_t n)
{
	unsigned char *b = alloc(a, n);
	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)next(r);
	return b;
}

/* A pointer and its length: NULL with any length, a real buffer, or a
 * one-byte buffer with a length no address space holds. */
static void ptr_len(struct rng *r, struct arena *a, void **p, CK_ULONG *n)
{
	switch (below(r, 6)) {
	case 0:
		*p = NULL;
		*n = below(r, 2) ? 0 : any_ulong(r);
		break;
	case 1:
		*p = alloc(a, 1);
		*n = below(r, 2) ? 0x8000000000000000UL : ~0UL;
		break;
	default:
		*n = below(r, 3) == 0 ? below(r, 300) : below(r, 40);
		*p = random_bytes(r, a, *n);
	}
}

/*
 * Parameter structures as field strings (LP64): U a CK_ULONG (or a
 * CK_BBOOL padded to one), P a pointer then its length, L a length then its
 * pointer, B 16 inline bytes, A a count then a CK_PRF_DATA_PARAM array, O a
 * pointer to a CK_RSA_PKCS_OAEP_PARAMS, N a pointer with no length (NULL).
 */
struct mech {
	CK_MECHANISM_TYPE type;
	const char *layout; /* NULL: raw bytes (an IV, or no parameter) */
};

static const struct mech mechs[] = {
	{CKM_AES_GCM, "PUPU"},		{CKM_AES_GCM, "PPU"}, /* 2.40 and the older 40-byte layout */
	{CKM_AES_CCM, "UPPU"},		{CKM_AES_CTR, "UB"},
	{CKM_RSA_PKCS_OAEP, "UUUP"},	{CKM_RSA_PKCS_PSS, "UUU"},
	{CKM_SHA256_RSA_PKCS_PSS, "UUU"}, {CKM_ECDH1_DERIVE, "ULL"},
	{CKM_HKDF_DERIVE, "UUUPUP"},	{CKM_HKDF_DATA, "UUUPUP"},
	{CKM_SP800_108_COUNTER_KDF, "UAUN"}, {CKM_PKCS5_PBKD2, "UPUUPP"},
	{CKM_AES_CBC_ENCRYPT_DATA, "BP"}, {CKM_DES3_CBC_ENCRYPT_DATA, "bP"},
	{CKM_RSA_AES_KEY_WRAP, "UO"},	{CKM_EDDSA, "UL"},
	{CKM_CONCATENATE_DATA_AND_BASE, "P"}, {CKM_SHA256_HMAC_GENERAL, "U"},
	{CKM_CONCATENATE_BASE_AND_KEY, "U"},
	{CKM_AES_CBC, NULL},		{CKM_AES_CBC_PAD, NULL},
	{CKM_AES_ECB, NULL},		{CKM_AES_KEY_WRAP, NULL},
	{CKM_AES_KEY_WRAP_PAD, NULL},	{CKM_SHA256_HMAC, NULL},
	{CKM_SHA256, NULL},		{CKM_ECDSA, NULL},
	{CKM_ECDSA_SHA256, NULL},	{CKM_AES_KEY_GEN, NULL},
	{CKM_GENERIC_SECRET_KEY_GEN, NULL}, {CKM_EC_KEY_PAIR_GEN, NULL},
	{CKM_AES_CMAC, NULL},		{CKM_RSA_PKCS, NULL},
	{0x80000001UL, NULL},		{~0UL, NULL},
};

static void *build(struct rng *r, struct arena *a, const char *layout, CK_ULONG *size);

/* Fills a structure at p from its field string. */
static size_t fill(struct rng *r, struct arena *a, unsigned char *p, const char *layout)
{
	size_t o = 0;
	for (const char *c = layout; *c; c++) {
		void *ptr;
		CK_ULONG n;
		switch (*c) {
		case 'U':
			*(CK_ULONG *)(p + o) = any_ulong(r);
			o += 8;
			break;
		case 'P':
			ptr_len(r, a, &ptr, &n);
			memcpy(p + o, &ptr, 8);
			memcpy(p + o + 8, &n, 8);
			o += 16;
			break;
		case 'L':
			ptr_len(r, a, &ptr, &n);
			memcpy(p + o, &n, 8);
			memcpy(p + o + 8, &ptr, 8);
			o += 16;
			break;
		case 'B':
			for (int i = 0; i < 16; i++)
				p[o + i] = (unsigned char)next(r);
			o += 16;
			break;
		case 'b':
			for (int i = 0; i < 8; i++)
				p[o + i] = (unsigned char)next(r);
			o += 8;
			break;
		case 'N':
			memset(p + o, 0, 8);
			o += 8;
			break;
		case 'A': { /* CK_SP800_108: count, then CK_PRF_DATA_PARAM* */
			CK_ULONG cnt = below(r, 4);
			CK_PRF_DATA_PARAM *d = alloc(a, cnt * sizeof *d);
			static const CK_ULONG types[] = {CK_SP800_108_ITERATION_VARIABLE, CK_SP800_108_COUNTER,
							 CK_SP800_108_DKM_LENGTH, CK_SP800_108_BYTE_ARRAY, 77};
			for (CK_ULONG i = 0; i < cnt; i++) {
				d[i].type = types[below(r, 5)];
				if (below(r, 3) == 0) {
					CK_ULONG sz;
					d[i].pValue = build(r, a, below(r, 2) ? "UU" : "UUU", &sz);
					d[i].ulValueLen = sz;
				} else {
					ptr_len(r, a, &d[i].pValue, &d[i].ulValueLen);
				}
			}
			if (below(r, 8) == 0) {
				CK_ULONG real = cnt;
				cnt = any_ulong(r);
				if (cnt != real)
					d = NULL; /* a count the array does not have: no array */
			}
			memcpy(p + o, &cnt, 8);
			memcpy(p + o + 8, &d, 8);
			o += 16;
			break;
		}
		case 'O': {
			CK_ULONG sz;
			void *q = below(r, 4) ? build(r, a, "UUUP", &sz) : NULL;
			memcpy(p + o, &q, 8);
			o += 8;
			break;
		}
		}
	}
	return o;
}

static void *build(struct rng *r, struct arena *a, const char *layout, CK_ULONG *size)
{
	unsigned char tmp[256];
	size_t n = fill(r, a, tmp, layout);
	void *p = alloc(a, n);
	memcpy(p, tmp, n);
	*size = n;
	return p;
}

static void random_mechanism(struct rng *r, struct arena *a, CK_MECHANISM *m)
{
	const struct mech *x = &mechs[below(r, sizeof mechs / sizeof mechs[0])];
	m->mechanism = x->type;
	m->pParameter = NULL;
	m->ulParameterLen = 0;
	switch (below(r, 8)) {
	case 0: /* NULL with a length */
		m->ulParameterLen = any_ulong(r);
		break;
	case 1: /* bytes of an odd length: no structure has it */
		m->ulParameterLen = 1 + 2 * below(r, 40);
		m->pParameter = random_bytes(r, a, m->ulParameterLen);
		break;
	case 2: /* no parameter */
		break;
	default:
		if (x->layout) {
			m->pParameter = build(r, a, x->layout, &m->ulParameterLen);
		} else {
			m->ulParameterLen = below(r, 2) ? 16 : below(r, 33);
			m->pParameter = random_bytes(r, a, m->ulParameterLen);
		}
	}
}

static const CK_ATTRIBUTE_TYPE attr_types[] = {
	CKA_CLASS, CKA_KEY_TYPE, CKA_TOKEN, CKA_PRIVATE, CKA_LABEL, CKA_VALUE, CKA_VALUE_LEN, CKA_SENSITIVE,
	CKA_EXTRACTABLE, CKA_ENCRYPT, CKA_DECRYPT, CKA_SIGN, CKA_VERIFY, CKA_WRAP, CKA_UNWRAP, CKA_DERIVE,
	CKA_MODIFIABLE, CKA_ID, CKA_EC_PARAMS, CKA_EC_POINT, CKA_APPLICATION, CKA_WRAP_TEMPLATE,
	CKA_UNWRAP_TEMPLATE, CKA_DERIVE_TEMPLATE, CKA_ALLOWED_MECHANISMS, CKA_MODULUS_BITS, CKA_UNIQUE_ID,
	CKA_CHECK_VALUE, CKA_COPYABLE, CKA_DESTROYABLE, 0x80000001UL, ~0UL,
};

static CK_ATTRIBUTE *random_template(struct rng *r, struct arena *a, CK_ULONG *count, int depth)
{
	CK_ULONG n = below(r, 7);
	CK_ATTRIBUTE *t = alloc(a, n * sizeof *t);
	for (CK_ULONG i = 0; i < n; i++) {
		CK_ATTRIBUTE_TYPE ty = attr_types[below(r, sizeof attr_types / sizeof attr_types[0])];
		t[i].type = ty;
		if ((ty == CKA_WRAP_TEMPLATE || ty == CKA_UNWRAP_TEMPLATE || ty == CKA_DERIVE_TEMPLATE) && depth == 0 &&
		    below(r, 2)) {
			CK_ULONG k;
			t[i].pValue = random_template(r, a, &k, 1);
			t[i].ulValueLen = k * sizeof(CK_ATTRIBUTE);
			if (below(r, 6) == 0)
				t[i].ulValueLen += 1 + below(r, sizeof(CK_ATTRIBUTE) - 1);
			continue;
		}
		switch (below(r, 5)) {
		case 0: { /* a CK_ULONG */
			CK_ULONG *v = alloc(a, sizeof *v);
			*v = ty == CKA_CLASS ? below(r, 5) : ty == CKA_KEY_TYPE ? (below(r, 2) ? CKK_AES : below(r, 0x42)) : any_ulong(r);
			if (ty == CKA_VALUE_LEN || ty == CKA_MODULUS_BITS)
				*v = below(r, 2) ? 16 * (1 + below(r, 4)) : any_ulong(r);
			t[i].pValue = v;
			t[i].ulValueLen = below(r, 6) ? sizeof *v : below(r, 9);
			break;
		}
		case 1: { /* a CK_BBOOL */
			CK_BBOOL *v = alloc(a, 1);
			*v = below(r, 5) == 0 ? (CK_BBOOL)next(r) : (CK_BBOOL)below(r, 2);
			t[i].pValue = v;
			t[i].ulValueLen = 1;
			break;
		}
		case 2: /* NULL: a length query for reads, an error for writes */
			t[i].pValue = NULL;
			t[i].ulValueLen = below(r, 2) ? 0 : any_ulong(r);
			break;
		default:
			ptr_len(r, a, &t[i].pValue, &t[i].ulValueLen);
		}
	}
	*count = n;
	if (below(r, 20) == 0) {
		*count = below(r, 2) ? 0x8000000000000000UL : ~0UL; /* with a short array: a hostile count */
	}
	return t;
}

static CK_SESSION_HANDLE any_session(struct rng *r)
{
	if (below(r, 16) == 0)
		return (CK_SESSION_HANDLE)any_ulong(r);
	return atomic_load(&sess[below(r, NSESS)]);
}

static CK_OBJECT_HANDLE any_object(struct rng *r)
{
	if (below(r, 4) == 0)
		return (CK_OBJECT_HANDLE)any_ulong(r);
	return keys[below(r, nkeys)];
}

static void check(const char *what, CK_RV rv)
{
	atomic_fetch_add(&calls, 1);
	if (rv == CKR_OK)
		atomic_fetch_add(&ok_calls, 1);
	else if (rv == CKR_SESSION_HANDLE_INVALID)
		atomic_fetch_add(&bad_session, 1);
	if (rv == CKR_GENERAL_ERROR) {
		atomic_fetch_add(&general_errors, 1);
		printf("FAIL %s: CKR_GENERAL_ERROR (seed %llu)\n", what, seed0);
		fflush(stdout);
	}
}

/* One random call (or a short sequence). */
static void step(struct rng *r)
{
	struct arena a = {.n = 0};
	CK_MECHANISM m;
	CK_SESSION_HANDLE s = any_session(r);
	CK_BYTE out[600];
	CK_ULONG outLen = below(r, 3) == 0 ? below(r, 64) : sizeof out;
	CK_BYTE_PTR outP = below(r, 5) == 0 ? NULL : out;
	CK_ULONG inLen = below(r, 300);
	CK_BYTE_PTR in = random_bytes(r, &a, inLen);
	CK_ATTRIBUTE *t;
	CK_ULONG n;
	CK_OBJECT_HANDLE h, h2;

	switch (below(r, 21)) {
	case 0: {
		CK_SESSION_HANDLE ns;
		CK_RV rv = f->C_OpenSession(below(r, 8) ? slot : any_ulong(r),
					    CKF_SERIAL_SESSION | (below(r, 4) ? CKF_RW_SESSION : 0), NULL, NULL, &ns);
		check("C_OpenSession", rv);
		if (rv == CKR_OK)
			atomic_store(&sess[below(r, NSESS)], ns);
		break;
	}
	case 1:
		if (below(r, 3) == 0)
			check("C_Login", f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, strlen(USER_PIN)));
		else if (below(r, 2))
			check("C_Logout", f->C_Logout(s));
		else {
			/* wrong passwords only for a user that does not exist:
			 * the real ones must not lock */
			CK_ULONG pl = below(r, 20);
			char *pin = random_bytes(r, &a, pl + 8);
			memcpy(pin, "nouser:", 7);
			check("C_Login(bad)", f->C_Login(s, below(r, 2) ? CKU_USER : 7, (CK_UTF8CHAR_PTR)pin, pl + 7));
		}
		break;
	case 2:
		t = random_template(r, &a, &n, 0);
		if (n <= 6)
			check("C_CreateObject", f->C_CreateObject(s, t, n, &h));
		break;
	case 3:
		random_mechanism(r, &a, &m);
		t = random_template(r, &a, &n, 0);
		if (n <= 6)
			check("C_GenerateKey", f->C_GenerateKey(s, &m, t, n, &h));
		break;
	case 4: {
		CK_ULONG n2;
		CK_ATTRIBUTE *t2;
		random_mechanism(r, &a, &m);
		t = random_template(r, &a, &n, 0);
		t2 = random_template(r, &a, &n2, 0);
		if (n <= 6 && n2 <= 6)
			check("C_GenerateKeyPair", f->C_GenerateKeyPair(s, &m, t, n, t2, n2, &h, &h2));
		break;
	}
	case 5:
		random_mechanism(r, &a, &m);
		check("C_EncryptInit", f->C_EncryptInit(s, &m, any_object(r)));
		check("C_Encrypt", f->C_Encrypt(s, in, inLen, outP, &outLen));
		break;
	case 6:
		random_mechanism(r, &a, &m);
		check("C_DecryptInit", f->C_DecryptInit(s, &m, any_object(r)));
		check("C_DecryptUpdate", f->C_DecryptUpdate(s, in, inLen, outP, &outLen));
		outLen = sizeof out;
		check("C_DecryptFinal", f->C_DecryptFinal(s, out, &outLen));
		break;
	case 7:
		random_mechanism(r, &a, &m);
		check("C_SignInit", f->C_SignInit(s, &m, any_object(r)));
		if (below(r, 2)) {
			check("C_SignUpdate", f->C_SignUpdate(s, in, inLen));
			check("C_SignFinal", f->C_SignFinal(s, outP, &outLen));
		} else {
			check("C_Sign", f->C_Sign(s, in, inLen, outP, &outLen));
		}
		break;
	case 8:
		random_mechanism(r, &a, &m);
		check("C_VerifyInit", f->C_VerifyInit(s, &m, any_object(r)));
		check("C_Verify", f->C_Verify(s, in, inLen, out, below(r, 80)));
		break;
	case 9:
		random_mechanism(r, &a, &m);
		check("C_DigestInit", f->C_DigestInit(s, &m));
		check("C_Digest", f->C_Digest(s, in, inLen, outP, &outLen));
		break;
	case 10:
		random_mechanism(r, &a, &m);
		t = random_template(r, &a, &n, 0);
		if (n <= 6)
			check("C_DeriveKey", f->C_DeriveKey(s, &m, any_object(r), t, n, &h));
		break;
	case 11:
		random_mechanism(r, &a, &m);
		check("C_WrapKey", f->C_WrapKey(s, &m, any_object(r), any_object(r), outP, &outLen));
		break;
	case 12:
		random_mechanism(r, &a, &m);
		t = random_template(r, &a, &n, 0);
		if (n <= 6)
			check("C_UnwrapKey", f->C_UnwrapKey(s, &m, any_object(r), in, inLen, t, n, &h));
		break;
	case 13:
		t = random_template(r, &a, &n, 0);
		if (n <= 6) {
			/* reads: every pValue is NULL or a buffer of its length */
			for (CK_ULONG i = 0; i < n; i++)
				if (t[i].ulValueLen > 300) {
					t[i].pValue = NULL;
				}
			check("C_GetAttributeValue", f->C_GetAttributeValue(s, any_object(r), t, n));
		}
		break;
	case 14:
		t = random_template(r, &a, &n, 0);
		if (n <= 6)
			check("C_SetAttributeValue", f->C_SetAttributeValue(s, any_object(r), t, n));
		break;
	case 15: {
		CK_OBJECT_HANDLE found[8];
		CK_ULONG nf;
		t = random_template(r, &a, &n, 0);
		if (n <= 6)
			check("C_FindObjectsInit", f->C_FindObjectsInit(s, t, n));
		check("C_FindObjects", f->C_FindObjects(s, found, below(r, 9), &nf));
		check("C_FindObjectsFinal", f->C_FindObjectsFinal(s));
		break;
	}
	case 16:
		t = random_template(r, &a, &n, 0);
		if (n <= 6)
			check("C_CopyObject", f->C_CopyObject(s, any_object(r), t, n, &h));
		break;
	case 17: {
		/* destroy only what this call made: the setup's keys stay */
		CK_BBOOL no = CK_FALSE;
		CK_OBJECT_CLASS cls = CKO_DATA;
		CK_ATTRIBUTE dt[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_TOKEN, &no, 1}};
		CK_RV rv = f->C_CreateObject(s, dt, 2, &h);
		check("C_CreateObject(data)", rv);
		if (rv == CKR_OK)
			check("C_DestroyObject", f->C_DestroyObject(s, h));
		break;
	}
	case 18:
		check("C_GenerateRandom", f->C_GenerateRandom(s, out, below(r, sizeof out)));
		break;
	case 19: {
		/* 3.0 message-based AEAD: CK_GCM_MESSAGE_PARAMS (the tag's
		 * length is ulTagBits) or CK_CCM_MESSAGE_PARAMS, same rules */
		CK_ULONG pl;
		void *pp = build(r, &a, below(r, 2) ? "PUUP" : "UPUUP", &pl);
		CK_ULONG aadLen = below(r, 40);
		CK_BYTE_PTR aad = random_bytes(r, &a, aadLen);
		random_mechanism(r, &a, &m);
		if (below(r, 2))
			m.mechanism = below(r, 2) ? CKM_AES_GCM : CKM_AES_CCM;
		if (below(r, 2)) {
			check("C_MessageEncryptInit", f3->C_MessageEncryptInit(s, &m, any_object(r)));
			check("C_EncryptMessage", f3->C_EncryptMessage(s, pp, below(r, 8) ? pl : (any_ulong(r) | 1), aad, aadLen,
								       in, inLen, outP, &outLen));
			check("C_MessageEncryptFinal", f3->C_MessageEncryptFinal(s));
		} else {
			check("C_MessageDecryptInit", f3->C_MessageDecryptInit(s, &m, any_object(r)));
			check("C_DecryptMessage", f3->C_DecryptMessage(s, pp, below(r, 8) ? pl : (any_ulong(r) | 1), aad, aadLen,
								       in, inLen, outP, &outLen));
			check("C_MessageDecryptFinal", f3->C_MessageDecryptFinal(s));
		}
		break;
	}
	default: {
		CK_SESSION_INFO si;
		check("C_GetSessionInfo", f->C_GetSessionInfo(s, &si));
		check("C_GetOperationState", f->C_GetOperationState(s, outP, &outLen));
	}
	}
	arena_free(&a);
}

static void *worker(void *arg)
{
	struct rng r = {seed0 * 0x100000001b3ULL + (uintptr_t)arg};
	while (!atomic_load(&stop))
		step(&r);
	return NULL;
}

static void *closer(void *arg)
{
	struct rng r = {seed0 ^ 0xc105e5ULL};
	(void)arg;
	while (!atomic_load(&stop)) {
		if (below(&r, 64) == 0)
			check("C_CloseAllSessions", f->C_CloseAllSessions(slot));
		else
			check("C_CloseSession", f->C_CloseSession(atomic_load(&sess[below(&r, NSESS)])));
		usleep(200);
	}
	return NULL;
}

static void setup(void)
{
	CK_SESSION_HANDLE s;
	CK_UTF8CHAR label[32];
	CK_BYTE p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
	CK_BBOOL yes = CK_TRUE;
	CK_ULONG len32 = 32;
	CK_MECHANISM aesgen = {CKM_AES_KEY_GEN, NULL, 0}, gsgen = {CKM_GENERIC_SECRET_KEY_GEN, NULL, 0},
		     ecgen = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
	CK_ATTRIBUTE sec[] = {{CKA_VALUE_LEN, &len32, sizeof len32}, {CKA_TOKEN, &yes, 1}, {CKA_ENCRYPT, &yes, 1},
			      {CKA_DECRYPT, &yes, 1}, {CKA_SIGN, &yes, 1}, {CKA_VERIFY, &yes, 1},
			      {CKA_DERIVE, &yes, 1}, {CKA_WRAP, &yes, 1}, {CKA_UNWRAP, &yes, 1}, {CKA_EXTRACTABLE, &yes, 1}};
	CK_ATTRIBUTE pub[] = {{CKA_EC_PARAMS, p256, sizeof p256}, {CKA_TOKEN, &yes, 1}, {CKA_VERIFY, &yes, 1}};
	CK_ATTRIBUTE priv[] = {{CKA_TOKEN, &yes, 1}, {CKA_SIGN, &yes, 1}, {CKA_DERIVE, &yes, 1}};
	CK_ULONG one = 1;

	if (f->C_Initialize(NULL) != CKR_OK || f->C_GetSlotList(CK_FALSE, &slot, &one) != CKR_OK) {
		abi_fail("setup", "C_Initialize / C_GetSlotList");
		exit(abi_exit());
	}
	memset(label, ' ', sizeof label);
	memcpy(label, ABI_LABEL, strlen(ABI_LABEL));
#define SETUP(call) do { CK_RV rv_ = (call); if (rv_ != CKR_OK) { abi_fail("setup", "%s: %s", #call, abi_rv_name(rv_)); exit(abi_exit()); } } while (0)
	SETUP(f->C_InitToken(slot, (CK_UTF8CHAR_PTR)SO_PIN, strlen(SO_PIN), label));
	SETUP(f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s));
	SETUP(f->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR)SO_PIN, strlen(SO_PIN)));
	SETUP(f->C_InitPIN(s, (CK_UTF8CHAR_PTR)USER_PIN, strlen(USER_PIN)));
	SETUP(f->C_Logout(s));
	SETUP(f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, strlen(USER_PIN)));
	SETUP(f->C_GenerateKey(s, &aesgen, sec, 10, &keys[nkeys++]));
	SETUP(f->C_GenerateKey(s, &gsgen, sec, 10, &keys[nkeys]));
	nkeys++;
	SETUP(f->C_GenerateKeyPair(s, &ecgen, pub, 3, priv, 3, &keys[nkeys], &keys[nkeys + 1]));
	nkeys += 2;
	sess[0] = s;
}

/* After the storm: the module finalizes, and a fresh one works (the
 * setup's keys may have lost their usage flags to C_SetAttributeValue: the
 * checks use none of them). */
static void after(void)
{
	CK_SESSION_HANDLE s;
	CK_ULONG one = 1;
	CK_MECHANISM sha = {CKM_SHA256, NULL, 0};
	CK_BYTE d[32];
	CK_ULONG dl = sizeof d;
	CK_OBJECT_CLASS cls = CKO_DATA;
	CK_BBOOL yes = CK_TRUE;
	CK_ATTRIBUTE dt[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_TOKEN, &yes, 1}, {CKA_LABEL, "after", 5}};
	CK_OBJECT_HANDLE h;
	static const CK_BYTE abc[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
					0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
					0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};

	abi_check_rv("C_Finalize after the fuzzing", f->C_Finalize(NULL), CKR_OK);
	abi_check_rv("C_Initialize again", f->C_Initialize(NULL), CKR_OK);
	abi_check_rv("C_GetSlotList", f->C_GetSlotList(CK_FALSE, &slot, &one), CKR_OK);
	abi_check_rv("C_OpenSession", f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s), CKR_OK);
	abi_check_rv("the user logs in", f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, strlen(USER_PIN)), CKR_OK);
	abi_check_rv("C_CreateObject", f->C_CreateObject(s, dt, 3, &h), CKR_OK);
	abi_check_rv("C_DestroyObject", f->C_DestroyObject(s, h), CKR_OK);
	abi_check_rv("C_DigestInit", f->C_DigestInit(s, &sha), CKR_OK);
	abi_check_rv("C_Digest", f->C_Digest(s, (CK_BYTE_PTR)"abc", 3, d, &dl), CKR_OK);
	abi_check("SHA-256(abc)", dl == 32 && memcmp(d, abc, 32) == 0, "wrong digest");
	abi_check_rv("C_Finalize", f->C_Finalize(NULL), CKR_OK);
}

int main(int argc, char **argv)
{
	struct abi_module mod;
	pthread_t th[NTHREADS + 1];
	struct timespec t0, t1;
	long ms;

	if (argc != 4) {
		fprintf(stderr, "usage: abi_fuzz LIB SEED MILLISECONDS\n");
		return 2;
	}
	seed0 = strtoull(argv[2], NULL, 0);
	ms = atol(argv[3]);
	abi_load(argv[1], &mod);
	f = mod.fl;
	f3 = mod.f3;
	setup();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < NTHREADS; i++)
		pthread_create(&th[i], NULL, worker, (void *)i);
	pthread_create(&th[NTHREADS], NULL, closer, NULL);
	do {
		usleep(10000);
		clock_gettime(CLOCK_MONOTONIC, &t1);
	} while ((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 < ms);
	atomic_store(&stop, 1);
	for (int i = 0; i <= NTHREADS; i++)
		pthread_join(th[i], NULL);
	abi_check("no CKR_GENERAL_ERROR", general_errors == 0, "%ld of %ld calls", general_errors, calls);
	printf("seed %llu: %ld calls, %ld CKR_OK, %ld CKR_SESSION_HANDLE_INVALID\n", seed0, (long)calls, (long)ok_calls,
	       (long)bad_session);
	after();
	return abi_exit();
}
