package pkcs11

/*
#include "pkcs11.h"
*/
import "C"

import (
	"errors"
	"unsafe"

	"gohsm/internal/ck"
	"gohsm/token/attrs"
	"gohsm/token/profile"
)

// Chapter 5.7: object management.

//export go_CreateObject
func go_CreateObject(h C.CK_SESSION_HANDLE, pTemplate C.CK_ATTRIBUTE_PTR, ulCount C.CK_ULONG, phObject C.CK_OBJECT_HANDLE_PTR) (r C.CK_RV) {
	defer recoverRV("C_CreateObject", &r)
	m, err := getModule()
	if err != nil {
		return rv("C_CreateObject", err)
	}
	if phObject == nil {
		return argRV("C_CreateObject", m, h, errArgs)
	}
	t, err := template(pTemplate, ulCount)
	if err != nil {
		return argRV("C_CreateObject", m, h, err)
	}
	o, err := m.CreateObject(ck.ULong(h), t)
	if err != nil {
		return argRV("C_CreateObject", m, h, err)
	}
	*phObject = C.CK_OBJECT_HANDLE(o)
	return C.CKR_OK
}

//export go_CopyObject
func go_CopyObject(h C.CK_SESSION_HANDLE, hObject C.CK_OBJECT_HANDLE, pTemplate C.CK_ATTRIBUTE_PTR, ulCount C.CK_ULONG, phNewObject C.CK_OBJECT_HANDLE_PTR) (r C.CK_RV) {
	defer recoverRV("C_CopyObject", &r)
	if r, no := refused("C_CopyObject", h, profile.FnCopyObject); no {
		return r
	}
	m, err := getModule()
	if err != nil {
		return rv("C_CopyObject", err)
	}
	if phNewObject == nil {
		return argRV("C_CopyObject", m, h, errArgs)
	}
	t, err := template(pTemplate, ulCount)
	if err != nil {
		return argRV("C_CopyObject", m, h, err)
	}
	o, err := m.CopyObject(ck.ULong(h), ck.ULong(hObject), t)
	if err != nil {
		return argRV("C_CopyObject", m, h, err)
	}
	*phNewObject = C.CK_OBJECT_HANDLE(o)
	return C.CKR_OK
}

//export go_DestroyObject
func go_DestroyObject(h C.CK_SESSION_HANDLE, hObject C.CK_OBJECT_HANDLE) (r C.CK_RV) {
	defer recoverRV("C_DestroyObject", &r)
	m, err := getModule()
	if err != nil {
		return rv("C_DestroyObject", err)
	}
	return rv("C_DestroyObject", m.DestroyObject(ck.ULong(h), ck.ULong(hObject)))
}

//export go_GetObjectSize
func go_GetObjectSize(h C.CK_SESSION_HANDLE, hObject C.CK_OBJECT_HANDLE, pulSize C.CK_ULONG_PTR) (r C.CK_RV) {
	defer recoverRV("C_GetObjectSize", &r)
	if r, no := refused("C_GetObjectSize", h, profile.FnGetObjectSize); no {
		return r
	}
	m, err := getModule()
	if err != nil {
		return rv("C_GetObjectSize", err)
	}
	if pulSize == nil {
		return argRV("C_GetObjectSize", m, h, errArgs)
	}
	n, err := m.GetObjectSize(ck.ULong(h), ck.ULong(hObject))
	if err != nil {
		return argRV("C_GetObjectSize", m, h, err)
	}
	*pulSize = C.CK_ULONG(n)
	return C.CKR_OK
}

//export go_GetAttributeValue
func go_GetAttributeValue(h C.CK_SESSION_HANDLE, hObject C.CK_OBJECT_HANDLE, pTemplate C.CK_ATTRIBUTE_PTR, ulCount C.CK_ULONG) (r C.CK_RV) {
	defer recoverRV("C_GetAttributeValue", &r)
	m, err := getModule()
	if err != nil {
		return rv("C_GetAttributeValue", err)
	}
	as, err := attrSlice(pTemplate, ulCount)
	if err != nil {
		return argRV("C_GetAttributeValue", m, h, err)
	}
	types := make([]ck.AttributeType, len(as))
	for i, a := range as {
		types[i] = ck.AttributeType(a._type)
	}
	res, err := m.GetAttributeValue(ck.ULong(h), ck.ULong(hObject), types)
	if err != nil {
		return argRV("C_GetAttributeValue", m, h, err)
	}
	// Spec 5.7 C_GetAttributeValue: every attribute is processed; a failing
	// one gets CK_UNAVAILABLE_INFORMATION and its error becomes the result
	// (any one of several may be returned).
	r = C.CKR_OK
	for i := range as {
		a := &as[i]
		if res[i].Err != nil {
			a.ulValueLen = C.CK_ULONG(ck.CK_UNAVAILABLE_INFORMATION)
			var e ck.RV
			if errors.As(res[i].Err, &e) {
				r = C.CK_RV(e)
			} else {
				r = rv("C_GetAttributeValue", res[i].Err)
			}
			continue
		}
		v := res[i].Value
		if isNestedTemplate(ck.AttributeType(a._type)) {
			if rr := writeNested(a, v); rr != C.CKR_OK && r == C.CKR_OK {
				r = rr
			}
			continue
		}
		if a.pValue == nil {
			a.ulValueLen = C.CK_ULONG(len(v))
			continue
		}
		if a.ulValueLen < C.CK_ULONG(len(v)) { // unsigned: ~0 is a large buffer, not -1
			a.ulValueLen = C.CK_ULONG(ck.CK_UNAVAILABLE_INFORMATION)
			if r == C.CKR_OK {
				r = C.CKR_BUFFER_TOO_SMALL
			}
			continue
		}
		copy(unsafe.Slice((*byte)(a.pValue), len(v)), v)
		a.ulValueLen = C.CK_ULONG(len(v))
	}
	return r
}

//export go_SetAttributeValue
func go_SetAttributeValue(h C.CK_SESSION_HANDLE, hObject C.CK_OBJECT_HANDLE, pTemplate C.CK_ATTRIBUTE_PTR, ulCount C.CK_ULONG) (r C.CK_RV) {
	defer recoverRV("C_SetAttributeValue", &r)
	m, err := getModule()
	if err != nil {
		return rv("C_SetAttributeValue", err)
	}
	if err := m.UnsupportedForKey(ck.ULong(h), ck.ULong(hObject), profile.FnSetAttributeValueKey); err != nil {
		return rv("C_SetAttributeValue", err)
	}
	t, err := template(pTemplate, ulCount)
	if err != nil {
		return argRV("C_SetAttributeValue", m, h, err)
	}
	return rv("C_SetAttributeValue", m.SetAttributeValue(ck.ULong(h), ck.ULong(hObject), t))
}

//export go_FindObjectsInit
func go_FindObjectsInit(h C.CK_SESSION_HANDLE, pTemplate C.CK_ATTRIBUTE_PTR, ulCount C.CK_ULONG) (r C.CK_RV) {
	defer recoverRV("C_FindObjectsInit", &r)
	m, err := getModule()
	if err != nil {
		return rv("C_FindObjectsInit", err)
	}
	t, err := template(pTemplate, ulCount)
	if err != nil {
		return argRV("C_FindObjectsInit", m, h, err)
	}
	return rv("C_FindObjectsInit", m.FindObjectsInit(ck.ULong(h), t))
}

//export go_FindObjects
func go_FindObjects(h C.CK_SESSION_HANDLE, phObject C.CK_OBJECT_HANDLE_PTR, ulMaxObjectCount C.CK_ULONG, pulObjectCount C.CK_ULONG_PTR) (r C.CK_RV) {
	defer recoverRV("C_FindObjects", &r)
	m, err := getModule()
	if err != nil {
		return rv("C_FindObjects", err)
	}
	if pulObjectCount == nil || phObject == nil && ulMaxObjectCount > 0 {
		return argRV("C_FindObjects", m, h, errArgs)
	}
	hs, err := m.FindObjects(ck.ULong(h), field(ulMaxObjectCount))
	if err != nil {
		return argRV("C_FindObjects", m, h, err)
	}
	if len(hs) > 0 {
		out := unsafe.Slice(phObject, len(hs))
		for i, o := range hs {
			out[i] = C.CK_OBJECT_HANDLE(o)
		}
	}
	*pulObjectCount = C.CK_ULONG(len(hs))
	return C.CKR_OK
}

//export go_FindObjectsFinal
func go_FindObjectsFinal(h C.CK_SESSION_HANDLE) (r C.CK_RV) {
	defer recoverRV("C_FindObjectsFinal", &r)
	m, err := getModule()
	if err != nil {
		return rv("C_FindObjectsFinal", err)
	}
	return rv("C_FindObjectsFinal", m.FindObjectsFinal(ck.ULong(h)))
}

// writeNested answers a CK_ATTRIBUTE array attribute (spec 5.7, "array
// attributes"): with no buffer, the array's size in bytes; with one, each
// element's type and value under the same rules as the outer template.
func writeNested(a *C.CK_ATTRIBUTE, encoded []byte) C.CK_RV {
	t, err := attrs.DecodeTemplate(encoded)
	if err != nil {
		a.ulValueLen = C.CK_ULONG(ck.CK_UNAVAILABLE_INFORMATION)
		return rv("C_GetAttributeValue", err)
	}
	types := t.Types()
	need := C.CK_ULONG(len(types)) * attrSize
	if a.pValue == nil {
		a.ulValueLen = need
		return C.CKR_OK
	}
	if a.ulValueLen < need {
		a.ulValueLen = C.CK_ULONG(ck.CK_UNAVAILABLE_INFORMATION)
		return C.CKR_BUFFER_TOO_SMALL
	}
	out := unsafe.Slice((*C.CK_ATTRIBUTE)(a.pValue), len(types))
	r := C.CK_RV(C.CKR_OK)
	for i, typ := range types {
		x := &out[i]
		v := t[typ]
		x._type = C.CK_ATTRIBUTE_TYPE(typ)
		switch {
		case x.pValue == nil:
			x.ulValueLen = C.CK_ULONG(len(v))
		case x.ulValueLen < C.CK_ULONG(len(v)):
			x.ulValueLen = C.CK_ULONG(ck.CK_UNAVAILABLE_INFORMATION)
			r = C.CKR_BUFFER_TOO_SMALL
		default:
			copy(unsafe.Slice((*byte)(x.pValue), len(v)), v)
			x.ulValueLen = C.CK_ULONG(len(v))
		}
	}
	a.ulValueLen = need
	return r
}
