// Package attrs holds the Cryptoki attribute rules: per object class and key
// type, which attributes exist, their defaults, which are required, read-only,
// sensitive or secret, and how they may change. One validator interprets the
// tables for create, generate, unwrap, derive, copy and set.
package attrs

import (
	"gohsm/internal/ck"
)

// Template is a set of attributes in their Cryptoki encoding: CK_BBOOL is one
// byte, CK_ULONG (and every CK_ULONG-based type) 8 bytes little-endian,
// CK_DATE 8 ASCII digits, byte strings as is, CKA_ALLOWED_MECHANISMS an array
// of CK_ULONG.
type Template map[ck.AttributeType][]byte

// Op is the operation a template is validated for; the spec's rules differ
// (e.g. CKA_LOCAL may never be given, CKA_VALUE is required on create but
// forbidden on generate).
type Op int

const (
	OpCreate Op = iota + 1 // C_CreateObject
	OpGenerate             // C_GenerateKey, and the private half of C_GenerateKeyPair
	OpGeneratePublic       // the public half of C_GenerateKeyPair
	OpUnwrap               // C_UnwrapKey
	OpDerive               // C_DeriveKey
	OpCopy                 // C_CopyObject: the template changes a copy
	OpSet                  // C_SetAttributeValue
)
