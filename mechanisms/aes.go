package mechanisms

import (
	"bytes"
	"crypto/cipher"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"unsafe"

	"gohsm/internal/ck"
)

// generateAES is CKM_AES_KEY_GEN (PKCS#11 v3.0 "AES key generation"): CKA_VALUE_LEN
// bytes from the generator. The guard has checked 16..32; AES itself
// allows only three of those lengths.
func generateAES(r io.Reader, p KeyGenParams) (any, error) {
	switch p.ValueLen {
	case 16, 24, 32:
	default:
		return nil, fmt.Errorf("mechanisms: aes key gen: CKA_VALUE_LEN %d: %w", p.ValueLen, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	k := make([]byte, p.ValueLen)
	if _, err := io.ReadFull(r, k); err != nil {
		return nil, fmt.Errorf("mechanisms: aes key gen: %w (%w)", ck.CKR_FUNCTION_FAILED, err)
	}
	return k, nil
}

const (
	gcmFullTag = 16
	// gcmMaxIV bounds CK_GCM_PARAMS.ulIvLen. The spec allows 1..2^32-1
	// bytes (PKCS#11 v3.0, CK_GCM_PARAMS); 256 covers every published vector
	// (NIST CAVP uses up to 128) and keeps parameters small.
	gcmMaxIV = 256
)

// gcmTagBits reports whether a CK_GCM_PARAMS.ulTagBits is accepted. The
// spec allows 0..128 (PKCS#11 v3.0, CK_GCM_PARAMS); we accept the lengths NIST
// SP 800-38D §5.2.1.2 permits: 128, 120, 112, 104, 96, and 64 and 32 for
// the applications of its Appendix C.
func gcmTagBits(n int) bool {
	switch n {
	case 32, 64, 96, 104, 112, 120, 128:
		return true
	}
	return false
}

func aesGCMEncrypt(key, param any) (Cipher, error) { return newGCM(key, param, true) }
func aesGCMDecrypt(key, param any) (Cipher, error) { return newGCM(key, param, false) }

// newGCM sets up CKM_AES_GCM (PKCS#11 v3.0 "AES-GCM"): encryption outputs
// ciphertext || tag (the tag's leftmost ulTagBits bits), decryption takes
// the same. crypto/cipher's GCM is one-shot, so the multi-part form
// buffers its input and produces everything at Final, as the spec allows
// for decryption and as HSMs commonly do for encryption.
func newGCM(key, param any, encrypt bool) (Cipher, error) {
	p, ok := param.(*GCMParams)
	if !ok || p == nil {
		return nil, fmt.Errorf("mechanisms: aes-gcm: parameter %T: %w", param, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	if len(p.IV) < 1 || len(p.IV) > gcmMaxIV {
		return nil, fmt.Errorf("mechanisms: aes-gcm: iv of %d bytes: %w", len(p.IV), ck.CKR_MECHANISM_PARAM_INVALID)
	}
	if !gcmTagBits(p.TagBits) {
		return nil, fmt.Errorf("mechanisms: aes-gcm: tag %d bits: %w", p.TagBits, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	var aead cipher.AEAD
	if pk, ok := key.(*Prepared); ok && len(p.IV) == 12 {
		if ps, ok := pk.State.(*preparedBlock); ok && ps.gcm12 != nil {
			aead = ps.gcm12
		}
	}
	if aead == nil {
		b, err := aesAlg.block(key, "aes-gcm")
		if err != nil {
			return nil, err
		}
		// Always the full 16-byte tag: Go offers custom nonce sizes or
		// custom tag sizes (>= 12 bytes) but not both, and a shorter tag
		// is by definition the full tag's leftmost bits (SP 800-38D §7.1:
		// T = MSB_t(...)).
		if aead, err = cipher.NewGCMWithNonceSize(b, len(p.IV)); err != nil {
			return nil, fmt.Errorf("mechanisms: aes-gcm: %w (%w)", ck.CKR_MECHANISM_PARAM_INVALID, err)
		}
	}
	// The operation outlives the call that set it up; keep our own copy of
	// IV and AAD in case the caller's were views of C memory.
	ivAAD := make([]byte, len(p.IV)+len(p.AAD))
	copy(ivAAD, p.IV)
	copy(ivAAD[len(p.IV):], p.AAD)
	return &gcm{aead: aead, iv: ivAAD[:len(p.IV):len(p.IV)], aad: ivAAD[len(p.IV):], tagLen: p.TagBits / 8, encrypt: encrypt}, nil
}

type gcm struct {
	aead    cipher.AEAD
	iv, aad []byte
	tagLen  int
	encrypt bool
	buf     []byte // multi-part input, processed at Final
}

func (g *gcm) Once(dst, src []byte) ([]byte, error) {
	if g.encrypt {
		return g.seal(dst, src), nil
	}
	return g.open(dst, src)
}

func (g *gcm) Update(dst, src []byte) ([]byte, error) {
	var err error
	g.buf, err = buffer(g.buf, src, "aes-gcm")
	return dst, err
}

func (g *gcm) Final(dst []byte) ([]byte, error) {
	out, err := g.Once(dst, g.buf)
	clear(g.buf)
	g.buf = g.buf[:0]
	return out, err
}

func (g *gcm) MaxOutput(n int, once bool) int {
	switch {
	case !once && n > 0: // Update only buffers
		return 0
	case !once: // Final
		n = len(g.buf)
	}
	if g.encrypt {
		return n + g.tagLen
	}
	return max(n-g.tagLen, 0)
}

// seal appends ciphertext || tag to dst.
func (g *gcm) seal(dst, src []byte) []byte {
	src = unalias(dst, src, len(src)+gcmFullTag)
	out := g.aead.Seal(dst, g.iv, src, g.aad)
	return out[:len(out)-gcmFullTag+g.tagLen]
}

// open checks and strips the tag, appending the plaintext to dst.
func (g *gcm) open(dst, src []byte) ([]byte, error) {
	if len(src) < g.tagLen {
		return dst, fmt.Errorf("mechanisms: aes-gcm: %d bytes, shorter than the tag: %w", len(src), ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
	}
	if g.tagLen == gcmFullTag {
		src = unalias(dst, src, len(src)-gcmFullTag)
		out, err := g.aead.Open(dst, g.iv, src, g.aad)
		if err != nil {
			return dst, fmt.Errorf("mechanisms: aes-gcm: %w", ck.CKR_ENCRYPTED_DATA_INVALID)
		}
		return out, nil
	}
	// A truncated tag: recompute the full one. The GCM keystream does not
	// depend on the AAD and XOR is its own inverse, so sealing the
	// ciphertext yields the plaintext, and sealing that plaintext yields
	// the ciphertext again followed by the full tag over (AAD, ciphertext).
	ct, tag := src[:len(src)-g.tagLen], src[len(src)-g.tagLen:]
	pt := g.aead.Seal(nil, g.iv, ct, nil)[:len(ct)]
	again := g.aead.Seal(nil, g.iv, pt, g.aad)
	if subtle.ConstantTimeCompare(again[len(ct):len(ct)+g.tagLen], tag) != 1 {
		clear(pt)
		return dst, fmt.Errorf("mechanisms: aes-gcm: %w", ck.CKR_ENCRYPTED_DATA_INVALID)
	}
	dst = append(dst, pt...)
	clear(pt)
	return dst, nil
}

// unalias returns src, or a copy of it if the n bytes that will be appended
// to dst overlap src other than exactly in place. crypto/cipher panics on
// such overlap, and buffers handed in by a C caller can overlap any way.
func unalias(dst, src []byte, n int) []byte {
	if len(src) == 0 || n <= 0 || cap(dst)-len(dst) < n {
		return src // empty, or appending allocates a fresh array
	}
	out := dst[len(dst) : len(dst)+n]
	if &out[0] == &src[0] || !overlap(out, src) {
		return src
	}
	return bytes.Clone(src)
}

func overlap(x, y []byte) bool {
	x0, y0 := uintptr(unsafe.Pointer(&x[0])), uintptr(unsafe.Pointer(&y[0]))
	return x0 < y0+uintptr(len(y)) && y0 < x0+uintptr(len(x))
}

// wrapVia and unwrapVia make C_WrapKey / C_UnwrapKey of a single-part
// Once (AES-GCM and AES-CCM wrap by encrypting the key's value, PKCS#11
// v3.0 "AES-GCM", "AES-CCM"), turning data errors into unwrap errors.
func wrapVia(enc func(key, param any) (Cipher, error)) func(key, param any, material []byte) ([]byte, error) {
	return func(key, param any, material []byte) ([]byte, error) {
		c, err := enc(key, param)
		if err != nil {
			return nil, err
		}
		out, err := c.Once(nil, material)
		if errors.Is(err, ck.CKR_DATA_LEN_RANGE) {
			return nil, fmt.Errorf("mechanisms: wrap: %w (%w)", ck.CKR_KEY_SIZE_RANGE, err)
		}
		return out, err
	}
}

func unwrapVia(dec func(key, param any) (Cipher, error)) func(key, param any, wrapped []byte) ([]byte, error) {
	return func(key, param any, wrapped []byte) ([]byte, error) {
		c, err := dec(key, param)
		if err != nil {
			return nil, err
		}
		out, err := c.Once(nil, wrapped)
		switch {
		case errors.Is(err, ck.CKR_ENCRYPTED_DATA_LEN_RANGE):
			return nil, fmt.Errorf("mechanisms: unwrap: %w", ck.CKR_WRAPPED_KEY_LEN_RANGE)
		case err != nil:
			return nil, fmt.Errorf("mechanisms: unwrap: %w", ck.CKR_WRAPPED_KEY_INVALID)
		}
		return out, nil
	}
}

// aesRow is a row over AES keys of 16, 24 or 32 bytes.
func aesRow(m Mechanism) Mechanism {
	m.KeyTypes, m.MinKeySize, m.MaxKeySize = aesKey, aesMinBytes, aesMaxBytes
	if m.GenerateKey == nil {
		m.Prepare = aesAlg.prepare
	}
	return m
}

// aesRows are the AES mechanisms.
func aesRows() []Mechanism {
	return []Mechanism{
		aesRow(Mechanism{Type: ck.CKM_AES_KEY_GEN, GenerateKey: generateAES}),
		aesRow(Mechanism{Type: ck.CKM_AES_ECB,
			Encrypt: aesAlg.ctor(modeECB, true), Decrypt: aesAlg.ctor(modeECB, false),
			Wrap: aesAlg.wrapper(modeECB), Unwrap: aesAlg.unwrapper(modeECB)}),
		aesRow(Mechanism{Type: ck.CKM_AES_CBC, Param: ParamIV,
			Encrypt: aesAlg.ctor(modeCBC, true), Decrypt: aesAlg.ctor(modeCBC, false),
			Wrap: aesAlg.wrapper(modeCBC), Unwrap: aesAlg.unwrapper(modeCBC)}),
		aesRow(Mechanism{Type: ck.CKM_AES_CBC_PAD, Param: ParamIV,
			Encrypt: aesAlg.ctor(modeCBCPad, true), Decrypt: aesAlg.ctor(modeCBCPad, false),
			Wrap: aesAlg.wrapper(modeCBCPad), Unwrap: aesAlg.unwrapper(modeCBCPad)}),
		aesRow(Mechanism{Type: ck.CKM_AES_CTR, Param: ParamCTR,
			Encrypt: aesCTREncrypt, Decrypt: aesCTRDecrypt}),
		aesRow(Mechanism{Type: ck.CKM_AES_GCM, Param: ParamGCM,
			Encrypt: aesGCMEncrypt, Decrypt: aesGCMDecrypt,
			Wrap: wrapVia(aesGCMEncrypt), Unwrap: unwrapVia(aesGCMDecrypt),
			MessageEncrypt: aesGCMMessageEncrypt, MessageDecrypt: aesGCMMessageDecrypt}),
		aesRow(Mechanism{Type: ck.CKM_AES_CCM, Param: ParamCCM,
			Encrypt: aesCCMEncrypt, Decrypt: aesCCMDecrypt,
			Wrap: wrapVia(aesCCMEncrypt), Unwrap: unwrapVia(aesCCMDecrypt),
			MessageEncrypt: aesCCMMessageEncrypt, MessageDecrypt: aesCCMMessageDecrypt}),
		aesRow(Mechanism{Type: ck.CKM_AES_CMAC,
			Sign: aesAlg.cmacSigner(false), Verify: aesAlg.cmacVerifier(false)}),
		aesRow(Mechanism{Type: ck.CKM_AES_CMAC_GENERAL, Param: ParamULong,
			Sign: aesAlg.cmacSigner(true), Verify: aesAlg.cmacVerifier(true)}),
		aesRow(Mechanism{Type: ck.CKM_AES_KEY_WRAP, Param: kwParam, ParamOptional: true, SinglePart: true,
			Encrypt: kwCipher(false, true), Decrypt: kwCipher(false, false),
			Wrap: kwWrapKey(false), Unwrap: kwUnwrapKey(false)}),
		aesRow(Mechanism{Type: ck.CKM_AES_KEY_WRAP_PAD, Param: kwParam, ParamOptional: true, SinglePart: true,
			Encrypt: kwCipher(true, true), Decrypt: kwCipher(true, false),
			Wrap: kwWrapKey(true), Unwrap: kwUnwrapKey(true)}),
		aesRow(Mechanism{Type: ck.CKM_AES_KEY_WRAP_KWP, Param: kwParam, ParamOptional: true, SinglePart: true,
			Encrypt: kwCipher(true, true), Decrypt: kwCipher(true, false),
			Wrap: kwWrapKey(true), Unwrap: kwUnwrapKey(true)}),
		aesRow(Mechanism{Type: ck.CKM_AES_ECB_ENCRYPT_DATA, Param: ParamBytes,
			Derive: aesAlg.encryptDataDerive(modeECB), DeriveHidesBase: true}),
		aesRow(Mechanism{Type: ck.CKM_AES_CBC_ENCRYPT_DATA, Param: ParamCBCEncryptData,
			Derive: aesAlg.encryptDataDerive(modeCBC), DeriveHidesBase: true}),
	}
}
