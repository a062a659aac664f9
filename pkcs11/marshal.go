package pkcs11

/*
#include "pkcs11.h"

// CK_GCM_PARAMS as it was before 2.40 added ulIvBits; Java SunPKCS11 still
// sends it first.
typedef struct {
	CK_BYTE_PTR pIv;
	CK_ULONG ulIvLen;
	CK_BYTE_PTR pAAD;
	CK_ULONG ulAADLen;
	CK_ULONG ulTagBits;
} gohsm_gcm_params_v1;
*/
import "C"

import (
	"fmt"
	"unsafe"

	"gohsm/internal/ck"
	"gohsm/mechanisms"
	"gohsm/token"
	"gohsm/token/attrs"
)

var errArgs = ck.CKR_ARGUMENTS_BAD

// view returns a Go view of a caller's input buffer, valid only for the
// call: no copy into the Go heap (1 MiB costs ~100 ns to view, ~100 us to
// copy) and no reference kept after returning.
func view(p C.CK_BYTE_PTR, n C.CK_ULONG) ([]byte, error) {
	if n == 0 {
		return nil, nil
	}
	if p == nil {
		return nil, fmt.Errorf("pkcs11: NULL buffer of %d bytes: %w", n, errArgs)
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n)), nil
}

// copyIn copies a small caller buffer (PINs, labels, parameters) that the
// token layer may keep.
func copyIn(p C.CK_BYTE_PTR, n C.CK_ULONG) ([]byte, error) {
	v, err := view(p, n)
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), v...), nil
}

// outBuf describes a caller's output buffer and its length pointer.
func outBuf(p C.CK_BYTE_PTR, pl C.CK_ULONG_PTR) (token.Out, error) {
	if pl == nil {
		return token.Out{}, fmt.Errorf("pkcs11: NULL length pointer: %w", errArgs)
	}
	if p == nil {
		return token.Out{Query: true}, nil
	}
	return token.Out{Buf: unsafe.Slice((*byte)(unsafe.Pointer(p)), int(*pl))}, nil
}

// setLen stores an output length when the call succeeded or the buffer was
// too short (spec 5.2), and returns the CK_RV.
func setLen(fn string, pl C.CK_ULONG_PTR, n int, err error) C.CK_RV {
	r := rv(fn, err)
	if (r == C.CKR_OK || r == C.CKR_BUFFER_TOO_SMALL) && pl != nil {
		*pl = C.CK_ULONG(n)
	}
	return r
}

// attrSlice views a CK_ATTRIBUTE array.
func attrSlice(p C.CK_ATTRIBUTE_PTR, n C.CK_ULONG) ([]C.CK_ATTRIBUTE, error) {
	if n == 0 {
		return nil, nil
	}
	if p == nil {
		return nil, fmt.Errorf("pkcs11: NULL template of %d attributes: %w", n, errArgs)
	}
	return unsafe.Slice(p, int(n)), nil
}

// template copies a caller's template into a Template.
func template(p C.CK_ATTRIBUTE_PTR, n C.CK_ULONG) (attrs.Template, error) {
	as, err := attrSlice(p, n)
	if err != nil {
		return nil, err
	}
	t := make(attrs.Template, len(as))
	for _, a := range as {
		v, err := copyIn(C.CK_BYTE_PTR(a.pValue), a.ulValueLen)
		if err != nil {
			return nil, err
		}
		if v == nil {
			v = []byte{}
		}
		t[ck.AttributeType(a._type)] = v
	}
	return t, nil
}

// mechanism decodes a CK_MECHANISM and its parameter into the Go type the
// mechanism's row names (ParamKind).
func mechanism(p C.CK_MECHANISM_PTR) (token.Mechanism, error) {
	if p == nil {
		return token.Mechanism{}, fmt.Errorf("pkcs11: NULL mechanism: %w", errArgs)
	}
	t := ck.MechanismType(p.mechanism)
	m := token.Mechanism{Type: t}
	row, ok := mechanisms.Lookup(t)
	if !ok {
		return m, fmt.Errorf("pkcs11: %v: %w", t, ck.CKR_MECHANISM_INVALID)
	}
	bad := func(why string) error {
		return fmt.Errorf("pkcs11: %v parameter: %s: %w", t, why, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	pp, pl := unsafe.Pointer(p.pParameter), uintptr(p.ulParameterLen)
	if pp == nil && pl != 0 {
		return m, bad("NULL with a length")
	}
	switch row.Param {
	case mechanisms.ParamNone:
		// Clients pass stray parameters for mechanisms that take none
		// (e.g. an empty buffer); the spec gives them no meaning.
	case mechanisms.ParamIV, mechanisms.ParamBytes:
		b, err := copyIn(C.CK_BYTE_PTR(pp), C.CK_ULONG(pl))
		if err != nil {
			return m, bad("NULL bytes")
		}
		m.Param = b
	case mechanisms.ParamGCM:
		gp, err := gcmParams(pp, pl)
		if err != nil {
			return m, bad(err.Error())
		}
		m.Param = gp
	case mechanisms.ParamPSS:
		if pl != unsafe.Sizeof(C.CK_RSA_PKCS_PSS_PARAMS{}) {
			return m, bad(fmt.Sprintf("length %d", pl))
		}
		c := (*C.CK_RSA_PKCS_PSS_PARAMS)(pp)
		m.Param = &mechanisms.PSSParams{Hash: ck.MechanismType(c.hashAlg), MGF: ck.ULong(c.mgf), SaltLen: int(c.sLen)}
	case mechanisms.ParamOAEP:
		if pl != unsafe.Sizeof(C.CK_RSA_PKCS_OAEP_PARAMS{}) {
			return m, bad(fmt.Sprintf("length %d", pl))
		}
		c := (*C.CK_RSA_PKCS_OAEP_PARAMS)(pp)
		label, err := copyIn(C.CK_BYTE_PTR(c.pSourceData), c.ulSourceDataLen)
		if err != nil {
			return m, bad("NULL label")
		}
		m.Param = &mechanisms.OAEPParams{Hash: ck.MechanismType(c.hashAlg), MGF: ck.ULong(c.mgf), Source: ck.ULong(c.source), Label: label}
	default:
		return m, bad("unknown parameter kind")
	}
	return m, nil
}

// gcmParams decodes CK_GCM_PARAMS in either layout, told apart by length:
// the 2.40 one (48 bytes on LP64, with ulIvBits) or the older one without
// ulIvBits (40 bytes) that Java SunPKCS11 sends first.
func gcmParams(pp unsafe.Pointer, pl uintptr) (*mechanisms.GCMParams, error) {
	var iv, aad C.CK_BYTE_PTR
	var ivLen, aadLen, tag C.CK_ULONG
	switch pl {
	case unsafe.Sizeof(C.CK_GCM_PARAMS{}):
		c := (*C.CK_GCM_PARAMS)(pp)
		iv, ivLen, aad, aadLen, tag = c.pIv, c.ulIvLen, c.pAAD, c.ulAADLen, c.ulTagBits
	case unsafe.Sizeof(C.gohsm_gcm_params_v1{}):
		c := (*C.gohsm_gcm_params_v1)(pp)
		iv, ivLen, aad, aadLen, tag = c.pIv, c.ulIvLen, c.pAAD, c.ulAADLen, c.ulTagBits
	default:
		return nil, fmt.Errorf("length %d (want %d or %d)", pl, unsafe.Sizeof(C.CK_GCM_PARAMS{}), unsafe.Sizeof(C.gohsm_gcm_params_v1{}))
	}
	g := &mechanisms.GCMParams{TagBits: int(tag)}
	var err error
	if g.IV, err = copyIn(iv, ivLen); err != nil {
		return nil, fmt.Errorf("NULL IV")
	}
	if g.AAD, err = copyIn(aad, aadLen); err != nil {
		return nil, fmt.Errorf("NULL AAD")
	}
	return g, nil
}

// pad writes s into a blank-padded, unterminated Cryptoki string field.
func pad(dst unsafe.Pointer, size int, s string) {
	b := unsafe.Slice((*byte)(dst), size)
	n := copy(b, s)
	for i := n; i < size; i++ {
		b[i] = ' '
	}
}

func version(v *C.CK_VERSION, major, minor int) {
	v.major = C.CK_BYTE(major)
	v.minor = C.CK_BYTE(minor)
}
