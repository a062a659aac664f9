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
	"math"
	"slices"
	"unsafe"

	"gohsm/internal/ck"
	"gohsm/mechanisms"
	"gohsm/token"
	"gohsm/token/attrs"
)

var errArgs = ck.CKR_ARGUMENTS_BAD

// Bounds on what a caller's lengths and counts may say, checked before
// anything is read or allocated: Go's out-of-memory is fatal (no recover),
// and so is a read far past a caller's buffer. A length beyond the bound
// cannot describe real input.
const (
	// maxBuffer: no user address space (47 bits on x86-64 and arm64
	// with 4-level page tables) holds a larger buffer, and unsafe.Slice
	// panics beyond 2^48 bytes.
	maxBuffer = 1 << 47
	// maxCopyIn bounds inputs the boundary copies into the Go heap (PINs,
	// attribute values, mechanism parameters): 16 MiB, far above any
	// certificate, label or parameter a client sends.
	maxCopyIn = 16 << 20
	// maxTemplate bounds a template's attribute count: the spec defines
	// about 200 attribute types, and a template names each once.
	maxTemplate = 4096
)

// field converts a caller's count, length or bit size for the mechanisms:
// values beyond 2^31-1 (never valid for any of them) become 2^31-1, so
// that no conversion turns negative and no arithmetic on them overflows.
func field(v C.CK_ULONG) int {
	return int(min(v, math.MaxInt32))
}

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
	if n > maxBuffer {
		return nil, fmt.Errorf("pkcs11: buffer of %d bytes is larger than any address space: %w", n, errArgs)
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n)), nil
}

// copyIn copies a small caller buffer (PINs, labels, parameters) that the
// token layer may keep.
func copyIn(p C.CK_BYTE_PTR, n C.CK_ULONG) ([]byte, error) {
	if err := checkCopyIn(p, n); err != nil {
		return nil, err
	}
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
	// A buffer said to be larger than any address space is large enough
	// for any output: only the output's own length is ever written.
	return token.Out{Buf: unsafe.Slice((*byte)(unsafe.Pointer(p)), int(min(*pl, maxBuffer)))}, nil
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
	if n > maxTemplate {
		return nil, fmt.Errorf("pkcs11: template of %d attributes (at most %d): %w", n, maxTemplate, errArgs)
	}
	return unsafe.Slice(p, int(n)), nil
}

// template copies a caller's template into a Template (templateList's
// attributes; a type given twice has its later value).
func template(p C.CK_ATTRIBUTE_PTR, n C.CK_ULONG) (attrs.Template, error) {
	as, err := attrSlice(p, n)
	if err != nil {
		return nil, err
	}
	var buf [16]attrs.Value
	l, err := templateList(buf[:0], as)
	if err != nil {
		return nil, err
	}
	return l.Template(), nil
}

// templateList copies a caller's template as into l, an attribute a value
// in the caller's order (attrs.List). The values are checked first, in the
// template's order (the first bad one is the one reported), and then
// copied into one buffer, each capped at its length (an append copies it;
// no code writes into an attribute's value): one allocation for the values
// of a template where there was one per value (6 for p11bench's ML-KEM
// key). An empty value is present and not nil.
func templateList(l attrs.List, as []C.CK_ATTRIBUTE) (attrs.List, error) {
	// Indexed loops over pointers: a range's copy of each 24-byte
	// CK_ATTRIBUTE cost more than the checks (docs/bench.md "ML-KEM-768:
	// the caller's path, third pass").
	l0 := len(l)
	l = slices.Grow(l, len(as))[:l0+len(as)]
	vs := l[l0:]
	total := 0
	for i := range as {
		a := &as[i]
		typ := ck.AttributeType(a._type)
		if isNestedTemplate(typ) {
			v, err := nestedTemplate(*a)
			if err != nil {
				return nil, err
			}
			vs[i] = attrs.Value{Type: typ, V: v}
			continue
		}
		if err := checkCopyIn(C.CK_BYTE_PTR(a.pValue), a.ulValueLen); err != nil {
			return nil, err
		}
		total += int(a.ulValueLen)
		vs[i] = attrs.Value{Type: typ}
	}
	var buf []byte
	if total > 0 {
		buf = make([]byte, 0, total)
	}
	for i := range as {
		if isNestedTemplate(vs[i].Type) {
			continue
		}
		// view again: the caller's memory is read afresh.
		v, _ := view(C.CK_BYTE_PTR(as[i].pValue), as[i].ulValueLen)
		if len(v) == 0 {
			vs[i].V = []byte{} // present, empty: not nil
			continue
		}
		j := len(buf)
		buf = append(buf, v...)
		vs[i].V = buf[j:len(buf):len(buf)]
	}
	return l, nil
}

// checkCopyIn is copyIn's checks without the copy.
func checkCopyIn(p C.CK_BYTE_PTR, n C.CK_ULONG) error {
	if n > maxCopyIn {
		return fmt.Errorf("pkcs11: input of %d bytes (at most %d): %w", n, maxCopyIn, errArgs)
	}
	_, err := view(p, n)
	return err
}

// isNestedTemplate: attributes whose value is itself a CK_ATTRIBUTE array
// (CKF_ARRAY_ATTRIBUTE templates; CKA_ALLOWED_MECHANISMS is an array too,
// but of plain CK_MECHANISM_TYPEs).
func isNestedTemplate(t ck.AttributeType) bool {
	return t == ck.CKA_WRAP_TEMPLATE || t == ck.CKA_UNWRAP_TEMPLATE || t == ck.CKA_DERIVE_TEMPLATE
}

var attrSize = C.CK_ULONG(unsafe.Sizeof(C.CK_ATTRIBUTE{}))

// nestedTemplate copies a CK_ATTRIBUTE array attribute into the token's
// encoding (attrs.EncodeTemplate). Templates do not nest further.
func nestedTemplate(a C.CK_ATTRIBUTE) ([]byte, error) {
	if a.ulValueLen%attrSize != 0 {
		return nil, fmt.Errorf("pkcs11: %v of %d bytes is not a CK_ATTRIBUTE array: %w", ck.AttributeType(a._type), a.ulValueLen, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	inner, err := attrSlice(C.CK_ATTRIBUTE_PTR(a.pValue), a.ulValueLen/attrSize)
	if err != nil {
		return nil, err
	}
	t := make(attrs.Template, len(inner))
	for _, x := range inner {
		if isNestedTemplate(ck.AttributeType(x._type)) {
			return nil, fmt.Errorf("pkcs11: nested %v inside %v: %w", ck.AttributeType(x._type), ck.AttributeType(a._type), ck.CKR_ATTRIBUTE_VALUE_INVALID)
		}
		v, err := copyIn(C.CK_BYTE_PTR(x.pValue), x.ulValueLen)
		if err != nil {
			return nil, err
		}
		if v == nil {
			v = []byte{}
		}
		t[ck.AttributeType(x._type)] = v
	}
	return attrs.EncodeTemplate(t), nil
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
	case mechanisms.ParamIV:
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
		m.Param = &mechanisms.PSSParams{Hash: ck.MechanismType(c.hashAlg), MGF: ck.ULong(c.mgf), SaltLen: field(c.sLen)}
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
		v, err := decodeParam(row.Param, pp, pl)
		if err != nil {
			return m, bad(err.Error())
		}
		m.Param = v
	}
	return m, nil
}

// decodeParam decodes the parameter structures of the mechanism families
// beyond the first ones; each case checks the structure's length first.
func decodeParam(kind mechanisms.ParamKind, pp unsafe.Pointer, pl uintptr) (any, error) {
	size := func(want uintptr) error {
		if pl != want || pp == nil {
			return fmt.Errorf("length %d, want %d", pl, want)
		}
		return nil
	}
	bytesAt := func(p C.CK_BYTE_PTR, n C.CK_ULONG, what string) ([]byte, error) {
		b, err := copyIn(p, n)
		if err != nil {
			return nil, fmt.Errorf("NULL %s with length %d", what, n)
		}
		return b, nil
	}
	switch kind {
	case mechanisms.ParamBytes:
		// CK_KEY_DERIVATION_STRING_DATA
		if err := size(unsafe.Sizeof(C.CK_KEY_DERIVATION_STRING_DATA{})); err != nil {
			return nil, err
		}
		c := (*C.CK_KEY_DERIVATION_STRING_DATA)(pp)
		b, err := bytesAt(c.pData, c.ulLen, "pData")
		if b == nil && err == nil {
			b = []byte{} // present but empty, unlike an absent parameter
		}
		return b, err
	case mechanisms.ParamULong:
		if err := size(unsafe.Sizeof(C.CK_ULONG(0))); err != nil {
			return nil, err
		}
		return ck.ULong(*(*C.CK_ULONG)(pp)), nil
	case mechanisms.ParamKeyHandle:
		if err := size(unsafe.Sizeof(C.CK_OBJECT_HANDLE(0))); err != nil {
			return nil, err
		}
		return mechanisms.KeyHandle(*(*C.CK_OBJECT_HANDLE)(pp)), nil
	case mechanisms.ParamCCM:
		if err := size(unsafe.Sizeof(C.CK_CCM_PARAMS{})); err != nil {
			return nil, err
		}
		c := (*C.CK_CCM_PARAMS)(pp)
		nonce, err := bytesAt(c.pNonce, c.ulNonceLen, "nonce")
		if err != nil {
			return nil, err
		}
		aad, err := bytesAt(c.pAAD, c.ulAADLen, "AAD")
		if err != nil {
			return nil, err
		}
		return &mechanisms.CCMParams{DataLen: field(c.ulDataLen), Nonce: nonce, AAD: aad, MACLen: field(c.ulMACLen)}, nil
	case mechanisms.ParamCTR:
		if err := size(unsafe.Sizeof(C.CK_AES_CTR_PARAMS{})); err != nil {
			return nil, err
		}
		c := (*C.CK_AES_CTR_PARAMS)(pp)
		p := &mechanisms.CTRParams{CounterBits: field(c.ulCounterBits)}
		copy(p.CB[:], unsafe.Slice((*byte)(unsafe.Pointer(&c.cb[0])), 16))
		return p, nil
	case mechanisms.ParamECDH1:
		if err := size(unsafe.Sizeof(C.CK_ECDH1_DERIVE_PARAMS{})); err != nil {
			return nil, err
		}
		c := (*C.CK_ECDH1_DERIVE_PARAMS)(pp)
		shared, err := bytesAt(c.pSharedData, c.ulSharedDataLen, "shared data")
		if err != nil {
			return nil, err
		}
		pub, err := bytesAt(c.pPublicData, c.ulPublicDataLen, "public data")
		if err != nil {
			return nil, err
		}
		return &mechanisms.ECDH1Params{KDF: ck.ULong(c.kdf), SharedData: shared, PublicData: pub}, nil
	case mechanisms.ParamHKDF:
		if err := size(unsafe.Sizeof(C.CK_HKDF_PARAMS{})); err != nil {
			return nil, err
		}
		c := (*C.CK_HKDF_PARAMS)(pp)
		salt, err := bytesAt(c.pSalt, c.ulSaltLen, "salt")
		if err != nil {
			return nil, err
		}
		info, err := bytesAt(c.pInfo, c.ulInfoLen, "info")
		if err != nil {
			return nil, err
		}
		return &mechanisms.HKDFParams{Extract: c.bExtract != 0, Expand: c.bExpand != 0, PRF: ck.MechanismType(c.prfHashMechanism),
			SaltType: ck.ULong(c.ulSaltType), Salt: salt, SaltKey: mechanisms.KeyHandle(c.hSaltKey), Info: info}, nil
	case mechanisms.ParamSP800108:
		if err := size(unsafe.Sizeof(C.CK_SP800_108_KDF_PARAMS{})); err != nil {
			return nil, err
		}
		c := (*C.CK_SP800_108_KDF_PARAMS)(pp)
		if c.ulAdditionalDerivedKeys != 0 {
			return nil, fmt.Errorf("additional derived keys are not supported")
		}
		if c.ulNumberOfDataParams > 64 || c.ulNumberOfDataParams > 0 && c.pDataParams == nil {
			return nil, fmt.Errorf("bad data parameter list")
		}
		p := &mechanisms.SP800108Params{PRF: ck.MechanismType(c.prfType)}
		for _, d := range unsafe.Slice(c.pDataParams, int(c.ulNumberOfDataParams)) {
			pd := mechanisms.PRFData{Type: ck.ULong(d._type)}
			switch ck.ULong(d._type) {
			case ck.CK_SP800_108_BYTE_ARRAY:
				b, err := bytesAt(C.CK_BYTE_PTR(d.pValue), d.ulValueLen, "byte array")
				if err != nil {
					return nil, err
				}
				pd.Bytes = b
			case ck.CK_SP800_108_ITERATION_VARIABLE, ck.CK_SP800_108_COUNTER:
				if d.pValue == nil {
					break // iteration variable without a format: the counter's defaults apply
				}
				if uintptr(d.ulValueLen) != unsafe.Sizeof(C.CK_SP800_108_COUNTER_FORMAT{}) {
					return nil, fmt.Errorf("counter format of length %d", d.ulValueLen)
				}
				f := (*C.CK_SP800_108_COUNTER_FORMAT)(d.pValue)
				pd.LittleEndian, pd.WidthBits = f.bLittleEndian != 0, field(f.ulWidthInBits)
			case ck.CK_SP800_108_DKM_LENGTH:
				if d.pValue == nil || uintptr(d.ulValueLen) != unsafe.Sizeof(C.CK_SP800_108_DKM_LENGTH_FORMAT{}) {
					return nil, fmt.Errorf("DKM length format of length %d", d.ulValueLen)
				}
				f := (*C.CK_SP800_108_DKM_LENGTH_FORMAT)(d.pValue)
				pd.DKMMethod, pd.LittleEndian, pd.WidthBits = ck.ULong(f.dkmLengthMethod), f.bLittleEndian != 0, field(f.ulWidthInBits)
			default:
				return nil, fmt.Errorf("data parameter type 0x%x", uint(d._type))
			}
			p.Data = append(p.Data, pd)
		}
		return p, nil
	case mechanisms.ParamPBKD2:
		// CK_PKCS5_PBKD2_PARAMS2 (3.0); the 2.40 CK_PKCS5_PBKD2_PARAMS has
		// the same size on LP64 but a pointer to the password length.
		if err := size(unsafe.Sizeof(C.CK_PKCS5_PBKD2_PARAMS2{})); err != nil {
			return nil, err
		}
		c := (*C.CK_PKCS5_PBKD2_PARAMS2)(pp)
		salt, err := bytesAt(C.CK_BYTE_PTR(c.pSaltSourceData), c.ulSaltSourceDataLen, "salt")
		if err != nil {
			return nil, err
		}
		prfData, err := bytesAt(C.CK_BYTE_PTR(c.pPrfData), c.ulPrfDataLen, "PRF data")
		if err != nil {
			return nil, err
		}
		if c.ulPasswordLen > 1<<16 {
			// Looks like a pointer: the 2.40 layout, whose ulPasswordLen
			// is a CK_ULONG_PTR (a defect 3.0 fixed with PARAMS2).
			return nil, fmt.Errorf("CK_PKCS5_PBKD2_PARAMS (2.40 layout) is not supported: use CK_PKCS5_PBKD2_PARAMS2")
		}
		pw, err := bytesAt(C.CK_BYTE_PTR(c.pPassword), c.ulPasswordLen, "password")
		if err != nil {
			return nil, err
		}
		return &mechanisms.PBKD2Params{SaltSource: ck.ULong(c.saltSource), Salt: salt, Iterations: field(c.iterations),
			PRF: ck.ULong(c.prf), PRFData: prfData, Password: pw}, nil
	case mechanisms.ParamCBCEncryptData:
		switch pl {
		case unsafe.Sizeof(C.CK_AES_CBC_ENCRYPT_DATA_PARAMS{}):
			c := (*C.CK_AES_CBC_ENCRYPT_DATA_PARAMS)(pp)
			data, err := bytesAt(c.pData, c.length, "data")
			if err != nil {
				return nil, err
			}
			return &mechanisms.CBCEncryptDataParams{IV: C.GoBytes(unsafe.Pointer(&c.iv[0]), 16), Data: data}, nil
		case unsafe.Sizeof(C.CK_DES_CBC_ENCRYPT_DATA_PARAMS{}):
			c := (*C.CK_DES_CBC_ENCRYPT_DATA_PARAMS)(pp)
			data, err := bytesAt(c.pData, c.length, "data")
			if err != nil {
				return nil, err
			}
			return &mechanisms.CBCEncryptDataParams{IV: C.GoBytes(unsafe.Pointer(&c.iv[0]), 8), Data: data}, nil
		}
		return nil, fmt.Errorf("length %d", pl)
	case mechanisms.ParamRSAAESKeyWrap:
		if err := size(unsafe.Sizeof(C.CK_RSA_AES_KEY_WRAP_PARAMS{})); err != nil {
			return nil, err
		}
		c := (*C.CK_RSA_AES_KEY_WRAP_PARAMS)(pp)
		if c.pOAEPParams == nil {
			return nil, fmt.Errorf("NULL OAEP parameters")
		}
		o := c.pOAEPParams
		label, err := bytesAt(C.CK_BYTE_PTR(o.pSourceData), o.ulSourceDataLen, "label")
		if err != nil {
			return nil, err
		}
		return &mechanisms.RSAAESKeyWrapParams{AESKeyBits: field(c.ulAESKeyBits),
			OAEP: &mechanisms.OAEPParams{Hash: ck.MechanismType(o.hashAlg), MGF: ck.ULong(o.mgf), Source: ck.ULong(o.source), Label: label}}, nil
	case mechanisms.ParamCloudHSMGCM:
		return cloudhsmGCMParams(pp, pl)
	case mechanisms.ParamCloudHSMKDF:
		return cloudhsmKDFParams(pp, pl)
	case mechanisms.ParamEdDSA:
		if pp == nil && pl == 0 {
			return nil, nil
		}
		if err := size(unsafe.Sizeof(C.CK_EDDSA_PARAMS{})); err != nil {
			return nil, err
		}
		c := (*C.CK_EDDSA_PARAMS)(pp)
		ctx, err := bytesAt(c.pContextData, c.ulContextDataLen, "context")
		if err != nil {
			return nil, err
		}
		return &mechanisms.EdDSAParams{PreHash: c.phFlag != 0, Context: ctx}, nil
	case mechanisms.ParamSignContext:
		if pp == nil && pl == 0 {
			return nil, nil
		}
		if err := size(unsafe.Sizeof(C.CK_SIGN_ADDITIONAL_CONTEXT{})); err != nil {
			return nil, err
		}
		c := (*C.CK_SIGN_ADDITIONAL_CONTEXT)(pp)
		ctx, err := bytesAt(c.pContext, c.ulContextLen, "context")
		if err != nil {
			return nil, err
		}
		return &mechanisms.SignContextParams{Hedge: ck.ULong(c.hedgeVariant), Context: ctx}, nil
	case mechanisms.ParamHashContext:
		if err := size(unsafe.Sizeof(C.CK_HASH_SIGN_ADDITIONAL_CONTEXT{})); err != nil {
			return nil, err
		}
		c := (*C.CK_HASH_SIGN_ADDITIONAL_CONTEXT)(pp)
		ctx, err := bytesAt(c.pContext, c.ulContextLen, "context")
		if err != nil {
			return nil, err
		}
		return &mechanisms.HashSignContextParams{Hedge: ck.ULong(c.hedgeVariant), Context: ctx, Hash: ck.MechanismType(c.hash)}, nil
	}
	return nil, fmt.Errorf("unknown parameter kind %d", kind)
}

// gcmLayout reads CK_GCM_PARAMS in either layout, told apart by length:
// the 2.40 one (48 bytes on LP64, with ulIvBits) or the older one without
// ulIvBits (40 bytes) that Java SunPKCS11 sends first; any other length is
// an error. CKM_AES_GCM and CKM_CLOUDHSM_AES_GCM take both.
type gcmLayout struct {
	iv, aad                    C.CK_BYTE_PTR
	ivLen, aadLen, tag, ivBits C.CK_ULONG
}

func readGCMLayout(pp unsafe.Pointer, pl uintptr) (l gcmLayout, err error) {
	switch pl {
	case unsafe.Sizeof(C.CK_GCM_PARAMS{}):
		c := (*C.CK_GCM_PARAMS)(pp)
		return gcmLayout{c.pIv, c.pAAD, c.ulIvLen, c.ulAADLen, c.ulTagBits, c.ulIvBits}, nil
	case unsafe.Sizeof(C.gohsm_gcm_params_v1{}):
		c := (*C.gohsm_gcm_params_v1)(pp)
		return gcmLayout{c.pIv, c.pAAD, c.ulIvLen, c.ulAADLen, c.ulTagBits, 0}, nil
	}
	return l, fmt.Errorf("length %d (want %d or %d)", pl, unsafe.Sizeof(C.CK_GCM_PARAMS{}), unsafe.Sizeof(C.gohsm_gcm_params_v1{}))
}

// gcmParams decodes CK_GCM_PARAMS (either layout, readGCMLayout).
func gcmParams(pp unsafe.Pointer, pl uintptr) (*mechanisms.GCMParams, error) {
	l, err := readGCMLayout(pp, pl)
	if err != nil {
		return nil, err
	}
	g := &mechanisms.GCMParams{TagBits: field(l.tag), IVBits: int32(field(l.ivBits))}
	if g.IV, err = copyIn(l.iv, l.ivLen); err != nil {
		return nil, fmt.Errorf("NULL IV")
	}
	if g.AAD, err = copyIn(l.aad, l.aadLen); err != nil {
		return nil, fmt.Errorf("NULL AAD")
	}
	return g, nil
}

// giveGCMIV writes an IV the token made (the cloudhsm profile's
// CKM_AES_GCM: GCMParams.IVGenerated) into the caller's CK_GCM_PARAMS.pIv,
// at the C_EncryptInit or C_WrapKey that made it, as AWS CloudHSM does
// ("The 12-byte IV provided by the HSM is written into the memory reference
// pointed to by the pIV element"). Only during the call: the caller's
// structure may be gone by the next one (Java's SunPKCS11 frees its copy
// right after C_EncryptInit), so the pointer is never kept.
func giveGCMIV(p C.CK_MECHANISM_PTR, mech token.Mechanism) {
	g, ok := mech.Param.(*mechanisms.GCMParams)
	if !ok || !g.IVGenerated {
		return
	}
	l, err := readGCMLayout(unsafe.Pointer(p.pParameter), uintptr(p.ulParameterLen))
	if err != nil || l.iv == nil || int(l.ivLen) != len(g.IV) {
		return // gcmParams read these same fields: cannot happen
	}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(l.iv)), len(g.IV)), g.IV)
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
