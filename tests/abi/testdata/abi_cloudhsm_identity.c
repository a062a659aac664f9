/*
 * abi_cloudhsm_identity.c - identity, sessions and token of the cloudhsm
 * profile against the standard one, through the function lists.
 *
 * usage: abi_cloudhsm_identity /path/to/libgohsm.so PROFILE MODE [PIN]
 *   PROFILE  cloudhsm | standard: which answers to expect (the slot's
 *            profile comes from $GOHSM_CONF, written by
 *            cloudhsm_identity_test.go)
 *   MODE     rules: every rule on a token the CLI set up (officer "admin",
 *                   crypto users "alice" and "user", both with password
 *                   USER_PASSWORD), slot ID 1
 *            fresh: a store no officer has set up yet
 *            hold:  log in with PIN, print "READY", then obey stdin lines
 *                   ("logout", "close": close every session, "finalize")
 *                   and print "DONE <command>"; end of input: exit
 *                   without C_Finalize
 *
 * The expected answers come from AWS's documentation of Client SDK 5
 * (cloudhsm-facts.md: §1.3 PIN format and application-wide login, §2.2
 * no read-only sessions, §2.3 unsupported functions, §1.5 / UG limits
 * 1,024 sessions per application) and, for standard, from PKCS#11 v3.0.
 */
#include "abi.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))
#define USER_PASSWORD "user-pw-12"
#define SLOT_ID 1

static CK_FUNCTION_LIST_3_2_PTR f;
static int cloudhsm;
static char name[200];

static const char *nm(const char *fmt, const char *what)
{
	snprintf(name, sizeof name, fmt, cloudhsm ? "cloudhsm" : "standard", what);
	return name;
}

static CK_RV login(CK_SESSION_HANDLE s, const char *pin)
{
	return f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
}

static CK_STATE state(CK_SESSION_HANDLE s)
{
	CK_SESSION_INFO si;

	if (f->C_GetSessionInfo(s, &si) != CKR_OK)
		return (CK_STATE)-1;
	return si.state;
}

static CK_RV open_rw(CK_SESSION_HANDLE *s)
{
	return f->C_OpenSession(SLOT_ID, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, s);
}

/* Behaviour 1: PINs are name:password in cloudhsm. */
static void pin_format(void)
{
	CK_SESSION_HANDLE s;

	if (!abi_check_rv("pin: C_OpenSession", open_rw(&s), CKR_OK))
		return;
	/* A bare password: the default user "user" in standard, nobody in cloudhsm. */
	abi_check_rv(nm("%s: C_Login with a bare password%s", ""), login(s, USER_PASSWORD),
		     cloudhsm ? CKR_PIN_INCORRECT : CKR_OK);
	f->C_Logout(s);
	abi_check_rv(nm("%s: C_Login alice:password%s", ""), login(s, "alice:" USER_PASSWORD), CKR_OK);
	f->C_Logout(s);
	abi_check_rv(nm("%s: C_Login ALICE:password (names are case-insensitive)%s", ""),
		     login(s, "ALICE:" USER_PASSWORD), CKR_OK);
	f->C_Logout(s);
	abi_check_rv(nm("%s: C_Login alice:wrong%s", ""), login(s, "alice:wrong-pw-1"), CKR_PIN_INCORRECT);
	abi_check_rv(nm("%s: C_Login nobody:password%s", ""), login(s, "nobody:" USER_PASSWORD), CKR_PIN_INCORRECT);
	/* C_LoginUser (3.0): the name apart; without one, the PIN's rule. */
	abi_check_rv(nm("%s: C_LoginUser alice%s", ""),
		     f->C_LoginUser(s, CKU_USER, (CK_UTF8CHAR_PTR)USER_PASSWORD, strlen(USER_PASSWORD),
				    (CK_UTF8CHAR_PTR) "alice", 5),
		     CKR_OK);
	f->C_Logout(s);
	abi_check_rv(nm("%s: C_LoginUser without a name, bare password%s", ""),
		     f->C_LoginUser(s, CKU_USER, (CK_UTF8CHAR_PTR)USER_PASSWORD, strlen(USER_PASSWORD), NULL, 0),
		     cloudhsm ? CKR_PIN_INCORRECT : CKR_OK);
	f->C_CloseSession(s);
}

/* Behaviour 2: one login for the whole application, in both profiles. */
static void application_wide_login(void)
{
	CK_SESSION_HANDLE s1, s2, s3;

	if (open_rw(&s1) != CKR_OK || open_rw(&s2) != CKR_OK) {
		abi_fail("login: open sessions", "");
		return;
	}
	abi_check_rv(nm("%s: login: C_Login on session 1%s", ""), login(s1, "alice:" USER_PASSWORD), CKR_OK);
	abi_check(nm("%s: login: session 2 is logged in too%s", ""), state(s2) == CKS_RW_USER_FUNCTIONS,
		  "state %lu", (unsigned long)state(s2));
	abi_check_rv(nm("%s: login: C_Login on session 2%s", ""), login(s2, "alice:" USER_PASSWORD),
		     CKR_USER_ALREADY_LOGGED_IN);
	f->C_CloseSession(s1);
	abi_check(nm("%s: login: closing session 1 keeps session 2 logged in%s", ""),
		  state(s2) == CKS_RW_USER_FUNCTIONS, "state %lu", (unsigned long)state(s2));
	open_rw(&s3);
	abi_check(nm("%s: login: a new session is logged in%s", ""), state(s3) == CKS_RW_USER_FUNCTIONS,
		  "state %lu", (unsigned long)state(s3));
	abi_check_rv(nm("%s: login: C_Logout on session 3%s", ""), f->C_Logout(s3), CKR_OK);
	abi_check(nm("%s: login: C_Logout logs every session out%s", ""), state(s2) == CKS_RW_PUBLIC_SESSION,
		  "state %lu", (unsigned long)state(s2));
	f->C_CloseSession(s2);
	f->C_CloseSession(s3);
}

/* Behaviour 3: no read-only sessions in cloudhsm. */
static void read_only_sessions(void)
{
	CK_SESSION_HANDLE s = 0;
	CK_RV rv = f->C_OpenSession(SLOT_ID, CKF_SERIAL_SESSION, NULL, NULL, &s);

	abi_check_rv(nm("%s: C_OpenSession without CKF_RW_SESSION%s", ""), rv,
		     cloudhsm ? CKR_FUNCTION_FAILED : CKR_OK);
	if (rv == CKR_OK)
		f->C_CloseSession(s);
}

/* Behaviour 4 (and §2.3): functions SDK 5 does not have. */
static void unsupported_functions(void)
{
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE key = 0, copy = 0;
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_ULONG len = 32, size = 0;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_MECHANISM gen = { CKM_AES_KEY_GEN, NULL, 0 };
	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &cls, sizeof cls },     { CKA_KEY_TYPE, &kt, sizeof kt },
		{ CKA_VALUE_LEN, &len, sizeof len }, { CKA_TOKEN, &no, sizeof no },
		{ CKA_ENCRYPT, &yes, sizeof yes },
	};
	CK_ATTRIBUTE label = { CKA_LABEL, "renamed", 7 };
	CK_UTF8CHAR tlabel[32];
	CK_BYTE seed[8] = { 0 }, state_buf[64];
	CK_ULONG state_len = sizeof state_buf;
	CK_MECHANISM rsa = { CKM_RSA_PKCS, NULL, 0 }, sha = { CKM_SHA256, NULL, 0 };
	CK_BYTE iv[12] = { 0 };
	CK_GCM_PARAMS gcm = { iv, sizeof iv, 96, NULL, 0, 128 };
	CK_MECHANISM gcmm = { CKM_AES_GCM, &gcm, sizeof gcm };
	CK_SLOT_ID ev;
	CK_RV rv;
	CK_RV ns = CKR_FUNCTION_NOT_SUPPORTED;

	if (!abi_check_rv("unsupported: C_OpenSession", open_rw(&s), CKR_OK))
		return;
	if (!abi_check_rv("unsupported: C_Login", login(s, "alice:" USER_PASSWORD), CKR_OK))
		return;
	if (!abi_check_rv("unsupported: C_GenerateKey AES", f->C_GenerateKey(s, &gen, t, LEN(t), &key), CKR_OK))
		return;

	/* In cloudhsm each is CKR_FUNCTION_NOT_SUPPORTED; in standard each does its work. */
#define UNSUP(what, call)                                                                   \
	do {                                                                                  \
		rv = (call);                                                                  \
		if (cloudhsm)                                                                 \
			abi_check_rv(nm("%s: %s", what), rv, ns);                            \
		else                                                                          \
			abi_check(nm("%s: %s", what), rv != ns, "got %s", abi_rv_name(rv));  \
	} while (0)
	abi_pad(tlabel, sizeof tlabel, "x");
	UNSUP("C_InitToken", f->C_InitToken(SLOT_ID, (CK_UTF8CHAR_PTR) "admin:officer-pw", 16, tlabel));
	UNSUP("C_InitPIN", f->C_InitPIN(s, (CK_UTF8CHAR_PTR) "bob:bob-pw-12", 13));
	UNSUP("C_SetPIN", f->C_SetPIN(s, (CK_UTF8CHAR_PTR)USER_PASSWORD, strlen(USER_PASSWORD),
				      (CK_UTF8CHAR_PTR)USER_PASSWORD, strlen(USER_PASSWORD)));
	UNSUP("C_CopyObject", f->C_CopyObject(s, key, NULL, 0, &copy));
	UNSUP("C_GetObjectSize", f->C_GetObjectSize(s, key, &size));
	UNSUP("C_SetAttributeValue on a key", f->C_SetAttributeValue(s, key, &label, 1));
	UNSUP("C_SetAttributeValue on a key, NULL template", f->C_SetAttributeValue(s, key, NULL, 1));
	UNSUP("C_SeedRandom", f->C_SeedRandom(s, seed, sizeof seed));
	f->C_DigestInit(s, &sha);
	UNSUP("C_DigestKey", f->C_DigestKey(s, key));
	f->C_DigestFinal(s, NULL, &size);
	UNSUP("C_SignRecoverInit", f->C_SignRecoverInit(s, &rsa, key));
	UNSUP("C_VerifyRecoverInit", f->C_VerifyRecoverInit(s, &rsa, key));
	rv = f->C_MessageEncryptInit(s, &gcmm, key);
	UNSUP("C_MessageEncryptInit", rv);
	if (rv == CKR_OK)
		f->C_MessageEncryptFinal(s);
#undef UNSUP
	/* Answered in C in every profile. */
	abi_check_rv(nm("%s: C_GetOperationState%s", ""), f->C_GetOperationState(s, state_buf, &state_len), ns);
	abi_check_rv(nm("%s: C_WaitForSlotEvent%s", ""), f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &ev, NULL), ns);
	/* A bad session handle still comes first. */
	abi_check_rv(nm("%s: C_CopyObject on no session%s", ""), f->C_CopyObject(0x7fffff, key, NULL, 0, &copy),
		     CKR_SESSION_HANDLE_INVALID);
	f->C_CloseSession(s);
}

/* Behaviour 8 (§1.1): what an unauthenticated session may do. */
static void public_sessions(void)
{
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE key;
	CK_KEY_TYPE kt = CKK_AES;
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_ULONG len = 16;
	CK_BBOOL no = CK_FALSE;
	CK_MECHANISM gen = { CKM_AES_KEY_GEN, NULL, 0 };
	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &cls, sizeof cls },     { CKA_KEY_TYPE, &kt, sizeof kt },
		{ CKA_VALUE_LEN, &len, sizeof len }, { CKA_TOKEN, &no, sizeof no },
		{ CKA_PRIVATE, &no, sizeof no },
	};

	if (open_rw(&s) != CKR_OK)
		return;
	abi_check_rv(nm("%s: public session: C_GenerateKey%s", ""), f->C_GenerateKey(s, &gen, t, LEN(t), &key),
		     cloudhsm ? CKR_USER_NOT_LOGGED_IN : CKR_OK);
	f->C_CloseSession(s);
}

/* Behaviour 4 and §2.2: slot and token as the application sees them. */
static void slot_and_token(void)
{
	CK_SLOT_ID slots[8];
	CK_ULONG n = LEN(slots);
	CK_TOKEN_INFO ti;
	CK_SLOT_INFO si;
	CK_FLAGS want = CKF_TOKEN_INITIALIZED | CKF_LOGIN_REQUIRED | CKF_USER_PIN_INITIALIZED;

	abi_check(nm("%s: C_GetSlotList: one slot, the configured ID%s", ""),
		  f->C_GetSlotList(CK_TRUE, slots, &n) == CKR_OK && n == 1 && slots[0] == SLOT_ID, "n %lu",
		  (unsigned long)n);
	if (!abi_check_rv("C_GetTokenInfo", f->C_GetTokenInfo(SLOT_ID, &ti), CKR_OK))
		return;
	abi_check(nm("%s: token flags initialised, login required, user PIN%s", ""), (ti.flags & want) == want,
		  "flags 0x%lx", (unsigned long)ti.flags);
	abi_check(nm("%s: ulMaxSessionCount%s", ""),
		  ti.ulMaxSessionCount == (cloudhsm ? 1024 : CK_EFFECTIVELY_INFINITE) &&
			  ti.ulMaxRwSessionCount == ti.ulMaxSessionCount,
		  "%lu / %lu", (unsigned long)ti.ulMaxSessionCount, (unsigned long)ti.ulMaxRwSessionCount);
	abi_check(nm("%s: PIN lengths%s", ""),
		  cloudhsm ? ti.ulMinPinLen == 8 && ti.ulMaxPinLen == 32 : ti.ulMinPinLen == 4 && ti.ulMaxPinLen == 64,
		  "%lu-%lu", (unsigned long)ti.ulMinPinLen, (unsigned long)ti.ulMaxPinLen);
	abi_check(nm("%s: model%s", ""),
		  memcmp(ti.model, cloudhsm ? "hsm2m.medium    " : "gohsm standard  ", 16) == 0, "%.16s",
		  (const char *)ti.model);
	abi_check(nm("%s: label as set up by the CLI%s", ""), memcmp(ti.label, "abi ", 4) == 0, "%.32s",
		  (const char *)ti.label);
	if (abi_check_rv("C_GetSlotInfo", f->C_GetSlotInfo(SLOT_ID, &si), CKR_OK))
		abi_check(nm("%s: slot description%s", ""),
			  (memcmp(si.slotDescription, "AWS CloudHSM", 12) == 0) == cloudhsm, "%.64s",
			  (const char *)si.slotDescription);
}

/* §1.5: 1,024 PKCS#11 sessions per application. */
static void session_quota(void)
{
	static CK_SESSION_HANDLE hs[1025];
	CK_TOKEN_INFO ti;
	int i, opened = 0;
	CK_RV rv = CKR_OK;

	for (i = 0; i < 1024; i++) {
		rv = open_rw(&hs[i]);
		if (rv != CKR_OK)
			break;
		opened++;
	}
	abi_check(nm("%s: 1024 sessions open%s", ""), opened == 1024, "opened %d, then %s", opened,
		  abi_rv_name(rv));
	f->C_GetTokenInfo(SLOT_ID, &ti);
	abi_check(nm("%s: ulSessionCount 1024%s", ""), ti.ulSessionCount == 1024, "%lu",
		  (unsigned long)ti.ulSessionCount);
	rv = open_rw(&hs[1024]);
	abi_check_rv(nm("%s: the 1025th session%s", ""), rv, cloudhsm ? CKR_SESSION_COUNT : CKR_OK);
	f->C_CloseAllSessions(SLOT_ID);
	abi_check_rv(nm("%s: a session after closing them%s", ""), open_rw(&hs[0]), CKR_OK);
	f->C_CloseAllSessions(SLOT_ID);
}

/* Behaviour 4: a store no officer has set up yet. */
static void fresh(void)
{
	CK_TOKEN_INFO ti;
	CK_SESSION_HANDLE s;
	CK_RV rv;

	if (abi_check_rv("fresh: C_GetTokenInfo", f->C_GetTokenInfo(SLOT_ID, &ti), CKR_OK))
		abi_check(nm("%s: fresh: CKF_TOKEN_INITIALIZED%s", ""),
			  ((ti.flags & CKF_TOKEN_INITIALIZED) != 0) == cloudhsm, "flags 0x%lx",
			  (unsigned long)ti.flags);
	rv = open_rw(&s);
	abi_check_rv(nm("%s: fresh: C_OpenSession%s", ""), rv, cloudhsm ? CKR_OK : CKR_TOKEN_NOT_RECOGNIZED);
	if (rv != CKR_OK)
		return;
	abi_check_rv(nm("%s: fresh: C_Login of a user that does not exist yet%s", ""),
		     login(s, "alice:" USER_PASSWORD), CKR_PIN_INCORRECT);
	f->C_CloseSession(s);
}

/* Cross-process registry: hold a login until told. */
static int hold(const char *pin)
{
	CK_SESSION_HANDLE s1, s2;
	char line[64];

	if (!abi_check_rv("hold: C_OpenSession", open_rw(&s1), CKR_OK) ||
	    !abi_check_rv("hold: C_OpenSession 2", open_rw(&s2), CKR_OK) ||
	    !abi_check_rv("hold: C_Login", login(s1, pin), CKR_OK))
		return abi_exit();
	printf("READY\n");
	fflush(stdout);
	while (fgets(line, sizeof line, stdin) != NULL) {
		line[strcspn(line, "\n")] = 0;
		if (strcmp(line, "logout") == 0) {
			abi_check_rv("hold: C_Logout", f->C_Logout(s1), CKR_OK);
		} else if (strcmp(line, "close") == 0) {
			abi_check_rv("hold: C_CloseSession 1", f->C_CloseSession(s1), CKR_OK);
			abi_check_rv("hold: C_CloseSession 2 (the last)", f->C_CloseSession(s2), CKR_OK);
		} else if (strcmp(line, "finalize") == 0) {
			abi_check_rv("hold: C_Finalize", f->C_Finalize(NULL), CKR_OK);
		} else {
			abi_fail("hold", "unknown command %s", line);
		}
		printf("DONE %s\n", line);
		fflush(stdout);
	}
	return abi_exit();
}

int main(int argc, char **argv)
{
	struct abi_module m;

	if (argc < 4) {
		fprintf(stderr, "usage: %s LIB cloudhsm|standard rules|fresh|hold [PIN]\n", argv[0]);
		return 2;
	}
	cloudhsm = strcmp(argv[2], "cloudhsm") == 0;
	abi_load(argv[1], &m);
	f = m.f3;
	if (!abi_check_rv("C_Initialize", abi_initialize(&m), CKR_OK))
		return abi_exit();
	if (strcmp(argv[3], "hold") == 0)
		return hold(argc > 4 ? argv[4] : "");
	if (strcmp(argv[3], "fresh") == 0) {
		fresh();
	} else {
		slot_and_token();
		pin_format();
		application_wide_login();
		read_only_sessions();
		public_sessions();
		unsupported_functions();
		session_quota();
	}
	f->C_Finalize(NULL);
	return abi_exit();
}
