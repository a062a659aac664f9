package pkcs11

/*
#include <stdlib.h>
#include "pkcs11.h"
#include "gohsm.h"
*/
import "C"

import (
	"unsafe"

	"gohsm/internal/ck"
	"gohsm/mechanisms"
	"gohsm/token"
	"gohsm/token/attrs"
)

// The fuzz targets in marshal_fuzz_test.go lay out C structures from fuzz
// bytes; test files cannot use cgo, so the layouts and C memory live here.
// Nothing in the library calls these: the linker drops them.

// cField is a pointer field of a parameter structure: at ptr, with its
// length (bytes, or elements when sub is set and count is true) at n, or
// noLen for a pointer to one fixed structure (sub).
type cField struct {
	ptr, n uintptr
	sub    *cLayout
	count  bool
	bits   bool // the length is in bits (CK_GCM_MESSAGE_PARAMS.ulTagBits)
}

const noLen = ^uintptr(0)

// cLayout is a parameter structure: its size and its pointer fields.
type cLayout struct {
	size   uintptr
	fields []cField
}

func off[T any](p *T, f unsafe.Pointer) uintptr { return uintptr(f) - uintptr(unsafe.Pointer(p)) }

var (
	oaepLayout = func() *cLayout {
		var c C.CK_RSA_PKCS_OAEP_PARAMS
		return &cLayout{unsafe.Sizeof(c), []cField{{ptr: off(&c, unsafe.Pointer(&c.pSourceData)), n: off(&c, unsafe.Pointer(&c.ulSourceDataLen))}}}
	}()
	counterFormatLayout = &cLayout{size: unsafe.Sizeof(C.CK_SP800_108_COUNTER_FORMAT{})}
	prfDataLayout       = func() *cLayout {
		var c C.CK_PRF_DATA_PARAM
		return &cLayout{unsafe.Sizeof(c), []cField{{ptr: off(&c, unsafe.Pointer(&c.pValue)), n: off(&c, unsafe.Pointer(&c.ulValueLen))}}}
	}()
)

// paramLayouts: every ParamKind's C structure (ParamIV is a plain byte
// string, ParamNone takes anything).
var paramLayouts = func() map[mechanisms.ParamKind]*cLayout {
	l := map[mechanisms.ParamKind]*cLayout{
		mechanisms.ParamNone:      {size: 0},
		mechanisms.ParamIV:        {size: 16},
		mechanisms.ParamPSS:       {size: unsafe.Sizeof(C.CK_RSA_PKCS_PSS_PARAMS{})},
		mechanisms.ParamOAEP:      oaepLayout,
		mechanisms.ParamULong:     {size: unsafe.Sizeof(C.CK_ULONG(0))},
		mechanisms.ParamKeyHandle: {size: unsafe.Sizeof(C.CK_OBJECT_HANDLE(0))},
		mechanisms.ParamCTR:       {size: unsafe.Sizeof(C.CK_AES_CTR_PARAMS{})},
	}
	{
		var c C.CK_GCM_PARAMS
		l[mechanisms.ParamGCM] = &cLayout{unsafe.Sizeof(c), []cField{
			{ptr: off(&c, unsafe.Pointer(&c.pIv)), n: off(&c, unsafe.Pointer(&c.ulIvLen))},
			{ptr: off(&c, unsafe.Pointer(&c.pAAD)), n: off(&c, unsafe.Pointer(&c.ulAADLen))}}}
	}
	{
		var c C.CK_KEY_DERIVATION_STRING_DATA
		l[mechanisms.ParamBytes] = &cLayout{unsafe.Sizeof(c), []cField{{ptr: off(&c, unsafe.Pointer(&c.pData)), n: off(&c, unsafe.Pointer(&c.ulLen))}}}
	}
	{
		var c C.CK_CCM_PARAMS
		l[mechanisms.ParamCCM] = &cLayout{unsafe.Sizeof(c), []cField{
			{ptr: off(&c, unsafe.Pointer(&c.pNonce)), n: off(&c, unsafe.Pointer(&c.ulNonceLen))},
			{ptr: off(&c, unsafe.Pointer(&c.pAAD)), n: off(&c, unsafe.Pointer(&c.ulAADLen))}}}
	}
	{
		var c C.CK_ECDH1_DERIVE_PARAMS
		l[mechanisms.ParamECDH1] = &cLayout{unsafe.Sizeof(c), []cField{
			{ptr: off(&c, unsafe.Pointer(&c.pSharedData)), n: off(&c, unsafe.Pointer(&c.ulSharedDataLen))},
			{ptr: off(&c, unsafe.Pointer(&c.pPublicData)), n: off(&c, unsafe.Pointer(&c.ulPublicDataLen))}}}
	}
	{
		var c C.CK_HKDF_PARAMS
		l[mechanisms.ParamHKDF] = &cLayout{unsafe.Sizeof(c), []cField{
			{ptr: off(&c, unsafe.Pointer(&c.pSalt)), n: off(&c, unsafe.Pointer(&c.ulSaltLen))},
			{ptr: off(&c, unsafe.Pointer(&c.pInfo)), n: off(&c, unsafe.Pointer(&c.ulInfoLen))}}}
	}
	{
		var c C.CK_SP800_108_KDF_PARAMS
		l[mechanisms.ParamSP800108] = &cLayout{unsafe.Sizeof(c), []cField{
			{ptr: off(&c, unsafe.Pointer(&c.pDataParams)), n: off(&c, unsafe.Pointer(&c.ulNumberOfDataParams)), sub: prfDataLayout, count: true}}}
	}
	{
		var c C.CK_PKCS5_PBKD2_PARAMS2
		l[mechanisms.ParamPBKD2] = &cLayout{unsafe.Sizeof(c), []cField{
			{ptr: off(&c, unsafe.Pointer(&c.pSaltSourceData)), n: off(&c, unsafe.Pointer(&c.ulSaltSourceDataLen))},
			{ptr: off(&c, unsafe.Pointer(&c.pPrfData)), n: off(&c, unsafe.Pointer(&c.ulPrfDataLen))},
			{ptr: off(&c, unsafe.Pointer(&c.pPassword)), n: off(&c, unsafe.Pointer(&c.ulPasswordLen))}}}
	}
	{
		var c C.CK_AES_CBC_ENCRYPT_DATA_PARAMS
		l[mechanisms.ParamCBCEncryptData] = &cLayout{unsafe.Sizeof(c), []cField{{ptr: off(&c, unsafe.Pointer(&c.pData)), n: off(&c, unsafe.Pointer(&c.length))}}}
	}
	{
		var c C.CK_RSA_AES_KEY_WRAP_PARAMS
		l[mechanisms.ParamRSAAESKeyWrap] = &cLayout{unsafe.Sizeof(c), []cField{{ptr: off(&c, unsafe.Pointer(&c.pOAEPParams)), n: noLen, sub: oaepLayout}}}
	}
	// CloudHSM's vendor mechanisms (cloudhsm_params.go).
	l[mechanisms.ParamCloudHSMGCM] = l[mechanisms.ParamGCM]
	{
		var c C.CK_CLOUDHSM_SP800_108_KDF_PARAMS
		l[mechanisms.ParamCloudHSMKDF] = &cLayout{unsafe.Sizeof(c), []cField{
			{ptr: off(&c, unsafe.Pointer(&c.pDataParams)), n: off(&c, unsafe.Pointer(&c.ulNumberOfDataParams)), sub: prfDataLayout, count: true}}}
	}
	{
		var c C.CK_EDDSA_PARAMS
		l[mechanisms.ParamEdDSA] = &cLayout{unsafe.Sizeof(c), []cField{{ptr: off(&c, unsafe.Pointer(&c.pContextData)), n: off(&c, unsafe.Pointer(&c.ulContextDataLen))}}}
	}
	{
		var c C.CK_SIGN_ADDITIONAL_CONTEXT
		l[mechanisms.ParamSignContext] = &cLayout{unsafe.Sizeof(c), []cField{{ptr: off(&c, unsafe.Pointer(&c.pContext)), n: off(&c, unsafe.Pointer(&c.ulContextLen))}}}
	}
	{
		var c C.CK_HASH_SIGN_ADDITIONAL_CONTEXT
		l[mechanisms.ParamHashContext] = &cLayout{unsafe.Sizeof(c), []cField{{ptr: off(&c, unsafe.Pointer(&c.pContext)), n: off(&c, unsafe.Pointer(&c.ulContextLen))}}}
	}
	return l
}()

// counterFormatSize is what a CK_SP800_108 iteration variable's pValue
// points to (its DKM length format has another size).
var counterFormatSize = counterFormatLayout.size

// messageLayouts: the C_Message* parameters (msgParams in keymgmt.go).
var messageLayouts = func() []*cLayout {
	var g C.CK_GCM_MESSAGE_PARAMS
	var c C.CK_CCM_MESSAGE_PARAMS
	return []*cLayout{
		{unsafe.Sizeof(g), []cField{
			{ptr: off(&g, unsafe.Pointer(&g.pIv)), n: off(&g, unsafe.Pointer(&g.ulIvLen))},
			{ptr: off(&g, unsafe.Pointer(&g.pTag)), n: off(&g, unsafe.Pointer(&g.ulTagBits)), bits: true}}},
		{unsafe.Sizeof(c), []cField{
			{ptr: off(&c, unsafe.Pointer(&c.pNonce)), n: off(&c, unsafe.Pointer(&c.ulNonceLen))},
			{ptr: off(&c, unsafe.Pointer(&c.pMAC)), n: off(&c, unsafe.Pointer(&c.ulMACLen))}}},
	}
}()

// decodeMessageParamsAt runs the boundary's message-parameter decoder.
func decodeMessageParamsAt(p unsafe.Pointer, n uint64) (*mechanisms.MessageParams, error) {
	mp, _, err := msgParams(C.CK_VOID_PTR(p), C.CK_ULONG(n))
	return mp, err
}

var attrLayout = func() *cLayout {
	var c C.CK_ATTRIBUTE
	return &cLayout{unsafe.Sizeof(c), []cField{{ptr: off(&c, unsafe.Pointer(&c.pValue)), n: off(&c, unsafe.Pointer(&c.ulValueLen))}}}
}()

// cArena hands out C memory and frees all of it at once.
type cArena struct {
	blocks []unsafe.Pointer
	sizes  []int
}

// alloc returns n bytes of C memory (at least 1) holding b, zero-padded.
func (a *cArena) alloc(n int, b []byte) unsafe.Pointer {
	p := C.calloc(C.size_t(max(n, 1)), 1)
	a.blocks = append(a.blocks, p)
	a.sizes = append(a.sizes, max(n, 1))
	copy(unsafe.Slice((*byte)(p), max(n, 1)), b)
	return p
}

// scribble overwrites every block, so a decoded value that still points
// into the caller's memory shows.
func (a *cArena) scribble() {
	for i, p := range a.blocks {
		b := unsafe.Slice((*byte)(p), a.sizes[i])
		for j := range b {
			b[j] = 0xA5
		}
	}
}

func (a *cArena) free() {
	for _, p := range a.blocks {
		C.free(p)
	}
	a.blocks, a.sizes = nil, nil
}

func putWord(p unsafe.Pointer, at uintptr, v uint64) { *(*uint64)(unsafe.Add(p, at)) = v }
func getWord(p unsafe.Pointer, at uintptr) uint64    { return *(*uint64)(unsafe.Add(p, at)) }

// decodeMechanismAt runs the boundary's CK_MECHANISM decoder on a
// mechanism whose parameter is at param.
func decodeMechanismAt(a *cArena, t ck.MechanismType, param unsafe.Pointer, n uint64) (token.Mechanism, error) {
	m := (*C.CK_MECHANISM)(a.alloc(int(unsafe.Sizeof(C.CK_MECHANISM{})), nil))
	m.mechanism = C.CK_MECHANISM_TYPE(t)
	m.pParameter = C.CK_VOID_PTR(param)
	m.ulParameterLen = C.CK_ULONG(n)
	return mechanism(m)
}

// decodeTemplateAt runs the boundary's template decoder on n CK_ATTRIBUTEs at p.
func decodeTemplateAt(p unsafe.Pointer, n uint64) (attrs.Template, error) {
	return template(C.CK_ATTRIBUTE_PTR(p), C.CK_ULONG(n))
}

// kemTemplateAt runs the KEM calls' template decoder on n CK_ATTRIBUTEs at
// p, into buf.
func kemTemplateAt(buf attrs.List, p unsafe.Pointer, n uint64) (attrs.List, error) {
	return kemTemplate(buf, C.CK_ATTRIBUTE_PTR(p), C.CK_ULONG(n))
}
