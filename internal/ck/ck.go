// Package ck holds the Cryptoki (PKCS#11) names and values used by gohsm.
//
// The constants in zconst.go are generated from the headers under include/
// (go generate); they are never edited by hand. This file holds the Go types
// the generator assigns to each family of names, and the RV error type.
package ck

//go:generate go run ./gen -o zconst.go ../../include/pkcs11t.h ../../include/gohsm.h

// ULong is CK_ULONG: unsigned long, 64 bits on the LP64 platforms we build for.
type ULong = uint

// RV is a CK_RV. It is an error: inner code wraps it with context
// (fmt.Errorf("aes-gcm: tag %d bits: %w", n, ck.CKR_MECHANISM_PARAM_INVALID)),
// and the C boundary turns any error into the RV it wraps (errors.As).
type RV ULong

// Types of the other families of constants (CKA_, CKM_, CKO_, CKK_, CKU_, CKS_, CKC_).
type (
	AttributeType   ULong
	MechanismType   ULong
	ObjectClass     ULong
	KeyType         ULong
	UserType        ULong
	State           ULong
	CertificateType ULong
)

// Error returns the spec name of the return value, e.g. "CKR_PIN_INCORRECT".
func (r RV) Error() string { return r.String() }
