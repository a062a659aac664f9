package pkcs11

/*
#include "pkcs11.h"
#include "gohsm.h"
*/
import "C"

import (
	"fmt"
	"unsafe"

	"gohsm/internal/ck"
	"gohsm/mechanisms"
)

// Decoders of the parameters of AWS CloudHSM's vendor mechanisms
// (mechanisms/cloudhsm.go); decodeParam calls them.

// cloudhsmGCMParams decodes CK_GCM_PARAMS for CKM_CLOUDHSM_AES_GCM, in
// either layout (readGCMLayout). pIV must be NULL: a non-NULL one is recorded,
// not read, and the mechanism refuses it; ulIvLen may say 12 (the IV the
// token makes) with a NULL pIV.
func cloudhsmGCMParams(pp unsafe.Pointer, pl uintptr) (*mechanisms.CloudHSMGCMParams, error) {
	l, err := readGCMLayout(pp, pl)
	if err != nil {
		return nil, err
	}
	g := &mechanisms.CloudHSMGCMParams{IVGiven: l.iv != nil, IVLen: field(l.ivLen), TagBits: field(l.tag)}
	if g.AAD, err = copyIn(l.aad, l.aadLen); err != nil {
		return nil, fmt.Errorf("NULL AAD")
	}
	return g, nil
}

// cloudhsmKDFParams decodes CloudHSM's CK_SP800_108_KDF_PARAMS
// (CK_CLOUDHSM_SP800_108_KDF_PARAMS in gohsm.h): {prftype,
// ulNumberOfDataParams, pDataParams}, each data parameter's value checked
// against its type's structure.
func cloudhsmKDFParams(pp unsafe.Pointer, pl uintptr) (*mechanisms.CloudHSMKDFParams, error) {
	if pp == nil || pl != unsafe.Sizeof(C.CK_CLOUDHSM_SP800_108_KDF_PARAMS{}) {
		return nil, fmt.Errorf("length %d, want %d", pl, unsafe.Sizeof(C.CK_CLOUDHSM_SP800_108_KDF_PARAMS{}))
	}
	c := (*C.CK_CLOUDHSM_SP800_108_KDF_PARAMS)(pp)
	if c.ulNumberOfDataParams > 64 || c.ulNumberOfDataParams > 0 && c.pDataParams == nil {
		return nil, fmt.Errorf("bad data parameter list")
	}
	p := &mechanisms.CloudHSMKDFParams{PRF: ck.MechanismType(c.prftype)}
	for _, d := range unsafe.Slice(c.pDataParams, int(c.ulNumberOfDataParams)) {
		pd := mechanisms.PRFData{Type: ck.ULong(d._type)}
		switch ck.ULong(d._type) {
		case ck.CK_CLOUDHSM_PRF_LABEL, ck.CK_CLOUDHSM_PRF_CONTEXT, ck.CK_CLOUDHSM_PRF_BYTE_ARRAY:
			b, err := copyIn(C.CK_BYTE_PTR(d.pValue), d.ulValueLen)
			if err != nil {
				return nil, fmt.Errorf("NULL data parameter of type 0x%x with length %d", uint(d._type), d.ulValueLen)
			}
			pd.Bytes = b
		case ck.CK_CLOUDHSM_PRF_COUNTER_FORMAT:
			if d.pValue == nil || uintptr(d.ulValueLen) != unsafe.Sizeof(C.CK_CLOUDHSM_SP800_108_COUNTER_FORMAT{}) {
				return nil, fmt.Errorf("counter format of length %d", d.ulValueLen)
			}
			pd.WidthBits = field((*C.CK_CLOUDHSM_SP800_108_COUNTER_FORMAT)(d.pValue).ulWidthInBits)
		case ck.CK_CLOUDHSM_PRF_DKM_FORMAT:
			if d.pValue == nil || uintptr(d.ulValueLen) != unsafe.Sizeof(C.CK_CLOUDHSM_SP800_108_DKM_LENGTH_FORMAT{}) {
				return nil, fmt.Errorf("DKM format of length %d", d.ulValueLen)
			}
			f := (*C.CK_CLOUDHSM_SP800_108_DKM_LENGTH_FORMAT)(d.pValue)
			pd.DKMMethod, pd.WidthBits = ck.ULong(f.dkmLengthMethod), field(f.ulWidthInBits)
		default:
			return nil, fmt.Errorf("data parameter type 0x%x", uint(d._type))
		}
		p.Data = append(p.Data, pd)
	}
	return p, nil
}
