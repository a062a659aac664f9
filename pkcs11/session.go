package pkcs11

/*
#include "pkcs11.h"
*/
import "C"

import (
	"gohsm/internal/ck"
)

// Chapter 5.6: session management.

//export go_OpenSession
func go_OpenSession(slotID C.CK_SLOT_ID, flags C.CK_FLAGS, pApplication C.CK_VOID_PTR, notify C.CK_NOTIFY, phSession C.CK_SESSION_HANDLE_PTR) (r C.CK_RV) {
	defer recoverRV("C_OpenSession", &r)
	m, err := getModule()
	if err != nil {
		return rv("C_OpenSession", err)
	}
	if phSession == nil {
		return C.CKR_ARGUMENTS_BAD
	}
	// Notification callbacks are never called: gohsm has no events to report
	// (spec 5.16 makes them optional surrender notices).
	h, err := m.OpenSession(ck.ULong(slotID), ck.ULong(flags))
	if err != nil {
		return rv("C_OpenSession", err)
	}
	*phSession = C.CK_SESSION_HANDLE(h)
	procsAtOpenSession()
	return C.CKR_OK
}

//export go_CloseSession
func go_CloseSession(h C.CK_SESSION_HANDLE) (r C.CK_RV) {
	defer recoverRV("C_CloseSession", &r)
	m, err := getModule()
	if err != nil {
		return rv("C_CloseSession", err)
	}
	return rv("C_CloseSession", m.CloseSession(ck.ULong(h)))
}

//export go_CloseAllSessions
func go_CloseAllSessions(slotID C.CK_SLOT_ID) (r C.CK_RV) {
	defer recoverRV("C_CloseAllSessions", &r)
	m, err := getModule()
	if err != nil {
		return rv("C_CloseAllSessions", err)
	}
	return rv("C_CloseAllSessions", m.CloseAllSessions(ck.ULong(slotID)))
}

//export go_GetSessionInfo
func go_GetSessionInfo(h C.CK_SESSION_HANDLE, p C.CK_SESSION_INFO_PTR) (r C.CK_RV) {
	defer recoverRV("C_GetSessionInfo", &r)
	m, err := getModule()
	if err != nil {
		return rv("C_GetSessionInfo", err)
	}
	si, err := m.SessionInfo(ck.ULong(h))
	if err != nil {
		return argRV("C_GetSessionInfo", m, h, err)
	}
	if p == nil {
		return argRV("C_GetSessionInfo", m, h, errArgs)
	}
	p.slotID = C.CK_SLOT_ID(si.SlotID)
	p.state = C.CK_STATE(si.State)
	p.flags = C.CK_FLAGS(si.Flags)
	p.ulDeviceError = 0
	return C.CKR_OK
}

//export go_Login
func go_Login(h C.CK_SESSION_HANDLE, userType C.CK_USER_TYPE, pPin C.CK_UTF8CHAR_PTR, ulPinLen C.CK_ULONG) (r C.CK_RV) {
	defer recoverRV("C_Login", &r)
	m, err := getModule()
	if err != nil {
		return rv("C_Login", err)
	}
	pin, err := copyIn(C.CK_BYTE_PTR(pPin), ulPinLen)
	if err != nil {
		return argRV("C_Login", m, h, err)
	}
	defer clear(pin)
	return rv("C_Login", m.Login(ck.ULong(h), ck.UserType(userType), pin))
}

//export go_LoginUser
func go_LoginUser(h C.CK_SESSION_HANDLE, userType C.CK_USER_TYPE, pPin C.CK_UTF8CHAR_PTR, ulPinLen C.CK_ULONG, pUsername C.CK_UTF8CHAR_PTR, ulUsernameLen C.CK_ULONG) (r C.CK_RV) {
	defer recoverRV("C_LoginUser", &r)
	m, err := getModule()
	if err != nil {
		return rv("C_LoginUser", err)
	}
	pin, err := copyIn(C.CK_BYTE_PTR(pPin), ulPinLen)
	if err != nil {
		return argRV("C_LoginUser", m, h, err)
	}
	defer clear(pin)
	name, err := copyIn(C.CK_BYTE_PTR(pUsername), ulUsernameLen)
	if err != nil {
		return argRV("C_LoginUser", m, h, err)
	}
	if len(name) == 0 {
		return rv("C_LoginUser", m.Login(ck.ULong(h), ck.UserType(userType), pin))
	}
	return rv("C_LoginUser", m.LoginUser(ck.ULong(h), ck.UserType(userType), pin, string(name)))
}

//export go_Logout
func go_Logout(h C.CK_SESSION_HANDLE) (r C.CK_RV) {
	defer recoverRV("C_Logout", &r)
	m, err := getModule()
	if err != nil {
		return rv("C_Logout", err)
	}
	return rv("C_Logout", m.Logout(ck.ULong(h)))
}
