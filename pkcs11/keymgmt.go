package pkcs11

/*
#include "pkcs11.h"
*/
import "C"

import (
	"fmt"
	"unsafe"

	"gohsm/internal/ck"
	"gohsm/mechanisms"
	"gohsm/token"
	"gohsm/token/profile"
)

// Chapter 5.18 (key management beyond generation), C_DigestKey, sign and
// verify with recovery, C_SessionCancel and the 3.0 message-based
// encryption functions.

//export go_WrapKey
func go_WrapKey(h C.CK_SESSION_HANDLE, pMechanism C.CK_MECHANISM_PTR, hWrappingKey C.CK_OBJECT_HANDLE, hKey C.CK_OBJECT_HANDLE, pWrappedKey C.CK_BYTE_PTR, pulWrappedKeyLen C.CK_ULONG_PTR) (r C.CK_RV) {
	defer recoverRV("C_WrapKey", &r)
	m, err := getModule()
	if err != nil {
		return rv("C_WrapKey", err)
	}
	mech, err := mechanismIn(m, h, pMechanism)
	if err != nil {
		return argRV("C_WrapKey", m, h, err)
	}
	out, err := outBuf(pWrappedKey, pulWrappedKeyLen)
	if err != nil {
		return argRV("C_WrapKey", m, h, err)
	}
	n, err := m.WrapKey(ck.ULong(h), mech, ck.ULong(hWrappingKey), ck.ULong(hKey), out)
	r = setLen("C_WrapKey", pulWrappedKeyLen, n, err)
	if r == C.CKR_OK || r == C.CKR_BUFFER_TOO_SMALL {
		// The wrapped bytes are kept for the retry: their IV is given now.
		giveGCMIV(pMechanism, mech)
	}
	return r
}

//export go_UnwrapKey
func go_UnwrapKey(h C.CK_SESSION_HANDLE, pMechanism C.CK_MECHANISM_PTR, hUnwrappingKey C.CK_OBJECT_HANDLE, pWrappedKey C.CK_BYTE_PTR, ulWrappedKeyLen C.CK_ULONG, pTemplate C.CK_ATTRIBUTE_PTR, ulAttributeCount C.CK_ULONG, phKey C.CK_OBJECT_HANDLE_PTR) (r C.CK_RV) {
	defer recoverRV("C_UnwrapKey", &r)
	m, err := getModule()
	if err != nil {
		return rv("C_UnwrapKey", err)
	}
	if phKey == nil {
		return argRV("C_UnwrapKey", m, h, errArgs)
	}
	mech, err := mechanismIn(m, h, pMechanism)
	if err != nil {
		return argRV("C_UnwrapKey", m, h, err)
	}
	wrapped, err := view(pWrappedKey, ulWrappedKeyLen)
	if err != nil {
		return argRV("C_UnwrapKey", m, h, err)
	}
	t, err := template(pTemplate, ulAttributeCount)
	if err != nil {
		return argRV("C_UnwrapKey", m, h, err)
	}
	k, err := m.UnwrapKey(ck.ULong(h), mech, ck.ULong(hUnwrappingKey), wrapped, t)
	if err != nil {
		return argRV("C_UnwrapKey", m, h, err)
	}
	*phKey = C.CK_OBJECT_HANDLE(k)
	return C.CKR_OK
}

//export go_DeriveKey
func go_DeriveKey(h C.CK_SESSION_HANDLE, pMechanism C.CK_MECHANISM_PTR, hBaseKey C.CK_OBJECT_HANDLE, pTemplate C.CK_ATTRIBUTE_PTR, ulAttributeCount C.CK_ULONG, phKey C.CK_OBJECT_HANDLE_PTR) (r C.CK_RV) {
	defer recoverRV("C_DeriveKey", &r)
	m, err := getModule()
	if err != nil {
		return rv("C_DeriveKey", err)
	}
	if phKey == nil {
		return argRV("C_DeriveKey", m, h, errArgs)
	}
	mech, err := mechanismIn(m, h, pMechanism)
	if err != nil {
		return argRV("C_DeriveKey", m, h, err)
	}
	t, err := template(pTemplate, ulAttributeCount)
	if err != nil {
		return argRV("C_DeriveKey", m, h, err)
	}
	k, err := m.DeriveKey(ck.ULong(h), mech, ck.ULong(hBaseKey), t)
	if err != nil {
		return argRV("C_DeriveKey", m, h, err)
	}
	*phKey = C.CK_OBJECT_HANDLE(k)
	return C.CKR_OK
}

//export go_DigestKey
func go_DigestKey(h C.CK_SESSION_HANDLE, hKey C.CK_OBJECT_HANDLE) (r C.CK_RV) {
	defer recoverRV("C_DigestKey", &r)
	if r, no := refused("C_DigestKey", h, profile.FnDigestKey); no {
		return r
	}
	m, err := getModule()
	if err != nil {
		return rv("C_DigestKey", err)
	}
	return rv("C_DigestKey", m.DigestKey(ck.ULong(h), ck.ULong(hKey)))
}

//export go_SignRecoverInit
func go_SignRecoverInit(h C.CK_SESSION_HANDLE, pMechanism C.CK_MECHANISM_PTR, hKey C.CK_OBJECT_HANDLE) (r C.CK_RV) {
	defer recoverRV("C_SignRecoverInit", &r)
	if r, no := refused("C_SignRecoverInit", h, profile.FnSignRecover); no {
		return r
	}
	return initOp("C_SignRecoverInit", h, pMechanism, hKey, (*token.Module).SignRecoverInit)
}

//export go_SignRecover
func go_SignRecover(h C.CK_SESSION_HANDLE, pData C.CK_BYTE_PTR, ulDataLen C.CK_ULONG, pSignature C.CK_BYTE_PTR, pulSignatureLen C.CK_ULONG_PTR) (r C.CK_RV) {
	defer recoverRV("C_SignRecover", &r)
	if r, no := refused("C_SignRecover", h, profile.FnSignRecover); no {
		return r
	}
	return oneShotOp("C_SignRecover", token.OpSignRecover, h, pData, ulDataLen, pSignature, pulSignatureLen, (*token.Module).SignRecover)
}

//export go_VerifyRecoverInit
func go_VerifyRecoverInit(h C.CK_SESSION_HANDLE, pMechanism C.CK_MECHANISM_PTR, hKey C.CK_OBJECT_HANDLE) (r C.CK_RV) {
	defer recoverRV("C_VerifyRecoverInit", &r)
	if r, no := refused("C_VerifyRecoverInit", h, profile.FnVerifyRecover); no {
		return r
	}
	return initOp("C_VerifyRecoverInit", h, pMechanism, hKey, (*token.Module).VerifyRecoverInit)
}

//export go_VerifyRecover
func go_VerifyRecover(h C.CK_SESSION_HANDLE, pSignature C.CK_BYTE_PTR, ulSignatureLen C.CK_ULONG, pData C.CK_BYTE_PTR, pulDataLen C.CK_ULONG_PTR) (r C.CK_RV) {
	defer recoverRV("C_VerifyRecover", &r)
	if r, no := refused("C_VerifyRecover", h, profile.FnVerifyRecover); no {
		return r
	}
	return oneShotOp("C_VerifyRecover", token.OpVerifyRecover, h, pSignature, ulSignatureLen, pData, pulDataLen, (*token.Module).VerifyRecover)
}

//export go_SessionCancel
func go_SessionCancel(h C.CK_SESSION_HANDLE, flags C.CK_FLAGS) (r C.CK_RV) {
	defer recoverRV("C_SessionCancel", &r)
	m, err := getModule()
	if err != nil {
		return rv("C_SessionCancel", err)
	}
	return rv("C_SessionCancel", m.SessionCancel(ck.ULong(h), ck.ULong(flags)))
}

// messageInit decodes the mechanism of C_Message*Init, whose parameter is
// usually absent (the per-message parameters come with each message).
func messageInit(fn string, h C.CK_SESSION_HANDLE, pMechanism C.CK_MECHANISM_PTR, hKey C.CK_OBJECT_HANDLE, encrypt bool) C.CK_RV {
	m, err := getModule()
	if err != nil {
		return rv(fn, err)
	}
	if pMechanism == nil {
		return argRV(fn, m, h, errArgs)
	}
	mech := token.Mechanism{Type: ck.MechanismType(pMechanism.mechanism)}
	if encrypt {
		return rv(fn, m.MessageEncryptInit(ck.ULong(h), mech, ck.ULong(hKey)))
	}
	return rv(fn, m.MessageDecryptInit(ck.ULong(h), mech, ck.ULong(hKey)))
}

// msgParams decodes CK_GCM_MESSAGE_PARAMS or CK_CCM_MESSAGE_PARAMS (told
// apart by length: 48 and 56 bytes on LP64). The IV and tag are copied in;
// writeBack copies the IV used and the tag back after a successful call.
func msgParams(pp C.CK_VOID_PTR, pl C.CK_ULONG) (*mechanisms.MessageParams, func(*mechanisms.MessageParams), error) {
	bad := func(why string) error {
		return fmt.Errorf("pkcs11: message parameter: %s: %w", why, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	if pp == nil {
		return nil, nil, bad("NULL")
	}
	switch uintptr(pl) {
	case unsafe.Sizeof(C.CK_GCM_MESSAGE_PARAMS{}):
		c := (*C.CK_GCM_MESSAGE_PARAMS)(unsafe.Pointer(pp))
		iv, err := copyIn(c.pIv, c.ulIvLen)
		if err != nil {
			return nil, nil, bad("NULL IV")
		}
		// The tag is at most a block (GCM: 128 bits); checked before the
		// length below reads or allocates anything.
		if c.ulTagBits > 128 {
			return nil, nil, bad(fmt.Sprintf("tag of %d bits", c.ulTagBits))
		}
		tagLen := (field(c.ulTagBits) + 7) / 8
		if c.pTag == nil && tagLen > 0 {
			return nil, nil, bad("NULL tag")
		}
		tag, _ := copyIn(c.pTag, C.CK_ULONG(tagLen))
		p := &mechanisms.MessageParams{IV: iv, IVFixedBits: field(c.ulIvFixedBits), IVGenerator: ck.ULong(c.ivGenerator), Tag: tag, TagBits: field(c.ulTagBits)}
		return p, func(p *mechanisms.MessageParams) {
			if len(p.IV) > 0 {
				copy(unsafe.Slice((*byte)(unsafe.Pointer(c.pIv)), len(p.IV)), p.IV)
			}
			if len(p.Tag) > 0 {
				copy(unsafe.Slice((*byte)(unsafe.Pointer(c.pTag)), len(p.Tag)), p.Tag)
			}
		}, nil
	case unsafe.Sizeof(C.CK_CCM_MESSAGE_PARAMS{}):
		c := (*C.CK_CCM_MESSAGE_PARAMS)(unsafe.Pointer(pp))
		nonce, err := copyIn(c.pNonce, c.ulNonceLen)
		if err != nil {
			return nil, nil, bad("NULL nonce")
		}
		if c.ulMACLen > 16 { // CCM's MAC is at most a block (SP 800-38C)
			return nil, nil, bad(fmt.Sprintf("MAC of %d bytes", c.ulMACLen))
		}
		if c.pMAC == nil && c.ulMACLen > 0 {
			return nil, nil, bad("NULL MAC")
		}
		mac, _ := copyIn(c.pMAC, c.ulMACLen)
		p := &mechanisms.MessageParams{IV: nonce, IVFixedBits: field(c.ulNonceFixedBits), IVGenerator: ck.ULong(c.nonceGenerator),
			Tag: mac, TagBits: 8 * field(c.ulMACLen), DataLen: field(c.ulDataLen), MACLen: field(c.ulMACLen)}
		return p, func(p *mechanisms.MessageParams) {
			if len(p.IV) > 0 {
				copy(unsafe.Slice((*byte)(unsafe.Pointer(c.pNonce)), len(p.IV)), p.IV)
			}
			if len(p.Tag) > 0 {
				copy(unsafe.Slice((*byte)(unsafe.Pointer(c.pMAC)), len(p.Tag)), p.Tag)
			}
		}, nil
	}
	return nil, nil, bad(fmt.Sprintf("length %d", pl))
}

func message(fn string, encrypt bool, h C.CK_SESSION_HANDLE, pParameter C.CK_VOID_PTR, ulParameterLen C.CK_ULONG, pAAD C.CK_BYTE_PTR, ulAADLen C.CK_ULONG, pIn C.CK_BYTE_PTR, ulInLen C.CK_ULONG, pOut C.CK_BYTE_PTR, pulOutLen C.CK_ULONG_PTR) C.CK_RV {
	m, err := getModule()
	if err != nil {
		return rv(fn, err)
	}
	p, writeBack, err := msgParams(pParameter, ulParameterLen)
	if err != nil {
		return argRV(fn, m, h, err)
	}
	aad, err := view(pAAD, ulAADLen)
	if err != nil {
		return argRV(fn, m, h, err)
	}
	in, err := view(pIn, ulInLen)
	if err != nil {
		return argRV(fn, m, h, err)
	}
	out, err := outBuf(pOut, pulOutLen)
	if err != nil {
		return argRV(fn, m, h, err)
	}
	n, err := m.Message(ck.ULong(h), encrypt, p, aad, in, out)
	r := setLen(fn, pulOutLen, n, err)
	if r == C.CKR_OK && !out.Query {
		writeBack(p)
	}
	return r
}

func messageBegin(fn string, encrypt bool, h C.CK_SESSION_HANDLE, pParameter C.CK_VOID_PTR, ulParameterLen C.CK_ULONG, pAAD C.CK_BYTE_PTR, ulAADLen C.CK_ULONG) C.CK_RV {
	m, err := getModule()
	if err != nil {
		return rv(fn, err)
	}
	p, _, err := msgParams(pParameter, ulParameterLen)
	if err != nil {
		return argRV(fn, m, h, err)
	}
	aad, err := view(pAAD, ulAADLen)
	if err != nil {
		return argRV(fn, m, h, err)
	}
	return rv(fn, m.MessageBegin(ck.ULong(h), encrypt, p, aad))
}

func messageNext(fn string, encrypt bool, h C.CK_SESSION_HANDLE, pParameter C.CK_VOID_PTR, ulParameterLen C.CK_ULONG, pIn C.CK_BYTE_PTR, ulInLen C.CK_ULONG, pOut C.CK_BYTE_PTR, pulOutLen C.CK_ULONG_PTR, flags C.CK_FLAGS) C.CK_RV {
	m, err := getModule()
	if err != nil {
		return rv(fn, err)
	}
	p, writeBack, err := msgParams(pParameter, ulParameterLen)
	if err != nil {
		return argRV(fn, m, h, err)
	}
	in, err := view(pIn, ulInLen)
	if err != nil {
		return argRV(fn, m, h, err)
	}
	end := ck.ULong(flags)&ck.CKF_END_OF_MESSAGE != 0
	var out token.Out
	if end || pulOutLen != nil {
		if out, err = outBuf(pOut, pulOutLen); err != nil {
			return argRV(fn, m, h, err)
		}
	}
	n, err := m.MessageNext(ck.ULong(h), encrypt, p, in, out, end)
	r := setLen(fn, pulOutLen, n, err)
	if r == C.CKR_OK && end && !out.Query {
		writeBack(p)
	}
	return r
}

//export go_MessageEncryptInit
func go_MessageEncryptInit(h C.CK_SESSION_HANDLE, pMechanism C.CK_MECHANISM_PTR, hKey C.CK_OBJECT_HANDLE) (r C.CK_RV) {
	defer recoverRV("C_MessageEncryptInit", &r)
	if r, no := refused("C_MessageEncryptInit", h, profile.FnMessageEncrypt); no {
		return r
	}
	return messageInit("C_MessageEncryptInit", h, pMechanism, hKey, true)
}

//export go_EncryptMessage
func go_EncryptMessage(h C.CK_SESSION_HANDLE, pParameter C.CK_VOID_PTR, ulParameterLen C.CK_ULONG, pAssociatedData C.CK_BYTE_PTR, ulAssociatedDataLen C.CK_ULONG, pPlaintext C.CK_BYTE_PTR, ulPlaintextLen C.CK_ULONG, pCiphertext C.CK_BYTE_PTR, pulCiphertextLen C.CK_ULONG_PTR) (r C.CK_RV) {
	defer recoverRV("C_EncryptMessage", &r)
	return message("C_EncryptMessage", true, h, pParameter, ulParameterLen, pAssociatedData, ulAssociatedDataLen, pPlaintext, ulPlaintextLen, pCiphertext, pulCiphertextLen)
}

//export go_EncryptMessageBegin
func go_EncryptMessageBegin(h C.CK_SESSION_HANDLE, pParameter C.CK_VOID_PTR, ulParameterLen C.CK_ULONG, pAssociatedData C.CK_BYTE_PTR, ulAssociatedDataLen C.CK_ULONG) (r C.CK_RV) {
	defer recoverRV("C_EncryptMessageBegin", &r)
	return messageBegin("C_EncryptMessageBegin", true, h, pParameter, ulParameterLen, pAssociatedData, ulAssociatedDataLen)
}

//export go_EncryptMessageNext
func go_EncryptMessageNext(h C.CK_SESSION_HANDLE, pParameter C.CK_VOID_PTR, ulParameterLen C.CK_ULONG, pPlaintextPart C.CK_BYTE_PTR, ulPlaintextPartLen C.CK_ULONG, pCiphertextPart C.CK_BYTE_PTR, pulCiphertextPartLen C.CK_ULONG_PTR, flags C.CK_FLAGS) (r C.CK_RV) {
	defer recoverRV("C_EncryptMessageNext", &r)
	return messageNext("C_EncryptMessageNext", true, h, pParameter, ulParameterLen, pPlaintextPart, ulPlaintextPartLen, pCiphertextPart, pulCiphertextPartLen, flags)
}

//export go_MessageEncryptFinal
func go_MessageEncryptFinal(h C.CK_SESSION_HANDLE) (r C.CK_RV) {
	defer recoverRV("C_MessageEncryptFinal", &r)
	m, err := getModule()
	if err != nil {
		return rv("C_MessageEncryptFinal", err)
	}
	return rv("C_MessageEncryptFinal", m.MessageFinal(ck.ULong(h), true))
}

//export go_MessageDecryptInit
func go_MessageDecryptInit(h C.CK_SESSION_HANDLE, pMechanism C.CK_MECHANISM_PTR, hKey C.CK_OBJECT_HANDLE) (r C.CK_RV) {
	defer recoverRV("C_MessageDecryptInit", &r)
	if r, no := refused("C_MessageDecryptInit", h, profile.FnMessageDecrypt); no {
		return r
	}
	return messageInit("C_MessageDecryptInit", h, pMechanism, hKey, false)
}

//export go_DecryptMessage
func go_DecryptMessage(h C.CK_SESSION_HANDLE, pParameter C.CK_VOID_PTR, ulParameterLen C.CK_ULONG, pAssociatedData C.CK_BYTE_PTR, ulAssociatedDataLen C.CK_ULONG, pCiphertext C.CK_BYTE_PTR, ulCiphertextLen C.CK_ULONG, pPlaintext C.CK_BYTE_PTR, pulPlaintextLen C.CK_ULONG_PTR) (r C.CK_RV) {
	defer recoverRV("C_DecryptMessage", &r)
	return message("C_DecryptMessage", false, h, pParameter, ulParameterLen, pAssociatedData, ulAssociatedDataLen, pCiphertext, ulCiphertextLen, pPlaintext, pulPlaintextLen)
}

//export go_DecryptMessageBegin
func go_DecryptMessageBegin(h C.CK_SESSION_HANDLE, pParameter C.CK_VOID_PTR, ulParameterLen C.CK_ULONG, pAssociatedData C.CK_BYTE_PTR, ulAssociatedDataLen C.CK_ULONG) (r C.CK_RV) {
	defer recoverRV("C_DecryptMessageBegin", &r)
	return messageBegin("C_DecryptMessageBegin", false, h, pParameter, ulParameterLen, pAssociatedData, ulAssociatedDataLen)
}

//export go_DecryptMessageNext
func go_DecryptMessageNext(h C.CK_SESSION_HANDLE, pParameter C.CK_VOID_PTR, ulParameterLen C.CK_ULONG, pCiphertextPart C.CK_BYTE_PTR, ulCiphertextPartLen C.CK_ULONG, pPlaintextPart C.CK_BYTE_PTR, pulPlaintextPartLen C.CK_ULONG_PTR, flags C.CK_FLAGS) (r C.CK_RV) {
	defer recoverRV("C_DecryptMessageNext", &r)
	return messageNext("C_DecryptMessageNext", false, h, pParameter, ulParameterLen, pCiphertextPart, ulCiphertextPartLen, pPlaintextPart, pulPlaintextPartLen, flags)
}

//export go_MessageDecryptFinal
func go_MessageDecryptFinal(h C.CK_SESSION_HANDLE) (r C.CK_RV) {
	defer recoverRV("C_MessageDecryptFinal", &r)
	m, err := getModule()
	if err != nil {
		return rv("C_MessageDecryptFinal", err)
	}
	return rv("C_MessageDecryptFinal", m.MessageFinal(ck.ULong(h), false))
}
