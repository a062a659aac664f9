/*
 * abi_states.c - the session states, from C through the function list.
 *
 * usage: abi_states /path/to/libgohsm.so   (with $GOHSM_CONF set by abi_test.go)
 *
 * Drives a session into each of the five Cryptoki session states and makes
 * each kind of call the state rules govern. The expected answers are
 * written here from the spec, not taken from the module's permission table
 * (token/profile.go):
 *   - PKCS #11 v3.0 5.5 "Session states" and 4.4: a R/O session reads token
 *     objects and cannot create, modify or destroy them
 *     (CKR_SESSION_READ_ONLY); a public session makes and uses public objects
 *     only (private ones: CKR_USER_NOT_LOGGED_IN), session objects and keys
 *     included; an object the session cannot see does not exist
 *     (CKR_OBJECT_HANDLE_INVALID, CKR_KEY_HANDLE_INVALID).
 *   - 5.6: C_InitPIN only in the R/W SO Functions state, else
 *     CKR_USER_NOT_LOGGED_IN; C_SetPIN only in R/W states, else
 *     CKR_SESSION_READ_ONLY.
 *   - gohsm's crypto officer is CloudHSM's: it manages users and creates,
 *     changes or uses no object (CKR_USER_NOT_LOGGED_IN).
 * A private token key in a R/O public session breaks two rules; the spec
 * orders neither, so both codes are accepted there. tests/e2e's
 * TestSessionStatesThroughTheABI asks the same from Go.
 */
#include "abi.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

enum { RO_PUBLIC, RW_PUBLIC, RO_USER, RW_USER, RW_SO, NSTATES };

static const struct {
	const char *name;
	CK_FLAGS flags;
	CK_USER_TYPE user;
	const char *pin; /* NULL: no login */
	CK_STATE state;
} states[NSTATES] = {
	{ "RO_PUBLIC", CKF_SERIAL_SESSION, 0, NULL, CKS_RO_PUBLIC_SESSION },
	{ "RW_PUBLIC", CKF_SERIAL_SESSION | CKF_RW_SESSION, 0, NULL, CKS_RW_PUBLIC_SESSION },
	{ "RO_USER", CKF_SERIAL_SESSION, CKU_USER, ABI_USER_PIN, CKS_RO_USER_FUNCTIONS },
	{ "RW_USER", CKF_SERIAL_SESSION | CKF_RW_SESSION, CKU_USER, ABI_USER_PIN, CKS_RW_USER_FUNCTIONS },
	{ "RW_SO", CKF_SERIAL_SESSION | CKF_RW_SESSION, CKU_SO, ABI_SO_PIN, CKS_RW_SO_FUNCTIONS },
};

static struct abi_module m;
static CK_FUNCTION_LIST_3_2_PTR f;
static CK_SLOT_ID slot;
static CK_OBJECT_HANDLE user_pub, user_priv; /* the user's token EC key pair */
static char cur[160];                        /* the case being run, for failures inside calls */

/* Objects a call may change or destroy, made afresh for each call. */
struct fixtures {
	CK_OBJECT_HANDLE nobodys; /* public token data object from a R/W public session */
	CK_OBJECT_HANDLE users;   /* the user's private token AES key */
};

static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
static CK_OBJECT_CLASS data_class = CKO_DATA, secret_class = CKO_SECRET_KEY;
static CK_KEY_TYPE aes_type = CKK_AES;
static CK_ULONG aes_len = 16;

static CK_RV create_data(CK_SESSION_HANDLE s, CK_BBOOL token, const char *label, CK_OBJECT_HANDLE *h)
{
	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &data_class, sizeof data_class },
		{ CKA_TOKEN, &token, sizeof token },
		{ CKA_PRIVATE, &no, sizeof no },
		{ CKA_LABEL, (void *)label, strlen(label) },
	};
	return f->C_CreateObject(s, t, 4, h);
}

static CK_RV gen_aes(CK_SESSION_HANDLE s, CK_BBOOL token, CK_BBOOL private, const char *label, CK_OBJECT_HANDLE *h)
{
	CK_MECHANISM mech = { CKM_AES_KEY_GEN, NULL, 0 };
	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &secret_class, sizeof secret_class },
		{ CKA_KEY_TYPE, &aes_type, sizeof aes_type },
		{ CKA_VALUE_LEN, &aes_len, sizeof aes_len },
		{ CKA_TOKEN, &token, sizeof token },
		{ CKA_PRIVATE, &private, sizeof private },
		{ CKA_LABEL, (void *)label, strlen(label) },
	};
	return f->C_GenerateKey(s, &mech, t, 6, h);
}

/* The object's label into buf (NUL terminated), or the error. */
static CK_RV label_of(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, char *buf, size_t n)
{
	CK_ATTRIBUTE a = { CKA_LABEL, buf, n - 1 };
	CK_RV rv = f->C_GetAttributeValue(s, o, &a, 1);

	buf[rv == CKR_OK ? a.ulValueLen : 0] = 0;
	return rv;
}

static int make_fixtures(struct fixtures *fx)
{
	CK_SESSION_HANDLE s;
	int ok;

	if (!abi_check_rv("fixtures: C_OpenSession RW", f->C_OpenSession(slot, states[RW_PUBLIC].flags, NULL, NULL, &s),
			  CKR_OK))
		return 0;
	ok = abi_check_rv("fixtures: a public token object from a R/W public session",
			  create_data(s, CK_TRUE, "nobody's", &fx->nobodys), CKR_OK) &&
	     abi_check_rv("fixtures: C_Login USER",
			  f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)ABI_USER_PIN, strlen(ABI_USER_PIN)), CKR_OK) &&
	     abi_check_rv("fixtures: the user's private token key", gen_aes(s, CK_TRUE, CK_TRUE, "user's", &fx->users),
			  CKR_OK);
	f->C_CloseSession(s); /* the last session: logs out */
	return ok;
}

/* ---- the calls --------------------------------------------------------- */

typedef CK_RV call_fn(CK_SESSION_HANDLE s, const struct fixtures *fx);

static CK_RV sign_user_key(CK_SESSION_HANDLE s, const struct fixtures *fx)
{
	CK_MECHANISM mech = { CKM_ECDSA, NULL, 0 };
	CK_BYTE hash[32] = { 1 }, sig[64];
	CK_ULONG n = sizeof sig;
	CK_RV rv = f->C_SignInit(s, &mech, user_priv);

	(void)fx;
	return rv != CKR_OK ? rv : f->C_Sign(s, hash, sizeof hash, sig, &n);
}

static CK_RV verify_user_key(CK_SESSION_HANDLE s, const struct fixtures *fx)
{
	CK_MECHANISM mech = { CKM_ECDSA, NULL, 0 };
	CK_BYTE hash[32] = { 1 }, sig[64] = { 0 };
	CK_RV rv = f->C_VerifyInit(s, &mech, user_pub);

	(void)fx;
	if (rv != CKR_OK)
		return rv;
	rv = f->C_Verify(s, hash, sizeof hash, sig, sizeof sig);
	return rv == CKR_SIGNATURE_INVALID ? CKR_OK : rv; /* the key was usable */
}

static CK_RV gen_public_session_key(CK_SESSION_HANDLE s, const struct fixtures *fx)
{
	CK_OBJECT_HANDLE h;

	(void)fx;
	return gen_aes(s, CK_FALSE, CK_FALSE, "k", &h);
}

static CK_RV gen_private_session_key(CK_SESSION_HANDLE s, const struct fixtures *fx)
{
	CK_OBJECT_HANDLE h;

	(void)fx;
	return gen_aes(s, CK_FALSE, CK_TRUE, "k", &h);
}

static CK_RV gen_private_token_key(CK_SESSION_HANDLE s, const struct fixtures *fx)
{
	CK_OBJECT_HANDLE h;

	(void)fx;
	return gen_aes(s, CK_TRUE, CK_TRUE, "k", &h);
}

static CK_RV create_session_object(CK_SESSION_HANDLE s, const struct fixtures *fx)
{
	CK_OBJECT_HANDLE h;

	(void)fx;
	return create_data(s, CK_FALSE, "d", &h);
}

static CK_RV create_token_object(CK_SESSION_HANDLE s, const struct fixtures *fx)
{
	CK_OBJECT_HANDLE h;

	(void)fx;
	return create_data(s, CK_TRUE, "d", &h);
}

/* Relabels o and checks, where the session sees o, that the label changed
 * exactly when the call succeeded. */
static CK_RV relabel(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o)
{
	char before[64], after[64];
	CK_ATTRIBUTE a = { CKA_LABEL, "changed", 7 };
	CK_RV seen = label_of(s, o, before, sizeof before);
	CK_RV rv = f->C_SetAttributeValue(s, o, &a, 1);

	if (seen == CKR_OK && label_of(s, o, after, sizeof after) == CKR_OK &&
	    (strcmp(before, after) != 0) != (rv == CKR_OK))
		abi_fail(cur, "C_SetAttributeValue returned %s and the label went from \"%s\" to \"%s\"",
			 abi_rv_name(rv), before, after);
	return rv;
}

/* Destroys o and checks, where the session saw o, that it is gone exactly
 * when the call succeeded. */
static CK_RV destroy(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o)
{
	char buf[64];
	CK_RV seen = label_of(s, o, buf, sizeof buf);
	CK_RV rv = f->C_DestroyObject(s, o);

	if (seen == CKR_OK && (label_of(s, o, buf, sizeof buf) == CKR_OK) != (rv != CKR_OK))
		abi_fail(cur, "C_DestroyObject returned %s and the object %s", abi_rv_name(rv),
			 rv == CKR_OK ? "is still there" : "is gone");
	return rv;
}

static CK_RV modify_nobodys(CK_SESSION_HANDLE s, const struct fixtures *fx) { return relabel(s, fx->nobodys); }
static CK_RV destroy_nobodys(CK_SESSION_HANDLE s, const struct fixtures *fx) { return destroy(s, fx->nobodys); }
static CK_RV modify_users(CK_SESSION_HANDLE s, const struct fixtures *fx) { return relabel(s, fx->users); }
static CK_RV destroy_users(CK_SESSION_HANDLE s, const struct fixtures *fx) { return destroy(s, fx->users); }

static CK_RV init_pin(CK_SESSION_HANDLE s, const struct fixtures *fx)
{
	static const char pin[] = "carol:carolpin1";

	(void)fx;
	return f->C_InitPIN(s, (CK_UTF8CHAR_PTR)pin, strlen(pin));
}

#define NONE ((CK_RV)-1) /* no second acceptable answer */
#define OK CKR_OK
#define NLI CKR_USER_NOT_LOGGED_IN
#define RO CKR_SESSION_READ_ONLY
#define INV CKR_OBJECT_HANDLE_INVALID
#define KIN CKR_KEY_HANDLE_INVALID
#define ONE(a, b, c, d, e) { { a, NONE }, { b, NONE }, { c, NONE }, { d, NONE }, { e, NONE } }

static const struct {
	const char *name;
	call_fn *call;
	CK_RV want[NSTATES][2]; /* per state: the answer, or one of two */
} calls[] = {
	{ "sign with the user's private key", sign_user_key, ONE(KIN, KIN, OK, OK, NLI) },
	{ "verify with the user's public key", verify_user_key, ONE(OK, OK, OK, OK, NLI) },
	{ "generate a public session key", gen_public_session_key, ONE(OK, OK, OK, OK, NLI) },
	{ "generate a private session key", gen_private_session_key, ONE(NLI, NLI, OK, OK, NLI) },
	{ "generate a private token key", gen_private_token_key,
	  { { RO, NLI }, { NLI, NONE }, { RO, NONE }, { OK, NONE }, { NLI, NONE } } },
	{ "create a public session object", create_session_object, ONE(OK, OK, OK, OK, NLI) },
	{ "create a public token object", create_token_object, ONE(RO, OK, RO, OK, NLI) },
	{ "modify a public token object of nobody's", modify_nobodys, ONE(RO, OK, RO, OK, NLI) },
	{ "destroy a public token object of nobody's", destroy_nobodys, ONE(RO, OK, RO, OK, NLI) },
	{ "modify the user's private token key", modify_users, ONE(INV, INV, RO, OK, INV) },
	{ "destroy the user's private token key", destroy_users, ONE(INV, INV, RO, OK, INV) },
	{ "C_InitPIN", init_pin, ONE(NLI, NLI, NLI, NLI, OK) },
};

/* Opens a session in state i; 0 on failure (reported). */
static int open_state(int i, CK_SESSION_HANDLE *s)
{
	CK_SESSION_INFO si;
	char name[200];

	snprintf(name, sizeof name, "%s: C_OpenSession", states[i].name);
	if (!abi_check_rv(name, f->C_OpenSession(slot, states[i].flags, NULL, NULL, s), CKR_OK))
		return 0;
	if (states[i].pin != NULL) {
		snprintf(name, sizeof name, "%s: C_Login", states[i].name);
		if (!abi_check_rv(name, f->C_Login(*s, states[i].user, (CK_UTF8CHAR_PTR)states[i].pin, strlen(states[i].pin)),
				  CKR_OK))
			return 0;
	}
	if (f->C_GetSessionInfo(*s, &si) != CKR_OK || si.state != states[i].state) {
		snprintf(name, sizeof name, "%s: C_GetSessionInfo state", states[i].name);
		abi_fail(name, "state %lu, want %lu", (unsigned long)si.state, (unsigned long)states[i].state);
		return 0;
	}
	return 1;
}

int main(int argc, char **argv)
{
	CK_SESSION_HANDLE s;
	CK_MECHANISM ecgen = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_ATTRIBUTE pubt[] = {
		{ CKA_EC_PARAMS, abi_p256_oid, sizeof abi_p256_oid },
		{ CKA_TOKEN, &yes, sizeof yes },
		{ CKA_VERIFY, &yes, sizeof yes },
	};
	CK_ATTRIBUTE privt[] = {
		{ CKA_TOKEN, &yes, sizeof yes },
		{ CKA_PRIVATE, &yes, sizeof yes },
		{ CKA_SIGN, &yes, sizeof yes },
	};
	size_t c;
	int i;

	if (argc != 2) {
		fprintf(stderr, "usage: %s /path/to/libgohsm.so\n", argv[0]);
		return 2;
	}
	abi_load(argv[1], &m);
	f = m.f3;
	if (!abi_check_rv("C_Initialize", abi_initialize(&m), CKR_OK) || !abi_first_slot(&m, &slot) ||
	    !abi_setup_user_session(&m, slot, &s))
		return abi_exit();
	if (!abi_check_rv("setup: the user's token EC key pair",
			  f->C_GenerateKeyPair(s, &ecgen, pubt, 3, privt, 3, &user_pub, &user_priv), CKR_OK))
		return abi_exit();
	f->C_CloseSession(s);

	for (i = 0; i < NSTATES; i++) {
		for (c = 0; c < LEN(calls); c++) {
			struct fixtures fx;
			CK_RV rv;

			snprintf(cur, sizeof cur, "%s: %s", states[i].name, calls[c].name);
			if (!make_fixtures(&fx) || !open_state(i, &s))
				return abi_exit();
			rv = calls[c].call(s, &fx);
			if (calls[c].want[i][1] == NONE)
				abi_check_rv(cur, rv, calls[c].want[i][0]);
			else
				abi_check_rv2(cur, rv, calls[c].want[i][0], calls[c].want[i][1]);
			f->C_CloseSession(s);
		}
		/* C_SetPIN: the PIN of whoever the state names, set to itself. */
		snprintf(cur, sizeof cur, "%s: C_SetPIN", states[i].name);
		if (!open_state(i, &s))
			return abi_exit();
		{
			const char *pin = i == RW_SO ? ABI_SO_PIN : ABI_USER_PIN;

			abi_check_rv(cur, f->C_SetPIN(s, (CK_UTF8CHAR_PTR)pin, strlen(pin), (CK_UTF8CHAR_PTR)pin, strlen(pin)),
				     states[i].flags & CKF_RW_SESSION ? CKR_OK : CKR_SESSION_READ_ONLY);
		}
		f->C_CloseSession(s);
	}
	f->C_Finalize(NULL);
	return abi_exit();
}
