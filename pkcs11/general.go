package pkcs11

/*
#include "pkcs11.h"

int gohsm_test_cmark(void);
void gohsm_test_clear_cmarks(void);
int gohsm_test_other_thread_cmark(void);
void gohsm_test_tick(void);
*/
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"

	"gohsm/internal/ck"
	"gohsm/token"
	"gohsm/token/profile"
)

// Chapter 5.4 (general purpose) and 5.5 (slot and token management).

// go_Yield lets the scheduler run (see gohsm_tick in shim.c): it advances
// the P's schedule tick, so the runtime does not take a calling thread's P
// away from it as a goroutine running too long.
//
//export go_Yield
func go_Yield() { runtime.Gosched() }

// go_Enter does nothing: a host thread's first call into Go binds the
// thread to a Go record and sets its signal mask, which the shim then
// mends (gohsm_thread_enter in shim.c).
//
//export go_Enter
func go_Enter() {}

// threadCallsLibcrypto reports the calling OS thread's mark in the yield
// table: set by internal/ossl when the thread goes into libcrypto, cleared
// when its yield interval ends (yield.h). For tests; cgo is not allowed in
// _test.go files.
func threadCallsLibcrypto() bool { return C.gohsm_test_cmark() != 0 }

// clearLibcryptoMarks clears every thread's mark. For tests.
func clearLibcryptoMarks() { C.gohsm_test_clear_cmarks() }

// otherThreadCallsLibcrypto is the mark seen by a new C thread whose yield
// slot is not the caller's: 1 or 0, or -1 if no such thread could be made.
// For tests.
func otherThreadCallsLibcrypto() int { return int(C.gohsm_test_other_thread_cmark()) }

// tickForTest runs the yield bookkeeping every module entry point runs.
func tickForTest() { C.gohsm_test_tick() }

//export go_GetInfo
func go_GetInfo(p C.CK_INFO_PTR) (r C.CK_RV) {
	defer recoverRV("C_GetInfo", &r)
	if _, err := getModule(); err != nil {
		return rv("C_GetInfo", err)
	}
	if p == nil {
		return C.CKR_ARGUMENTS_BAD
	}
	version(&p.cryptokiVersion, 3, 2)
	pad(unsafe.Pointer(&p.manufacturerID[0]), len(p.manufacturerID), "gohsm")
	p.flags = 0
	pad(unsafe.Pointer(&p.libraryDescription[0]), len(p.libraryDescription), "gohsm PKCS#11 HSM emulator")
	version(&p.libraryVersion, token.VersionMajor, token.VersionMinor)
	return C.CKR_OK
}

//export go_GetSlotList
func go_GetSlotList(tokenPresent C.CK_BBOOL, pList C.CK_SLOT_ID_PTR, pulCount C.CK_ULONG_PTR) (r C.CK_RV) {
	defer recoverRV("C_GetSlotList", &r)
	m, err := getModule()
	if err != nil {
		return rv("C_GetSlotList", err)
	}
	if pulCount == nil {
		return C.CKR_ARGUMENTS_BAD
	}
	ids := m.SlotIDs() // every slot has its token present
	if pList == nil {
		*pulCount = C.CK_ULONG(len(ids))
		return C.CKR_OK
	}
	if *pulCount < C.CK_ULONG(len(ids)) { // unsigned: ~0 is a large buffer
		*pulCount = C.CK_ULONG(len(ids))
		return C.CKR_BUFFER_TOO_SMALL
	}
	out := unsafe.Slice(pList, len(ids))
	for i, id := range ids {
		out[i] = C.CK_SLOT_ID(id)
	}
	*pulCount = C.CK_ULONG(len(ids))
	return C.CKR_OK
}

//export go_GetSlotInfo
func go_GetSlotInfo(slotID C.CK_SLOT_ID, p C.CK_SLOT_INFO_PTR) (r C.CK_RV) {
	defer recoverRV("C_GetSlotInfo", &r)
	m, err := getModule()
	if err != nil {
		return rv("C_GetSlotInfo", err)
	}
	s, err := m.Slot(ck.ULong(slotID))
	if err != nil {
		return rv("C_GetSlotInfo", err)
	}
	if p == nil {
		return C.CKR_ARGUMENTS_BAD
	}
	si := s.SlotInfo()
	pad(unsafe.Pointer(&p.slotDescription[0]), len(p.slotDescription), si.Description)
	pad(unsafe.Pointer(&p.manufacturerID[0]), len(p.manufacturerID), si.Manufacturer)
	p.flags = C.CK_FLAGS(si.Flags)
	version(&p.hardwareVersion, token.VersionMajor, token.VersionMinor)
	version(&p.firmwareVersion, token.VersionMajor, token.VersionMinor)
	return C.CKR_OK
}

//export go_GetTokenInfo
func go_GetTokenInfo(slotID C.CK_SLOT_ID, p C.CK_TOKEN_INFO_PTR) (r C.CK_RV) {
	defer recoverRV("C_GetTokenInfo", &r)
	m, err := getModule()
	if err != nil {
		return rv("C_GetTokenInfo", err)
	}
	s, err := m.Slot(ck.ULong(slotID))
	if err != nil {
		return rv("C_GetTokenInfo", err)
	}
	if p == nil {
		return C.CKR_ARGUMENTS_BAD
	}
	ti, err := s.TokenInfo()
	if err != nil {
		return rv("C_GetTokenInfo", err)
	}
	pad(unsafe.Pointer(&p.label[0]), len(p.label), ti.Label)
	pad(unsafe.Pointer(&p.manufacturerID[0]), len(p.manufacturerID), ti.Manufacturer)
	pad(unsafe.Pointer(&p.model[0]), len(p.model), ti.Model)
	pad(unsafe.Pointer(&p.serialNumber[0]), len(p.serialNumber), ti.SerialNumber)
	p.flags = C.CK_FLAGS(ti.Flags)
	p.ulMaxSessionCount = C.CK_ULONG(ti.MaxSessionCount)
	p.ulSessionCount = C.CK_ULONG(ti.SessionCount)
	p.ulMaxRwSessionCount = C.CK_ULONG(ti.MaxRwSessionCount)
	p.ulRwSessionCount = C.CK_ULONG(ti.RwSessionCount)
	p.ulMaxPinLen = C.CK_ULONG(ti.MaxPinLen)
	p.ulMinPinLen = C.CK_ULONG(ti.MinPinLen)
	p.ulTotalPublicMemory = C.CK_ULONG(ck.CK_UNAVAILABLE_INFORMATION)
	p.ulFreePublicMemory = C.CK_ULONG(ck.CK_UNAVAILABLE_INFORMATION)
	p.ulTotalPrivateMemory = C.CK_ULONG(ck.CK_UNAVAILABLE_INFORMATION)
	p.ulFreePrivateMemory = C.CK_ULONG(ck.CK_UNAVAILABLE_INFORMATION)
	version(&p.hardwareVersion, token.VersionMajor, token.VersionMinor)
	version(&p.firmwareVersion, token.VersionMajor, token.VersionMinor)
	pad(unsafe.Pointer(&p.utcTime[0]), len(p.utcTime), ti.UTCTime)
	return C.CKR_OK
}

//export go_GetMechanismList
func go_GetMechanismList(slotID C.CK_SLOT_ID, pList C.CK_MECHANISM_TYPE_PTR, pulCount C.CK_ULONG_PTR) (r C.CK_RV) {
	defer recoverRV("C_GetMechanismList", &r)
	m, err := getModule()
	if err != nil {
		return rv("C_GetMechanismList", err)
	}
	list, err := m.Mechanisms(ck.ULong(slotID))
	if err != nil {
		return rv("C_GetMechanismList", err)
	}
	if pulCount == nil {
		return C.CKR_ARGUMENTS_BAD
	}
	if pList == nil {
		*pulCount = C.CK_ULONG(len(list))
		return C.CKR_OK
	}
	if *pulCount < C.CK_ULONG(len(list)) {
		*pulCount = C.CK_ULONG(len(list))
		return C.CKR_BUFFER_TOO_SMALL
	}
	out := unsafe.Slice(pList, len(list))
	for i, t := range list {
		out[i] = C.CK_MECHANISM_TYPE(t)
	}
	*pulCount = C.CK_ULONG(len(list))
	return C.CKR_OK
}

//export go_GetMechanismInfo
func go_GetMechanismInfo(slotID C.CK_SLOT_ID, t C.CK_MECHANISM_TYPE, p C.CK_MECHANISM_INFO_PTR) (r C.CK_RV) {
	defer recoverRV("C_GetMechanismInfo", &r)
	m, err := getModule()
	if err != nil {
		return rv("C_GetMechanismInfo", err)
	}
	min, max, flags, err := m.MechanismInfo(ck.ULong(slotID), ck.MechanismType(t))
	if err != nil {
		return rv("C_GetMechanismInfo", err)
	}
	if p == nil {
		return C.CKR_ARGUMENTS_BAD
	}
	p.ulMinKeySize, p.ulMaxKeySize, p.flags = C.CK_ULONG(min), C.CK_ULONG(max), C.CK_FLAGS(flags)
	return C.CKR_OK
}

//export go_InitToken
func go_InitToken(slotID C.CK_SLOT_ID, pPin C.CK_UTF8CHAR_PTR, ulPinLen C.CK_ULONG, pLabel C.CK_UTF8CHAR_PTR) (r C.CK_RV) {
	defer recoverRV("C_InitToken", &r)
	m, err := getModule()
	if err != nil {
		return rv("C_InitToken", err)
	}
	s, err := m.Slot(ck.ULong(slotID))
	if err != nil {
		return rv("C_InitToken", err)
	}
	if err := m.UnsupportedOnSlot(ck.ULong(slotID), profile.FnInitToken); err != nil {
		return rv("C_InitToken", err)
	}
	if pLabel == nil {
		return C.CKR_ARGUMENTS_BAD
	}
	pin, err := copyIn(C.CK_BYTE_PTR(pPin), ulPinLen)
	if err != nil {
		return rv("C_InitToken", err)
	}
	defer clear(pin)
	if pPin == nil {
		// No protected authentication path: a PIN is required.
		return rv("C_InitToken", fmt.Errorf("pkcs11: init token: NULL pin: %w", ck.CKR_ARGUMENTS_BAD))
	}
	label := C.GoStringN((*C.char)(unsafe.Pointer(pLabel)), 32)
	return rv("C_InitToken", s.InitToken(pin, label))
}

//export go_InitPIN
func go_InitPIN(h C.CK_SESSION_HANDLE, pPin C.CK_UTF8CHAR_PTR, ulPinLen C.CK_ULONG) (r C.CK_RV) {
	defer recoverRV("C_InitPIN", &r)
	if r, no := refused("C_InitPIN", h, profile.FnInitPIN); no {
		return r
	}
	m, err := getModule()
	if err != nil {
		return rv("C_InitPIN", err)
	}
	pin, err := copyIn(C.CK_BYTE_PTR(pPin), ulPinLen)
	if err != nil {
		return argRV("C_InitPIN", m, h, err)
	}
	defer clear(pin)
	return rv("C_InitPIN", m.InitPIN(ck.ULong(h), pin))
}

//export go_SetPIN
func go_SetPIN(h C.CK_SESSION_HANDLE, pOld C.CK_UTF8CHAR_PTR, ulOldLen C.CK_ULONG, pNew C.CK_UTF8CHAR_PTR, ulNewLen C.CK_ULONG) (r C.CK_RV) {
	defer recoverRV("C_SetPIN", &r)
	if r, no := refused("C_SetPIN", h, profile.FnSetPIN); no {
		return r
	}
	m, err := getModule()
	if err != nil {
		return rv("C_SetPIN", err)
	}
	oldPIN, err := copyIn(C.CK_BYTE_PTR(pOld), ulOldLen)
	if err != nil {
		return argRV("C_SetPIN", m, h, err)
	}
	defer clear(oldPIN)
	newPIN, err := copyIn(C.CK_BYTE_PTR(pNew), ulNewLen)
	if err != nil {
		return argRV("C_SetPIN", m, h, err)
	}
	defer clear(newPIN)
	return rv("C_SetPIN", m.SetPIN(ck.ULong(h), oldPIN, newPIN))
}
