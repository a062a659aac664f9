/*
 * abi_csign.c - C_Sign of CKM_ECDSA answered in C (pkcs11/csign.h).
 *
 * usage: abi_csign /path/to/libgohsm.so   (with $GOHSM_CONF set by abi_test.go)
 *
 * When C_SignInit hands a CKM_ECDSA operation on a P-256 key to C, C_Sign
 * must not enter Go, and every answer must be the one the Go path gives.
 * Whether a thread ever entered Go is read from its alternate signal
 * stack: the Go runtime installs one on a C thread at the thread's first
 * call into Go and keeps it for the thread's life. A fresh thread that
 * only calls C_Sign has none; a control thread that makes one Go call has
 * one (the check cannot pass by accident).
 *
 * The other checks are the Go path's answers, which the C path must give
 * as they are (the driver passes them against a library without the C
 * path too): the length query and the short buffer keep the operation; a
 * NULL length pointer or a NULL buffer with a length end it with
 * CKR_ARGUMENTS_BAD; C_SignInit during a handed operation is
 * CKR_OPERATION_ACTIVE and works again after a C_Sign ended it;
 * C_SignUpdate / C_SignFinal are CKR_FUNCTION_NOT_SUPPORTED and end it;
 * C_SessionCancel, C_CloseSession, C_CloseAllSessions, C_Logout and
 * C_Finalize end it; signatures verify with the public key; two keys in
 * turn; two threads on two sessions; and a forked child that
 * re-initialised never answers from its parent's records.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "abi.h"

static struct abi_module m;
static CK_FUNCTION_LIST_3_2_PTR f;
static CK_SLOT_ID slot;
static CK_OBJECT_HANDLE pub1, priv1, pub2, priv2;
static CK_BYTE digest[32];
static CK_MECHANISM ecdsa = { CKM_ECDSA, NULL, 0 };
static CK_MECHANISM ecdsa_sha256 = { CKM_ECDSA_SHA256, NULL, 0 };

static int verifies_with(CK_MECHANISM *mech, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE pub, CK_BYTE *dg, CK_ULONG n,
			 CK_BYTE *sig, CK_ULONG sl)
{
	CK_RV rv = f->C_VerifyInit(s, mech, pub);

	if (rv != CKR_OK)
		return 0;
	return f->C_Verify(s, dg, n, sig, sl) == CKR_OK;
}

static int verifies(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE pub, CK_BYTE *dg, CK_ULONG n, CK_BYTE *sig, CK_ULONG sl)
{
	return verifies_with(&ecdsa, s, pub, dg, n, sig, sl);
}

static int sign_init(const char *name, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE priv)
{
	return abi_check_rv(name, f->C_SignInit(s, &ecdsa, priv), CKR_OK);
}

/* A thread that only calls C_Sign on a handed operation. */
struct only_sign {
	CK_BYTE *data;
	CK_ULONG n;
	CK_SESSION_HANDLE s;
	CK_RV query, sign;
	CK_ULONG qlen, slen;
	CK_BYTE sig[64];
	int entered_go; /* the thread has an alternate signal stack */
};

static int thread_entered_go(void)
{
	stack_t ss;

	if (sigaltstack(NULL, &ss) != 0)
		return -1;
	return (ss.ss_flags & SS_DISABLE) == 0;
}

static void *only_sign_run(void *arg)
{
	struct only_sign *o = arg;

	o->qlen = 0;
	o->query = f->C_Sign(o->s, o->data, o->n, NULL, &o->qlen);
	o->slen = sizeof o->sig;
	o->sign = f->C_Sign(o->s, o->data, o->n, o->sig, &o->slen);
	o->entered_go = thread_entered_go();
	return NULL;
}

static void *go_call_run(void *arg)
{
	CK_SESSION_INFO info;
	int *entered = arg;

	f->C_GetSessionInfo(1, &info);
	*entered = thread_entered_go();
	return NULL;
}

static void check_answered_in_c_with(const char *tag, CK_MECHANISM *mech, CK_BYTE *data, CK_ULONG n, CK_SESSION_HANDLE s,
				     CK_OBJECT_HANDLE priv, CK_OBJECT_HANDLE pub)
{
	struct only_sign o;
	pthread_t th;
	char name[160];
	int control = -1;

	memset(&o, 0, sizeof o);
	o.s = s;
	o.data = data;
	o.n = n;
	snprintf(name, sizeof name, "%s: C_SignInit", tag);
	if (!abi_check_rv(name, f->C_SignInit(s, mech, priv), CKR_OK))
		return;
	pthread_create(&th, NULL, only_sign_run, &o);
	pthread_join(th, NULL);
	snprintf(name, sizeof name, "%s: length query from a fresh thread", tag);
	abi_check(name, o.query == CKR_OK && o.qlen == 64, "rv %s len %lu", abi_rv_name(o.query), (unsigned long)o.qlen);
	snprintf(name, sizeof name, "%s: C_Sign from a fresh thread", tag);
	abi_check(name, o.sign == CKR_OK && o.slen == 64, "rv %s len %lu", abi_rv_name(o.sign), (unsigned long)o.slen);
	snprintf(name, sizeof name, "%s: the signature verifies with the public key", tag);
	abi_check(name, verifies_with(mech, s, pub, data, n, o.sig, o.slen), "C_Verify refused it");
	pthread_create(&th, NULL, go_call_run, &control);
	pthread_join(th, NULL);
	snprintf(name, sizeof name, "%s: a thread making one Go call has Go's signal stack (control)", tag);
	abi_check(name, control == 1, "sigaltstack says %d", control);
	snprintf(name, sizeof name, "%s: C_Sign was answered without entering Go", tag);
	abi_check(name, o.entered_go == 0, "the signing thread has Go's signal stack (%d)", o.entered_go);
}

static void check_answered_in_c(const char *tag, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE priv, CK_OBJECT_HANDLE pub)
{
	check_answered_in_c_with(tag, &ecdsa, digest, sizeof digest, s, priv, pub);
}

/* CKM_ECDSA_SHA256: the same, with the data hashed in C; its multi-part
 * form goes to Go; and the same key with the other mechanism in turn. */
static void check_sha256(CK_SESSION_HANDLE s)
{
	CK_BYTE data[200], sig[64];
	CK_ULONG len;
	CK_RV rv;

	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (CK_BYTE)(i * 13 + 1);
	check_answered_in_c_with("sha256", &ecdsa_sha256, data, sizeof data, s, priv1, pub1);
	check_answered_in_c_with("sha256 empty", &ecdsa_sha256, NULL, 0, s, priv1, pub1);

	rv = f->C_SignInit(s, &ecdsa_sha256, priv1);
	abi_check_rv("sha256 parts: C_SignInit", rv, CKR_OK);
	abi_check_rv("sha256 parts: C_SignUpdate", f->C_SignUpdate(s, data, 77), CKR_OK);
	abi_check_rv("sha256 parts: C_SignUpdate", f->C_SignUpdate(s, data + 77, sizeof data - 77), CKR_OK);
	len = sizeof sig;
	rv = f->C_SignFinal(s, sig, &len);
	abi_check("sha256 parts: C_SignFinal signs the whole", rv == CKR_OK && len == 64 &&
		  verifies_with(&ecdsa_sha256, s, pub1, data, sizeof data, sig, len), "rv %s", abi_rv_name(rv));

	rv = f->C_SignInit(s, &ecdsa_sha256, priv1);
	len = 10;
	rv = f->C_Sign(s, data, sizeof data, sig, &len);
	abi_check("sha256 short: CKR_BUFFER_TOO_SMALL with 64", rv == CKR_BUFFER_TOO_SMALL && len == 64, "rv %s len %lu",
		  abi_rv_name(rv), (unsigned long)len);
	len = sizeof sig;
	rv = f->C_Sign(s, data, sizeof data, sig, &len);
	abi_check("sha256 short: the retry signs", rv == CKR_OK && verifies_with(&ecdsa_sha256, s, pub1, data, sizeof data, sig, len),
		  "rv %s", abi_rv_name(rv));

	/* One key, the two mechanisms in turn. */
	for (int i = 0; i < 4; i++) {
		CK_MECHANISM *mech = i % 2 ? &ecdsa : &ecdsa_sha256;
		CK_BYTE *in = i % 2 ? digest : data;
		CK_ULONG n = i % 2 ? sizeof digest : sizeof data;

		f->C_SignInit(s, mech, priv1);
		len = sizeof sig;
		rv = f->C_Sign(s, in, n, sig, &len);
		abi_check(i % 2 ? "turns: CKM_ECDSA" : "turns: CKM_ECDSA_SHA256",
			  rv == CKR_OK && verifies_with(mech, s, pub1, in, n, sig, len) &&
				  !verifies_with(i % 2 ? &ecdsa_sha256 : &ecdsa, s, pub1, in, n, sig, len),
			  "rv %s", abi_rv_name(rv));
	}
}

static void check_op_rules(CK_SESSION_HANDLE s)
{
	CK_BYTE sig[64];
	CK_ULONG len;
	CK_RV rv;

	/* After a C_Sign ended the operation. */
	sign_init("ended: C_SignInit", s, priv1);
	len = sizeof sig;
	abi_check_rv("ended: C_Sign", f->C_Sign(s, digest, sizeof digest, sig, &len), CKR_OK);
	len = sizeof sig;
	abi_check_rv("ended: C_Sign again", f->C_Sign(s, digest, sizeof digest, sig, &len), CKR_OPERATION_NOT_INITIALIZED);
	sign_init("ended: C_SignInit works again", s, priv1);

	/* C_SignInit while the operation is C's. */
	abi_check_rv("active: C_SignInit again", f->C_SignInit(s, &ecdsa, priv1), CKR_OPERATION_ACTIVE);
	len = sizeof sig;
	rv = f->C_Sign(s, digest, sizeof digest, sig, &len);
	abi_check("active: the operation signs after", rv == CKR_OK && len == 64 &&
		  verifies(s, pub1, digest, sizeof digest, sig, len), "rv %s", abi_rv_name(rv));

	/* Length queries keep the operation. */
	sign_init("query: C_SignInit", s, priv1);
	len = 0;
	rv = f->C_Sign(s, digest, sizeof digest, NULL, &len);
	abi_check("query: 64", rv == CKR_OK && len == 64, "rv %s len %lu", abi_rv_name(rv), (unsigned long)len);
	len = 0;
	rv = f->C_Sign(s, digest, sizeof digest, NULL, &len);
	abi_check("query: again, 64", rv == CKR_OK && len == 64, "rv %s len %lu", abi_rv_name(rv), (unsigned long)len);
	len = sizeof sig;
	rv = f->C_Sign(s, digest, sizeof digest, sig, &len);
	abi_check("query: then signs", rv == CKR_OK && len == 64 && verifies(s, pub1, digest, sizeof digest, sig, len),
		  "rv %s", abi_rv_name(rv));

	/* A short buffer keeps it, with the length. */
	sign_init("short: C_SignInit", s, priv1);
	len = 10;
	rv = f->C_Sign(s, digest, sizeof digest, sig, &len);
	abi_check("short: CKR_BUFFER_TOO_SMALL with 64", rv == CKR_BUFFER_TOO_SMALL && len == 64, "rv %s len %lu",
		  abi_rv_name(rv), (unsigned long)len);
	len = sizeof sig;
	rv = f->C_Sign(s, digest, sizeof digest, sig, &len);
	abi_check("short: the retry signs", rv == CKR_OK && len == 64 && verifies(s, pub1, digest, sizeof digest, sig, len),
		  "rv %s", abi_rv_name(rv));
	len = sizeof sig;
	abi_check_rv("short: then ended", f->C_Sign(s, digest, sizeof digest, sig, &len), CKR_OPERATION_NOT_INITIALIZED);

	/* NULL length pointer, NULL data with a length: bad arguments, ended. */
	sign_init("null length: C_SignInit", s, priv1);
	abi_check_rv("null length: CKR_ARGUMENTS_BAD", f->C_Sign(s, digest, sizeof digest, sig, NULL), CKR_ARGUMENTS_BAD);
	len = sizeof sig;
	abi_check_rv("null length: ended", f->C_Sign(s, digest, sizeof digest, sig, &len), CKR_OPERATION_NOT_INITIALIZED);
	sign_init("null data: C_SignInit", s, priv1);
	len = sizeof sig;
	abi_check_rv("null data: CKR_ARGUMENTS_BAD", f->C_Sign(s, NULL, 32, sig, &len), CKR_ARGUMENTS_BAD);
	len = sizeof sig;
	abi_check_rv("null data: ended", f->C_Sign(s, digest, sizeof digest, sig, &len), CKR_OPERATION_NOT_INITIALIZED);

	/* An empty input signs (CKM_ECDSA takes any length). */
	sign_init("empty: C_SignInit", s, priv1);
	len = sizeof sig;
	rv = f->C_Sign(s, NULL, 0, sig, &len);
	abi_check("empty: signs, and verifies", rv == CKR_OK && len == 64 && verifies(s, pub1, NULL, 0, sig, len),
		  "rv %s", abi_rv_name(rv));

	/* Multi-part is not CKM_ECDSA's: not supported, and the operation ends. */
	sign_init("update: C_SignInit", s, priv1);
	abi_check_rv("update: CKR_FUNCTION_NOT_SUPPORTED", f->C_SignUpdate(s, digest, sizeof digest), CKR_FUNCTION_NOT_SUPPORTED);
	len = sizeof sig;
	abi_check_rv("update: ended", f->C_Sign(s, digest, sizeof digest, sig, &len), CKR_OPERATION_NOT_INITIALIZED);
	sign_init("final: C_SignInit", s, priv1);
	len = sizeof sig;
	abi_check_rv("final: CKR_FUNCTION_NOT_SUPPORTED", f->C_SignFinal(s, sig, &len), CKR_FUNCTION_NOT_SUPPORTED);
	len = sizeof sig;
	abi_check_rv("final: ended", f->C_Sign(s, digest, sizeof digest, sig, &len), CKR_OPERATION_NOT_INITIALIZED);

	/* C_GetOperationState is not supported and leaves the operation. */
	sign_init("state: C_SignInit", s, priv1);
	len = 0;
	abi_check_rv("state: CKR_FUNCTION_NOT_SUPPORTED", f->C_GetOperationState(s, NULL, &len), CKR_FUNCTION_NOT_SUPPORTED);
	len = sizeof sig;
	abi_check_rv("state: the operation still signs", f->C_Sign(s, digest, sizeof digest, sig, &len), CKR_OK);

	/* C_SessionCancel ends it. */
	sign_init("cancel: C_SignInit", s, priv1);
	abi_check_rv("cancel: C_SessionCancel", f->C_SessionCancel(s, CKF_SIGN), CKR_OK);
	len = sizeof sig;
	abi_check_rv("cancel: ended", f->C_Sign(s, digest, sizeof digest, sig, &len), CKR_OPERATION_NOT_INITIALIZED);
	sign_init("cancel: C_SignInit works again", s, priv1);
	len = sizeof sig;
	abi_check_rv("cancel: and signs", f->C_Sign(s, digest, sizeof digest, sig, &len), CKR_OK);

	/* Two keys in turn: each signature verifies with its own key only. */
	sign_init("keys: C_SignInit key 2", s, priv2);
	len = sizeof sig;
	rv = f->C_Sign(s, digest, sizeof digest, sig, &len);
	abi_check("keys: key 2 signs", rv == CKR_OK && verifies(s, pub2, digest, sizeof digest, sig, len) &&
		  !verifies(s, pub1, digest, sizeof digest, sig, len), "rv %s", abi_rv_name(rv));
	sign_init("keys: C_SignInit key 1", s, priv1);
	len = sizeof sig;
	rv = f->C_Sign(s, digest, sizeof digest, sig, &len);
	abi_check("keys: key 1 signs", rv == CKR_OK && verifies(s, pub1, digest, sizeof digest, sig, len) &&
		  !verifies(s, pub2, digest, sizeof digest, sig, len), "rv %s", abi_rv_name(rv));
}

static CK_SESSION_HANDLE open_rw(void)
{
	CK_SESSION_HANDLE s = 0;

	f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
	return s;
}

/* Two sessions whose handles share a record (pkcs11/csign.h: 128 records,
 * indexed by the handle's low bits): the second one's operation stays in
 * Go, and both sign. */
#define CSIGN_RECORDS 128

static void *only_sign_plain(void *arg)
{
	struct only_sign *o = arg;

	o->slen = sizeof o->sig;
	o->sign = f->C_Sign(o->s, digest, sizeof digest, o->sig, &o->slen);
	o->entered_go = thread_entered_go();
	return NULL;
}

static void check_collision(CK_SESSION_HANDLE s)
{
	CK_SESSION_HANDLE opened[CSIGN_RECORDS + 1], y = 0;
	struct only_sign ox, oy;
	pthread_t th;
	int n = 0;

	while (n < CSIGN_RECORDS + 1 && (y = open_rw()) != 0 && (y & (CSIGN_RECORDS - 1)) != (s & (CSIGN_RECORDS - 1)))
		opened[n++] = y;
	if (!abi_check("collision: a session sharing the record", y != 0 && (y & (CSIGN_RECORDS - 1)) == (s & (CSIGN_RECORDS - 1)),
		       "handles %lu and %lu", (unsigned long)s, (unsigned long)y))
		return;
	sign_init("collision: C_SignInit, first session", s, priv1);
	sign_init("collision: C_SignInit, second session", y, priv1);
	memset(&oy, 0, sizeof oy);
	oy.s = y;
	pthread_create(&th, NULL, only_sign_plain, &oy);
	pthread_join(th, NULL);
	abi_check("collision: the second session signs, in Go", oy.sign == CKR_OK && oy.entered_go == 1 &&
		  verifies(y, pub1, digest, sizeof digest, oy.sig, oy.slen), "rv %s, entered Go %d", abi_rv_name(oy.sign), oy.entered_go);
	memset(&ox, 0, sizeof ox);
	ox.s = s;
	pthread_create(&th, NULL, only_sign_plain, &ox);
	pthread_join(th, NULL);
	abi_check("collision: the first signs, in C", ox.sign == CKR_OK && ox.entered_go == 0 &&
		  verifies(s, pub1, digest, sizeof digest, ox.sig, ox.slen), "rv %s, entered Go %d", abi_rv_name(ox.sign), ox.entered_go);
	f->C_CloseSession(y);
	for (int i = 0; i < n; i++)
		f->C_CloseSession(opened[i]);
}

/* Two threads, two sessions. */
struct worker {
	pthread_t th;
	CK_SESSION_HANDLE s;
	long ok, bad;
	CK_RV last;
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	CK_BYTE sig[64];

	for (int i = 0; i < 300; i++) {
		CK_ULONG len = sizeof sig;
		CK_RV rv = f->C_SignInit(w->s, &ecdsa, priv1);

		if (rv == CKR_OK)
			rv = f->C_Sign(w->s, digest, sizeof digest, sig, &len);
		if (rv == CKR_OK && len == 64)
			w->ok++;
		else
			w->bad++, w->last = rv;
	}
	return NULL;
}

/* A thread signing on a session while another cancels its operations
 * (a session used from two threads: the spec does not order the calls,
 * but every answer must be one of the Go path's and nothing may crash). */
struct race {
	CK_SESSION_HANDLE s;
	volatile int stop;
	long ok, other;
	CK_RV odd;
};

static void *race_sign(void *arg)
{
	struct race *r = arg;
	CK_BYTE sig[64];

	for (int i = 0; i < 3000; i++) {
		CK_ULONG len = sizeof sig;
		CK_RV rv = f->C_SignInit(r->s, &ecdsa, priv1);

		if (rv == CKR_OK || rv == CKR_OPERATION_ACTIVE)
			rv = f->C_Sign(r->s, digest, sizeof digest, sig, &len);
		if (rv == CKR_OK)
			r->ok++;
		else if (rv == CKR_OPERATION_NOT_INITIALIZED || rv == CKR_OPERATION_ACTIVE)
			r->other++;
		else
			r->odd = rv;
	}
	__atomic_store_n(&r->stop, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void *race_cancel(void *arg)
{
	struct race *r = arg;

	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE))
		f->C_SessionCancel(r->s, CKF_SIGN);
	return NULL;
}

static void check_race(CK_SESSION_HANDLE s)
{
	struct race r;
	pthread_t a, b;
	CK_BYTE sig[64];
	CK_ULONG len = sizeof sig;

	memset(&r, 0, sizeof r);
	r.s = s;
	pthread_create(&a, NULL, race_sign, &r);
	pthread_create(&b, NULL, race_cancel, &r);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	abi_check("race: signing while another thread cancels gives the Go path's answers", r.odd == CKR_OK && r.ok > 0,
		  "signed %ld, not initialised/active %ld, other answer %s", r.ok, r.other, abi_rv_name(r.odd));
	f->C_SessionCancel(s, CKF_SIGN);
	sign_init("race: C_SignInit after", s, priv1);
	abi_check_rv("race: and signs", f->C_Sign(s, digest, sizeof digest, sig, &len), CKR_OK);
}

static void check_ends(CK_SESSION_HANDLE s)
{
	CK_SESSION_HANDLE s2, s3;
	CK_BYTE sig[64];
	CK_ULONG len;
	struct worker w[2];

	/* Two sessions signing at once. */
	memset(w, 0, sizeof w);
	w[0].s = s;
	w[1].s = open_rw();
	for (int i = 0; i < 2; i++)
		pthread_create(&w[i].th, NULL, worker_run, &w[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(w[i].th, NULL);
	abi_check("threads: two sessions sign 300 times each", w[0].ok == 300 && w[1].ok == 300,
		  "ok %ld/%ld, last failure %s/%s", w[0].ok, w[1].ok, abi_rv_name(w[0].last), abi_rv_name(w[1].last));

	/* C_CloseSession ends it. */
	s2 = w[1].s;
	sign_init("close: C_SignInit", s2, priv1);
	abi_check_rv("close: C_CloseSession", f->C_CloseSession(s2), CKR_OK);
	len = sizeof sig;
	abi_check_rv("close: C_Sign on the closed session", f->C_Sign(s2, digest, sizeof digest, sig, &len),
		     CKR_SESSION_HANDLE_INVALID);

	/* C_Logout ends every session's. */
	s3 = open_rw();
	sign_init("logout: C_SignInit", s, priv1);
	sign_init("logout: C_SignInit, second session", s3, priv1);
	abi_check_rv("logout: C_Logout", f->C_Logout(s), CKR_OK);
	len = sizeof sig;
	abi_check_rv("logout: ended", f->C_Sign(s, digest, sizeof digest, sig, &len), CKR_OPERATION_NOT_INITIALIZED);
	len = sizeof sig;
	abi_check_rv("logout: ended in the other session", f->C_Sign(s3, digest, sizeof digest, sig, &len),
		     CKR_OPERATION_NOT_INITIALIZED);
	abi_check_rv("logout: C_Login again", f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)ABI_USER_PIN, strlen(ABI_USER_PIN)),
		     CKR_OK);
	abi_gen_p256(&m, s, &pub1, &priv1); /* the logout destroyed the private session keys */

	/* C_CloseAllSessions ends them. */
	sign_init("close all: C_SignInit", s3, priv1);
	abi_check_rv("close all: C_CloseAllSessions", f->C_CloseAllSessions(slot), CKR_OK);
	len = sizeof sig;
	abi_check_rv("close all: C_Sign on a closed session", f->C_Sign(s3, digest, sizeof digest, sig, &len),
		     CKR_SESSION_HANDLE_INVALID);
}

/* In a forked child: a session of the child's copy with the parent's
 * handle, no operation: C_Sign must not answer from the parent's record. */
static void check_fork(void)
{
	CK_SESSION_HANDLE s = open_rw(), c;
	CK_BYTE sig[64];
	CK_ULONG len = 0;
	pid_t pid;
	int status = 0;

	if (f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)ABI_USER_PIN, strlen(ABI_USER_PIN)) != CKR_OK ||
	    !abi_gen_p256(&m, s, &pub1, &priv1) || !sign_init("fork: C_SignInit in the parent", s, priv1))
		return;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		int code = 0;

		alarm(20);
		if (abi_initialize(&m) != CKR_OK)
			_exit(2);
		for (c = 0; c < s;)
			if (f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &c) != CKR_OK)
				_exit(3);
		len = sizeof sig;
		if (c != s)
			code = 4;
		else if (f->C_Sign(s, digest, sizeof digest, sig, &len) != CKR_OPERATION_NOT_INITIALIZED)
			code = 5;
		f->C_Finalize(NULL);
		_exit(code);
	}
	abi_check("fork: fork()", pid > 0, "%s", strerror(errno));
	if (pid <= 0)
		return;
	waitpid(pid, &status, 0);
	abi_check("fork: the child's C_Sign does not use the parent's record", WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "status 0x%x (exit 4: no session with the parent's handle, 5: the wrong answer)", status);
	len = sizeof sig;
	abi_check_rv("fork: the parent's operation still signs", f->C_Sign(s, digest, sizeof digest, sig, &len), CKR_OK);
}

int main(int argc, char **argv)
{
	CK_SESSION_HANDLE s, s4;
	CK_BYTE sig[64];
	CK_ULONG len;

	if (argc != 2) {
		fprintf(stderr, "usage: %s /path/to/libgohsm.so\n", argv[0]);
		return 2;
	}
	for (size_t i = 0; i < sizeof digest; i++)
		digest[i] = (CK_BYTE)(0x31 * i + 7);
	abi_load(argv[1], &m);
	f = m.f3;
	if (!abi_check_rv("C_Initialize", abi_initialize(&m), CKR_OK) || !abi_first_slot(&m, &slot) ||
	    !abi_setup_user_session(&m, slot, &s) || !abi_gen_p256(&m, s, &pub1, &priv1) || !abi_gen_p256(&m, s, &pub2, &priv2))
		return abi_exit();

	check_answered_in_c("first", s, priv1, pub1);
	check_sha256(s);
	check_op_rules(s);
	check_race(s);
	check_collision(s);
	check_ends(s);

	/* C_Finalize with an operation in C, then again from scratch. */
	s4 = open_rw();
	if (f->C_Login(s4, CKU_USER, (CK_UTF8CHAR_PTR)ABI_USER_PIN, strlen(ABI_USER_PIN)) == CKR_OK &&
	    abi_gen_p256(&m, s4, &pub1, &priv1))
		sign_init("finalize: C_SignInit", s4, priv1);
	abi_check_rv("finalize: C_Finalize", f->C_Finalize(NULL), CKR_OK);
	len = sizeof sig;
	abi_check_rv("finalize: C_Sign after C_Finalize", f->C_Sign(s4, digest, sizeof digest, sig, &len),
		     CKR_CRYPTOKI_NOT_INITIALIZED);
	abi_check_rv("finalize: C_Initialize again", abi_initialize(&m), CKR_OK);
	len = sizeof sig;
	abi_check_rv("finalize: the old handle is no session", f->C_Sign(s4, digest, sizeof digest, sig, &len),
		     CKR_SESSION_HANDLE_INVALID);
	s = open_rw();
	while (s < s4) /* reach the handle (and record) the finalised operation had */
		s = open_rw();
	if (abi_check_rv("again: C_Login", f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)ABI_USER_PIN, strlen(ABI_USER_PIN)), CKR_OK) &&
	    abi_gen_p256(&m, s, &pub1, &priv1)) {
		len = sizeof sig;
		abi_check_rv("again: no operation on the reused handle", f->C_Sign(s, digest, sizeof digest, sig, &len),
			     CKR_OPERATION_NOT_INITIALIZED);
		check_answered_in_c("again", s, priv1, pub1);
	}
	f->C_CloseAllSessions(slot);
	check_fork();
	abi_check_rv("C_Finalize", f->C_Finalize(NULL), CKR_OK);
	return abi_exit();
}
