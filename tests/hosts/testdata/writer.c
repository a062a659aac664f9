/*
 * writer.c - the writer host of TestKillNineMidWrite, in C: libgohsm.so
 * reached through its function list, with no Go runtime in the process
 * but the library's (kill_test.go builds and runs it).
 *
 *   writer LIB PREFIX PIN
 *
 * Initialises the library ($GOHSM_CONF), opens a R/W session, logs in as
 * PIN's crypto user, prints "READY", then creates token data objects
 * PREFIX-0, PREFIX-1, ... (CKA_VALUE "value of PREFIX-i") until killed,
 * printing "W HANDLE LABEL" once each C_CreateObject has returned CKR_OK:
 * one write(2) to the pipe, so a line the test reads is a create that
 * succeeded. A failed call prints "RV NAME-OF-CALL 0xRV" and exits 1.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "pkcs11.h"

static void say(const char *line)
{
	size_t n = strlen(line);
	while (n > 0) {
		ssize_t w = write(1, line, n);
		if (w <= 0)
			_exit(1);
		line += w;
		n -= (size_t)w;
	}
}

static int failed(const char *call, CK_RV rv)
{
	char line[128];
	snprintf(line, sizeof line, "RV %s 0x%lx\n", call, (unsigned long)rv);
	say(line);
	return 1;
}

int main(int argc, char **argv)
{
	CK_FUNCTION_LIST_PTR f;
	CK_C_GetFunctionList get;
	CK_SESSION_HANDLE s;
	CK_RV rv;
	void *lib;

	if (argc != 4) {
		fprintf(stderr, "usage: writer LIB PREFIX PIN\n");
		return 2;
	}
	lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		fprintf(stderr, "dlopen: %s\n", dlerror());
		return 1;
	}
	get = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
	if (!get || get(&f) != CKR_OK) {
		fprintf(stderr, "C_GetFunctionList failed\n");
		return 1;
	}
	if ((rv = f->C_Initialize(NULL)) != CKR_OK)
		return failed("C_Initialize", rv);
	if ((rv = f->C_OpenSession(0, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s)) != CKR_OK)
		return failed("C_OpenSession", rv);
	if ((rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)argv[3], strlen(argv[3]))) != CKR_OK)
		return failed("C_Login", rv);
	say("READY\n");
	for (unsigned long i = 0;; i++) {
		CK_OBJECT_CLASS class = CKO_DATA;
		CK_BBOOL yes = CK_TRUE;
		char label[96], value[128], line[160];
		CK_OBJECT_HANDLE h;
		snprintf(label, sizeof label, "%s-%lu", argv[2], i);
		snprintf(value, sizeof value, "value of %s", label);
		CK_ATTRIBUTE t[] = {
			{CKA_CLASS, &class, sizeof class},
			{CKA_TOKEN, &yes, sizeof yes},
			{CKA_LABEL, label, strlen(label)},
			{CKA_APPLICATION, "gohsm-hosts", 11},
			{CKA_VALUE, value, strlen(value)},
		};
		if ((rv = f->C_CreateObject(s, t, 5, &h)) != CKR_OK)
			return failed("C_CreateObject", rv);
		snprintf(line, sizeof line, "W %lu %s\n", (unsigned long)h, label);
		say(line);
	}
}
