/*
 * pkcs11.h - Cryptoki (PKCS #11) interface for gohsm.
 *
 * Written for gohsm from the definitions of the OASIS "PKCS #11 Specification
 * Version 3.2": section 2 (platform directives), section 3 (types, in
 * pkcs11t.h) and section 5 (functions, in pkcs11f.h). Names, values and
 * layouts are the standard's.
 *
 * Before including this file an application may define the five platform
 * macros of spec section 2; the defaults below are the ones for Linux/gcc
 * (and other Unix-like LP64 systems): plain pointers, no calling-convention
 * or export decorations, natural structure packing.
 */

#ifndef GOHSM_PKCS11_H
#define GOHSM_PKCS11_H 1

#ifdef __cplusplus
extern "C" {
#endif

/* Pointer to an object: CK_BYTE CK_PTR CK_BYTE_PTR. */
#ifndef CK_PTR
#define CK_PTR *
#endif

/* Declares a library function: CK_DECLARE_FUNCTION(CK_RV, C_Initialize)(...). */
#ifndef CK_DECLARE_FUNCTION
#define CK_DECLARE_FUNCTION(returnType, name) returnType name
#endif

/* Declares a pointer to a library function (the CK_C_xxx types). */
#ifndef CK_DECLARE_FUNCTION_POINTER
#define CK_DECLARE_FUNCTION_POINTER(returnType, name) returnType (* name)
#endif

/* Declares a pointer to an application callback (CK_NOTIFY, CK_CREATEMUTEX...). */
#ifndef CK_CALLBACK_FUNCTION
#define CK_CALLBACK_FUNCTION(returnType, name) returnType (* name)
#endif

#ifndef NULL_PTR
#define NULL_PTR 0
#endif

#include "pkcs11t.h"

#define GOHSM_CK_PASTE(x, y) x##y

/* Prototypes of every Cryptoki function (extern, for a library or a client
 * linked against one). */
#define CK_NEED_ARG_LIST 1
#define CK_PKCS11_FUNCTION_INFO(name) \
	extern CK_DECLARE_FUNCTION(CK_RV, name)
#include "pkcs11f.h"
#undef CK_NEED_ARG_LIST
#undef CK_PKCS11_FUNCTION_INFO

/* Function pointer types: CK_C_Initialize, CK_C_GetFunctionList, ... */
#define CK_NEED_ARG_LIST 1
#define CK_PKCS11_FUNCTION_INFO(name) \
	typedef CK_DECLARE_FUNCTION_POINTER(CK_RV, GOHSM_CK_PASTE(CK_, name))
#include "pkcs11f.h"
#undef CK_NEED_ARG_LIST
#undef CK_PKCS11_FUNCTION_INFO

/* The members of the function lists: one CK_C_xxx pointer per function, in
 * pkcs11f.h order. The order is the ABI. */
#define CK_PKCS11_FUNCTION_INFO(name) \
	GOHSM_CK_PASTE(CK_, name) name;

/* CK_FUNCTION_LIST_3_2 (v3.2): the v3.0 list followed by the 10 functions
 * added in v3.2. Returned through C_GetInterface / C_GetInterfaceList with
 * version 3.2. */
struct CK_FUNCTION_LIST_3_2 {
	CK_VERSION version;  /* Cryptoki version of this list: 3.2 */
#include "pkcs11f.h"
};

/* CK_FUNCTION_LIST_3_0 (v3.0): the v2.40 list followed by the 24 functions
 * added in v3.0. Returned through C_GetInterface / C_GetInterfaceList with
 * version 3.0. */
#define CK_PKCS11_3_0_ONLY 1
struct CK_FUNCTION_LIST_3_0 {
	CK_VERSION version;  /* Cryptoki version of this list: 3.0 */
#include "pkcs11f.h"
};
#undef CK_PKCS11_3_0_ONLY

/* CK_FUNCTION_LIST: the v2.40 list (C_Initialize .. C_WaitForSlotEvent),
 * returned by C_GetFunctionList. */
#define CK_PKCS11_2_0_ONLY 1
struct CK_FUNCTION_LIST {
	CK_VERSION version;  /* Cryptoki version of this list: 2.40 */
#include "pkcs11f.h"
};
#undef CK_PKCS11_2_0_ONLY

#undef CK_PKCS11_FUNCTION_INFO
#undef GOHSM_CK_PASTE

#ifdef __cplusplus
}
#endif

#endif /* GOHSM_PKCS11_H */
