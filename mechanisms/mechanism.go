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
//	ML-DSA                                     *mldsa.PrivateKey / *mldsa.PublicKey
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
	ParamNone           ParamKind = iota // no parameter (pParameter must be NULL / ulParameterLen 0)
	ParamGCM                             // CK_GCM_PARAMS -> *GCMParams
	ParamPSS                             // CK_RSA_PKCS_PSS_PARAMS -> *PSSParams
	ParamOAEP                            // CK_RSA_PKCS_OAEP_PARAMS -> *OAEPParams
	ParamIV                              // a plain byte string, e.g. an IV -> []byte
	ParamBytes                           // CK_KEY_DERIVATION_STRING_DATA -> []byte (its pData)
	ParamCCM                             // CK_CCM_PARAMS -> *CCMParams
	ParamCTR                             // CK_AES_CTR_PARAMS -> *CTRParams
	ParamULong                           // a CK_ULONG (CK_MAC_GENERAL_PARAMS, CK_EXTRACT_PARAMS) -> ck.ULong
	ParamECDH1                           // CK_ECDH1_DERIVE_PARAMS -> *ECDH1Params
	ParamHKDF                            // CK_HKDF_PARAMS -> *HKDFParams
	ParamSP800108                        // CK_SP800_108_KDF_PARAMS -> *SP800108Params
	ParamPBKD2                           // CK_PKCS5_PBKD2_PARAMS2 (or the older CK_PKCS5_PBKD2_PARAMS) -> *PBKD2Params
	ParamKeyHandle                       // CK_OBJECT_HANDLE of a second key -> KeyHandle, replaced by the token with that key's material
	ParamCBCEncryptData                  // CK_AES_CBC_ENCRYPT_DATA_PARAMS / CK_DES_CBC_ENCRYPT_DATA_PARAMS -> *CBCEncryptDataParams
	ParamRSAAESKeyWrap                   // CK_RSA_AES_KEY_WRAP_PARAMS -> *RSAAESKeyWrapParams
	ParamEdDSA                           // CK_EDDSA_PARAMS (optional: NULL means plain Ed25519) -> *EdDSAParams or nil
	ParamCloudHSMGCM                     // CK_GCM_PARAMS with pIV NULL (CKM_CLOUDHSM_AES_GCM) -> *CloudHSMGCMParams
	ParamCloudHSMKDF                     // CloudHSM's CK_SP800_108_KDF_PARAMS (CKM_CLOUDHSM_SP800_108_COUNTER_KDF) -> *CloudHSMKDFParams
	ParamSignContext                     // CK_SIGN_ADDITIONAL_CONTEXT (optional: NULL means hedged, no context) -> *SignContextParams or nil
	ParamHashContext                     // CK_HASH_SIGN_ADDITIONAL_CONTEXT -> *HashSignContextParams
)

// CCMParams is CK_CCM_PARAMS decoded.
type CCMParams struct {
	DataLen int // ulDataLen: the length of the whole message
	Nonce   []byte
	AAD     []byte
	MACLen  int // ulMACLen, bytes
}

// CTRParams is CK_AES_CTR_PARAMS decoded.
type CTRParams struct {
	CounterBits int      // ulCounterBits: how many low-order bits of CB are the counter
	CB          [16]byte // the initial counter block
}

// ECDH1Params is CK_ECDH1_DERIVE_PARAMS decoded.
type ECDH1Params struct {
	KDF        ck.ULong // CKD_NULL, CKD_SHA256_KDF, ...
	SharedData []byte
	PublicData []byte // the other party's public point (raw or DER OCTET STRING)
}

// HKDFParams is CK_HKDF_PARAMS decoded.
type HKDFParams struct {
	Extract, Expand bool
	PRF             ck.MechanismType // CKM_SHA256, ...
	SaltType        ck.ULong         // CKF_HKDF_SALT_NULL / _DATA / _KEY
	Salt            []byte           // for CKF_HKDF_SALT_DATA, or the salt key's value (resolved by the token) for _KEY
	SaltKey         KeyHandle        // for CKF_HKDF_SALT_KEY, before the token resolves it
	Info            []byte
}

// SP800108Params is CK_SP800_108_KDF_PARAMS decoded (counter mode).
type SP800108Params struct {
	PRF  ck.MechanismType // CKM_SHA256_HMAC, CKM_AES_CMAC, ...
	Data []PRFData
	// AdditionalKeys derived alongside are not supported (CKR_MECHANISM_PARAM_INVALID).
}

// PRFData is one CK_PRF_DATA_PARAM: its type (CK_SP800_108_ITERATION_VARIABLE,
// CK_SP800_108_BYTE_ARRAY, CK_SP800_108_COUNTER, CK_SP800_108_DKM_LENGTH) and
// decoded value.
type PRFData struct {
	Type ck.ULong
	// Bytes for CK_SP800_108_BYTE_ARRAY.
	Bytes []byte
	// WidthBits / LittleEndian for counters and DKM lengths
	// (CK_SP800_108_COUNTER_FORMAT, CK_SP800_108_DKM_LENGTH_FORMAT).
	WidthBits    int
	LittleEndian bool
	DKMMethod    ck.ULong // CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS / _SUM_OF_SEGMENTS
}

// PBKD2Params is CK_PKCS5_PBKD2_PARAMS2 decoded.
type PBKD2Params struct {
	SaltSource ck.ULong // CKZ_SALT_SPECIFIED
	Salt       []byte
	Iterations int
	PRF        ck.ULong // CKP_PKCS5_PBKD2_HMAC_SHA256, ...
	PRFData    []byte
	Password   []byte
}

// KeyHandle is a key handle inside a mechanism parameter. The token replaces
// it with the key's material (KeyMaterial) after checking the caller may use it.
type KeyHandle ck.ULong

// KeyMaterial is a second key's material resolved by the token from a
// KeyHandle parameter (CKM_CONCATENATE_BASE_AND_KEY).
type KeyMaterial struct {
	Key any
}

// CBCEncryptDataParams is CK_AES_CBC_ENCRYPT_DATA_PARAMS decoded.
type CBCEncryptDataParams struct {
	IV   []byte
	Data []byte
}

// RSAAESKeyWrapParams is CK_RSA_AES_KEY_WRAP_PARAMS decoded.
type RSAAESKeyWrapParams struct {
	AESKeyBits int
	OAEP       *OAEPParams
}

// EdDSAParams is CK_EDDSA_PARAMS decoded.
type EdDSAParams struct {
	PreHash bool // Ed25519ph
	Context []byte
}

// DeriveTarget is what C_DeriveKey's template says about the key to derive.
type DeriveTarget struct {
	KeyType  ck.KeyType // CKA_KEY_TYPE (CKK_GENERIC_SECRET when absent)
	ValueLen int        // CKA_VALUE_LEN, bytes; 0 when absent (the mechanism's natural length)
}

// MessageParams is CK_GCM_MESSAGE_PARAMS or CK_CCM_MESSAGE_PARAMS decoded,
// for the 3.0 message-based AEAD functions. The IV may be generated by the
// token (IVGenerator other than CKG_NO_GENERATE); the mechanism then writes
// the IV it used into IV (same length) and the C layer copies it back. The
// tag travels separately from the ciphertext: Encrypt fills Tag, Decrypt
// checks it.
type MessageParams struct {
	IV          []byte
	IVFixedBits int
	IVGenerator ck.ULong
	Tag         []byte
	TagBits     int
	// CCM only
	DataLen int
	MACLen  int
}

// MessageAEAD is one message-based AEAD context (C_MessageEncryptInit /
// C_MessageDecryptInit): each message is sealed or opened whole.
type MessageAEAD interface {
	Encrypt(dst []byte, p *MessageParams, aad, plaintext []byte) ([]byte, error)
	Decrypt(dst []byte, p *MessageParams, aad, ciphertext []byte) ([]byte, error)
}

// GCMParams is CK_GCM_PARAMS decoded.
type GCMParams struct {
	IV      []byte
	AAD     []byte
	TagBits int
	// IVBits is ulIvBits (the 2.40 layout only; 0 otherwise): the
	// mechanism goes by IV's length, a profile may check it. (An int32
	// and a bool keep the structure, made at every C_EncryptInit, in
	// 64 bytes.)
	IVBits int32
	// IVGenerated: the token replaced IV with one it made (the cloudhsm
	// profile's CKM_AES_GCM); the C boundary writes it into the caller's
	// pIv.
	IVGenerated bool
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
	// Param is the decoded mechanism parameter, for the generation
	// mechanisms that take one (CKM_PKCS5_PBKD2).
	Param any
	// ParameterSet is CKA_PARAMETER_SET (the 3.2 post-quantum key types:
	// CKP_ML_KEM_768, CKP_ML_DSA_65, ...); 0 when absent.
	ParameterSet ck.ULong
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
	// It ends the operation: the Signer must not be used again (an
	// implementation may hand its memory to the next operation).
	Sign(dst []byte) ([]byte, error)
	// Size is the signature length in bytes.
	Size() int
}

// Releaser is an operation whose memory can serve a later one: the token
// calls Release when it drops the operation (the operation ended, failed
// or was cancelled), and never uses it again. CKM_ECDSA's signers and the
// digests' hash states go back to a pool this way, so that C_SignInit +
// C_Sign and C_DigestInit + C_Digest allocate nothing.
type Releaser interface {
	Release()
}

// SecretDigester is a Digester that can be told that what it digests is
// secret: C_DigestKey feeds it a key's value. A hash's Reset leaves up to
// a block of its last input in the state's buffer, so a digester that saw
// a secret does not go back to the pool on Release: its memory is left to
// the collector, as every hash state was before the pool, instead of
// serving the next C_DigestInit of any session.
type SecretDigester interface {
	UpdateSecret(p []byte) error
}

// Verifier is one verification operation.
type Verifier interface {
	Update(p []byte) error
	// Verify checks sig against everything given to Update; a mismatch is
	// CKR_SIGNATURE_INVALID, a wrong length CKR_SIGNATURE_LEN_RANGE. Like
	// Signer.Sign, it ends the operation.
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
	// InfoBits: CK_MECHANISM_INFO reports this row's key sizes in bits
	// although the table keeps bytes (the spec's unit for generic secret
	// key generation and SP 800-108, whose keys are sized in bytes
	// elsewhere).
	InfoBits bool
	// ParamOptional rows accept an absent parameter (NULL_PTR) and use the
	// spec's default (the AES key-wrap IVs, plain Ed25519 for EdDSA).
	ParamOptional bool
	// SinglePart mechanisms reject C_*Update (raw RSA, PSS, OAEP, raw ECDSA).
	SinglePart bool
	// VerifySinglePart rows reject C_VerifyUpdate/C_VerifyFinal only
	// (CKM_ML_DSA: multi-part signing, single-part verification).
	VerifySinglePart bool

	Encrypt func(key any, param any) (Cipher, error)
	Decrypt func(key any, param any) (Cipher, error)
	Sign    func(key any, param any) (Signer, error)
	Verify  func(key any, param any) (Verifier, error)
	Digest  func(param any) (Digester, error)
	// GenerateKey returns a secret key ([]byte).
	GenerateKey func(rand io.Reader, p KeyGenParams) (any, error)
	// GenerateKeyPair returns (public, private).
	GenerateKeyPair func(rand io.Reader, p KeyGenParams) (pub, priv any, err error)

	// Derive computes a derived key's value (C_DeriveKey) from a base key.
	Derive func(base any, param any, target DeriveTarget) ([]byte, error)
	// DeriveHidesBase: the derived value reveals nothing of the base key's
	// bytes (a KDF, a key agreement, an encryption under the base key), and
	// the mechanism's section lets the template choose the derived key's
	// CKA_SENSITIVE and CKA_EXTRACTABLE ("can both be specified to be
	// either CK_TRUE or CK_FALSE"). Unset, the derived key holds base key
	// bits (concatenation, XOR, extraction) and inherits the base key's
	// protection: a new derive row that says nothing gets the safe rule.
	DeriveHidesBase bool
	// Wrap encrypts a key's encoding (C_WrapKey): a secret key's value, or
	// a private key's PKCS#8 DER. Unwrap reverses it (C_UnwrapKey).
	Wrap   func(wrappingKey any, param any, material []byte) ([]byte, error)
	Unwrap func(unwrappingKey any, param any, wrapped []byte) ([]byte, error)
	// SignRecover / VerifyRecover: C_SignRecover / C_VerifyRecover.
	SignRecover   func(key any, param any, data []byte) ([]byte, error)
	VerifyRecover func(key any, param any, sig []byte) ([]byte, error)
	// Prepare, when set, precomputes what the row's constructors need from a
	// key (an AES key schedule and GCM tables, say). The caller keeps the
	// result, wrapped in a *Prepared, for as long as it keeps the key, and
	// passes it to the row's constructors instead of the key.
	Prepare func(key any) (any, error)
	// MessageEncrypt / MessageDecrypt: the 3.0 message-based AEAD API.
	MessageEncrypt func(key any, param any) (MessageAEAD, error)
	MessageDecrypt func(key any, param any) (MessageAEAD, error)
	// Encapsulate / Decapsulate: the 3.2 key encapsulation functions
	// (C_EncapsulateKey with a public key, C_DecapsulateKey with a private
	// key); the secret becomes the value of the new key. CiphertextSize is
	// the ciphertext length for a key, for the output-length query.
	Encapsulate    func(pub any, param any) (secret, ciphertext []byte, err error)
	Decapsulate    func(priv any, param any, ciphertext []byte) ([]byte, error)
	CiphertextSize func(key any) int
}

// Prepared is a key with the state a row's Prepare made from it. Rows with
// Prepare accept it wherever they accept the key itself.
type Prepared struct {
	Key   any
	State any
}

// unprepared returns the key inside a *Prepared, or key itself.
func unprepared(key any) any {
	if p, ok := key.(*Prepared); ok {
		return p.Key
	}
	return key
}
