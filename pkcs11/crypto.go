package pkcs11

/*
#include "pkcs11.h"
*/
import "C"

import (
	"errors"
	"fmt"

	"gohsm/internal/ck"
	"gohsm/token"
	"gohsm/token/profile"
)

// Chapters 5.8-5.14: encryption, decryption, digests, signatures, key
// generation, random numbers. Inputs are viewed, outputs written straight
// into the caller's buffer.

// The helpers take method expressions ((*token.Module).SignInit, ...):
// a method value bound to the module would be allocated on every call.
type initFn func(m *token.Module, h ck.ULong, mech token.Mechanism, key ck.ULong) error

func initOp(fn string, h C.CK_SESSION_HANDLE, pMechanism C.CK_MECHANISM_PTR, hKey C.CK_OBJECT_HANDLE, f initFn) C.CK_RV {
	m, err := getModule()
	if err != nil {
		return rv(fn, err)
	}
	mech, err := mechanismIn(m, h, pMechanism)
	if err != nil {
		return argRV(fn, m, h, err)
	}
	err = f(m, ck.ULong(h), mech, ck.ULong(hKey))
	if err == nil {
		giveGCMIV(pMechanism, mech)
	}
	return rv(fn, err)
}

// mechanismIn is mechanism for a call on session h: a mechanism the
// session's slot does not offer (its profile's list) is
// CKR_MECHANISM_INVALID even when its parameter does not decode, as from
// a token that lacks the mechanism. Only a failed decoding pays for the
// look-up.
func mechanismIn(m *token.Module, h C.CK_SESSION_HANDLE, p C.CK_MECHANISM_PTR) (token.Mechanism, error) {
	mech, err := mechanism(p)
	if err != nil && p != nil && errors.Is(err, ck.CKR_MECHANISM_PARAM_INVALID) && !m.Offers(ck.ULong(h), mech.Type) {
		return mech, fmt.Errorf("pkcs11: %v: %w", mech.Type, ck.CKR_MECHANISM_INVALID)
	}
	return mech, err
}

type oneShot func(m *token.Module, h ck.ULong, in []byte, out token.Out) (int, error)

func oneShotOp(fn string, kind token.OpKind, h C.CK_SESSION_HANDLE, pIn C.CK_BYTE_PTR, inLen C.CK_ULONG, pOut C.CK_BYTE_PTR, pOutLen C.CK_ULONG_PTR, f oneShot) C.CK_RV {
	m, err := getModule()
	if err != nil {
		return rv(fn, err)
	}
	in, err := view(pIn, inLen)
	if err != nil {
		m.Abort(ck.ULong(h), kind)
		return argRV(fn, m, h, err)
	}
	out, err := outBuf(pOut, pOutLen)
	if err != nil {
		m.Abort(ck.ULong(h), kind)
		return argRV(fn, m, h, err)
	}
	n, err := f(m, ck.ULong(h), in, out)
	return setLen(fn, pOutLen, n, err)
}

type finalFn func(m *token.Module, h ck.ULong, out token.Out) (int, error)

func finalOp(fn string, kind token.OpKind, h C.CK_SESSION_HANDLE, pOut C.CK_BYTE_PTR, pOutLen C.CK_ULONG_PTR, f finalFn) C.CK_RV {
	m, err := getModule()
	if err != nil {
		return rv(fn, err)
	}
	out, err := outBuf(pOut, pOutLen)
	if err != nil {
		m.Abort(ck.ULong(h), kind)
		return argRV(fn, m, h, err)
	}
	n, err := f(m, ck.ULong(h), out)
	return setLen(fn, pOutLen, n, err)
}

type updateFn func(m *token.Module, h ck.ULong, in []byte) error

func updateOp(fn string, kind token.OpKind, h C.CK_SESSION_HANDLE, pIn C.CK_BYTE_PTR, inLen C.CK_ULONG, f updateFn) C.CK_RV {
	m, err := getModule()
	if err != nil {
		return rv(fn, err)
	}
	in, err := view(pIn, inLen)
	if err != nil {
		m.Abort(ck.ULong(h), kind)
		return argRV(fn, m, h, err)
	}
	return rv(fn, f(m, ck.ULong(h), in))
}

//export go_EncryptInit
func go_EncryptInit(h C.CK_SESSION_HANDLE, pMechanism C.CK_MECHANISM_PTR, hKey C.CK_OBJECT_HANDLE) (r C.CK_RV) {
	defer recoverRV("C_EncryptInit", &r)
	return initOp("C_EncryptInit", h, pMechanism, hKey, (*token.Module).EncryptInit)
}

//export go_Encrypt
func go_Encrypt(h C.CK_SESSION_HANDLE, pData C.CK_BYTE_PTR, ulDataLen C.CK_ULONG, pEncryptedData C.CK_BYTE_PTR, pulEncryptedDataLen C.CK_ULONG_PTR) (r C.CK_RV) {
	defer recoverRV("C_Encrypt", &r)
	return oneShotOp("C_Encrypt", token.OpEncrypt, h, pData, ulDataLen, pEncryptedData, pulEncryptedDataLen, (*token.Module).Encrypt)
}

//export go_EncryptUpdate
func go_EncryptUpdate(h C.CK_SESSION_HANDLE, pPart C.CK_BYTE_PTR, ulPartLen C.CK_ULONG, pEncryptedPart C.CK_BYTE_PTR, pulEncryptedPartLen C.CK_ULONG_PTR) (r C.CK_RV) {
	defer recoverRV("C_EncryptUpdate", &r)
	return oneShotOp("C_EncryptUpdate", token.OpEncrypt, h, pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen, (*token.Module).EncryptUpdate)
}

//export go_EncryptFinal
func go_EncryptFinal(h C.CK_SESSION_HANDLE, pLastEncryptedPart C.CK_BYTE_PTR, pulLastEncryptedPartLen C.CK_ULONG_PTR) (r C.CK_RV) {
	defer recoverRV("C_EncryptFinal", &r)
	return finalOp("C_EncryptFinal", token.OpEncrypt, h, pLastEncryptedPart, pulLastEncryptedPartLen, (*token.Module).EncryptFinal)
}

//export go_DecryptInit
func go_DecryptInit(h C.CK_SESSION_HANDLE, pMechanism C.CK_MECHANISM_PTR, hKey C.CK_OBJECT_HANDLE) (r C.CK_RV) {
	defer recoverRV("C_DecryptInit", &r)
	return initOp("C_DecryptInit", h, pMechanism, hKey, (*token.Module).DecryptInit)
}

//export go_Decrypt
func go_Decrypt(h C.CK_SESSION_HANDLE, pEncryptedData C.CK_BYTE_PTR, ulEncryptedDataLen C.CK_ULONG, pData C.CK_BYTE_PTR, pulDataLen C.CK_ULONG_PTR) (r C.CK_RV) {
	defer recoverRV("C_Decrypt", &r)
	return oneShotOp("C_Decrypt", token.OpDecrypt, h, pEncryptedData, ulEncryptedDataLen, pData, pulDataLen, (*token.Module).Decrypt)
}

//export go_DecryptUpdate
func go_DecryptUpdate(h C.CK_SESSION_HANDLE, pEncryptedPart C.CK_BYTE_PTR, ulEncryptedPartLen C.CK_ULONG, pPart C.CK_BYTE_PTR, pulPartLen C.CK_ULONG_PTR) (r C.CK_RV) {
	defer recoverRV("C_DecryptUpdate", &r)
	return oneShotOp("C_DecryptUpdate", token.OpDecrypt, h, pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen, (*token.Module).DecryptUpdate)
}

//export go_DecryptFinal
func go_DecryptFinal(h C.CK_SESSION_HANDLE, pLastPart C.CK_BYTE_PTR, pulLastPartLen C.CK_ULONG_PTR) (r C.CK_RV) {
	defer recoverRV("C_DecryptFinal", &r)
	return finalOp("C_DecryptFinal", token.OpDecrypt, h, pLastPart, pulLastPartLen, (*token.Module).DecryptFinal)
}

//export go_DigestInit
func go_DigestInit(h C.CK_SESSION_HANDLE, pMechanism C.CK_MECHANISM_PTR) (r C.CK_RV) {
	defer recoverRV("C_DigestInit", &r)
	return initOp("C_DigestInit", h, pMechanism, 0, func(m *token.Module, h ck.ULong, mech token.Mechanism, _ ck.ULong) error {
		return m.DigestInit(h, mech)
	})
}

//export go_Digest
func go_Digest(h C.CK_SESSION_HANDLE, pData C.CK_BYTE_PTR, ulDataLen C.CK_ULONG, pDigest C.CK_BYTE_PTR, pulDigestLen C.CK_ULONG_PTR) (r C.CK_RV) {
	defer recoverRV("C_Digest", &r)
	return oneShotOp("C_Digest", token.OpDigest, h, pData, ulDataLen, pDigest, pulDigestLen, (*token.Module).Digest)
}

//export go_DigestUpdate
func go_DigestUpdate(h C.CK_SESSION_HANDLE, pPart C.CK_BYTE_PTR, ulPartLen C.CK_ULONG) (r C.CK_RV) {
	defer recoverRV("C_DigestUpdate", &r)
	return updateOp("C_DigestUpdate", token.OpDigest, h, pPart, ulPartLen, (*token.Module).DigestUpdate)
}

//export go_DigestFinal
func go_DigestFinal(h C.CK_SESSION_HANDLE, pDigest C.CK_BYTE_PTR, pulDigestLen C.CK_ULONG_PTR) (r C.CK_RV) {
	defer recoverRV("C_DigestFinal", &r)
	return finalOp("C_DigestFinal", token.OpDigest, h, pDigest, pulDigestLen, (*token.Module).DigestFinal)
}

//export go_SignInit
func go_SignInit(h C.CK_SESSION_HANDLE, pMechanism C.CK_MECHANISM_PTR, hKey C.CK_OBJECT_HANDLE) (r C.CK_RV) {
	defer recoverRV("C_SignInit", &r)
	return initOp("C_SignInit", h, pMechanism, hKey, (*token.Module).SignInit)
}

//export go_Sign
func go_Sign(h C.CK_SESSION_HANDLE, pData C.CK_BYTE_PTR, ulDataLen C.CK_ULONG, pSignature C.CK_BYTE_PTR, pulSignatureLen C.CK_ULONG_PTR) (r C.CK_RV) {
	defer recoverRV("C_Sign", &r)
	return oneShotOp("C_Sign", token.OpSign, h, pData, ulDataLen, pSignature, pulSignatureLen, (*token.Module).Sign)
}

//export go_SignUpdate
func go_SignUpdate(h C.CK_SESSION_HANDLE, pPart C.CK_BYTE_PTR, ulPartLen C.CK_ULONG) (r C.CK_RV) {
	defer recoverRV("C_SignUpdate", &r)
	return updateOp("C_SignUpdate", token.OpSign, h, pPart, ulPartLen, (*token.Module).SignUpdate)
}

//export go_SignFinal
func go_SignFinal(h C.CK_SESSION_HANDLE, pSignature C.CK_BYTE_PTR, pulSignatureLen C.CK_ULONG_PTR) (r C.CK_RV) {
	defer recoverRV("C_SignFinal", &r)
	return finalOp("C_SignFinal", token.OpSign, h, pSignature, pulSignatureLen, (*token.Module).SignFinal)
}

//export go_VerifyInit
func go_VerifyInit(h C.CK_SESSION_HANDLE, pMechanism C.CK_MECHANISM_PTR, hKey C.CK_OBJECT_HANDLE) (r C.CK_RV) {
	defer recoverRV("C_VerifyInit", &r)
	return initOp("C_VerifyInit", h, pMechanism, hKey, (*token.Module).VerifyInit)
}

//export go_Verify
func go_Verify(h C.CK_SESSION_HANDLE, pData C.CK_BYTE_PTR, ulDataLen C.CK_ULONG, pSignature C.CK_BYTE_PTR, ulSignatureLen C.CK_ULONG) (r C.CK_RV) {
	defer recoverRV("C_Verify", &r)
	m, err := getModule()
	if err != nil {
		return rv("C_Verify", err)
	}
	data, err := view(pData, ulDataLen)
	if err == nil {
		_, err = view(pSignature, ulSignatureLen)
	}
	if err != nil {
		m.Abort(ck.ULong(h), token.OpVerify)
		return argRV("C_Verify", m, h, err)
	}
	sig, _ := view(pSignature, ulSignatureLen)
	return rv("C_Verify", m.Verify(ck.ULong(h), data, sig))
}

//export go_VerifyUpdate
func go_VerifyUpdate(h C.CK_SESSION_HANDLE, pPart C.CK_BYTE_PTR, ulPartLen C.CK_ULONG) (r C.CK_RV) {
	defer recoverRV("C_VerifyUpdate", &r)
	return updateOp("C_VerifyUpdate", token.OpVerify, h, pPart, ulPartLen, (*token.Module).VerifyUpdate)
}

//export go_VerifyFinal
func go_VerifyFinal(h C.CK_SESSION_HANDLE, pSignature C.CK_BYTE_PTR, ulSignatureLen C.CK_ULONG) (r C.CK_RV) {
	defer recoverRV("C_VerifyFinal", &r)
	return updateOp("C_VerifyFinal", token.OpVerify, h, pSignature, ulSignatureLen, (*token.Module).VerifyFinal)
}

//export go_GenerateKey
func go_GenerateKey(h C.CK_SESSION_HANDLE, pMechanism C.CK_MECHANISM_PTR, pTemplate C.CK_ATTRIBUTE_PTR, ulCount C.CK_ULONG, phKey C.CK_OBJECT_HANDLE_PTR) (r C.CK_RV) {
	defer recoverRV("C_GenerateKey", &r)
	m, err := getModule()
	if err != nil {
		return rv("C_GenerateKey", err)
	}
	if phKey == nil {
		return argRV("C_GenerateKey", m, h, errArgs)
	}
	mech, err := mechanismIn(m, h, pMechanism)
	if err != nil {
		return argRV("C_GenerateKey", m, h, err)
	}
	t, err := template(pTemplate, ulCount)
	if err != nil {
		return argRV("C_GenerateKey", m, h, err)
	}
	k, err := m.GenerateKey(ck.ULong(h), mech, t)
	if err != nil {
		return argRV("C_GenerateKey", m, h, err)
	}
	*phKey = C.CK_OBJECT_HANDLE(k)
	return C.CKR_OK
}

//export go_GenerateKeyPair
func go_GenerateKeyPair(h C.CK_SESSION_HANDLE, pMechanism C.CK_MECHANISM_PTR, pPublicKeyTemplate C.CK_ATTRIBUTE_PTR, ulPublicKeyAttributeCount C.CK_ULONG, pPrivateKeyTemplate C.CK_ATTRIBUTE_PTR, ulPrivateKeyAttributeCount C.CK_ULONG, phPublicKey C.CK_OBJECT_HANDLE_PTR, phPrivateKey C.CK_OBJECT_HANDLE_PTR) (r C.CK_RV) {
	defer recoverRV("C_GenerateKeyPair", &r)
	m, err := getModule()
	if err != nil {
		return rv("C_GenerateKeyPair", err)
	}
	if phPublicKey == nil || phPrivateKey == nil {
		return argRV("C_GenerateKeyPair", m, h, errArgs)
	}
	mech, err := mechanismIn(m, h, pMechanism)
	if err != nil {
		return argRV("C_GenerateKeyPair", m, h, err)
	}
	pub, err := template(pPublicKeyTemplate, ulPublicKeyAttributeCount)
	if err != nil {
		return argRV("C_GenerateKeyPair", m, h, err)
	}
	priv, err := template(pPrivateKeyTemplate, ulPrivateKeyAttributeCount)
	if err != nil {
		return argRV("C_GenerateKeyPair", m, h, err)
	}
	ph, kh, err := m.GenerateKeyPair(ck.ULong(h), mech, pub, priv)
	if err != nil {
		return argRV("C_GenerateKeyPair", m, h, err)
	}
	*phPublicKey, *phPrivateKey = C.CK_OBJECT_HANDLE(ph), C.CK_OBJECT_HANDLE(kh)
	return C.CKR_OK
}

//export go_SeedRandom
func go_SeedRandom(h C.CK_SESSION_HANDLE, pSeed C.CK_BYTE_PTR, ulSeedLen C.CK_ULONG) (r C.CK_RV) {
	defer recoverRV("C_SeedRandom", &r)
	if r, no := refused("C_SeedRandom", h, profile.FnSeedRandom); no {
		return r
	}
	m, err := getModule()
	if err != nil {
		return rv("C_SeedRandom", err)
	}
	if _, err := view(pSeed, ulSeedLen); err != nil {
		return argRV("C_SeedRandom", m, h, err)
	}
	return rv("C_SeedRandom", m.SeedRandom(ck.ULong(h)))
}

//export go_GenerateRandom
func go_GenerateRandom(h C.CK_SESSION_HANDLE, pRandomData C.CK_BYTE_PTR, ulRandomLen C.CK_ULONG) (r C.CK_RV) {
	defer recoverRV("C_GenerateRandom", &r)
	m, err := getModule()
	if err != nil {
		return rv("C_GenerateRandom", err)
	}
	out, err := view(pRandomData, ulRandomLen)
	if err != nil {
		return argRV("C_GenerateRandom", m, h, err)
	}
	return rv("C_GenerateRandom", m.GenerateRandom(ck.ULong(h), out))
}
