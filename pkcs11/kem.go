package pkcs11

/*
#include "pkcs11.h"
*/
import "C"

import (
	"sync"

	"gohsm/internal/ck"
	"gohsm/token/attrs"
)

// kemTemplates holds the maps C_EncapsulateKey and C_DecapsulateKey decode
// the caller's template into, reused from call to call: the token keeps
// no reference to the map (Module.EncapsulateKey, DecapsulateKey), and a
// map of a few attributes is a header and one group (336 bytes, two
// allocations) per call otherwise. The values are copied as for any
// template (template): the map is all that is reused.
var kemTemplates = sync.Pool{New: func() any { return make(attrs.Template, maxPooledTemplate) }}

// maxPooledTemplate: a template of more attributes is decoded into a map
// of its own, so that no pooled map keeps a large table.
const maxPooledTemplate = 8

// kemTemplate decodes a caller's template for a KEM call, into a pooled
// map when pooled (releaseKEMTemplate gives it back once the token has
// returned).
func kemTemplate(p C.CK_ATTRIBUTE_PTR, n C.CK_ULONG) (t attrs.Template, pooled bool, err error) {
	as, err := attrSlice(p, n)
	if err != nil {
		return nil, false, err
	}
	if len(as) > maxPooledTemplate {
		t, err := template(p, n)
		return t, false, err
	}
	t = kemTemplates.Get().(attrs.Template)
	if err := templateInto(t, as); err != nil {
		releaseKEMTemplate(t, true)
		return nil, false, err
	}
	return t, true, nil
}

func releaseKEMTemplate(t attrs.Template, pooled bool) {
	if pooled {
		clear(t)
		kemTemplates.Put(t)
	}
}

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
	t, pooled, err := kemTemplate(pTemplate, ulAttributeCount)
	if err != nil {
		return argRV("C_EncapsulateKey", m, h, err)
	}
	defer releaseKEMTemplate(t, pooled)
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
	t, pooled, err := kemTemplate(pTemplate, ulAttributeCount)
	if err != nil {
		return argRV("C_DecapsulateKey", m, h, err)
	}
	defer releaseKEMTemplate(t, pooled)
	k, err := m.DecapsulateKey(ck.ULong(h), mech, ck.ULong(hPrivateKey), t, ct)
	if err != nil {
		return argRV("C_DecapsulateKey", m, h, err)
	}
	*phKey = C.CK_OBJECT_HANDLE(k)
	return C.CKR_OK
}
