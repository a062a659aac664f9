package pkcs11

/*
#include "pkcs11.h"
*/
import "C"

import (
	"gohsm/internal/ck"
	"gohsm/token/attrs"
)

// kemTemplate decodes a caller's template for a KEM call into buf: the
// token reads it as the caller gave it (attrs.List), without a map
// (docs/bench.md "ML-KEM-768: the caller's path, third pass").
func kemTemplate(buf attrs.List, p C.CK_ATTRIBUTE_PTR, n C.CK_ULONG) (attrs.List, error) {
	as, err := attrSlice(p, n)
	if err != nil {
		return nil, err
	}
	return templateList(buf, as)
}

// kemTemplateSize is the attributes a KEM call's template decodes into on
// the stack; a longer one goes to the heap.
const kemTemplateSize = 8

//export go_EncapsulateKey
func go_EncapsulateKey(h C.CK_SESSION_HANDLE, pMechanism C.CK_MECHANISM_PTR, hPublicKey C.CK_OBJECT_HANDLE, pTemplate C.CK_ATTRIBUTE_PTR, ulAttributeCount C.CK_ULONG, pCiphertext C.CK_BYTE_PTR, pulCiphertextLen C.CK_ULONG_PTR, phKey C.CK_OBJECT_HANDLE_PTR) (r C.CK_RV) {
	defer recoverRV("C_EncapsulateKey", &r)
	m, err := getModule()
	if err != nil {
		return rv("C_EncapsulateKey", err)
	}
	if phKey == nil {
		return argRV("C_EncapsulateKey", m, h, errArgs)
	}
	mech, err := mechanismIn(m, h, pMechanism)
	if err != nil {
		return argRV("C_EncapsulateKey", m, h, err)
	}
	var buf [kemTemplateSize]attrs.Value
	t, err := kemTemplate(buf[:0], pTemplate, ulAttributeCount)
	if err != nil {
		return argRV("C_EncapsulateKey", m, h, err)
	}
	out, err := outBuf(pCiphertext, pulCiphertextLen)
	if err != nil {
		return argRV("C_EncapsulateKey", m, h, err)
	}
	n, k, err := m.EncapsulateKey(ck.ULong(h), mech, ck.ULong(hPublicKey), t, out)
	r = setLen("C_EncapsulateKey", pulCiphertextLen, n, err)
	if r == C.CKR_OK && !out.Query {
		*phKey = C.CK_OBJECT_HANDLE(k)
	}
	return r
}

//export go_DecapsulateKey
func go_DecapsulateKey(h C.CK_SESSION_HANDLE, pMechanism C.CK_MECHANISM_PTR, hPrivateKey C.CK_OBJECT_HANDLE, pTemplate C.CK_ATTRIBUTE_PTR, ulAttributeCount C.CK_ULONG, pCiphertext C.CK_BYTE_PTR, ulCiphertextLen C.CK_ULONG, phKey C.CK_OBJECT_HANDLE_PTR) (r C.CK_RV) {
	defer recoverRV("C_DecapsulateKey", &r)
	m, err := getModule()
	if err != nil {
		return rv("C_DecapsulateKey", err)
	}
	if phKey == nil {
		return argRV("C_DecapsulateKey", m, h, errArgs)
	}
	mech, err := mechanismIn(m, h, pMechanism)
	if err != nil {
		return argRV("C_DecapsulateKey", m, h, err)
	}
	ct, err := view(pCiphertext, ulCiphertextLen)
	if err != nil {
		return argRV("C_DecapsulateKey", m, h, err)
	}
	var buf [kemTemplateSize]attrs.Value
	t, err := kemTemplate(buf[:0], pTemplate, ulAttributeCount)
	if err != nil {
		return argRV("C_DecapsulateKey", m, h, err)
	}
	k, err := m.DecapsulateKey(ck.ULong(h), mech, ck.ULong(hPrivateKey), t, ct)
	if err != nil {
		return argRV("C_DecapsulateKey", m, h, err)
	}
	*phKey = C.CK_OBJECT_HANDLE(k)
	return C.CKR_OK
}
