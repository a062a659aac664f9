package mechanisms

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"fmt"

	"gohsm/internal/ck"
)

// oaepOptions validates CK_RSA_PKCS_OAEP_PARAMS (PKCS#11 v3.0 "PKCS #1
// RSA OAEP"): a known hash and a known MGF1 (which may use another hash:
// Java's OAEPWithSHA-256AndMGF1Padding asks for SHA-256 with MGF1-SHA-1,
// and crypto/rsa's OAEPOptions.MGFHash does it), and the encoding parameter
// source CKZ_DATA_SPECIFIED with an optional label, or 0 with none.
func oaepOptions(param any) (*rsa.OAEPOptions, error) {
	p, ok := param.(*OAEPParams)
	if !ok || p == nil {
		return nil, fmt.Errorf("mechanisms: rsa oaep: parameter %T: %w", param, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	h, err := rsaHash(p.Hash)
	if err != nil {
		return nil, err
	}
	mgf, err := rsaMGFHash(p.MGF)
	if err != nil {
		return nil, err
	}
	switch {
	case p.Source == ck.CKZ_DATA_SPECIFIED:
	case p.Source == 0 && len(p.Label) == 0:
	default:
		return nil, fmt.Errorf("mechanisms: rsa oaep: source 0x%x with %d label bytes: %w", p.Source, len(p.Label), ck.CKR_MECHANISM_PARAM_INVALID)
	}
	return &rsa.OAEPOptions{Hash: h, MGFHash: mgf, Label: p.Label}, nil
}

// oaepMax is the longest OAEP message: k - 2 hLen - 2 (RFC 8017 §7.1.1).
func oaepMax(pub *rsa.PublicKey, h crypto.Hash) int { return pub.Size() - 2*h.Size() - 2 }

func rsaOAEPEncrypt(key, param any) (Cipher, error) {
	pub, err := rsaPublic(key, "rsa oaep encrypt")
	if err != nil {
		return nil, err
	}
	opts, err := oaepOptions(param)
	if err != nil {
		return nil, err
	}
	if oaepMax(pub, opts.Hash) < 0 {
		return nil, fmt.Errorf("mechanisms: rsa oaep: %v too long for a %d-bit key: %w", opts.Hash, pub.N.BitLen(), ck.CKR_MECHANISM_PARAM_INVALID)
	}
	return &rsaOAEPCipher{pub: pub, opts: opts}, nil
}

func rsaOAEPDecrypt(key, param any) (Cipher, error) {
	priv, err := rsaPrivate(key, "rsa oaep decrypt")
	if err != nil {
		return nil, err
	}
	opts, err := oaepOptions(param)
	if err != nil {
		return nil, err
	}
	if oaepMax(&priv.PublicKey, opts.Hash) < 0 {
		return nil, fmt.Errorf("mechanisms: rsa oaep: %v too long for a %d-bit key: %w", opts.Hash, priv.N.BitLen(), ck.CKR_MECHANISM_PARAM_INVALID)
	}
	return &rsaOAEPCipher{pub: &priv.PublicKey, priv: priv, opts: opts}, nil
}

// rsaOAEPCipher is single-part like rsaCipher.
type rsaOAEPCipher struct {
	pub  *rsa.PublicKey
	priv *rsa.PrivateKey // nil: encrypting
	opts *rsa.OAEPOptions
	buf  []byte
}

func (c *rsaOAEPCipher) Once(dst, src []byte) ([]byte, error) {
	if c.priv == nil {
		out, err := oaepEncrypt(c.pub, c.opts, src, ck.CKR_DATA_LEN_RANGE)
		if err != nil {
			return dst, err
		}
		return append(dst, out...), nil
	}
	out, err := oaepDecrypt(c.priv, c.opts, src, ck.CKR_ENCRYPTED_DATA_LEN_RANGE, ck.CKR_ENCRYPTED_DATA_INVALID)
	if err != nil {
		return dst, err
	}
	dst = append(dst, out...)
	clear(out)
	return dst, nil
}

func oaepEncrypt(pub *rsa.PublicKey, opts *rsa.OAEPOptions, msg []byte, tooLong ck.RV) ([]byte, error) {
	if max := oaepMax(pub, opts.Hash); len(msg) > max {
		return nil, fmt.Errorf("mechanisms: rsa oaep: %d bytes, max %d: %w", len(msg), max, tooLong)
	}
	out, err := rsa.EncryptOAEPWithOptions(rand.Reader, pub, msg, opts)
	if err != nil {
		return nil, cryptoErr("rsa oaep encrypt", err)
	}
	return out, nil
}

// oaepDecrypt reports every failure of a well-sized ciphertext as one error
// (RFC 8017 §7.1.2 note: the causes must not be told apart).
func oaepDecrypt(priv *rsa.PrivateKey, opts *rsa.OAEPOptions, ct []byte, badLen, invalid ck.RV) ([]byte, error) {
	if k := priv.Size(); len(ct) != k {
		return nil, fmt.Errorf("mechanisms: rsa oaep decrypt: %d bytes, want %d: %w", len(ct), k, badLen)
	}
	out, err := priv.Decrypt(nil, ct, opts)
	if err != nil {
		return nil, fmt.Errorf("mechanisms: rsa oaep decrypt: %w", invalid)
	}
	return out, nil
}

func (c *rsaOAEPCipher) Update(dst, src []byte) ([]byte, error) {
	c.buf = append(c.buf, src...)
	return dst, nil
}

func (c *rsaOAEPCipher) Final(dst []byte) ([]byte, error) {
	dst, err := c.Once(dst, c.buf)
	clear(c.buf)
	c.buf = c.buf[:0]
	return dst, err
}

func (c *rsaOAEPCipher) MaxOutput(n int, once bool) int {
	if !once && n > 0 {
		return 0
	}
	return c.pub.Size()
}

// rsaOAEPWrap is C_WrapKey with CKM_RSA_PKCS_OAEP: the key's value is the
// OAEP message, so at most k - 2 hLen - 2 bytes.
func rsaOAEPWrap(key, param any, material []byte) ([]byte, error) {
	pub, err := rsaPublic(key, "rsa oaep wrap")
	if err != nil {
		return nil, err
	}
	opts, err := oaepOptions(param)
	if err != nil {
		return nil, err
	}
	return oaepEncrypt(pub, opts, material, ck.CKR_KEY_SIZE_RANGE)
}

func rsaOAEPUnwrap(key, param any, wrapped []byte) ([]byte, error) {
	priv, err := rsaPrivate(key, "rsa oaep unwrap")
	if err != nil {
		return nil, err
	}
	opts, err := oaepOptions(param)
	if err != nil {
		return nil, err
	}
	return oaepDecrypt(priv, opts, wrapped, ck.CKR_WRAPPED_KEY_LEN_RANGE, ck.CKR_WRAPPED_KEY_INVALID)
}

// rsaAESParams validates CK_RSA_AES_KEY_WRAP_PARAMS (PKCS#11 v3.0 "RSA
// AES KEY WRAP"): an AES key length of 128, 192 or 256 bits and OAEP
// parameters.
func rsaAESParams(param any) (int, *rsa.OAEPOptions, error) {
	p, ok := param.(*RSAAESKeyWrapParams)
	if !ok || p == nil {
		return 0, nil, fmt.Errorf("mechanisms: rsa aes key wrap: parameter %T: %w", param, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	switch p.AESKeyBits {
	case 128, 192, 256:
	default:
		return 0, nil, fmt.Errorf("mechanisms: rsa aes key wrap: aes key of %d bits: %w", p.AESKeyBits, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	opts, err := oaepOptions(p.OAEP)
	if err != nil {
		return 0, nil, err
	}
	return p.AESKeyBits / 8, opts, nil
}

// rsaAESKeyWrap is C_WrapKey with CKM_RSA_AES_KEY_WRAP: a fresh AES key
// of the parameter's length is wrapped with RSA-OAEP under the RSA public
// key, the target key's value (a secret key's value or a private key's
// PKCS#8 DER) with AES key wrap with padding (RFC 5649, CKM_AES_KEY_WRAP_KWP)
// under that AES key, and the output is the two concatenated; the AES key
// is then destroyed.
func rsaAESKeyWrap(key, param any, material []byte) ([]byte, error) {
	pub, err := rsaPublic(key, "rsa aes key wrap")
	if err != nil {
		return nil, err
	}
	n, opts, err := rsaAESParams(param)
	if err != nil {
		return nil, err
	}
	if oaepMax(pub, opts.Hash) < n {
		return nil, fmt.Errorf("mechanisms: rsa aes key wrap: %v leaves no room for the aes key: %w", opts.Hash, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	if len(material) == 0 {
		return nil, fmt.Errorf("mechanisms: rsa aes key wrap: empty key: %w", ck.CKR_KEY_SIZE_RANGE)
	}
	kek := make([]byte, n)
	defer clear(kek)
	if _, err := rand.Read(kek); err != nil {
		return nil, fmt.Errorf("mechanisms: rsa aes key wrap: %w (%w)", ck.CKR_FUNCTION_FAILED, err)
	}
	out, err := oaepEncrypt(pub, opts, kek, ck.CKR_FUNCTION_FAILED)
	if err != nil {
		return nil, err
	}
	// CKM_AES_KEY_WRAP_KWP's implementation (keywrap.go), default AIV.
	w, err := kwWrapKey(true)(kek, nil, material)
	if err != nil {
		return nil, err
	}
	return append(out, w...), nil
}

func rsaAESKeyUnwrap(key, param any, wrapped []byte) ([]byte, error) {
	priv, err := rsaPrivate(key, "rsa aes key unwrap")
	if err != nil {
		return nil, err
	}
	n, opts, err := rsaAESParams(param)
	if err != nil {
		return nil, err
	}
	k := priv.Size()
	// The AES part of RFC 5649 output is at least two and a whole number
	// of 64-bit blocks.
	if len(wrapped) < k+16 || (len(wrapped)-k)%8 != 0 {
		return nil, fmt.Errorf("mechanisms: rsa aes key unwrap: %d bytes: %w", len(wrapped), ck.CKR_WRAPPED_KEY_LEN_RANGE)
	}
	kek, err := oaepDecrypt(priv, opts, wrapped[:k], ck.CKR_WRAPPED_KEY_LEN_RANGE, ck.CKR_WRAPPED_KEY_INVALID)
	if err != nil {
		return nil, err
	}
	defer clear(kek)
	if len(kek) != n {
		return nil, fmt.Errorf("mechanisms: rsa aes key unwrap: aes key of %d bytes, want %d: %w", len(kek), n, ck.CKR_WRAPPED_KEY_INVALID)
	}
	return kwUnwrapKey(true)(kek, nil, wrapped[k:])
}
