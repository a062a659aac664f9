// C_GetFunctionList of the floor module: a function list whose entries are
// the Go exports of floor.go (the rest NULL: startprobe calls no other).
#include "pkcs11.h"

CK_RV floorInitialize(CK_VOID_PTR);
CK_RV floorFinalize(CK_VOID_PTR);
CK_RV floorSlots(CK_BBOOL, CK_SLOT_ID_PTR, CK_ULONG_PTR);
CK_RV floorTokenInfo(CK_SLOT_ID, CK_TOKEN_INFO_PTR);

static CK_FUNCTION_LIST list = {
	.version = {2, 40},
	.C_Initialize = floorInitialize,
	.C_Finalize = floorFinalize,
	.C_GetSlotList = floorSlots,
	.C_GetTokenInfo = floorTokenInfo,
};

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR pp) {
	if (!pp)
		return CKR_ARGUMENTS_BAD;
	*pp = &list;
	return CKR_OK;
}
