/*
 * shim.h - the split of the Cryptoki entry points between Go and C.
 *
 * This is the ONE place that says which C_* function is implemented in Go
 * and which one the C shim answers with CKR_FUNCTION_NOT_SUPPORTED. Each row
 * is  X(Name, (parameter declarations), (argument names))  with the parameter
 * list copied from the function's prototype in PKCS #11 v3.0 (pkcs11f.h).
 * Moving a function to Go is moving its row from GOHSM_UNSUPPORTED_FUNCTIONS
 * to GOHSM_GO_FUNCTIONS and writing the matching //export go_<Name> in Go.
 *
 * In a forked child that called C_Initialize, every row (both tables) is
 * forwarded instead to the same function of a fresh copy of the library
 * (fork.c, shim.c).
 *
 * Not listed here (written out in shim.c): C_Initialize and C_Finalize (they
 * hold the C-side initialisation state and call go_Initialize(char *config) /
 * go_Finalize(void)), C_GetFunctionList, C_GetInterfaceList, C_GetInterface
 * (pure C, usable without initialisation) and C_GetFunctionStatus /
 * C_CancelFunction (legacy: CKR_FUNCTION_NOT_PARALLEL, PKCS #11 v2.40
 * section 5.16 / v3.0 section 5.20), and C_Sign (go_Sign, after the check
 * of a CKM_ECDSA operation handed to C: csign.h).
 */
#ifndef GOHSM_SHIM_H
#define GOHSM_SHIM_H

#include "pkcs11.h"

/* Forwarded to go_<Name> with the same parameter list. */
#define GOHSM_GO_FUNCTIONS(X) \
	/* General-purpose, slot and token management (v3.0 5.4, 5.5). */ \
	X(GetInfo, (CK_INFO_PTR pInfo), (pInfo)) \
	X(GetSlotList, (CK_BBOOL tokenPresent, CK_SLOT_ID_PTR pSlotList, CK_ULONG_PTR pulCount), \
		(tokenPresent, pSlotList, pulCount)) \
	X(GetSlotInfo, (CK_SLOT_ID slotID, CK_SLOT_INFO_PTR pInfo), (slotID, pInfo)) \
	X(GetTokenInfo, (CK_SLOT_ID slotID, CK_TOKEN_INFO_PTR pInfo), (slotID, pInfo)) \
	X(GetMechanismList, (CK_SLOT_ID slotID, CK_MECHANISM_TYPE_PTR pMechanismList, CK_ULONG_PTR pulCount), \
		(slotID, pMechanismList, pulCount)) \
	X(GetMechanismInfo, (CK_SLOT_ID slotID, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR pInfo), \
		(slotID, type, pInfo)) \
	X(InitToken, (CK_SLOT_ID slotID, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen, CK_UTF8CHAR_PTR pLabel), \
		(slotID, pPin, ulPinLen, pLabel)) \
	X(InitPIN, (CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen), \
		(hSession, pPin, ulPinLen)) \
	X(SetPIN, (CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pOldPin, CK_ULONG ulOldLen, \
		CK_UTF8CHAR_PTR pNewPin, CK_ULONG ulNewLen), \
		(hSession, pOldPin, ulOldLen, pNewPin, ulNewLen)) \
	/* Session management (v3.0 5.6). */ \
	X(OpenSession, (CK_SLOT_ID slotID, CK_FLAGS flags, CK_VOID_PTR pApplication, CK_NOTIFY Notify, \
		CK_SESSION_HANDLE_PTR phSession), \
		(slotID, flags, pApplication, Notify, phSession)) \
	X(CloseSession, (CK_SESSION_HANDLE hSession), (hSession)) \
	X(CloseAllSessions, (CK_SLOT_ID slotID), (slotID)) \
	X(GetSessionInfo, (CK_SESSION_HANDLE hSession, CK_SESSION_INFO_PTR pInfo), (hSession, pInfo)) \
	X(Login, (CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen), \
		(hSession, userType, pPin, ulPinLen)) \
	X(LoginUser, (CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen, \
		CK_UTF8CHAR_PTR pUsername, CK_ULONG ulUsernameLen), \
		(hSession, userType, pPin, ulPinLen, pUsername, ulUsernameLen)) \
	X(Logout, (CK_SESSION_HANDLE hSession), (hSession)) \
	/* Object management (v3.0 5.7). */ \
	X(CreateObject, (CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount, \
		CK_OBJECT_HANDLE_PTR phObject), \
		(hSession, pTemplate, ulCount, phObject)) \
	X(CopyObject, (CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate, \
		CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phNewObject), \
		(hSession, hObject, pTemplate, ulCount, phNewObject)) \
	X(DestroyObject, (CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject), (hSession, hObject)) \
	X(GetObjectSize, (CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ULONG_PTR pulSize), \
		(hSession, hObject, pulSize)) \
	X(GetAttributeValue, (CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate, \
		CK_ULONG ulCount), \
		(hSession, hObject, pTemplate, ulCount)) \
	X(SetAttributeValue, (CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate, \
		CK_ULONG ulCount), \
		(hSession, hObject, pTemplate, ulCount)) \
	X(FindObjectsInit, (CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount), \
		(hSession, pTemplate, ulCount)) \
	X(FindObjects, (CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE_PTR phObject, CK_ULONG ulMaxObjectCount, \
		CK_ULONG_PTR pulObjectCount), \
		(hSession, phObject, ulMaxObjectCount, pulObjectCount)) \
	X(FindObjectsFinal, (CK_SESSION_HANDLE hSession), (hSession)) \
	/* Encryption and decryption (v3.0 5.8, 5.10). */ \
	X(EncryptInit, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey), \
		(hSession, pMechanism, hKey)) \
	X(Encrypt, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, \
		CK_BYTE_PTR pEncryptedData, CK_ULONG_PTR pulEncryptedDataLen), \
		(hSession, pData, ulDataLen, pEncryptedData, pulEncryptedDataLen)) \
	X(EncryptUpdate, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen, \
		CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen), \
		(hSession, pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen)) \
	X(EncryptFinal, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pLastEncryptedPart, \
		CK_ULONG_PTR pulLastEncryptedPartLen), \
		(hSession, pLastEncryptedPart, pulLastEncryptedPartLen)) \
	X(DecryptInit, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey), \
		(hSession, pMechanism, hKey)) \
	X(Decrypt, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedData, CK_ULONG ulEncryptedDataLen, \
		CK_BYTE_PTR pData, CK_ULONG_PTR pulDataLen), \
		(hSession, pEncryptedData, ulEncryptedDataLen, pData, pulDataLen)) \
	X(DecryptUpdate, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart, CK_ULONG ulEncryptedPartLen, \
		CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen), \
		(hSession, pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen)) \
	X(DecryptFinal, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pLastPart, CK_ULONG_PTR pulLastPartLen), \
		(hSession, pLastPart, pulLastPartLen)) \
	/* Message digesting (v3.0 5.12). */ \
	X(DigestInit, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism), (hSession, pMechanism)) \
	X(Digest, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pDigest, \
		CK_ULONG_PTR pulDigestLen), \
		(hSession, pData, ulDataLen, pDigest, pulDigestLen)) \
	X(DigestUpdate, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen), \
		(hSession, pPart, ulPartLen)) \
	X(DigestFinal, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen), \
		(hSession, pDigest, pulDigestLen)) \
	/* Signing and verifying (v3.0 5.13, 5.15). */ \
	X(SignInit, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey), \
		(hSession, pMechanism, hKey)) \
	X(SignUpdate, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen), \
		(hSession, pPart, ulPartLen)) \
	X(SignFinal, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen), \
		(hSession, pSignature, pulSignatureLen)) \
	X(VerifyInit, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey), \
		(hSession, pMechanism, hKey)) \
	X(Verify, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, \
		CK_ULONG ulSignatureLen), \
		(hSession, pData, ulDataLen, pSignature, ulSignatureLen)) \
	X(VerifyUpdate, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen), \
		(hSession, pPart, ulPartLen)) \
	X(VerifyFinal, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen), \
		(hSession, pSignature, ulSignatureLen)) \
	/* Key management and random numbers (v3.0 5.18, 5.19). */ \
	X(GenerateKey, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_ATTRIBUTE_PTR pTemplate, \
		CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phKey), \
		(hSession, pMechanism, pTemplate, ulCount, phKey)) \
	X(GenerateKeyPair, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, \
		CK_ATTRIBUTE_PTR pPublicKeyTemplate, CK_ULONG ulPublicKeyAttributeCount, \
		CK_ATTRIBUTE_PTR pPrivateKeyTemplate, CK_ULONG ulPrivateKeyAttributeCount, \
		CK_OBJECT_HANDLE_PTR phPublicKey, CK_OBJECT_HANDLE_PTR phPrivateKey), \
		(hSession, pMechanism, pPublicKeyTemplate, ulPublicKeyAttributeCount, pPrivateKeyTemplate, \
		ulPrivateKeyAttributeCount, phPublicKey, phPrivateKey)) \
	X(SeedRandom, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSeed, CK_ULONG ulSeedLen), \
		(hSession, pSeed, ulSeedLen)) \
	X(GenerateRandom, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR RandomData, CK_ULONG ulRandomLen), \
		(hSession, RandomData, ulRandomLen)) \
	/* Key management beyond generation, digest-key, recovery, 3.0 session cancel and messages. */ \
	X(DigestKey, (CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hKey), (hSession, hKey)) \
	X(SignRecoverInit, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey), \
		(hSession, pMechanism, hKey)) \
	X(SignRecover, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, \
		CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen), \
		(hSession, pData, ulDataLen, pSignature, pulSignatureLen)) \
	X(VerifyRecoverInit, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey), \
		(hSession, pMechanism, hKey)) \
	X(VerifyRecover, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen, \
		CK_BYTE_PTR pData, CK_ULONG_PTR pulDataLen), \
		(hSession, pSignature, ulSignatureLen, pData, pulDataLen)) \
	X(WrapKey, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hWrappingKey, \
		CK_OBJECT_HANDLE hKey, CK_BYTE_PTR pWrappedKey, CK_ULONG_PTR pulWrappedKeyLen), \
		(hSession, pMechanism, hWrappingKey, hKey, pWrappedKey, pulWrappedKeyLen)) \
	X(UnwrapKey, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hUnwrappingKey, \
		CK_BYTE_PTR pWrappedKey, CK_ULONG ulWrappedKeyLen, CK_ATTRIBUTE_PTR pTemplate, \
		CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey), \
		(hSession, pMechanism, hUnwrappingKey, pWrappedKey, ulWrappedKeyLen, pTemplate, ulAttributeCount, phKey)) \
	X(DeriveKey, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hBaseKey, \
		CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey), \
		(hSession, pMechanism, hBaseKey, pTemplate, ulAttributeCount, phKey)) \
	X(SessionCancel, (CK_SESSION_HANDLE hSession, CK_FLAGS flags), (hSession, flags)) \
	X(MessageEncryptInit, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey), \
		(hSession, pMechanism, hKey)) \
	X(EncryptMessage, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, \
		CK_BYTE_PTR pAssociatedData, CK_ULONG ulAssociatedDataLen, CK_BYTE_PTR pPlaintext, \
		CK_ULONG ulPlaintextLen, CK_BYTE_PTR pCiphertext, CK_ULONG_PTR pulCiphertextLen), \
		(hSession, pParameter, ulParameterLen, pAssociatedData, ulAssociatedDataLen, pPlaintext, \
		ulPlaintextLen, pCiphertext, pulCiphertextLen)) \
	X(EncryptMessageBegin, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, \
		CK_BYTE_PTR pAssociatedData, CK_ULONG ulAssociatedDataLen), \
		(hSession, pParameter, ulParameterLen, pAssociatedData, ulAssociatedDataLen)) \
	X(EncryptMessageNext, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, \
		CK_BYTE_PTR pPlaintextPart, CK_ULONG ulPlaintextPartLen, CK_BYTE_PTR pCiphertextPart, \
		CK_ULONG_PTR pulCiphertextPartLen, CK_FLAGS flags), \
		(hSession, pParameter, ulParameterLen, pPlaintextPart, ulPlaintextPartLen, pCiphertextPart, \
		pulCiphertextPartLen, flags)) \
	X(MessageEncryptFinal, (CK_SESSION_HANDLE hSession), (hSession)) \
	X(MessageDecryptInit, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey), \
		(hSession, pMechanism, hKey)) \
	X(DecryptMessage, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, \
		CK_BYTE_PTR pAssociatedData, CK_ULONG ulAssociatedDataLen, CK_BYTE_PTR pCiphertext, \
		CK_ULONG ulCiphertextLen, CK_BYTE_PTR pPlaintext, CK_ULONG_PTR pulPlaintextLen), \
		(hSession, pParameter, ulParameterLen, pAssociatedData, ulAssociatedDataLen, pCiphertext, \
		ulCiphertextLen, pPlaintext, pulPlaintextLen)) \
	X(DecryptMessageBegin, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, \
		CK_BYTE_PTR pAssociatedData, CK_ULONG ulAssociatedDataLen), \
		(hSession, pParameter, ulParameterLen, pAssociatedData, ulAssociatedDataLen)) \
	X(DecryptMessageNext, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, \
		CK_BYTE_PTR pCiphertextPart, CK_ULONG ulCiphertextPartLen, CK_BYTE_PTR pPlaintextPart, \
		CK_ULONG_PTR pulPlaintextPartLen, CK_FLAGS flags), \
		(hSession, pParameter, ulParameterLen, pCiphertextPart, ulCiphertextPartLen, pPlaintextPart, \
		pulPlaintextPartLen, flags)) \
	X(MessageDecryptFinal, (CK_SESSION_HANDLE hSession), (hSession)) \
	/* Key encapsulation (v3.2 5.18). */ \
	X(EncapsulateKey, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hPublicKey, \
		CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount, CK_BYTE_PTR pCiphertext, \
		CK_ULONG_PTR pulCiphertextLen, CK_OBJECT_HANDLE_PTR phKey), \
		(hSession, pMechanism, hPublicKey, pTemplate, ulAttributeCount, pCiphertext, pulCiphertextLen, phKey)) \
	X(DecapsulateKey, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hPrivateKey, \
		CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount, CK_BYTE_PTR pCiphertext, \
		CK_ULONG ulCiphertextLen, CK_OBJECT_HANDLE_PTR phKey), \
		(hSession, pMechanism, hPrivateKey, pTemplate, ulAttributeCount, pCiphertext, ulCiphertextLen, phKey))

/*
 * Answered in C with CKR_FUNCTION_NOT_SUPPORTED once the library is
 * initialised (v3.0 section 5.1: any function may return
 * CKR_FUNCTION_NOT_SUPPORTED when the library does not support it).
 */
#define GOHSM_UNSUPPORTED_FUNCTIONS(X) \
	/* v2.40 */ \
	X(GetOperationState, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOperationState, \
		CK_ULONG_PTR pulOperationStateLen), \
		(hSession, pOperationState, pulOperationStateLen)) \
	X(SetOperationState, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOperationState, \
		CK_ULONG ulOperationStateLen, CK_OBJECT_HANDLE hEncryptionKey, CK_OBJECT_HANDLE hAuthenticationKey), \
		(hSession, pOperationState, ulOperationStateLen, hEncryptionKey, hAuthenticationKey)) \
	X(DigestEncryptUpdate, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen, \
		CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen), \
		(hSession, pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen)) \
	X(DecryptDigestUpdate, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart, \
		CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen), \
		(hSession, pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen)) \
	X(SignEncryptUpdate, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen, \
		CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen), \
		(hSession, pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen)) \
	X(DecryptVerifyUpdate, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart, \
		CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen), \
		(hSession, pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen)) \
	X(WaitForSlotEvent, (CK_FLAGS flags, CK_SLOT_ID_PTR pSlot, CK_VOID_PTR pReserved), \
		(flags, pSlot, pReserved)) \
	X(MessageSignInit, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey), \
		(hSession, pMechanism, hKey)) \
	X(SignMessage, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, \
		CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen), \
		(hSession, pParameter, ulParameterLen, pData, ulDataLen, pSignature, pulSignatureLen)) \
	X(SignMessageBegin, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen), \
		(hSession, pParameter, ulParameterLen)) \
	X(SignMessageNext, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, \
		CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen), \
		(hSession, pParameter, ulParameterLen, pData, ulDataLen, pSignature, pulSignatureLen)) \
	X(MessageSignFinal, (CK_SESSION_HANDLE hSession), (hSession)) \
	X(MessageVerifyInit, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey), \
		(hSession, pMechanism, hKey)) \
	X(VerifyMessage, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, \
		CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen), \
		(hSession, pParameter, ulParameterLen, pData, ulDataLen, pSignature, ulSignatureLen)) \
	X(VerifyMessageBegin, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen), \
		(hSession, pParameter, ulParameterLen)) \
	X(VerifyMessageNext, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, \
		CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen), \
		(hSession, pParameter, ulParameterLen, pData, ulDataLen, pSignature, ulSignatureLen)) \
	X(MessageVerifyFinal, (CK_SESSION_HANDLE hSession), (hSession)) \
	/* v3.2 (the KEM functions are in Go, above) */ \
	X(VerifySignatureInit, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey, \
		CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen), \
		(hSession, pMechanism, hKey, pSignature, ulSignatureLen)) \
	X(VerifySignature, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen), \
		(hSession, pData, ulDataLen)) \
	X(VerifySignatureUpdate, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen), \
		(hSession, pPart, ulPartLen)) \
	X(VerifySignatureFinal, (CK_SESSION_HANDLE hSession), (hSession)) \
	X(GetSessionValidationFlags, (CK_SESSION_HANDLE hSession, CK_SESSION_VALIDATION_FLAGS_TYPE type, \
		CK_FLAGS_PTR pFlags), \
		(hSession, type, pFlags)) \
	X(AsyncComplete, (CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pFunctionName, CK_ASYNC_DATA_PTR pResult), \
		(hSession, pFunctionName, pResult)) \
	X(AsyncGetID, (CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pFunctionName, CK_ULONG_PTR pulID), \
		(hSession, pFunctionName, pulID)) \
	X(AsyncJoin, (CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pFunctionName, CK_ULONG ulID, CK_BYTE_PTR pData, \
		CK_ULONG ulData), \
		(hSession, pFunctionName, ulID, pData, ulData))

/*
 * fork.c: in a forked child, loads a fresh copy of this library with
 * dlmopen(LM_ID_NEWLM) and returns its 3.2 function list, or NULL after
 * one line on stderr. copy counts the copies loaded along this process's
 * ancestry (for that line). glibc only; NULL elsewhere.
 */
CK_FUNCTION_LIST_3_2 *gohsm_fork_load_copy(unsigned copy);

/*
 * signals.c: a host thread's first call into Go lets Go set the thread's
 * mask; the shim makes that first call (an empty one) through this, which
 * blocks again, after it, the asynchronous signals the host had blocked.
 */
void gohsm_signals_around_first_entry(void (*enter)(void));

#endif /* GOHSM_SHIM_H */
