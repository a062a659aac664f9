/*
 * p11_mldsa.c - the module's side of tests/noble: ML-DSA and HashML-DSA
 * through the C ABI, one request a line on stdin, one answer a line on
 * stdout (the Go test puts the same questions to @noble/post-quantum).
 * Byte strings are hex, "-" when empty; mechanisms are hex CK_ULONGs.
 *
 *   key ID SET SEED PK SK
 *       C_CreateObject: a private key from CKA_SEED with CKA_VALUE = SK (the
 *       other side's expanded key: the module checks it matches the seed)
 *       and a public key with CKA_VALUE = PK -> "ok" | "rv NAME"
 *   pub ID SET PK
 *       C_CreateObject: a public key alone, CKA_VALUE = PK (a published
 *       vector's key) -> "ok" | "rv NAME"
 *   sign ID MECH HASH DET PARTS CTX DATA
 *       C_SignInit with CK_SIGN_ADDITIONAL_CONTEXT (CK_HASH_SIGN_ADDITIONAL_CONTEXT
 *       naming HASH when MECH is CKM_HASH_ML_DSA); DET 1 asks for
 *       CKH_DETERMINISTIC_REQUIRED, 0 for CKH_HEDGE_REQUIRED; PARTS 2 signs
 *       with two C_SignUpdate calls -> "sig SIG" | "rv NAME"
 *   verify ID MECH HASH CTX DATA SIG
 *       C_VerifyInit + C_Verify -> "ok" | "rv NAME"
 *   mechs
 *       C_GetMechanismList of the slot -> "mechs MECH ..."
 *   prehash ID HASH
 *       whether C_SignInit takes CKM_HASH_ML_DSA naming HASH (the operation
 *       is then ended by a C_Sign of no data) -> "ok" | "rv NAME"
 *
 * usage: p11_mldsa /path/to/libgohsm.so   (with $GOHSM_CONF set by the test)
 */
#include <ctype.h>

#include "abi.h"

#define MAXKEYS 16

static struct abi_module m;
static CK_SESSION_HANDLE sess;
static CK_OBJECT_HANDLE privs[MAXKEYS], pubs[MAXKEYS];

/* unhex decodes s ("-" is empty) into a malloc'd buffer. */
static CK_BYTE *unhex(const char *s, CK_ULONG *n)
{
	size_t l = strcmp(s, "-") == 0 ? 0 : strlen(s);
	CK_BYTE *b = malloc(l / 2 + 1);

	if (b == NULL || l % 2 != 0) {
		free(b);
		return NULL;
	}
	for (size_t i = 0; i < l / 2; i++) {
		unsigned v;

		if (!isxdigit((unsigned char)s[2 * i]) || !isxdigit((unsigned char)s[2 * i + 1]) ||
		    sscanf(s + 2 * i, "%2x", &v) != 1) {
			free(b);
			return NULL;
		}
		b[i] = (CK_BYTE)v;
	}
	*n = l / 2;
	return b;
}

static void puthex(const char *tag, const CK_BYTE *b, CK_ULONG n)
{
	printf("%s ", tag);
	if (n == 0)
		putchar('-');
	for (CK_ULONG i = 0; i < n; i++)
		printf("%02x", b[i]);
	putchar('\n');
}

static void putrv(CK_RV rv)
{
	printf("rv %s\n", abi_rv_name(rv));
}

static CK_RV make_key(int id, CK_ULONG set, CK_BYTE *seed, CK_ULONG nseed, CK_BYTE *pk, CK_ULONG npk, CK_BYTE *sk,
		      CK_ULONG nsk)
{
	CK_OBJECT_CLASS priv = CKO_PRIVATE_KEY, pub = CKO_PUBLIC_KEY;
	CK_KEY_TYPE kt = CKK_ML_DSA;
	CK_BBOOL t = CK_TRUE, f = CK_FALSE;
	CK_ATTRIBUTE privt[] = {
		{ CKA_CLASS, &priv, sizeof priv },  { CKA_KEY_TYPE, &kt, sizeof kt },
		{ CKA_PARAMETER_SET, &set, sizeof set }, { CKA_SEED, seed, nseed },
		{ CKA_VALUE, sk, nsk },		    { CKA_SIGN, &t, sizeof t },
		{ CKA_TOKEN, &f, sizeof f },
	};
	CK_ATTRIBUTE pubt[] = {
		{ CKA_CLASS, &pub, sizeof pub },    { CKA_KEY_TYPE, &kt, sizeof kt },
		{ CKA_PARAMETER_SET, &set, sizeof set }, { CKA_VALUE, pk, npk },
		{ CKA_VERIFY, &t, sizeof t },	    { CKA_TOKEN, &f, sizeof f },
	};
	CK_RV rv;

	if (id < 0 || id >= MAXKEYS)
		return CKR_ARGUMENTS_BAD;
	rv = m.f3->C_CreateObject(sess, privt, sizeof privt / sizeof privt[0], &privs[id]);
	if (rv != CKR_OK)
		return rv;
	return m.f3->C_CreateObject(sess, pubt, sizeof pubt / sizeof pubt[0], &pubs[id]);
}

static CK_RV make_pub(int id, CK_ULONG set, CK_BYTE *pk, CK_ULONG npk)
{
	CK_OBJECT_CLASS pub = CKO_PUBLIC_KEY;
	CK_KEY_TYPE kt = CKK_ML_DSA;
	CK_BBOOL t = CK_TRUE, f = CK_FALSE;
	CK_ATTRIBUTE pubt[] = {
		{ CKA_CLASS, &pub, sizeof pub },    { CKA_KEY_TYPE, &kt, sizeof kt },
		{ CKA_PARAMETER_SET, &set, sizeof set }, { CKA_VALUE, pk, npk },
		{ CKA_VERIFY, &t, sizeof t },	    { CKA_TOKEN, &f, sizeof f },
	};

	if (id < 0 || id >= MAXKEYS)
		return CKR_ARGUMENTS_BAD;
	return m.f3->C_CreateObject(sess, pubt, sizeof pubt / sizeof pubt[0], &pubs[id]);
}

/* The parameter of mech: a CK_HASH_SIGN_ADDITIONAL_CONTEXT for
 * CKM_HASH_ML_DSA, else a CK_SIGN_ADDITIONAL_CONTEXT. */
struct param {
	CK_SIGN_ADDITIONAL_CONTEXT sign;
	CK_HASH_SIGN_ADDITIONAL_CONTEXT hash;
};

static void set_param(CK_MECHANISM *mech, struct param *p, CK_ULONG hash, CK_HEDGE_TYPE hedge, CK_BYTE *ctx,
		      CK_ULONG nctx)
{
	if (mech->mechanism == CKM_HASH_ML_DSA) {
		p->hash = (CK_HASH_SIGN_ADDITIONAL_CONTEXT){ hedge, nctx ? ctx : NULL, nctx, hash };
		mech->pParameter = &p->hash;
		mech->ulParameterLen = sizeof p->hash;
	} else {
		p->sign = (CK_SIGN_ADDITIONAL_CONTEXT){ hedge, nctx ? ctx : NULL, nctx };
		mech->pParameter = &p->sign;
		mech->ulParameterLen = sizeof p->sign;
	}
}

static void do_sign(int id, CK_ULONG mt, CK_ULONG hash, int det, int parts, CK_BYTE *ctx, CK_ULONG nctx,
		    CK_BYTE *data, CK_ULONG ndata)
{
	CK_MECHANISM mech = { mt, NULL, 0 };
	struct param p;
	CK_BYTE sig[8192];
	CK_ULONG n = sizeof sig;
	CK_RV rv;

	set_param(&mech, &p, hash, det ? CKH_DETERMINISTIC_REQUIRED : CKH_HEDGE_REQUIRED, ctx, nctx);
	rv = m.f3->C_SignInit(sess, &mech, privs[id]);
	if (rv != CKR_OK) {
		putrv(rv);
		return;
	}
	if (parts == 2) {
		rv = m.f3->C_SignUpdate(sess, data, ndata / 2);
		if (rv == CKR_OK)
			rv = m.f3->C_SignUpdate(sess, data + ndata / 2, ndata - ndata / 2);
		if (rv == CKR_OK)
			rv = m.f3->C_SignFinal(sess, sig, &n);
	} else {
		rv = m.f3->C_Sign(sess, data, ndata, sig, &n);
	}
	if (rv != CKR_OK) {
		putrv(rv);
		return;
	}
	puthex("sig", sig, n);
}

static void do_verify(int id, CK_ULONG mt, CK_ULONG hash, CK_BYTE *ctx, CK_ULONG nctx, CK_BYTE *data, CK_ULONG ndata,
		      CK_BYTE *sig, CK_ULONG nsig)
{
	CK_MECHANISM mech = { mt, NULL, 0 };
	struct param p;
	CK_RV rv;

	set_param(&mech, &p, hash, CKH_HEDGE_PREFERRED, ctx, nctx);
	rv = m.f3->C_VerifyInit(sess, &mech, pubs[id]);
	if (rv == CKR_OK)
		rv = m.f3->C_Verify(sess, data, ndata, sig, nsig);
	if (rv == CKR_OK)
		printf("ok\n");
	else
		putrv(rv);
}

static void do_mechs(CK_SLOT_ID slot)
{
	CK_MECHANISM_TYPE mechs[512];
	CK_ULONG n = sizeof mechs / sizeof mechs[0];
	CK_RV rv = m.f3->C_GetMechanismList(slot, mechs, &n);

	if (rv != CKR_OK) {
		putrv(rv);
		return;
	}
	printf("mechs");
	for (CK_ULONG i = 0; i < n; i++)
		printf(" %lx", (unsigned long)mechs[i]);
	putchar('\n');
}

static void do_prehash(int id, CK_ULONG hash)
{
	CK_MECHANISM mech = { CKM_HASH_ML_DSA, NULL, 0 };
	struct param p;
	CK_BYTE sig[8192];
	CK_ULONG n = sizeof sig;
	CK_RV rv;

	set_param(&mech, &p, hash, CKH_HEDGE_PREFERRED, NULL, 0);
	rv = m.f3->C_SignInit(sess, &mech, privs[id]);
	if (rv != CKR_OK) {
		putrv(rv);
		return;
	}
	rv = m.f3->C_Sign(sess, (CK_BYTE_PTR) "", 0, sig, &n);
	if (rv == CKR_DATA_LEN_RANGE)
		printf("ok\n");
	else
		printf("err C_Sign of no data: %s\n", abi_rv_name(rv));
}

#define NF 8

int main(int argc, char **argv)
{
	CK_SLOT_ID slot;
	char *line = NULL;
	size_t cap = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s libgohsm.so\n", argv[0]);
		return 2;
	}
	abi_load(argv[1], &m);
	if (!abi_check_rv("C_Initialize", abi_initialize(&m), CKR_OK) || !abi_first_slot(&m, &slot) ||
	    !abi_setup_user_session(&m, slot, &sess))
		return abi_exit();
	printf("ready\n");
	fflush(stdout);
	while (getline(&line, &cap, stdin) > 0) {
		char *f[NF] = { 0 }, *save = NULL;
		int nf = 0;

		for (char *tok = strtok_r(line, " \n", &save); tok && nf < NF; tok = strtok_r(NULL, " \n", &save))
			f[nf++] = tok;
		if (nf == 6 && strcmp(f[0], "key") == 0) {
			CK_ULONG nseed, npk, nsk;
			CK_BYTE *seed = unhex(f[3], &nseed), *pk = unhex(f[4], &npk), *sk = unhex(f[5], &nsk);

			if (seed && pk && sk) {
				CK_RV rv = make_key(atoi(f[1]), strtoul(f[2], NULL, 0), seed, nseed, pk, npk, sk, nsk);

				if (rv == CKR_OK)
					printf("ok\n");
				else
					putrv(rv);
			} else {
				printf("err bad hex\n");
			}
			free(seed), free(pk), free(sk);
		} else if (nf == 4 && strcmp(f[0], "pub") == 0) {
			CK_ULONG npk;
			CK_BYTE *pk = unhex(f[3], &npk);

			if (pk) {
				CK_RV rv = make_pub(atoi(f[1]), strtoul(f[2], NULL, 0), pk, npk);

				if (rv == CKR_OK)
					printf("ok\n");
				else
					putrv(rv);
			} else {
				printf("err bad hex\n");
			}
			free(pk);
		} else if (nf == 8 && strcmp(f[0], "sign") == 0) {
			CK_ULONG nctx, ndata;
			CK_BYTE *ctx = unhex(f[6], &nctx), *data = unhex(f[7], &ndata);
			int id = atoi(f[1]);

			if (ctx && data && id >= 0 && id < MAXKEYS)
				do_sign(id, strtoul(f[2], NULL, 16), strtoul(f[3], NULL, 16), atoi(f[4]), atoi(f[5]),
					ctx, nctx, data, ndata);
			else
				printf("err bad request\n");
			free(ctx), free(data);
		} else if (nf == 7 && strcmp(f[0], "verify") == 0) {
			CK_ULONG nctx, ndata, nsig;
			CK_BYTE *ctx = unhex(f[4], &nctx), *data = unhex(f[5], &ndata), *sig = unhex(f[6], &nsig);
			int id = atoi(f[1]);

			if (ctx && data && sig && id >= 0 && id < MAXKEYS)
				do_verify(id, strtoul(f[2], NULL, 16), strtoul(f[3], NULL, 16), ctx, nctx, data, ndata,
					  sig, nsig);
			else
				printf("err bad request\n");
			free(ctx), free(data), free(sig);
		} else if (nf == 1 && strcmp(f[0], "mechs") == 0) {
			do_mechs(slot);
		} else if (nf == 3 && strcmp(f[0], "prehash") == 0 && atoi(f[1]) >= 0 && atoi(f[1]) < MAXKEYS) {
			do_prehash(atoi(f[1]), strtoul(f[2], NULL, 16));
		} else {
			printf("err unknown request\n");
		}
		fflush(stdout);
	}
	free(line);
	m.f3->C_Finalize(NULL);
	return 0;
}
