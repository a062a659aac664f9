package profile

import "gohsm/internal/ck"

// Sessions is what the profile decides about sessions, the slot and the
// token as the application sees them, and which Cryptoki functions exist
// (cloudhsm-facts §2.2-2.3; docs/cloudhsm.md "Sessions and token").
type Sessions struct {
	// ReadOnlyError, when not 0, answers C_OpenSession without
	// CKF_RW_SESSION.
	ReadOnlyError ck.RV
	// MaxSessions bounds the sessions one application (process) has open
	// on the slot; 0: no limit (CK_EFFECTIVELY_INFINITE in
	// C_GetTokenInfo). The session past it is SessionCountError.
	MaxSessions       int
	SessionCountError ck.RV
	// AlwaysInitialized: C_GetTokenInfo reports an initialised token with
	// a crypto user's PIN, and C_OpenSession works, even on a store no
	// officer has set up yet (a CloudHSM cluster is initialised before any
	// application sees it; its first officer is made through the CLI).
	AlwaysInitialized bool
	// Unsupported functions answer CKR_FUNCTION_NOT_SUPPORTED.
	Unsupported [NumFunctions]bool
	// Info overrides what C_GetSlotInfo / C_GetTokenInfo say ("" : the
	// standard text).
	Info Info
}

// Info is the text of CK_SLOT_INFO and CK_TOKEN_INFO.
type Info struct {
	SlotDescription string // %d: the slot ID
	Manufacturer    string
	Model           string // at most 16 bytes
}

// Function names a Cryptoki function a profile may refuse. Only the ones
// gohsm implements are here: the others are answered in C
// (pkcs11/shim.h) in every profile.
type Function int

const (
	FnInitToken Function = iota
	FnInitPIN
	FnSetPIN
	FnCopyObject
	FnGetObjectSize
	// FnSetAttributeValueKey: C_SetAttributeValue on a key (certificates
	// are changed with it on CloudHSM's certificate storage, §2.9).
	FnSetAttributeValueKey
	FnSeedRandom
	FnDigestKey
	FnSignRecover // C_SignRecoverInit and C_SignRecover
	FnVerifyRecover
	FnMessageEncrypt // the 3.0 message-based functions
	FnMessageDecrypt
	NumFunctions
)

var functionNames = [NumFunctions]string{
	"C_InitToken", "C_InitPIN", "C_SetPIN", "C_CopyObject", "C_GetObjectSize",
	"C_SetAttributeValue on a key", "C_SeedRandom", "C_DigestKey",
	"C_SignRecover", "C_VerifyRecover", "C_MessageEncrypt", "C_MessageDecrypt",
}

func (f Function) String() string {
	if f >= 0 && f < NumFunctions {
		return functionNames[f]
	}
	return "function?"
}

func standardSessions() Sessions { return Sessions{} }

// cloudhsmUnsupported: the functions SDK 5 does not list among its API
// operations (UG pkcs11-apis; cloudhsm-facts §2.3). Those gohsm answers in
// C anyway (C_GetOperationState, C_SetOperationState, the dual-function
// calls, C_WaitForSlotEvent) need no row. SDK 5 is a PKCS#11 2.40 library:
// the 3.0 message-based functions do not exist there either.
var cloudhsmUnsupported = []Function{
	FnInitToken, FnInitPIN, FnSetPIN, FnCopyObject, FnGetObjectSize, FnSetAttributeValueKey,
	FnSeedRandom, FnDigestKey, FnSignRecover, FnVerifyRecover, FnMessageEncrypt, FnMessageDecrypt,
}

// maxSessions is "PKCS#11 sessions per application" (UG limits), the
// same for both HSM types.
const maxSessions = 1024

func cloudhsmSessions(s Settings) Sessions {
	ss := Sessions{
		// UG ki-pkcs11-sdk #13: "Read-only sessions are not supported".
		ReadOnlyError: ck.CKR_FUNCTION_FAILED,
		MaxSessions:   maxSessions,
		// SDK 5's answer is not documented; the spec's code.
		SessionCountError: ck.CKR_SESSION_COUNT,
		AlwaysInitialized: true,
		Info: Info{
			SlotDescription: "AWS CloudHSM cluster (gohsm slot %d)",
			Manufacturer:    "AWS CloudHSM (gohsm)",
			Model:           s.HSMType + ".medium",
		},
	}
	for _, f := range cloudhsmUnsupported {
		ss.Unsupported[f] = true
	}
	return ss
}
