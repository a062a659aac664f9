// Package mechanisms is gohsm's mechanism table: pure cryptography over the
// standard library's key types, one row per CKM_* value. It knows nothing of
// objects, sessions, users or C.
//
// Keys are passed as standard library values:
//
//	secret keys (AES, generic secret, DES3)   []byte
//	RSA                                        *rsa.PrivateKey / *rsa.PublicKey
//	EC (NIST curves)                           *ecdsa.PrivateKey / *ecdsa.PublicKey
//	EdDSA                                      ed25519.PrivateKey / ed25519.PublicKey
//
// Mechanism parameters arrive already decoded from their C structures by the
// C boundary (see ParamKind and the *Params types); mechanisms never see a C
// pointer.
package mechanisms

import (
	"io"

	"gohsm/internal/ck"
)

// ParamKind says which C parameter structure a mechanism takes, so the C
// boundary knows how to decode CK_MECHANISM.pParameter into a Go value.
type ParamKind int

const (
	ParamNone  ParamKind = iota // no parameter (pParameter must be NULL / ulParameterLen 0)
	ParamGCM                    // CK_GCM_PARAMS -> *GCMParams
	ParamPSS                    // CK_RSA_PKCS_PSS_PARAMS -> *PSSParams
	ParamOAEP                   // CK_RSA_PKCS_OAEP_PARAMS -> *OAEPParams
	ParamIV                     // a plain byte string, e.g. an IV -> []byte
	ParamBytes                  // any other plain byte string -> []byte
)

// GCMParams is CK_GCM_PARAMS decoded.
type GCMParams struct {
	IV      []byte
	AAD     []byte
	TagBits int
}

// PSSParams is CK_RSA_PKCS_PSS_PARAMS decoded.
type PSSParams struct {
	Hash    ck.MechanismType // CKM_SHA256, ...
	MGF     ck.ULong         // CKG_MGF1_SHA256, ...
	SaltLen int
}

// OAEPParams is CK_RSA_PKCS_OAEP_PARAMS decoded.
type OAEPParams struct {
	Hash   ck.MechanismType
	MGF    ck.ULong
	Source ck.ULong // CKZ_DATA_SPECIFIED or 0
	Label  []byte
}

// KeyGenParams carries what key generation needs, taken from the template by
// the token layer.
type KeyGenParams struct {
	ValueLen       int    // CKA_VALUE_LEN, bytes (secret keys)
	ModulusBits    int    // CKA_MODULUS_BITS (RSA)
	PublicExponent []byte // CKA_PUBLIC_EXPONENT, big-endian (RSA); empty means 65537
	ECParams       []byte // CKA_EC_PARAMS, DER (EC, EdDSA)
}

// Cipher is one encryption or decryption operation. Output is appended to dst
// (which callers pass with enough capacity to avoid allocation, e.g. a view of
// the caller's C buffer) and the extended slice is returned.
type Cipher interface {
	// Once runs a whole single-part operation (C_Encrypt / C_Decrypt).
	Once(dst, src []byte) ([]byte, error)
	// Update processes one part (C_EncryptUpdate / C_DecryptUpdate).
	Update(dst, src []byte) ([]byte, error)
	// Final finishes a multi-part operation.
	Final(dst []byte) ([]byte, error)
	// MaxOutput is an upper bound of the bytes the next call produces:
	// Once(n bytes) when once is true, otherwise Update(n bytes) (n = 0: Final).
	MaxOutput(n int, once bool) int
}

// Signer is one signing (or MACing) operation.
type Signer interface {
	// Update adds data. Single-part mechanisms (raw RSA, raw ECDSA) buffer it;
	// the token layer rejects C_SignUpdate for them (Mechanism.SinglePart).
	Update(p []byte) error
	// Sign appends the signature over everything given to Update to dst.
	Sign(dst []byte) ([]byte, error)
	// Size is the signature length in bytes.
	Size() int
}

// Verifier is one verification operation.
type Verifier interface {
	Update(p []byte) error
	// Verify checks sig against everything given to Update; a mismatch is
	// CKR_SIGNATURE_INVALID, a wrong length CKR_SIGNATURE_LEN_RANGE.
	Verify(sig []byte) error
}

// Digester is one digest operation.
type Digester interface {
	Update(p []byte) error
	Sum(dst []byte) []byte
	Size() int
}

// Mechanism is one row of the table. A nil constructor means the mechanism
// does not do that operation; the CKF_* flags are derived from which are set.
type Mechanism struct {
	Type ck.MechanismType
	// KeyTypes the mechanism operates on (or generates); empty for digests.
	KeyTypes []ck.KeyType
	// MinKeySize and MaxKeySize as reported in CK_MECHANISM_INFO; the unit is
	// the spec's for the key type (bits for RSA and EC, bytes for AES and
	// generic secret).
	MinKeySize, MaxKeySize uint
	Param                  ParamKind
	// SinglePart mechanisms reject C_*Update (raw RSA, PSS, OAEP, raw ECDSA).
	SinglePart bool

	Encrypt func(key any, param any) (Cipher, error)
	Decrypt func(key any, param any) (Cipher, error)
	Sign    func(key any, param any) (Signer, error)
	Verify  func(key any, param any) (Verifier, error)
	Digest  func(param any) (Digester, error)
	// GenerateKey returns a secret key ([]byte).
	GenerateKey func(rand io.Reader, p KeyGenParams) (any, error)
	// GenerateKeyPair returns (public, private).
	GenerateKeyPair func(rand io.Reader, p KeyGenParams) (pub, priv any, err error)
}
