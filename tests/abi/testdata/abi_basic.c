/*
 * abi_basic.c - the module's ABI through its function lists: list
 * completeness, interfaces, initialisation arguments and state, functions
 * answered in C, argument and handle checks, the variable-length output
 * convention of the slot and mechanism queries.
 *
 * usage: abi_basic /path/to/libgohsm.so   (with $GOHSM_CONF set by abi_test.go)
 *
 * Sections marked "token state" assume a fresh token in slot index 0.
 */
#include <pthread.h>
#include <stddef.h>

#include "abi.h"

/* ---- the lists -------------------------------------------------------- */

/* The 68 entries of CK_FUNCTION_LIST (v2.40 section 3.6, v3.0 section 3.6). */
#define FIELDS_2_40(X)                                                                       \
	X(C_Initialize) X(C_Finalize) X(C_GetInfo) X(C_GetFunctionList) X(C_GetSlotList)       \
	X(C_GetSlotInfo) X(C_GetTokenInfo) X(C_GetMechanismList) X(C_GetMechanismInfo)         \
	X(C_InitToken) X(C_InitPIN) X(C_SetPIN) X(C_OpenSession) X(C_CloseSession)             \
	X(C_CloseAllSessions) X(C_GetSessionInfo) X(C_GetOperationState)                       \
	X(C_SetOperationState) X(C_Login) X(C_Logout) X(C_CreateObject) X(C_CopyObject)        \
	X(C_DestroyObject) X(C_GetObjectSize) X(C_GetAttributeValue) X(C_SetAttributeValue)    \
	X(C_FindObjectsInit) X(C_FindObjects) X(C_FindObjectsFinal) X(C_EncryptInit)           \
	X(C_Encrypt) X(C_EncryptUpdate) X(C_EncryptFinal) X(C_DecryptInit) X(C_Decrypt)        \
	X(C_DecryptUpdate) X(C_DecryptFinal) X(C_DigestInit) X(C_Digest) X(C_DigestUpdate)     \
	X(C_DigestKey) X(C_DigestFinal) X(C_SignInit) X(C_Sign) X(C_SignUpdate)                \
	X(C_SignFinal) X(C_SignRecoverInit) X(C_SignRecover) X(C_VerifyInit) X(C_Verify)       \
	X(C_VerifyUpdate) X(C_VerifyFinal) X(C_VerifyRecoverInit) X(C_VerifyRecover)           \
	X(C_DigestEncryptUpdate) X(C_DecryptDigestUpdate) X(C_SignEncryptUpdate)               \
	X(C_DecryptVerifyUpdate) X(C_GenerateKey) X(C_GenerateKeyPair) X(C_WrapKey)            \
	X(C_UnwrapKey) X(C_DeriveKey) X(C_SeedRandom) X(C_GenerateRandom)                      \
	X(C_GetFunctionStatus) X(C_CancelFunction) X(C_WaitForSlotEvent)

/* The 24 entries CK_FUNCTION_LIST_3_0 adds (v3.0 section 3.6). */
#define FIELDS_3_0(X)                                                                        \
	X(C_GetInterfaceList) X(C_GetInterface) X(C_LoginUser) X(C_SessionCancel)              \
	X(C_MessageEncryptInit) X(C_EncryptMessage) X(C_EncryptMessageBegin)                   \
	X(C_EncryptMessageNext) X(C_MessageEncryptFinal) X(C_MessageDecryptInit)               \
	X(C_DecryptMessage) X(C_DecryptMessageBegin) X(C_DecryptMessageNext)                   \
	X(C_MessageDecryptFinal) X(C_MessageSignInit) X(C_SignMessage) X(C_SignMessageBegin)   \
	X(C_SignMessageNext) X(C_MessageSignFinal) X(C_MessageVerifyInit) X(C_VerifyMessage)   \
	X(C_VerifyMessageBegin) X(C_VerifyMessageNext) X(C_MessageVerifyFinal)

/* The 10 entries CK_FUNCTION_LIST_3_2 adds (v3.2 section 3.6). */
#define FIELDS_3_2(X)                                                                        \
	X(C_EncapsulateKey) X(C_DecapsulateKey) X(C_VerifySignatureInit) X(C_VerifySignature)  \
	X(C_VerifySignatureUpdate) X(C_VerifySignatureFinal) X(C_GetSessionValidationFlags)    \
	X(C_AsyncComplete) X(C_AsyncGetID) X(C_AsyncJoin)

static void check_lists(struct abi_module *m)
{
	int n240 = 0, n30 = 0, n32 = 0, null240 = 0, null30 = 0, null32 = 0, differ = 0;
	char missing[2048] = "";

#define COUNT(f) n240++;
	FIELDS_2_40(COUNT)
#undef COUNT
#define COUNT(f) n30++;
	FIELDS_3_0(COUNT)
#undef COUNT
#define COUNT(f) n32++;
	FIELDS_3_2(COUNT)
#undef COUNT
	/* The header layout matches the spec's entry count (guards the lists above). */
	abi_check("header: CK_FUNCTION_LIST has 68 entries",
		  n240 == 68 && (sizeof(CK_FUNCTION_LIST) - offsetof(CK_FUNCTION_LIST, C_Initialize)) /
					sizeof(CK_C_Initialize) == 68,
		  "fields %d, size %zu", n240, sizeof(CK_FUNCTION_LIST));
	abi_check("header: CK_FUNCTION_LIST_3_0 has 92 entries",
		  n30 == 24 && (sizeof(CK_FUNCTION_LIST_3_0) - offsetof(CK_FUNCTION_LIST_3_0, C_Initialize)) /
					sizeof(CK_C_Initialize) == 92,
		  "fields %d, size %zu", n30, sizeof(CK_FUNCTION_LIST_3_0));
	abi_check("header: CK_FUNCTION_LIST_3_2 has 102 entries",
		  n32 == 10 && (sizeof(CK_FUNCTION_LIST_3_2) - offsetof(CK_FUNCTION_LIST_3_2, C_Initialize)) /
					sizeof(CK_C_Initialize) == 102,
		  "fields %d, size %zu", n32, sizeof(CK_FUNCTION_LIST_3_2));

	abi_check("C_GetFunctionList version 2.40", m->fl->version.major == 2 && m->fl->version.minor == 40,
		  "got %d.%d", m->fl->version.major, m->fl->version.minor);
	abi_check("C_GetInterface default version 3.2", m->f3->version.major == 3 && m->f3->version.minor == 2,
		  "got %d.%d", m->f3->version.major, m->f3->version.minor);
	abi_check("C_GetInterface(\"PKCS 11\", 3.0) version 3.0", m->f30->version.major == 3 && m->f30->version.minor == 0,
		  "got %d.%d", m->f30->version.major, m->f30->version.minor);

#define NONNULL_240(f)                                                        \
	if (m->fl->f == NULL) {                                               \
		null240++;                                                    \
		strncat(missing, " 2.40:" #f, sizeof missing - strlen(missing) - 1); \
	}                                                                     \
	if (m->f3->f == NULL) {                                               \
		null30++;                                                     \
		strncat(missing, " 3.0:" #f, sizeof missing - strlen(missing) - 1); \
	}                                                                     \
	if ((void *)m->fl->f != (void *)m->f3->f &&                           \
	    strcmp(#f, "C_GetInfo") != 0)                                     \
		differ++;
	FIELDS_2_40(NONNULL_240)
#undef NONNULL_240
#define NONNULL_30(f)                                                         \
	if (m->f3->f == NULL) {                                               \
		null30++;                                                     \
		strncat(missing, " 3.0:" #f, sizeof missing - strlen(missing) - 1); \
	}
	FIELDS_3_0(NONNULL_30)
#undef NONNULL_30
	/* The 3.0 list has the same entry points as the 3.2 list but C_GetInfo. */
#define SAME_30(f)                                                            \
	if (m->f30->f == NULL) {                                              \
		null30++;                                                     \
		strncat(missing, " 3.0:" #f, sizeof missing - strlen(missing) - 1); \
	} else if ((void *)m->f30->f != (void *)m->f3->f && strcmp(#f, "C_GetInfo") != 0) \
		differ++;
	FIELDS_2_40(SAME_30)
	FIELDS_3_0(SAME_30)
#undef SAME_30
#define NONNULL_32(f)                                                         \
	if (m->f3->f == NULL) {                                               \
		null32++;                                                     \
		strncat(missing, " 3.2:" #f, sizeof missing - strlen(missing) - 1); \
	}
	FIELDS_3_2(NONNULL_32)
#undef NONNULL_32
	abi_check("every function pointer of the three lists is set", null240 == 0 && null30 == 0 && null32 == 0,
		  "NULL:%s", missing);
	abi_check("the lists share their entry points (but C_GetInfo)", differ == 0, "%d entries differ", differ);
	abi_check_rv("C_GetFunctionList(NULL)", m->get_function_list(NULL), CKR_ARGUMENTS_BAD);
}

/* ---- interfaces (v3.0 sections 5.4.5, 5.4.6) --------------------------- */

static void check_interfaces(struct abi_module *m)
{
	CK_INTERFACE list[4];
	CK_INTERFACE_PTR ip = NULL;
	CK_ULONG n;
	CK_VERSION v240 = { 2, 40 }, v30 = { 3, 0 }, v31 = { 3, 1 }, v32 = { 3, 2 };
	CK_RV rv;

	abi_check_rv("C_GetInterfaceList(list, NULL)", m->get_interface_list(list, NULL), CKR_ARGUMENTS_BAD);
	n = 0;
	rv = m->get_interface_list(NULL, &n);
	abi_check("C_GetInterfaceList count query", rv == CKR_OK && n == 3, "rv %s count %lu", abi_rv_name(rv),
		  (unsigned long)n);
	n = 2;
	rv = m->get_interface_list(list, &n);
	abi_check("C_GetInterfaceList short buffer", rv == CKR_BUFFER_TOO_SMALL && n == 3, "rv %s count %lu",
		  abi_rv_name(rv), (unsigned long)n);
	n = 4;
	memset(list, 0, sizeof list);
	rv = m->get_interface_list(list, &n);
	if (abi_check("C_GetInterfaceList full", rv == CKR_OK && n == 3, "rv %s count %lu", abi_rv_name(rv),
		      (unsigned long)n)) {
		CK_VERSION *a = (CK_VERSION *)list[0].pFunctionList, *b = (CK_VERSION *)list[1].pFunctionList,
			   *c = (CK_VERSION *)list[2].pFunctionList;

		abi_check("interface 0 is \"PKCS 11\" 3.2",
			  list[0].pInterfaceName && strcmp((char *)list[0].pInterfaceName, "PKCS 11") == 0 && a &&
				  a->major == 3 && a->minor == 2 && list[0].pFunctionList == (void *)m->f3,
			  "name %s", list[0].pInterfaceName ? (char *)list[0].pInterfaceName : "(null)");
		abi_check("interface 1 is \"PKCS 11\" 3.0",
			  list[1].pInterfaceName && strcmp((char *)list[1].pInterfaceName, "PKCS 11") == 0 && b &&
				  b->major == 3 && b->minor == 0,
			  "name %s", list[1].pInterfaceName ? (char *)list[1].pInterfaceName : "(null)");
		abi_check("interface 2 is \"PKCS 11\" 2.40",
			  list[2].pInterfaceName && strcmp((char *)list[2].pInterfaceName, "PKCS 11") == 0 && c &&
				  c->major == 2 && c->minor == 40 && list[2].pFunctionList == (void *)m->fl,
			  "name %s", list[2].pInterfaceName ? (char *)list[2].pInterfaceName : "(null)");
		abi_check("interfaces do not claim CKF_INTERFACE_FORK_SAFE",
			  !(list[0].flags & CKF_INTERFACE_FORK_SAFE) && !(list[1].flags & CKF_INTERFACE_FORK_SAFE) &&
				  !(list[2].flags & CKF_INTERFACE_FORK_SAFE),
			  "flags 0x%lx 0x%lx 0x%lx", (unsigned long)list[0].flags, (unsigned long)list[1].flags,
			  (unsigned long)list[2].flags);
	}

	rv = m->get_interface((CK_UTF8CHAR_PTR) "PKCS 11", &v240, &ip, 0);
	abi_check("C_GetInterface(\"PKCS 11\", 2.40) is the C_GetFunctionList list",
		  rv == CKR_OK && ip && ip->pFunctionList == (void *)m->fl, "rv %s", abi_rv_name(rv));
	ip = NULL;
	rv = m->get_interface((CK_UTF8CHAR_PTR) "PKCS 11", &v30, &ip, 0);
	abi_check("C_GetInterface(\"PKCS 11\", 3.0) is the 3.0 list",
		  rv == CKR_OK && ip && ip->pFunctionList == (void *)m->f30, "rv %s", abi_rv_name(rv));
	ip = NULL;
	rv = m->get_interface((CK_UTF8CHAR_PTR) "PKCS 11", &v32, &ip, 0);
	abi_check("C_GetInterface(\"PKCS 11\", 3.2) is the default list",
		  rv == CKR_OK && ip && ip->pFunctionList == (void *)m->f3, "rv %s", abi_rv_name(rv));
	ip = NULL;
	rv = m->get_interface(NULL, &v240, &ip, 0);
	abi_check("C_GetInterface(NULL, 2.40)", rv == CKR_OK && ip && ip->pFunctionList == (void *)m->fl, "rv %s",
		  abi_rv_name(rv));
	ip = NULL;
	rv = m->get_interface((CK_UTF8CHAR_PTR) "PKCS 11", NULL, &ip, 0);
	abi_check("C_GetInterface(\"PKCS 11\", any version) is 3.2",
		  rv == CKR_OK && ip && ip->pFunctionList == (void *)m->f3, "rv %s", abi_rv_name(rv));
	abi_check_rv("C_GetInterface(\"PKCS 12\")", m->get_interface((CK_UTF8CHAR_PTR) "PKCS 12", NULL, &ip, 0),
		     CKR_ARGUMENTS_BAD);
	abi_check_rv("C_GetInterface(version 3.1)", m->get_interface(NULL, &v31, &ip, 0), CKR_ARGUMENTS_BAD);
	abi_check_rv("C_GetInterface(CKF_INTERFACE_FORK_SAFE)",
		     m->get_interface(NULL, NULL, &ip, CKF_INTERFACE_FORK_SAFE), CKR_ARGUMENTS_BAD);
	abi_check_rv("C_GetInterface(ppInterface NULL)", m->get_interface(NULL, NULL, NULL, 0), CKR_ARGUMENTS_BAD);
	/* The 3.0 and 3.2 lists reach the same functions. */
	n = 0;
	rv = m->f3->C_GetInterfaceList(NULL, &n);
	abi_check("3.2 list C_GetInterfaceList", rv == CKR_OK && n == 3, "rv %s count %lu", abi_rv_name(rv),
		  (unsigned long)n);
	n = 0;
	rv = m->f30->C_GetInterfaceList(NULL, &n);
	abi_check("3.0 list C_GetInterfaceList", rv == CKR_OK && n == 3, "rv %s count %lu", abi_rv_name(rv),
		  (unsigned long)n);
}

/* ---- before C_Initialize ---------------------------------------------- */

static void check_uninitialised(struct abi_module *m, const char *when)
{
	CK_INFO info;
	CK_ULONG n = 0;
	CK_SESSION_HANDLE s;
	char name[128];

#define UNINIT(call, label)                                                             \
	snprintf(name, sizeof name, "%s: %s", when, label);                             \
	abi_check_rv(name, call, CKR_CRYPTOKI_NOT_INITIALIZED);
	UNINIT(m->fl->C_GetInfo(&info), "C_GetInfo (2.40 list)")
	UNINIT(m->f30->C_GetInfo(&info), "C_GetInfo (3.0 list)")
	UNINIT(m->f3->C_GetInfo(&info), "C_GetInfo (3.2 list)")
	UNINIT(m->f3->C_VerifySignatureFinal(1), "C_VerifySignatureFinal (3.2, unsupported)")
	UNINIT(m->f3->C_EncapsulateKey(1, NULL, 1, NULL, 0, NULL, &n, &s), "C_EncapsulateKey (3.2)")
	UNINIT(m->f3->C_GetSlotList(CK_FALSE, NULL, &n), "C_GetSlotList")
	UNINIT(m->f3->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &s), "C_OpenSession")
	UNINIT(m->f3->C_Sign(1, NULL, 0, NULL, &n), "C_Sign")
	UNINIT(m->f3->C_LoginUser(1, CKU_USER, NULL, 0, NULL, 0), "C_LoginUser")
	UNINIT(m->f3->C_DigestKey(1, 1), "C_DigestKey (unsupported)")
	UNINIT(m->f3->C_GetFunctionStatus(1), "C_GetFunctionStatus")
	UNINIT(m->f3->C_Finalize(NULL), "C_Finalize")
#undef UNINIT
}

/* ---- C_Initialize arguments (v3.0 section 5.4.1) ---------------------- */

/* NSS-style callbacks backed by pthread mutexes. */
static CK_RV cb_create(CK_VOID_PTR_PTR out)
{
	pthread_mutex_t *mu = malloc(sizeof *mu);

	if (mu == NULL)
		return CKR_HOST_MEMORY;
	pthread_mutex_init(mu, NULL);
	*out = mu;
	return CKR_OK;
}
static CK_RV cb_destroy(CK_VOID_PTR p)
{
	pthread_mutex_destroy(p);
	free(p);
	return CKR_OK;
}
static CK_RV cb_lock(CK_VOID_PTR p)
{
	return pthread_mutex_lock(p) == 0 ? CKR_OK : CKR_GENERAL_ERROR;
}
static CK_RV cb_unlock(CK_VOID_PTR p)
{
	return pthread_mutex_unlock(p) == 0 ? CKR_OK : CKR_GENERAL_ERROR;
}

static void init_finalize(struct abi_module *m, const char *label, CK_C_INITIALIZE_ARGS *args)
{
	char name[160];
	CK_INFO info;
	CK_RV rv = m->f3->C_Initialize(args);

	snprintf(name, sizeof name, "C_Initialize %s", label);
	if (!abi_check_rv(name, rv, CKR_OK))
		return;
	snprintf(name, sizeof name, "C_GetInfo after C_Initialize %s", label);
	abi_check_rv(name, m->f3->C_GetInfo(&info), CKR_OK);
	snprintf(name, sizeof name, "C_Finalize after C_Initialize %s", label);
	abi_check_rv(name, m->f3->C_Finalize(NULL), CKR_OK);
}

static void check_initialize(struct abi_module *m)
{
	CK_C_INITIALIZE_ARGS a;
	CK_INFO info;
	CK_RV rv;

	abi_check_rv("C_Finalize(non-NULL)", m->f3->C_Finalize(&info), CKR_ARGUMENTS_BAD);

	init_finalize(m, "(NULL)", NULL);

	memset(&a, 0, sizeof a);
	init_finalize(m, "(flags 0)", &a);

	memset(&a, 0, sizeof a);
	a.flags = CKF_OS_LOCKING_OK;
	init_finalize(m, "(CKF_OS_LOCKING_OK, libp11/Java)", &a);

	memset(&a, 0, sizeof a);
	a.flags = CKF_OS_LOCKING_OK | CKF_LIBRARY_CANT_CREATE_OS_THREADS;
	init_finalize(m, "(flags 0x3, no callbacks, GnuTLS)", &a);

	memset(&a, 0, sizeof a);
	a.CreateMutex = cb_create;
	a.DestroyMutex = cb_destroy;
	a.LockMutex = cb_lock;
	a.UnlockMutex = cb_unlock;
	a.flags = CKF_OS_LOCKING_OK | CKF_LIBRARY_CANT_CREATE_OS_THREADS;
	init_finalize(m, "(flags 0x3 + mutex callbacks, NSS)", &a);

	a.flags = 0;
	init_finalize(m, "(mutex callbacks, no flag)", &a);

	memset(&a, 0, sizeof a);
	a.CreateMutex = cb_create;
	a.LockMutex = cb_lock;
	abi_check_rv("C_Initialize(2 of 4 mutex callbacks)", m->f3->C_Initialize(&a), CKR_ARGUMENTS_BAD);
	abi_check_rv("C_GetInfo after refused C_Initialize", m->f3->C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
	a.flags = CKF_OS_LOCKING_OK;
	abi_check_rv("C_Initialize(2 of 4 mutex callbacks + CKF_OS_LOCKING_OK)", m->f3->C_Initialize(&a),
		     CKR_ARGUMENTS_BAD);

	/* Double initialisation, then finalize/re-initialise. */
	abi_check_rv("C_Initialize", m->fl->C_Initialize(NULL), CKR_OK);
	abi_check_rv("C_Initialize again", m->fl->C_Initialize(NULL), CKR_CRYPTOKI_ALREADY_INITIALIZED);
	abi_check_rv("C_Initialize again via 3.0 list", abi_initialize(m), CKR_CRYPTOKI_ALREADY_INITIALIZED);
	abi_check_rv("C_Finalize", m->fl->C_Finalize(NULL), CKR_OK);
	abi_check_rv("C_Finalize again", m->fl->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
	check_uninitialised(m, "after C_Finalize");
	rv = abi_initialize(m);
	abi_check_rv("C_Initialize after C_Finalize", rv, CKR_OK);
	abi_check_rv("C_Finalize after re-initialisation", m->f3->C_Finalize(NULL), CKR_OK);
}

/*
 * Configuration through pReserved (token/config.go: configuration text if
 * it holds '=' or a newline, else a file path; errors there answer
 * CKR_ARGUMENTS_BAD). Depends on the configuration format.
 */
static void check_initialize_config(struct abi_module *m)
{
	CK_C_INITIALIZE_ARGS a;
	const char *conf = getenv("GOHSM_CONF");

	memset(&a, 0, sizeof a);
	a.flags = CKF_OS_LOCKING_OK;
	a.pReserved = (CK_VOID_PTR) "no_such_key = 1\n";
	if (!abi_check_rv("config: C_Initialize(pReserved = bad configuration text)", m->f3->C_Initialize(&a),
			  CKR_ARGUMENTS_BAD))
		m->f3->C_Finalize(NULL);
	if (conf == NULL) {
		abi_fail("config: $GOHSM_CONF", "not set");
		return;
	}
	a.pReserved = (CK_VOID_PTR)conf;
	init_finalize(m, "(pReserved = path of the configuration file)", &a);
}

/* ---- functions answered in C ------------------------------------------ */

static void check_not_supported(struct abi_module *m)
{
	CK_FUNCTION_LIST_3_2_PTR f = m->f3;
	CK_MECHANISM mech = { CKM_SHA256, NULL, 0 };
	CK_FLAGS flags;
	CK_ASYNC_DATA async;
	CK_BYTE buf[64];
	CK_ULONG n = sizeof buf;
	CK_OBJECT_HANDLE h;
	CK_SLOT_ID slot;
	const CK_SESSION_HANDLE s = 1;

#define NS(call, label) abi_check_rv("not supported: " label, call, CKR_FUNCTION_NOT_SUPPORTED);
	/* Implemented functions reached with a session that does not exist. */
#define GO(call, label) abi_check_rv("implemented, bad session: " label, call, CKR_SESSION_HANDLE_INVALID);
	NS(f->C_GetOperationState(s, NULL, &n), "C_GetOperationState")
	NS(f->C_SetOperationState(s, buf, sizeof buf, 0, 0), "C_SetOperationState")
	GO(f->C_DigestKey(s, 1), "C_DigestKey")
	GO(f->C_SignRecoverInit(s, &mech, 1), "C_SignRecoverInit")
	GO(f->C_SignRecover(s, buf, 1, NULL, &n), "C_SignRecover")
	GO(f->C_VerifyRecoverInit(s, &mech, 1), "C_VerifyRecoverInit")
	GO(f->C_VerifyRecover(s, buf, 1, NULL, &n), "C_VerifyRecover")
	NS(f->C_DigestEncryptUpdate(s, buf, 1, NULL, &n), "C_DigestEncryptUpdate")
	NS(f->C_DecryptDigestUpdate(s, buf, 1, NULL, &n), "C_DecryptDigestUpdate")
	NS(f->C_SignEncryptUpdate(s, buf, 1, NULL, &n), "C_SignEncryptUpdate")
	NS(f->C_DecryptVerifyUpdate(s, buf, 1, NULL, &n), "C_DecryptVerifyUpdate")
	GO(f->C_WrapKey(s, &mech, 1, 2, NULL, &n), "C_WrapKey")
	GO(f->C_UnwrapKey(s, &mech, 1, buf, 1, NULL, 0, &h), "C_UnwrapKey")
	GO(f->C_DeriveKey(s, &mech, 1, NULL, 0, &h), "C_DeriveKey")
	NS(f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &slot, NULL), "C_WaitForSlotEvent")
	GO(f->C_SessionCancel(s, CKF_SIGN), "C_SessionCancel")
	GO(f->C_MessageEncryptInit(s, &mech, 1), "C_MessageEncryptInit")
	GO(f->C_EncryptMessage(s, NULL, 0, NULL, 0, buf, 1, NULL, &n), "C_EncryptMessage")
	GO(f->C_EncryptMessageBegin(s, NULL, 0, NULL, 0), "C_EncryptMessageBegin")
	GO(f->C_EncryptMessageNext(s, NULL, 0, buf, 1, NULL, &n, 0), "C_EncryptMessageNext")
	GO(f->C_MessageEncryptFinal(s), "C_MessageEncryptFinal")
	GO(f->C_MessageDecryptInit(s, &mech, 1), "C_MessageDecryptInit")
	GO(f->C_DecryptMessage(s, NULL, 0, NULL, 0, buf, 1, NULL, &n), "C_DecryptMessage")
	GO(f->C_DecryptMessageBegin(s, NULL, 0, NULL, 0), "C_DecryptMessageBegin")
	GO(f->C_DecryptMessageNext(s, NULL, 0, buf, 1, NULL, &n, 0), "C_DecryptMessageNext")
	GO(f->C_MessageDecryptFinal(s), "C_MessageDecryptFinal")
	NS(f->C_MessageSignInit(s, &mech, 1), "C_MessageSignInit")
	NS(f->C_SignMessage(s, NULL, 0, buf, 1, NULL, &n), "C_SignMessage")
	NS(f->C_SignMessageBegin(s, NULL, 0), "C_SignMessageBegin")
	NS(f->C_SignMessageNext(s, NULL, 0, buf, 1, NULL, &n), "C_SignMessageNext")
	NS(f->C_MessageSignFinal(s), "C_MessageSignFinal")
	NS(f->C_MessageVerifyInit(s, &mech, 1), "C_MessageVerifyInit")
	NS(f->C_VerifyMessage(s, NULL, 0, buf, 1, buf, 1), "C_VerifyMessage")
	NS(f->C_VerifyMessageBegin(s, NULL, 0), "C_VerifyMessageBegin")
	NS(f->C_VerifyMessageNext(s, NULL, 0, buf, 1, buf, 1), "C_VerifyMessageNext")
	NS(f->C_MessageVerifyFinal(s), "C_MessageVerifyFinal")
	GO(m->fl->C_DigestKey(s, 1), "C_DigestKey (2.40 list)")
	/* The 3.2 functions, through the 3.2 list: the KEM ones are in Go. */
	GO(f->C_EncapsulateKey(s, &mech, 1, NULL, 0, NULL, &n, &h), "C_EncapsulateKey")
	GO(f->C_DecapsulateKey(s, &mech, 1, NULL, 0, buf, 1, &h), "C_DecapsulateKey")
	NS(f->C_VerifySignatureInit(s, &mech, 1, buf, 1), "C_VerifySignatureInit")
	NS(f->C_VerifySignature(s, buf, 1), "C_VerifySignature")
	NS(f->C_VerifySignatureUpdate(s, buf, 1), "C_VerifySignatureUpdate")
	NS(f->C_VerifySignatureFinal(s), "C_VerifySignatureFinal")
	NS(f->C_GetSessionValidationFlags(s, CKS_LAST_VALIDATION_OK, &flags), "C_GetSessionValidationFlags")
	NS(f->C_AsyncComplete(s, (CK_UTF8CHAR_PTR) "C_Sign", &async), "C_AsyncComplete")
	NS(f->C_AsyncGetID(s, (CK_UTF8CHAR_PTR) "C_Sign", &n), "C_AsyncGetID")
	NS(f->C_AsyncJoin(s, (CK_UTF8CHAR_PTR) "C_Sign", 1, buf, sizeof buf), "C_AsyncJoin")
#undef NS
#undef GO
	/* Legacy parallel functions (v3.0 section 5.20). */
	abi_check_rv("C_GetFunctionStatus", f->C_GetFunctionStatus(s), CKR_FUNCTION_NOT_PARALLEL);
	abi_check_rv("C_CancelFunction", f->C_CancelFunction(s), CKR_FUNCTION_NOT_PARALLEL);
}

/* ---- Go-implemented queries, no token state --------------------------- */

/* Fixed-length character fields are blank padded, never NUL (v3.0 3.2). */
static int blank_padded(const CK_UTF8CHAR *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] == 0)
			return 0;
	return 1;
}

static void check_queries(struct abi_module *m, CK_SLOT_ID *first)
{
	CK_FUNCTION_LIST_3_2_PTR f = m->f3;
	CK_INFO info;
	CK_SLOT_ID slots[32];
	CK_SLOT_INFO si;
	CK_TOKEN_INFO ti;
	CK_MECHANISM_TYPE mechs[256];
	CK_MECHANISM_INFO mi;
	CK_ULONG n, full, i;
	CK_RV rv;
	const CK_SLOT_ID bogus = 0x7eadbeef;
	int has_ecgen = 0, has_gcm = 0;

	abi_check_rv("C_GetInfo(NULL)", f->C_GetInfo(NULL), CKR_ARGUMENTS_BAD);
	memset(&info, 0, sizeof info);
	rv = f->C_GetInfo(&info);
	abi_check("C_GetInfo", rv == CKR_OK && info.flags == 0 &&
				     blank_padded(info.manufacturerID, sizeof info.manufacturerID) &&
				     blank_padded(info.libraryDescription, sizeof info.libraryDescription),
		  "rv %s flags 0x%lx (fields must be blank padded)", abi_rv_name(rv), (unsigned long)info.flags);
	/* Each list reports the version of the interface it belongs to. */
	{
		CK_INFO i2, i3, i32;
		CK_RV r2 = m->fl->C_GetInfo(&i2), r3 = m->f30->C_GetInfo(&i3), r32 = m->f3->C_GetInfo(&i32);
		abi_check("C_GetInfo version per interface (2.40 -> 2.40, 3.0 -> 3.0, 3.2 -> 3.2)",
			  r2 == CKR_OK && r3 == CKR_OK && r32 == CKR_OK && i2.cryptokiVersion.major == 2 &&
				  i2.cryptokiVersion.minor == 40 && i3.cryptokiVersion.major == 3 &&
				  i3.cryptokiVersion.minor == 0 && i32.cryptokiVersion.major == 3 &&
				  i32.cryptokiVersion.minor == 2,
			  "2.40 list %d.%d, 3.0 list %d.%d, 3.2 list %d.%d", i2.cryptokiVersion.major,
			  i2.cryptokiVersion.minor, i3.cryptokiVersion.major, i3.cryptokiVersion.minor,
			  i32.cryptokiVersion.major, i32.cryptokiVersion.minor);
	}

	/* Slot list: v3.0 section 5.2 convention. */
	abi_check_rv("C_GetSlotList(pulCount NULL)", f->C_GetSlotList(CK_FALSE, slots, NULL), CKR_ARGUMENTS_BAD);
	n = 0;
	rv = f->C_GetSlotList(CK_FALSE, NULL, &n);
	abi_check("C_GetSlotList length query", rv == CKR_OK && n >= 1 && n <= 32, "rv %s count %lu",
		  abi_rv_name(rv), (unsigned long)n);
	full = n;
	n = 0;
	rv = f->C_GetSlotList(CK_FALSE, slots, &n);
	abi_check("C_GetSlotList short buffer", rv == CKR_BUFFER_TOO_SMALL && n == full, "rv %s count %lu want %lu",
		  abi_rv_name(rv), (unsigned long)n, (unsigned long)full);
	n = 32;
	rv = f->C_GetSlotList(CK_FALSE, slots, &n);
	if (!abi_check("C_GetSlotList fill", rv == CKR_OK && n == full && n >= 1, "rv %s count %lu", abi_rv_name(rv),
		       (unsigned long)n))
		return;
	*first = slots[0];
	n = 32;
	rv = f->C_GetSlotList(CK_TRUE, slots, &n);
	abi_check("C_GetSlotList(tokenPresent)", rv == CKR_OK && n >= 1 && slots[0] == *first, "rv %s count %lu",
		  abi_rv_name(rv), (unsigned long)n);

	rv = f->C_GetSlotInfo(*first, &si);
	abi_check("C_GetSlotInfo", rv == CKR_OK && (si.flags & CKF_TOKEN_PRESENT) &&
					  blank_padded(si.slotDescription, sizeof si.slotDescription),
		  "rv %s flags 0x%lx", abi_rv_name(rv), (unsigned long)si.flags);
	abi_check_rv("C_GetSlotInfo(invalid slot)", f->C_GetSlotInfo(bogus, &si), CKR_SLOT_ID_INVALID);
	abi_check_rv("C_GetSlotInfo(NULL)", f->C_GetSlotInfo(*first, NULL), CKR_ARGUMENTS_BAD);

	rv = f->C_GetTokenInfo(*first, &ti);
	abi_check("C_GetTokenInfo", rv == CKR_OK && blank_padded(ti.label, sizeof ti.label) &&
					   blank_padded(ti.serialNumber, sizeof ti.serialNumber),
		  "rv %s", abi_rv_name(rv));
	abi_check_rv("C_GetTokenInfo(invalid slot)", f->C_GetTokenInfo(bogus, &ti), CKR_SLOT_ID_INVALID);
	abi_check_rv("C_GetTokenInfo(NULL)", f->C_GetTokenInfo(*first, NULL), CKR_ARGUMENTS_BAD);

	abi_check_rv("C_GetMechanismList(pulCount NULL)", f->C_GetMechanismList(*first, mechs, NULL),
		     CKR_ARGUMENTS_BAD);
	abi_check_rv("C_GetMechanismList(invalid slot)", f->C_GetMechanismList(bogus, NULL, &n),
		     CKR_SLOT_ID_INVALID);
	n = 0;
	rv = f->C_GetMechanismList(*first, NULL, &n);
	abi_check("C_GetMechanismList length query", rv == CKR_OK && n >= 2 && n <= 256, "rv %s count %lu",
		  abi_rv_name(rv), (unsigned long)n);
	full = n;
	n = 1;
	rv = f->C_GetMechanismList(*first, mechs, &n);
	abi_check("C_GetMechanismList short buffer", rv == CKR_BUFFER_TOO_SMALL && n == full,
		  "rv %s count %lu want %lu", abi_rv_name(rv), (unsigned long)n, (unsigned long)full);
	n = 256;
	rv = f->C_GetMechanismList(*first, mechs, &n);
	if (abi_check("C_GetMechanismList fill", rv == CKR_OK && n == full, "rv %s count %lu", abi_rv_name(rv),
		      (unsigned long)n)) {
		for (i = 0; i < n; i++) {
			has_ecgen |= mechs[i] == CKM_EC_KEY_PAIR_GEN;
			has_gcm |= mechs[i] == CKM_AES_GCM;
		}
		abi_check("C_GetMechanismList has CKM_EC_KEY_PAIR_GEN and CKM_AES_GCM", has_ecgen && has_gcm,
			  "ec %d gcm %d", has_ecgen, has_gcm);
		rv = f->C_GetMechanismInfo(*first, mechs[0], &mi);
		abi_check("C_GetMechanismInfo(first listed)", rv == CKR_OK && mi.flags != 0, "rv %s flags 0x%lx",
			  abi_rv_name(rv), (unsigned long)mi.flags);
	}
	abi_check_rv("C_GetMechanismInfo(invalid mechanism)",
		     f->C_GetMechanismInfo(*first, CKM_VENDOR_DEFINED | 0x7e57, &mi), CKR_MECHANISM_INVALID);
	abi_check_rv("C_GetMechanismInfo(invalid slot)", f->C_GetMechanismInfo(bogus, CKM_AES_GCM, &mi),
		     CKR_SLOT_ID_INVALID);
	abi_check_rv("C_GetMechanismInfo(NULL)", f->C_GetMechanismInfo(*first, CKM_AES_GCM, NULL),
		     CKR_ARGUMENTS_BAD);

	/* Sessions: arguments checked before token state matters. */
	{
		CK_SESSION_HANDLE s;
		CK_SESSION_INFO sinfo;
		CK_MECHANISM mech = { CKM_ECDSA_SHA256, NULL, 0 };
		const CK_SESSION_HANDLE bad = 0x7eadbeef;

		abi_check_rv("C_OpenSession without CKF_SERIAL_SESSION",
			     f->C_OpenSession(*first, CKF_RW_SESSION, NULL, NULL, &s),
			     CKR_SESSION_PARALLEL_NOT_SUPPORTED);
		abi_check_rv("C_OpenSession(phSession NULL)",
			     f->C_OpenSession(*first, CKF_SERIAL_SESSION, NULL, NULL, NULL), CKR_ARGUMENTS_BAD);
		abi_check_rv("C_OpenSession(invalid slot)",
			     f->C_OpenSession(bogus, CKF_SERIAL_SESSION, NULL, NULL, &s), CKR_SLOT_ID_INVALID);
		abi_check_rv("C_CloseSession(invalid handle)", f->C_CloseSession(bad), CKR_SESSION_HANDLE_INVALID);
		abi_check_rv("C_GetSessionInfo(invalid handle)", f->C_GetSessionInfo(bad, &sinfo),
			     CKR_SESSION_HANDLE_INVALID);
		abi_check_rv("C_SignInit(invalid session)", f->C_SignInit(bad, &mech, 1), CKR_SESSION_HANDLE_INVALID);
		abi_check_rv("C_Sign(invalid session)", f->C_Sign(bad, (CK_BYTE_PTR) "x", 1, NULL, &n),
			     CKR_SESSION_HANDLE_INVALID);
		abi_check_rv("C_CloseAllSessions(invalid slot)", f->C_CloseAllSessions(bogus), CKR_SLOT_ID_INVALID);
	}
}

/* ---- token state: fresh token in slot index 0 ------------------------- */

static void check_token_state(struct abi_module *m, CK_SLOT_ID slot)
{
	CK_FUNCTION_LIST_3_2_PTR f = m->f3;
	CK_TOKEN_INFO ti;
	CK_SESSION_HANDLE ro, rw;
	CK_SESSION_INFO si;
	CK_UTF8CHAR label[32];
	CK_BYTE sig[128];
	CK_ULONG n = sizeof sig;
	CK_RV rv;

	rv = f->C_GetTokenInfo(slot, &ti);
	abi_check("token: fresh token is not CKF_TOKEN_INITIALIZED", rv == CKR_OK && !(ti.flags & CKF_TOKEN_INITIALIZED),
		  "rv %s flags 0x%lx", abi_rv_name(rv), (unsigned long)ti.flags);
	abi_pad(label, sizeof label, ABI_LABEL);
	abi_check_rv("token: C_InitToken(pPin NULL)", f->C_InitToken(slot, NULL, 4, label), CKR_ARGUMENTS_BAD);
	abi_check_rv("token: C_InitToken(pLabel NULL)",
		     f->C_InitToken(slot, (CK_UTF8CHAR_PTR)ABI_SO_PIN, strlen(ABI_SO_PIN), NULL), CKR_ARGUMENTS_BAD);
	abi_check_rv("token: C_InitToken", f->C_InitToken(slot, (CK_UTF8CHAR_PTR)ABI_SO_PIN, strlen(ABI_SO_PIN), label),
		     CKR_OK);
	rv = f->C_GetTokenInfo(slot, &ti);
	abi_check("token: initialised, label set",
		  rv == CKR_OK && (ti.flags & CKF_TOKEN_INITIALIZED) && memcmp(ti.label, label, 32) == 0,
		  "rv %s flags 0x%lx label %.32s", abi_rv_name(rv), (unsigned long)ti.flags, ti.label);

	rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &ro);
	abi_check_rv("token: C_OpenSession R/O", rv, CKR_OK);
	rv = f->C_GetSessionInfo(ro, &si);
	abi_check("token: R/O session state CKS_RO_PUBLIC_SESSION",
		  rv == CKR_OK && si.state == CKS_RO_PUBLIC_SESSION && si.slotID == slot &&
			  (si.flags & CKF_SERIAL_SESSION) && !(si.flags & CKF_RW_SESSION),
		  "rv %s state %lu flags 0x%lx", abi_rv_name(rv), (unsigned long)si.state, (unsigned long)si.flags);
	abi_check_rv("token: C_GetSessionInfo(NULL)", f->C_GetSessionInfo(ro, NULL), CKR_ARGUMENTS_BAD);
	abi_check_rv("token: C_Sign without C_SignInit", f->C_Sign(ro, (CK_BYTE_PTR) "x", 1, sig, &n),
		     CKR_OPERATION_NOT_INITIALIZED);

	rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &rw);
	abi_check_rv("token: C_OpenSession R/W", rv, CKR_OK);
	rv = f->C_GetSessionInfo(rw, &si);
	abi_check("token: R/W session state CKS_RW_PUBLIC_SESSION", rv == CKR_OK && si.state == CKS_RW_PUBLIC_SESSION,
		  "rv %s state %lu", abi_rv_name(rv), (unsigned long)si.state);
	abi_check_rv("token: C_Login SO (R/O session open)",
		     f->C_Login(rw, CKU_SO, (CK_UTF8CHAR_PTR)ABI_SO_PIN, strlen(ABI_SO_PIN)), CKR_SESSION_READ_ONLY_EXISTS);
	abi_check_rv("token: C_CloseSession R/O", f->C_CloseSession(ro), CKR_OK);
	abi_check_rv("token: C_GetSessionInfo(closed session)", f->C_GetSessionInfo(ro, &si),
		     CKR_SESSION_HANDLE_INVALID);
	abi_check_rv("token: C_Login SO wrong PIN", f->C_Login(rw, CKU_SO, (CK_UTF8CHAR_PTR) "wrong-pin", 9),
		     CKR_PIN_INCORRECT);
	abi_check_rv("token: C_Login SO", f->C_Login(rw, CKU_SO, (CK_UTF8CHAR_PTR)ABI_SO_PIN, strlen(ABI_SO_PIN)),
		     CKR_OK);
	rv = f->C_GetSessionInfo(rw, &si);
	abi_check("token: state CKS_RW_SO_FUNCTIONS", rv == CKR_OK && si.state == CKS_RW_SO_FUNCTIONS,
		  "rv %s state %lu", abi_rv_name(rv), (unsigned long)si.state);
	abi_check_rv("token: C_InitPIN(NULL PIN)", f->C_InitPIN(rw, NULL, 4), CKR_ARGUMENTS_BAD);
	abi_check_rv("token: C_InitPIN", f->C_InitPIN(rw, (CK_UTF8CHAR_PTR)ABI_USER_PIN, strlen(ABI_USER_PIN)),
		     CKR_OK);
	abi_check_rv("token: C_Logout", f->C_Logout(rw), CKR_OK);
	abi_check_rv("token: C_Logout again", f->C_Logout(rw), CKR_USER_NOT_LOGGED_IN);
	abi_check_rv("token: C_Login USER",
		     f->C_Login(rw, CKU_USER, (CK_UTF8CHAR_PTR)ABI_USER_PIN, strlen(ABI_USER_PIN)), CKR_OK);
	rv = f->C_GetSessionInfo(rw, &si);
	abi_check("token: state CKS_RW_USER_FUNCTIONS", rv == CKR_OK && si.state == CKS_RW_USER_FUNCTIONS,
		  "rv %s state %lu", abi_rv_name(rv), (unsigned long)si.state);
	abi_check_rv("token: C_Login USER again", f->C_Login(rw, CKU_USER, (CK_UTF8CHAR_PTR)ABI_USER_PIN,
							    strlen(ABI_USER_PIN)),
		     CKR_USER_ALREADY_LOGGED_IN);
	abi_check_rv("token: C_Logout USER", f->C_Logout(rw), CKR_OK);
	abi_check_rv("token: C_CloseAllSessions", f->C_CloseAllSessions(slot), CKR_OK);
	abi_check_rv("token: C_GetSessionInfo after C_CloseAllSessions", f->C_GetSessionInfo(rw, &si),
		     CKR_SESSION_HANDLE_INVALID);
}

int main(int argc, char **argv)
{
	struct abi_module m;
	CK_SLOT_ID slot = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s /path/to/libgohsm.so\n", argv[0]);
		return 2;
	}
	abi_load(argv[1], &m);
	check_lists(&m);
	check_interfaces(&m);
	check_uninitialised(&m, "before C_Initialize");
	check_initialize(&m);
	check_initialize_config(&m);

	if (!abi_check_rv("C_Initialize for the queries", abi_initialize(&m), CKR_OK))
		return abi_exit();
	check_not_supported(&m);
	check_queries(&m, &slot);
	check_token_state(&m, slot);
	abi_check_rv("final C_Finalize", m.f3->C_Finalize(NULL), CKR_OK);
	check_uninitialised(&m, "at the end");
	return abi_exit();
}
