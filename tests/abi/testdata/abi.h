/*
 * abi.h - shared helpers of the C driver programs in tests/abi/testdata.
 *
 * Each driver dlopen()s the module named by argv[1], reaches it only
 * through the function lists (C_GetFunctionList / C_GetInterface), prints
 * one line per check ("PASS name" or "FAIL name: detail") and exits
 * non-zero if any check failed. Plain C, one translation unit per driver.
 *
 * The token state the drivers assume (a fresh token in slot index 0, which
 * C_InitToken with ABI_SO_PIN initialises) comes from the configuration
 * that abi_test.go writes and passes in $GOHSM_CONF.
 */
#ifndef GOHSM_ABI_H
#define GOHSM_ABI_H

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pkcs11.h"

/* Credentials and label used for the fresh token (one place to change). */
#define ABI_SO_PIN "password1"
#define ABI_USER_PIN "userpin1"
#define ABI_LABEL "abi"

static int abi_failures;
static int abi_passes;

static inline void abi_pass(const char *name)
{
	abi_passes++;
	printf("PASS %s\n", name);
	fflush(stdout);
}

static inline void abi_fail(const char *name, const char *fmt, ...)
{
	va_list ap;

	abi_failures++;
	printf("FAIL %s: ", name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static inline const char *abi_rv_name(CK_RV rv)
{
	switch (rv) {
#define N(x) case x: return #x;
	N(CKR_OK)
	N(CKR_HOST_MEMORY)
	N(CKR_SLOT_ID_INVALID)
	N(CKR_GENERAL_ERROR)
	N(CKR_FUNCTION_FAILED)
	N(CKR_ARGUMENTS_BAD)
	N(CKR_ATTRIBUTE_SENSITIVE)
	N(CKR_ATTRIBUTE_TYPE_INVALID)
	N(CKR_ATTRIBUTE_VALUE_INVALID)
	N(CKR_DATA_LEN_RANGE)
	N(CKR_ENCRYPTED_DATA_INVALID)
	N(CKR_ENCRYPTED_DATA_LEN_RANGE)
	N(CKR_AEAD_DECRYPT_FAILED)
	N(CKR_FUNCTION_NOT_PARALLEL)
	N(CKR_FUNCTION_NOT_SUPPORTED)
	N(CKR_KEY_HANDLE_INVALID)
	N(CKR_KEY_TYPE_INCONSISTENT)
	N(CKR_KEY_FUNCTION_NOT_PERMITTED)
	N(CKR_MECHANISM_INVALID)
	N(CKR_MECHANISM_PARAM_INVALID)
	N(CKR_OBJECT_HANDLE_INVALID)
	N(CKR_OPERATION_ACTIVE)
	N(CKR_OPERATION_NOT_INITIALIZED)
	N(CKR_PIN_INCORRECT)
	N(CKR_PIN_LEN_RANGE)
	N(CKR_SESSION_HANDLE_INVALID)
	N(CKR_SESSION_PARALLEL_NOT_SUPPORTED)
	N(CKR_SESSION_READ_ONLY)
	N(CKR_SESSION_EXISTS)
	N(CKR_SESSION_READ_ONLY_EXISTS)
	N(CKR_SESSION_READ_WRITE_SO_EXISTS)
	N(CKR_SIGNATURE_INVALID)
	N(CKR_SIGNATURE_LEN_RANGE)
	N(CKR_TEMPLATE_INCOMPLETE)
	N(CKR_TEMPLATE_INCONSISTENT)
	N(CKR_TOKEN_NOT_PRESENT)
	N(CKR_TOKEN_NOT_RECOGNIZED)
	N(CKR_USER_ALREADY_LOGGED_IN)
	N(CKR_USER_NOT_LOGGED_IN)
	N(CKR_USER_PIN_NOT_INITIALIZED)
	N(CKR_USER_TYPE_INVALID)
	N(CKR_USER_ANOTHER_ALREADY_LOGGED_IN)
	N(CKR_BUFFER_TOO_SMALL)
	N(CKR_CRYPTOKI_NOT_INITIALIZED)
	N(CKR_CRYPTOKI_ALREADY_INITIALIZED)
#undef N
	default: {
		static char buf[32];
		snprintf(buf, sizeof buf, "CKR 0x%lx", (unsigned long)rv);
		return buf;
	}
	}
}

/* Check that got == want; returns 1 if so. */
static inline int abi_check_rv(const char *name, CK_RV got, CK_RV want)
{
	if (got == want) {
		abi_pass(name);
		return 1;
	}
	abi_fail(name, "got %s, want %s", abi_rv_name(got), abi_rv_name(want));
	return 0;
}

/* Check that got is one of two acceptable values. */
static inline int abi_check_rv2(const char *name, CK_RV got, CK_RV want1, CK_RV want2)
{
	if (got == want1 || got == want2) {
		abi_pass(name);
		return 1;
	}
	abi_fail(name, "got %s, want %s or %s", abi_rv_name(got), abi_rv_name(want1), abi_rv_name(want2));
	return 0;
}

static inline int abi_check(const char *name, int cond, const char *fmt, ...)
{
	va_list ap;

	if (cond) {
		abi_pass(name);
		return 1;
	}
	abi_failures++;
	printf("FAIL %s: ", name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	return 0;
}

static inline int abi_exit(void)
{
	printf("%d passed, %d failed\n", abi_passes, abi_failures);
	fflush(stdout);
	return abi_failures == 0 ? 0 : 1;
}

/* The module, reached only through what it exports. */
struct abi_module {
	void *handle;
	CK_FUNCTION_LIST_PTR fl;   /* from C_GetFunctionList (2.40) */
	CK_FUNCTION_LIST_3_2_PTR f3; /* from C_GetInterface(NULL...): the default, 3.2 */
	CK_FUNCTION_LIST_3_0_PTR f30; /* from C_GetInterface("PKCS 11", 3.0) */
	CK_C_GetFunctionList get_function_list;
	CK_C_GetInterfaceList get_interface_list;
	CK_C_GetInterface get_interface;
};

/* Loads the module and its two function lists; exits on failure. */
static inline void abi_load(const char *path, struct abi_module *m)
{
	CK_INTERFACE_PTR iface = NULL;
	CK_RV rv;

	memset(m, 0, sizeof *m);
	m->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (m->handle == NULL) {
		abi_fail("dlopen", "%s", dlerror());
		exit(abi_exit());
	}
	m->get_function_list = (CK_C_GetFunctionList)dlsym(m->handle, "C_GetFunctionList");
	m->get_interface_list = (CK_C_GetInterfaceList)dlsym(m->handle, "C_GetInterfaceList");
	m->get_interface = (CK_C_GetInterface)dlsym(m->handle, "C_GetInterface");
	if (!m->get_function_list || !m->get_interface_list || !m->get_interface) {
		abi_fail("dlsym", "C_GetFunctionList %p, C_GetInterfaceList %p, C_GetInterface %p",
			 (void *)m->get_function_list, (void *)m->get_interface_list, (void *)m->get_interface);
		exit(abi_exit());
	}
	rv = m->get_function_list(&m->fl);
	if (rv != CKR_OK || m->fl == NULL) {
		abi_fail("C_GetFunctionList", "rv %s list %p", abi_rv_name(rv), (void *)m->fl);
		exit(abi_exit());
	}
	rv = m->get_interface(NULL, NULL, &iface, 0);
	if (rv != CKR_OK || iface == NULL || iface->pFunctionList == NULL) {
		abi_fail("C_GetInterface default", "rv %s", abi_rv_name(rv));
		exit(abi_exit());
	}
	m->f3 = (CK_FUNCTION_LIST_3_2_PTR)iface->pFunctionList;
	{
		CK_VERSION v30 = { 3, 0 };

		iface = NULL;
		rv = m->get_interface((CK_UTF8CHAR_PTR) "PKCS 11", &v30, &iface, 0);
		if (rv != CKR_OK || iface == NULL || iface->pFunctionList == NULL) {
			abi_fail("C_GetInterface 3.0", "rv %s", abi_rv_name(rv));
			exit(abi_exit());
		}
		m->f30 = (CK_FUNCTION_LIST_3_0_PTR)iface->pFunctionList;
	}
}

/* A CK_C_INITIALIZE_ARGS that only says "use OS locking" (libp11, Java). */
static inline CK_RV abi_initialize(struct abi_module *m)
{
	CK_C_INITIALIZE_ARGS args;

	memset(&args, 0, sizeof args);
	args.flags = CKF_OS_LOCKING_OK;
	return m->f3->C_Initialize(&args);
}

/* label: 32 bytes, blank padded, not NUL terminated (v3.0 section 5.5). */
static inline void abi_pad(CK_UTF8CHAR *dst, size_t n, const char *src)
{
	size_t l = strlen(src);

	memset(dst, ' ', n);
	memcpy(dst, src, l < n ? l : n);
}

/* The first slot of the module (slot index 0). */
static inline int abi_first_slot(struct abi_module *m, CK_SLOT_ID *slot)
{
	CK_SLOT_ID slots[16];
	CK_ULONG n = 16;
	CK_RV rv = m->f3->C_GetSlotList(CK_FALSE, slots, &n);

	if (rv != CKR_OK || n == 0) {
		abi_fail("first slot", "C_GetSlotList rv %s count %lu", abi_rv_name(rv), (unsigned long)n);
		return 0;
	}
	*slot = slots[0];
	return 1;
}

/*
 * Token-state dependent: initialises the fresh token in *slot with
 * ABI_SO_PIN, sets ABI_USER_PIN as the crypto officer (CKU_SO), and returns
 * a R/W session logged in as the normal user (CKU_USER).
 */
static inline int abi_setup_user_session(struct abi_module *m, CK_SLOT_ID slot, CK_SESSION_HANDLE *sess)
{
	CK_UTF8CHAR label[32];
	CK_RV rv;

	abi_pad(label, sizeof label, ABI_LABEL);
	rv = m->f3->C_InitToken(slot, (CK_UTF8CHAR_PTR)ABI_SO_PIN, strlen(ABI_SO_PIN), label);
	if (!abi_check_rv("setup: C_InitToken", rv, CKR_OK))
		return 0;
	rv = m->f3->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, sess);
	if (!abi_check_rv("setup: C_OpenSession RW", rv, CKR_OK))
		return 0;
	rv = m->f3->C_Login(*sess, CKU_SO, (CK_UTF8CHAR_PTR)ABI_SO_PIN, strlen(ABI_SO_PIN));
	if (!abi_check_rv("setup: C_Login SO", rv, CKR_OK))
		return 0;
	rv = m->f3->C_InitPIN(*sess, (CK_UTF8CHAR_PTR)ABI_USER_PIN, strlen(ABI_USER_PIN));
	if (!abi_check_rv("setup: C_InitPIN", rv, CKR_OK))
		return 0;
	rv = m->f3->C_Logout(*sess);
	if (!abi_check_rv("setup: C_Logout SO", rv, CKR_OK))
		return 0;
	rv = m->f3->C_Login(*sess, CKU_USER, (CK_UTF8CHAR_PTR)ABI_USER_PIN, strlen(ABI_USER_PIN));
	return abi_check_rv("setup: C_Login USER", rv, CKR_OK);
}

/* DER of OBJECT IDENTIFIER 1.2.840.10045.3.1.7 (prime256v1), RFC 5480. */
static CK_BYTE abi_p256_oid[] __attribute__((unused));
static CK_BYTE abi_p256_oid[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };

/* A session EC P-256 key pair: private key sensitive, sign-only. */
static inline int abi_gen_p256(struct abi_module *m, CK_SESSION_HANDLE sess, CK_OBJECT_HANDLE *pub,
			CK_OBJECT_HANDLE *priv)
{
	CK_BBOOL t = CK_TRUE, f = CK_FALSE;
	CK_BYTE id[] = { 0xab, 0x01 };
	CK_MECHANISM mech = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_ATTRIBUTE pubt[] = {
		{ CKA_EC_PARAMS, abi_p256_oid, sizeof abi_p256_oid },
		{ CKA_VERIFY, &t, sizeof t },
		{ CKA_TOKEN, &f, sizeof f },
		{ CKA_ID, id, sizeof id },
	};
	CK_ATTRIBUTE privt[] = {
		{ CKA_SIGN, &t, sizeof t },
		{ CKA_SENSITIVE, &t, sizeof t },
		{ CKA_PRIVATE, &t, sizeof t },
		{ CKA_TOKEN, &f, sizeof f },
		{ CKA_ID, id, sizeof id },
	};
	CK_RV rv = m->f3->C_GenerateKeyPair(sess, &mech, pubt, sizeof pubt / sizeof pubt[0], privt,
					    sizeof privt / sizeof privt[0], pub, priv);

	return abi_check_rv("setup: C_GenerateKeyPair EC P-256", rv, CKR_OK);
}

#endif /* GOHSM_ABI_H */
