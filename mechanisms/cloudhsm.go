package mechanisms

import (
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"io"

	"gohsm/internal/ck"
)

// AWS CloudHSM's vendor-defined mechanisms (Client SDK 5), as an SDK 5
// application calls them: CKM_CLOUDHSM_AES_GCM, the three
// CKM_CLOUDHSM_AES_KEY_WRAP_* variants and CKM_CLOUDHSM_SP800_108_COUNTER_KDF
// with CloudHSM's own parameter layout. Their values and structures come
// from CloudHSM's cloudhsm_pkcs11_vendor_defs.h (as published in
// aws-samples/aws-cloudhsm-pkcs11-examples, include/pkcs11/v2.40) and the
// AWS CloudHSM User Guide pages "Supported mechanisms for the PKCS #11
// library" (pkcs11-mechanisms) and "AES key wrapping" (manage-aes-key-wrapping).
// The rows exist in every profile: an SDK 5 application finds them wherever
// it runs; which profile lists which rows is token/profile's decision.
//
// Not here: CloudHSM's ECDH KDF types CKD_CLOUDHSM_X963_SHA*_KDF. The
// documentation names them but no published header or sample gives their
// values, and a guessed value would silently mean something else
// (docs/cloudhsm.md).

// ---------------------------------------------------------------------------
// CKM_CLOUDHSM_AES_GCM
// ---------------------------------------------------------------------------

// CloudHSMGCMParams is CK_GCM_PARAMS as CKM_CLOUDHSM_AES_GCM takes it: the
// HSM makes the IV, so pIV must be NULL ("When using this mechanism, the
// pIV variable in the CK_GCM_PARAMS struct must be set to NULL",
// pkcs11-mechanisms note 3).
type CloudHSMGCMParams struct {
	IVGiven bool // pIV was not NULL: refused
	IVLen   int  // ulIvLen: 0, or 12 (the length of the IV the HSM makes)
	AAD     []byte
	TagBits int
}

// cloudhsmGCMIVLen is the IV CloudHSM generates: 12 bytes, prepended to
// the ciphertext.
const cloudhsmGCMIVLen = 12

// cloudhsmRand is where the IVs come from (a test may replace it).
var cloudhsmRand io.Reader = rand.Reader

// cloudhsmGCM is one CKM_CLOUDHSM_AES_GCM operation: encryption makes a
// fresh random 12-byte IV and outputs IV || ciphertext || tag; decryption
// takes the same. Multi-part input is buffered and processed at Final,
// like CKM_AES_GCM's (the profile decides whether C_*Update is allowed).
type cloudhsmGCM struct {
	g  gcm
	iv [cloudhsmGCMIVLen]byte
}

func cloudhsmGCMEncrypt(key, param any) (Cipher, error) { return newCloudHSMGCM(key, param, true) }
func cloudhsmGCMDecrypt(key, param any) (Cipher, error) { return newCloudHSMGCM(key, param, false) }

func newCloudHSMGCM(key, param any, encrypt bool) (*cloudhsmGCM, error) {
	const what = "cloudhsm-aes-gcm"
	p, ok := param.(*CloudHSMGCMParams)
	if !ok || p == nil {
		return nil, fmt.Errorf("mechanisms: %s: parameter %T: %w", what, param, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	if p.IVGiven {
		// The HSM makes the IV; a caller's IV (even a zero buffer, which
		// CKM_AES_GCM takes as the place to write the IV back) has no
		// place in this mechanism.
		return nil, fmt.Errorf("mechanisms: %s: pIV must be NULL (the token makes the IV): %w", what, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	if p.IVLen != 0 && p.IVLen != cloudhsmGCMIVLen {
		return nil, fmt.Errorf("mechanisms: %s: ulIvLen %d (0 or %d): %w", what, p.IVLen, cloudhsmGCMIVLen, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	if !gcmTagBits(p.TagBits) {
		return nil, fmt.Errorf("mechanisms: %s: tag %d bits: %w", what, p.TagBits, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	var aead cipher.AEAD
	if pk, ok := key.(*Prepared); ok {
		if ps, ok := pk.State.(*preparedBlock); ok && ps.gcm12 != nil {
			aead = ps.gcm12
		}
	}
	if aead == nil {
		b, err := aesAlg.block(key, what)
		if err != nil {
			return nil, err
		}
		if aead, err = cipher.NewGCM(b); err != nil {
			return nil, fmt.Errorf("mechanisms: %s: %w (%w)", what, ck.CKR_GENERAL_ERROR, err)
		}
	}
	c := &cloudhsmGCM{g: gcm{aead: aead, aad: bytes.Clone(p.AAD), tagLen: p.TagBits / 8, encrypt: encrypt}}
	c.g.iv = c.iv[:]
	return c, nil
}

func (c *cloudhsmGCM) Once(dst, src []byte) ([]byte, error) {
	if c.g.encrypt {
		// The IV is written before the ciphertext: input sharing the
		// output's memory must be copied first.
		src = unaliasAny(dst, src, cloudhsmGCMIVLen+len(src)+gcmFullTag)
		if _, err := io.ReadFull(cloudhsmRand, c.iv[:]); err != nil {
			return dst, fmt.Errorf("mechanisms: cloudhsm-aes-gcm: iv: %w (%w)", ck.CKR_FUNCTION_FAILED, err)
		}
		dst = append(dst, c.iv[:]...)
		return c.g.seal(dst, src), nil
	}
	if len(src) < cloudhsmGCMIVLen+c.g.tagLen {
		return dst, fmt.Errorf("mechanisms: cloudhsm-aes-gcm: %d bytes, shorter than iv and tag: %w", len(src), ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
	}
	copy(c.iv[:], src)
	return c.g.open(dst, src[cloudhsmGCMIVLen:])
}

func (c *cloudhsmGCM) Update(dst, src []byte) ([]byte, error) {
	var err error
	c.g.buf, err = buffer(c.g.buf, src, "cloudhsm-aes-gcm")
	return dst, err
}

func (c *cloudhsmGCM) Final(dst []byte) ([]byte, error) {
	out, err := c.Once(dst, c.g.buf)
	clear(c.g.buf)
	c.g.buf = c.g.buf[:0]
	return out, err
}

// MaxOutput is exact: IV, data and tag have known lengths.
func (c *cloudhsmGCM) MaxOutput(n int, once bool) int {
	switch {
	case !once && n > 0:
		return 0
	case !once:
		n = len(c.g.buf)
	}
	if c.g.encrypt {
		return cloudhsmGCMIVLen + n + c.g.tagLen
	}
	return max(n-cloudhsmGCMIVLen-c.g.tagLen, 0)
}

// ---------------------------------------------------------------------------
// CKM_CLOUDHSM_AES_KEY_WRAP_{NO,PKCS5,ZERO}_PAD
// ---------------------------------------------------------------------------

// cloudhsmKW is one of CloudHSM's AES key wrap variants ("AES key
// wrapping", manage-aes-key-wrapping):
//
//	NO_PAD     RFC 3394; block-aligned keys only; IV NULL or exactly A6A6A6A6A6A6A6A6
//	PKCS5_PAD  PKCS #5 padding to whole 8-byte blocks (1 to 8 bytes added),
//	           then RFC 3394; IV NULL or exactly A6A6A6A6A6A6A6A6; keys of
//	           fewer than 8 bytes pad to one semiblock, which RFC 3394 does
//	           not wrap (CKR_KEY_SIZE_RANGE; CloudHSM does not say)
//	ZERO_PAD   RFC 5649 (KWP); IV NULL only ("Explicit IV: Not allowed")
//
// CloudHSM lists them for C_WrapKey / C_UnwrapKey only.
type cloudhsmKW int

const (
	kwNoPad cloudhsmKW = iota
	kwPKCS5Pad
	kwZeroPad
)

func (v cloudhsmKW) String() string {
	return [...]string{"cloudhsm-aes-kw-no-pad", "cloudhsm-aes-kw-pkcs5-pad", "cloudhsm-aes-kw-zero-pad"}[v]
}

// keyWrap checks the IV rule and returns the RFC 3394 / 5649 core with the
// default IV.
func (v cloudhsmKW) keyWrap(key, param any, encrypt bool) (*keyWrap, error) {
	iv, isBytes := param.([]byte)
	switch {
	case param == nil || isBytes && len(iv) == 0:
	case v != kwZeroPad && isBytes && bytes.Equal(iv, kwDefaultIV[:]):
	default:
		return nil, fmt.Errorf("mechanisms: %s: explicit iv %T of %d bytes (only %s): %w",
			v, param, len(iv), map[bool]string{true: "NULL", false: "NULL or A6A6A6A6A6A6A6A6"}[v == kwZeroPad], ck.CKR_MECHANISM_PARAM_INVALID)
	}
	return newKeyWrap(key, nil, v == kwZeroPad, encrypt)
}

func (v cloudhsmKW) wrap(key, param any, material []byte) ([]byte, error) {
	k, err := v.keyWrap(key, param, true)
	if err != nil {
		return nil, err
	}
	in := material
	if v == kwPKCS5Pad {
		n := 8 - len(material)%8
		in = make([]byte, len(material)+n)
		copy(in, material)
		for i := len(material); i < len(in); i++ {
			in[i] = byte(n)
		}
		defer clear(in)
	}
	out, ok := k.seal(nil, in)
	if !ok {
		// NO_PAD: "Block-aligned keys such as AES and 3DES" only.
		return nil, fmt.Errorf("mechanisms: %s: key of %d bytes: %w", v, len(material), ck.CKR_KEY_SIZE_RANGE)
	}
	return out, nil
}

func (v cloudhsmKW) unwrap(key, param any, wrapped []byte) ([]byte, error) {
	k, err := v.keyWrap(key, param, false)
	if err != nil {
		return nil, err
	}
	out, lenOK, ok := k.open(nil, wrapped)
	switch {
	case !lenOK:
		return nil, fmt.Errorf("mechanisms: %s: %d bytes: %w", v, len(wrapped), ck.CKR_WRAPPED_KEY_LEN_RANGE)
	case !ok:
		return nil, fmt.Errorf("mechanisms: %s: integrity check: %w", v, ck.CKR_WRAPPED_KEY_INVALID)
	}
	if v != kwPKCS5Pad {
		return out, nil
	}
	// The integrity check passed, so the padding is what the wrapper
	// wrote; a bad one means a wrapping made by something else.
	n := int(out[len(out)-1])
	good := subtle.ConstantTimeLessOrEq(1, n) & subtle.ConstantTimeLessOrEq(n, 8)
	for i := 1; i <= 8; i++ {
		inPad := subtle.ConstantTimeLessOrEq(i, n)
		good &= subtle.ConstantTimeSelect(inPad, subtle.ConstantTimeByteEq(out[len(out)-i], byte(n)), 1)
	}
	if good != 1 {
		clear(out)
		return nil, fmt.Errorf("mechanisms: %s: padding: %w", v, ck.CKR_WRAPPED_KEY_INVALID)
	}
	clear(out[len(out)-n:])
	return out[:len(out)-n], nil
}

// ---------------------------------------------------------------------------
// CKM_CLOUDHSM_SP800_108_COUNTER_KDF
// ---------------------------------------------------------------------------

// CloudHSMKDFParams is CloudHSM's CK_SP800_108_KDF_PARAMS {prftype,
// ulNumberOfDataParams, pDataParams} decoded. Its data parameters are
// PRFData with CloudHSM's types (CK_CLOUDHSM_PRF_*): the counter and
// DKM formats carry only their widths (and the DKM method), no endianness
// (big-endian, as SP 800-108 writes integers).
type CloudHSMKDFParams struct {
	PRF  ck.MechanismType
	Data []PRFData
}

// cloudhsmKDFPRFs are the PRFs CloudHSM takes: HMAC with SHA-1..SHA-512
// (vendor header note) and AES-CMAC (SAMPLES src/derivation/aes_cmac_kdf.c).
var cloudhsmKDFPRFs = map[ck.MechanismType]bool{
	ck.CKM_SHA_1_HMAC: true, ck.CKM_SHA224_HMAC: true, ck.CKM_SHA256_HMAC: true,
	ck.CKM_SHA384_HMAC: true, ck.CKM_SHA512_HMAC: true, ck.CKM_AES_CMAC: true,
}

// cloudhsmKDF is CKM_CLOUDHSM_SP800_108_COUNTER_KDF: NIST SP 800-108 §5.1
// counter mode, computed by the standard mechanism's core (kbkdfCounter)
// once CloudHSM's parameters are translated into the standard's. Two
// layouts, told apart by the data parameter types:
//
//   - label and context (SP800_108_PRF_LABEL / _PRF_CONTEXT, the layout of
//     the vendor header's note and of the hmac_kdf.c sample): the PRF input
//     is [i]_r || Label || 0x00 || Context || [L]_dkm, whatever the order of
//     the data parameters — the sample lists counter, DKM, label, context
//     and documents this input ("Counter || Label || 0x00 || Context ||
//     Length of derived keying material"); the DKM format is required;
//   - byte arrays (SP800_108_BYTE_ARRAY): the counter, the byte arrays and
//     the DKM length are concatenated in the order given (the aes_cmac_kdf.c
//     sample: "the ordering of the inputs determine the derived key
//     material").
//
// Counters are 16 or 32 bits, DKM lengths 8, 16, 32 or 64 bits, the DKM
// method SUM_OF_KEYS only (both samples' comments); anything else, a
// repeated counter, DKM, label or context, or the two layouts mixed, is
// CKR_MECHANISM_PARAM_INVALID.
func cloudhsmKDF(base, param any, t DeriveTarget) ([]byte, error) {
	const what = "cloudhsm sp800-108 counter kdf"
	p, ok := param.(*CloudHSMKDFParams)
	if !ok || p == nil {
		return nil, fmt.Errorf("mechanisms: %s: parameter %T: %w", what, param, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	if !cloudhsmKDFPRFs[p.PRF] {
		return nil, fmt.Errorf("mechanisms: %s: prf %v: %w", what, p.PRF, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("mechanisms: %s: %s: %w", what, fmt.Sprintf(format, args...), ck.CKR_MECHANISM_PARAM_INVALID)
	}
	var counter, dkm *PRFData
	var label, context []byte
	var haveLabel, haveContext, haveBytes bool
	ordered := make([]PRFData, 0, len(p.Data))
	for i := range p.Data {
		d := &p.Data[i]
		switch d.Type {
		case ck.CK_CLOUDHSM_PRF_COUNTER_FORMAT:
			if counter != nil || d.WidthBits != 16 && d.WidthBits != 32 {
				return nil, bad("counter format (%d bits, again: %t)", d.WidthBits, counter != nil)
			}
			counter = d
			ordered = append(ordered, PRFData{Type: ck.CK_SP800_108_ITERATION_VARIABLE, WidthBits: d.WidthBits})
		case ck.CK_CLOUDHSM_PRF_DKM_FORMAT:
			switch {
			case dkm != nil:
				return nil, bad("dkm format again")
			case d.WidthBits != 8 && d.WidthBits != 16 && d.WidthBits != 32 && d.WidthBits != 64:
				return nil, bad("dkm format of %d bits", d.WidthBits)
			case d.DKMMethod != ck.CK_CLOUDHSM_DKM_SUM_OF_KEYS:
				return nil, bad("dkm method %d (only SUM_OF_KEYS)", d.DKMMethod)
			}
			dkm = d
			ordered = append(ordered, PRFData{Type: ck.CK_SP800_108_DKM_LENGTH, WidthBits: d.WidthBits,
				DKMMethod: ck.CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS})
		case ck.CK_CLOUDHSM_PRF_LABEL:
			if haveLabel {
				return nil, bad("label again")
			}
			label, haveLabel = d.Bytes, true
		case ck.CK_CLOUDHSM_PRF_CONTEXT:
			if haveContext {
				return nil, bad("context again")
			}
			context, haveContext = d.Bytes, true
		case ck.CK_CLOUDHSM_PRF_BYTE_ARRAY:
			if len(d.Bytes) == 0 {
				return nil, bad("empty byte array")
			}
			haveBytes = true
			ordered = append(ordered, PRFData{Type: ck.CK_SP800_108_BYTE_ARRAY, Bytes: d.Bytes})
		default:
			return nil, bad("data parameter type %#x", d.Type)
		}
	}
	switch {
	case counter == nil:
		return nil, bad("no counter format")
	case haveBytes && (haveLabel || haveContext):
		return nil, bad("byte arrays mixed with label or context")
	}
	std := &SP800108Params{PRF: p.PRF, Data: ordered}
	if !haveBytes {
		if dkm == nil {
			return nil, bad("label and context layout without a dkm format")
		}
		fixed := make([]byte, 0, len(label)+1+len(context))
		fixed = append(append(append(fixed, label...), 0), context...)
		std.Data = []PRFData{
			{Type: ck.CK_SP800_108_ITERATION_VARIABLE, WidthBits: counter.WidthBits},
			{Type: ck.CK_SP800_108_BYTE_ARRAY, Bytes: fixed},
			{Type: ck.CK_SP800_108_DKM_LENGTH, WidthBits: dkm.WidthBits, DKMMethod: ck.CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS},
		}
	}
	return kbkdfCounter(base, std, t)
}

// cloudhsmRows are CloudHSM's vendor mechanisms.
func cloudhsmRows() []Mechanism {
	return []Mechanism{
		aesRow(Mechanism{Type: ck.CKM_CLOUDHSM_AES_GCM, Param: ParamCloudHSMGCM,
			Encrypt: cloudhsmGCMEncrypt, Decrypt: cloudhsmGCMDecrypt,
			Wrap: wrapVia(cloudhsmGCMEncrypt), Unwrap: unwrapVia(cloudhsmGCMDecrypt)}),
		aesRow(Mechanism{Type: ck.CKM_CLOUDHSM_AES_KEY_WRAP_NO_PAD, Param: kwParam, ParamOptional: true,
			Wrap: kwNoPad.wrap, Unwrap: kwNoPad.unwrap}),
		aesRow(Mechanism{Type: ck.CKM_CLOUDHSM_AES_KEY_WRAP_PKCS5_PAD, Param: kwParam, ParamOptional: true,
			Wrap: kwPKCS5Pad.wrap, Unwrap: kwPKCS5Pad.unwrap}),
		aesRow(Mechanism{Type: ck.CKM_CLOUDHSM_AES_KEY_WRAP_ZERO_PAD, Param: kwParam, ParamOptional: true,
			Wrap: kwZeroPad.wrap, Unwrap: kwZeroPad.unwrap}),
		{
			Type: ck.CKM_CLOUDHSM_SP800_108_COUNTER_KDF, KeyTypes: []ck.KeyType{ck.CKK_GENERIC_SECRET, ck.CKK_AES}, InfoBits: true,
			MinKeySize: secretMinBytes, MaxKeySize: secretMaxBytes,
			Param: ParamCloudHSMKDF, Derive: cloudhsmKDF, DeriveHidesBase: true,
		},
	}
}
