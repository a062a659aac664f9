package main

/*
#cgo CFLAGS: -O2 -Wall -I${SRCDIR}/../../include
#cgo LDFLAGS: -ldl
#include <stdlib.h>
#include <string.h>
#include "bench.h"
*/
import "C"

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unsafe"

	"gohsm/internal/ck"
)

// errRV is a Cryptoki return value from a named function.
type errRV struct {
	fn string
	rv ck.RV
}

func (e *errRV) Error() string {
	return fmt.Sprintf("p11bench: %s: %s (0x%x)", e.fn, rvName(e.rv), uint(e.rv))
}

func (e *errRV) Unwrap() error { return e.rv }

func rvName(rv ck.RV) string {
	if rv == ck.RV(C.P11BENCH_WRONG_RESULT) {
		return "wrong result (output length or find count)"
	}
	return rv.String()
}

func check(fn string, rv C.CK_RV) error {
	if rv == C.CKR_OK {
		return nil
	}
	return &errRV{fn, ck.RV(rv)}
}

// p11 is a loaded module: its function list, called through the C
// trampolines of bench.c.
type p11 struct {
	path string
	lib  unsafe.Pointer
	f    C.CK_FUNCTION_LIST_PTR
	f32  C.CK_FUNCTION_LIST_3_2_PTR // nil: no PKCS #11 3.2 interface
}

// load opens the module and initialises it; reserved, when not empty, is
// handed as CK_C_INITIALIZE_ARGS.pReserved (a NUL-terminated string, as NSS
// passes library parameters; gohsm takes configuration text or a path).
func load(path, reserved string) (*p11, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var cerr *C.char
	lib := C.bench_dlopen(cpath, &cerr)
	if lib == nil {
		return nil, fmt.Errorf("p11bench: dlopen %s: %s", path, C.GoString(cerr))
	}
	p := &p11{path: path, lib: lib}
	if err := check("C_GetFunctionList", C.bench_get_function_list(lib, &p.f)); err != nil {
		return nil, err
	}
	p.f32 = C.bench_get_interface_3_2(lib)
	// CKF_OS_LOCKING_OK: the benchmark calls from several threads (a NULL
	// argument would let a module such as SoftHSM drop its locks).
	args := (*C.CK_C_INITIALIZE_ARGS)(C.calloc(1, C.sizeof_CK_C_INITIALIZE_ARGS))
	defer C.free(unsafe.Pointer(args))
	args.flags = C.CKF_OS_LOCKING_OK
	if reserved != "" {
		r := C.CString(reserved)
		defer C.free(unsafe.Pointer(r))
		args.pReserved = C.CK_VOID_PTR(r)
	}
	if err := check("C_Initialize", C.t_Initialize(p.f, C.CK_VOID_PTR(args))); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *p11) finalize() error { return check("C_Finalize", C.t_Finalize(p.f)) }

func (p *p11) info() (string, error) {
	var info C.CK_INFO
	if err := check("C_GetInfo", C.t_GetInfo(p.f, &info)); err != nil {
		return "", err
	}
	man := C.GoBytes(unsafe.Pointer(&info.manufacturerID[0]), 32)
	desc := C.GoBytes(unsafe.Pointer(&info.libraryDescription[0]), 32)
	return fmt.Sprintf("%s, %s %d.%d", strings.TrimSpace(string(desc)), strings.TrimSpace(string(man)),
		info.libraryVersion.major, info.libraryVersion.minor), nil
}

func (p *p11) slots() ([]C.CK_SLOT_ID, error) {
	var n C.CK_ULONG
	if err := check("C_GetSlotList", C.t_GetSlotList(p.f, C.CK_TRUE, nil, &n)); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, nil
	}
	list := make([]C.CK_SLOT_ID, n)
	if err := check("C_GetSlotList", C.t_GetSlotList(p.f, C.CK_TRUE, &list[0], &n)); err != nil {
		return nil, err
	}
	return list[:n], nil
}

type tokenInfo struct {
	label       string
	flags       uint
	initialized bool
}

func (p *p11) tokenInfo(slot C.CK_SLOT_ID) (tokenInfo, error) {
	var ti C.CK_TOKEN_INFO
	if err := check("C_GetTokenInfo", C.t_GetTokenInfo(p.f, slot, &ti)); err != nil {
		return tokenInfo{}, err
	}
	label := strings.TrimRight(string(C.GoBytes(unsafe.Pointer(&ti.label[0]), 32)), " \x00")
	return tokenInfo{label: label, flags: uint(ti.flags), initialized: ti.flags&C.CKF_TOKEN_INITIALIZED != 0}, nil
}

func (p *p11) mechanisms(slot C.CK_SLOT_ID) (map[ck.MechanismType]bool, error) {
	var n C.CK_ULONG
	if err := check("C_GetMechanismList", C.t_GetMechanismList(p.f, slot, nil, &n)); err != nil {
		return nil, err
	}
	out := map[ck.MechanismType]bool{}
	if n == 0 {
		return out, nil
	}
	list := make([]C.CK_MECHANISM_TYPE, n)
	if err := check("C_GetMechanismList", C.t_GetMechanismList(p.f, slot, &list[0], &n)); err != nil {
		return nil, err
	}
	for _, m := range list[:n] {
		out[ck.MechanismType(m)] = true
	}
	return out, nil
}

// withBytes hands f a C copy of b (NUL-terminated, freed afterwards).
func withBytes(b []byte, f func(p *C.CK_UTF8CHAR, n C.CK_ULONG) C.CK_RV) C.CK_RV {
	c := C.CBytes(append(append([]byte(nil), b...), 0))
	defer C.free(c)
	return f((*C.CK_UTF8CHAR)(c), C.CK_ULONG(len(b)))
}

func (p *p11) initToken(slot C.CK_SLOT_ID, soPIN, label string) error {
	padded := []byte(fmt.Sprintf("%-32s", label))
	clabel := C.CBytes(padded)
	defer C.free(clabel)
	return check("C_InitToken", withBytes([]byte(soPIN), func(pin *C.CK_UTF8CHAR, n C.CK_ULONG) C.CK_RV {
		return C.t_InitToken(p.f, slot, pin, n, (*C.CK_UTF8CHAR)(clabel))
	}))
}

func (p *p11) openSession(slot C.CK_SLOT_ID) (C.CK_SESSION_HANDLE, error) {
	var s C.CK_SESSION_HANDLE
	err := check("C_OpenSession", C.t_OpenSession(p.f, slot, C.CKF_SERIAL_SESSION|C.CKF_RW_SESSION, &s))
	return s, err
}

func (p *p11) closeSession(s C.CK_SESSION_HANDLE) error {
	return check("C_CloseSession", C.t_CloseSession(p.f, s))
}

func (p *p11) login(s C.CK_SESSION_HANDLE, user C.CK_USER_TYPE, pin string) error {
	rv := withBytes([]byte(pin), func(b *C.CK_UTF8CHAR, n C.CK_ULONG) C.CK_RV { return C.t_Login(p.f, s, user, b, n) })
	if rv == C.CKR_USER_ALREADY_LOGGED_IN {
		return nil
	}
	return check("C_Login", rv)
}

func (p *p11) logout(s C.CK_SESSION_HANDLE) error { return check("C_Logout", C.t_Logout(p.f, s)) }

func (p *p11) initPIN(s C.CK_SESSION_HANDLE, pin string) error {
	return check("C_InitPIN", withBytes([]byte(pin), func(b *C.CK_UTF8CHAR, n C.CK_ULONG) C.CK_RV { return C.t_InitPIN(p.f, s, b, n) }))
}

// attr is one attribute in Cryptoki encoding.
type attr struct {
	t ck.AttributeType
	v []byte
}

func ulong(v uint) []byte {
	b := make([]byte, C.sizeof_CK_ULONG)
	switch len(b) {
	case 8:
		binary.NativeEndian.PutUint64(b, uint64(v))
	default:
		binary.NativeEndian.PutUint32(b, uint32(v))
	}
	return b
}

func boolean(v bool) []byte {
	if v {
		return []byte{1}
	}
	return []byte{0}
}

// template is a CK_ATTRIBUTE array in C memory; free releases it.
type template struct {
	p *C.CK_ATTRIBUTE
	n C.CK_ULONG
}

func newTemplate(as []attr) template {
	if len(as) == 0 {
		return template{}
	}
	arr := (*[1 << 16]C.CK_ATTRIBUTE)(C.calloc(C.size_t(len(as)), C.sizeof_CK_ATTRIBUTE))[:len(as):len(as)]
	for i, a := range as {
		arr[i]._type = C.CK_ATTRIBUTE_TYPE(a.t)
		if len(a.v) > 0 {
			arr[i].pValue = C.CK_VOID_PTR(C.CBytes(a.v))
		}
		arr[i].ulValueLen = C.CK_ULONG(len(a.v))
	}
	return template{p: &arr[0], n: C.CK_ULONG(len(as))}
}

func (t template) free() {
	if t.p == nil {
		return
	}
	arr := unsafe.Slice(t.p, t.n)
	for i := range arr {
		C.free(unsafe.Pointer(arr[i].pValue))
	}
	C.free(unsafe.Pointer(t.p))
}

func (p *p11) find(s C.CK_SESSION_HANDLE, as []attr, max int) ([]C.CK_OBJECT_HANDLE, error) {
	t := newTemplate(as)
	defer t.free()
	if err := check("C_FindObjectsInit", C.t_FindObjectsInit(p.f, s, t.p, t.n)); err != nil {
		return nil, err
	}
	var out []C.CK_OBJECT_HANDLE
	buf := make([]C.CK_OBJECT_HANDLE, 1024)
	var err error
	for max <= 0 || len(out) < max {
		var n C.CK_ULONG
		if err = check("C_FindObjects", C.t_FindObjects(p.f, s, &buf[0], C.CK_ULONG(len(buf)), &n)); err != nil || n == 0 {
			break
		}
		out = append(out, buf[:n]...)
	}
	return out, errors.Join(err, check("C_FindObjectsFinal", C.t_FindObjectsFinal(p.f, s)))
}

func (p *p11) createObject(s C.CK_SESSION_HANDLE, as []attr) (C.CK_OBJECT_HANDLE, error) {
	t := newTemplate(as)
	defer t.free()
	var h C.CK_OBJECT_HANDLE
	err := check("C_CreateObject", C.t_CreateObject(p.f, s, t.p, t.n, &h))
	return h, err
}

func (p *p11) destroy(s C.CK_SESSION_HANDLE, h C.CK_OBJECT_HANDLE) error {
	return check("C_DestroyObject", C.t_DestroyObject(p.f, s, h))
}

func (p *p11) generateKey(s C.CK_SESSION_HANDLE, mech ck.MechanismType, as []attr) (C.CK_OBJECT_HANDLE, error) {
	t := newTemplate(as)
	defer t.free()
	m := (*C.CK_MECHANISM)(C.calloc(1, C.sizeof_CK_MECHANISM))
	defer C.free(unsafe.Pointer(m))
	m.mechanism = C.CK_MECHANISM_TYPE(mech)
	var h C.CK_OBJECT_HANDLE
	err := check("C_GenerateKey", C.t_GenerateKey(p.f, s, m, t.p, t.n, &h))
	return h, err
}

func (p *p11) generateKeyPair(s C.CK_SESSION_HANDLE, mech ck.MechanismType, pub, priv []attr) (C.CK_OBJECT_HANDLE, C.CK_OBJECT_HANDLE, error) {
	tp, tq := newTemplate(pub), newTemplate(priv)
	defer tp.free()
	defer tq.free()
	m := (*C.CK_MECHANISM)(C.calloc(1, C.sizeof_CK_MECHANISM))
	defer C.free(unsafe.Pointer(m))
	m.mechanism = C.CK_MECHANISM_TYPE(mech)
	var hp, hq C.CK_OBJECT_HANDLE
	err := check("C_GenerateKeyPair", C.t_GenerateKeyPair(p.f, s, m, tp.p, tp.n, tq.p, tq.n, &hp, &hq))
	return hp, hq, err
}
