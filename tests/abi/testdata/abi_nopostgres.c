/*
 * abi_nopostgres: the default module (build/libgohsm.so, built without the
 * PostgreSQL store) refuses a configuration naming a postgres:// store at
 * C_Initialize with the CK_RV of any bad configuration: CKR_GENERAL_ERROR
 * when it comes from a file ($GOHSM_CONF, which abi_test.go points at
 * one), CKR_ARGUMENTS_BAD when it comes through pReserved. The harness
 * reads the log lines (standard error). The module stays usable: the same
 * slot on SQLite initialises afterwards.
 */
#include "abi.h"

int main(int argc, char **argv)
{
	struct abi_module m;
	CK_C_INITIALIZE_ARGS a;
	CK_SLOT_ID slots[8];
	CK_ULONG n = 8;
	CK_RV rv;
	char text[4400];

	if (argc != 3) {
		fprintf(stderr, "usage: abi_nopostgres libgohsm.so TOKENDIR\n");
		return 2;
	}
	abi_load(argv[1], &m);

	rv = m.fl->C_Initialize(NULL);
	if (!abi_check_rv("C_Initialize($GOHSM_CONF names a postgres:// store)", rv, CKR_GENERAL_ERROR) &&
	    rv == CKR_OK)
		m.fl->C_Finalize(NULL);
	abi_check_rv("C_GetSlotList after the refusal", m.fl->C_GetSlotList(CK_FALSE, NULL, &n),
		     CKR_CRYPTOKI_NOT_INITIALIZED);

	memset(&a, 0, sizeof a);
	a.flags = CKF_OS_LOCKING_OK;
	a.pReserved = (CK_VOID_PTR) "[slot 0]\nlabel = pg\nstore = postgres://gohsm:s3cret@127.0.0.1:1/gohsm\n";
	rv = m.f3->C_Initialize(&a);
	if (!abi_check_rv("C_Initialize(pReserved names a postgres:// store)", rv, CKR_ARGUMENTS_BAD) &&
	    rv == CKR_OK)
		m.f3->C_Finalize(NULL);

	snprintf(text, sizeof text,
		 "token_dir = %s\nkdf_time = 1\nkdf_memory = 64\nkdf_threads = 1\nlogin_cache = off\n"
		 "[slot 0]\nlabel = pg\nstore = sqlite\n",
		 argv[2]);
	a.pReserved = (CK_VOID_PTR)text;
	abi_check_rv("C_Initialize(pReserved: the same slot on SQLite)", m.f3->C_Initialize(&a), CKR_OK);
	n = 8;
	rv = m.f3->C_GetSlotList(CK_FALSE, slots, &n);
	abi_check("C_GetSlotList: the SQLite slot", rv == CKR_OK && n == 1, "rv %s, %lu slots", abi_rv_name(rv),
		  (unsigned long)n);
	abi_check_rv("C_Finalize", m.f3->C_Finalize(NULL), CKR_OK);
	return abi_exit();
}
