package mechanisms

import (
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"fmt"

	"gohsm/internal/ck"
)

// CKM_AES_CCM (PKCS#11 v3.0 Current Mechanisms, "AES CCM"; NIST SP 800-38C,
// RFC 3610). The standard library has no CCM, so it is written here over
// cipher.Block: CBC-MAC over B0 || encoded AAD || payload for the tag, and
// CTR with counter blocks A1, A2, ... for the payload, A0 masking the tag.
// Encryption outputs ciphertext || MAC, decryption takes the same.
//
// CK_CCM_PARAMS.ulDataLen is the payload's length (it goes into B0). For
// decryption we accept it as either the plaintext's length or the whole
// input's (ciphertext and MAC): both readings occur among tokens, and the
// length actually used for B0 is the plaintext's either way.

const (
	ccmMinNonce = 7
	ccmMaxNonce = 13
)

// ccmParamsOK checks a nonce and MAC length (SP 800-38C §A.1: nonce 7..13
// bytes, MAC 4, 6, ..., 16 bytes) and that the payload length fits in
// the 15 - len(nonce) bytes B0 gives it.
func ccmParamsOK(nonceLen, macLen, dataLen int) error {
	if nonceLen < ccmMinNonce || nonceLen > ccmMaxNonce {
		return fmt.Errorf("mechanisms: aes-ccm: nonce of %d bytes: %w", nonceLen, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	if macLen < 4 || macLen > 16 || macLen%2 != 0 {
		return fmt.Errorf("mechanisms: aes-ccm: mac of %d bytes: %w", macLen, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	if q := 15 - nonceLen; dataLen < 0 || q < 8 && uint64(dataLen)>>(8*q) != 0 {
		return fmt.Errorf("mechanisms: aes-ccm: data length %d does not fit %d bytes: %w", dataLen, q, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	return nil
}

type ccm struct {
	b       cipher.Block
	nonce   []byte
	aad     []byte
	dataLen int
	macLen  int
	encrypt bool
	buf     []byte
}

func aesCCMEncrypt(key, param any) (Cipher, error) { return newCCM(key, param, true) }
func aesCCMDecrypt(key, param any) (Cipher, error) { return newCCM(key, param, false) }

func newCCM(key, param any, encrypt bool) (*ccm, error) {
	p, ok := param.(*CCMParams)
	if !ok || p == nil {
		return nil, fmt.Errorf("mechanisms: aes-ccm: parameter %T: %w", param, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	if err := ccmParamsOK(len(p.Nonce), p.MACLen, p.DataLen); err != nil {
		return nil, err
	}
	b, err := aesAlg.block(key, "aes-ccm")
	if err != nil {
		return nil, err
	}
	na := make([]byte, len(p.Nonce)+len(p.AAD))
	copy(na, p.Nonce)
	copy(na[len(p.Nonce):], p.AAD)
	return &ccm{b: b, nonce: na[:len(p.Nonce):len(p.Nonce)], aad: na[len(p.Nonce):], dataLen: p.DataLen, macLen: p.MACLen, encrypt: encrypt}, nil
}

func (c *ccm) Once(dst, src []byte) ([]byte, error) {
	if c.encrypt {
		if len(src) != c.dataLen {
			return dst, fmt.Errorf("mechanisms: aes-ccm: %d bytes, ulDataLen %d: %w", len(src), c.dataLen, ck.CKR_DATA_LEN_RANGE)
		}
		src = unalias(dst, src, len(src)+c.macLen)
		dst, out := extend(dst, len(src)+c.macLen)
		ccmSeal(c.b, c.nonce, c.aad, src, out)
		return dst, nil
	}
	n := len(src) - c.macLen
	if n < 0 || n != c.dataLen && len(src) != c.dataLen {
		return dst, fmt.Errorf("mechanisms: aes-ccm: %d bytes, ulDataLen %d: %w", len(src), c.dataLen, ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
	}
	src = unalias(dst, src, n)
	whole, out := extend(dst, n)
	if !ccmOpen(c.b, c.nonce, c.aad, src[:n], src[n:], out) {
		return dst, fmt.Errorf("mechanisms: aes-ccm: %w", ck.CKR_ENCRYPTED_DATA_INVALID)
	}
	return whole, nil
}

// Update buffers: the whole message is needed before any output (the MAC
// covers the plaintext, and decryption may release nothing unverified).
func (c *ccm) Update(dst, src []byte) ([]byte, error) {
	limit := c.dataLen
	if !c.encrypt {
		limit = c.dataLen + c.macLen
	}
	if len(c.buf)+len(src) > limit {
		rv := ck.CKR_DATA_LEN_RANGE
		if !c.encrypt {
			rv = ck.CKR_ENCRYPTED_DATA_LEN_RANGE
		}
		return dst, fmt.Errorf("mechanisms: aes-ccm: more than ulDataLen %d: %w", c.dataLen, rv)
	}
	c.buf = append(c.buf, src...)
	return dst, nil
}

func (c *ccm) Final(dst []byte) ([]byte, error) {
	out, err := c.Once(dst, c.buf)
	clear(c.buf)
	c.buf = c.buf[:0]
	return out, err
}

func (c *ccm) MaxOutput(n int, once bool) int {
	switch {
	case !once && n > 0:
		return 0
	case !once:
		n = len(c.buf)
	}
	if c.encrypt {
		return n + c.macLen
	}
	return max(n-c.macLen, 0)
}

// ccmSeal writes E(pt) || MAC into out (len(pt) + MAC length bytes; the
// MAC length is len(out) - len(pt)). out may alias pt exactly.
func ccmSeal(b cipher.Block, nonce, aad, pt, out []byte) {
	var tag [16]byte
	ccmMAC(b, nonce, aad, pt, len(out)-len(pt), &tag)
	var s0 [16]byte
	ccmCrypt(b, nonce, pt, out[:len(pt)], &s0)
	subtle.XORBytes(out[len(pt):], tag[:len(out)-len(pt)], s0[:])
}

// ccmOpen decrypts ct into out (len(ct) bytes) and checks the MAC; on
// failure out is zeroed. out may alias ct exactly.
func ccmOpen(b cipher.Block, nonce, aad, ct, mac, out []byte) bool {
	var s0, tag [16]byte
	var want [16]byte
	copy(want[:], mac) // before out overwrites ct (mac follows ct)
	ccmCrypt(b, nonce, ct, out, &s0)
	ccmMAC(b, nonce, aad, out, len(mac), &tag)
	subtle.XORBytes(tag[:], tag[:], s0[:])
	if subtle.ConstantTimeCompare(tag[:len(mac)], want[:len(mac)]) != 1 {
		clear(out)
		return false
	}
	return true
}

// ccmCrypt XORs the key stream from A1 on into out, and returns E(A0) in s0.
func ccmCrypt(b cipher.Block, nonce, in, out []byte, s0 *[16]byte) {
	var a [16]byte
	a[0] = byte(15 - len(nonce) - 1)
	copy(a[1:], nonce)
	b.Encrypt(s0[:], a[:])
	if len(in) == 0 {
		return
	}
	a[15] = 1
	cipher.NewCTR(b, a[:]).XORKeyStream(out, in)
}

// ccmMAC computes the CBC-MAC of SP 800-38C §A.2 into tag.
func ccmMAC(b cipher.Block, nonce, aad, pt []byte, macLen int, tag *[16]byte) {
	q := 15 - len(nonce)
	var x [16]byte
	x[0] = byte((macLen-2)/2<<3 | (q - 1))
	if len(aad) > 0 {
		x[0] |= 0x40
	}
	copy(x[1:], nonce)
	n := uint64(len(pt))
	for i := 15; i > len(nonce); i-- {
		x[i] = byte(n)
		n >>= 8
	}
	b.Encrypt(x[:], x[:])

	if len(aad) > 0 {
		var hdr [10]byte
		var h []byte
		switch l := uint64(len(aad)); {
		case l < 1<<16-1<<8:
			h = binary.BigEndian.AppendUint16(hdr[:0], uint16(l))
		case l < 1<<32:
			h = binary.BigEndian.AppendUint32(append(hdr[:0], 0xff, 0xfe), uint32(l))
		default:
			h = binary.BigEndian.AppendUint64(append(hdr[:0], 0xff, 0xff), l)
		}
		// The header and the AAD form one zero-padded string.
		subtle.XORBytes(x[:len(h)], x[:len(h)], h)
		i := len(h)
		rest := aad
		k := min(16-i, len(rest))
		subtle.XORBytes(x[i:i+k], x[i:i+k], rest[:k])
		rest = rest[k:]
		b.Encrypt(x[:], x[:])
		cbcMACBlocks(b, &x, rest)
	}
	cbcMACBlocks(b, &x, pt)
	*tag = x
}

// cbcMACBlocks continues a CBC-MAC over data, zero-padding its last block.
func cbcMACBlocks(b cipher.Block, x *[16]byte, data []byte) {
	for len(data) > 0 {
		k := min(16, len(data))
		subtle.XORBytes(x[:k], x[:k], data[:k])
		b.Encrypt(x[:], x[:])
		data = data[k:]
	}
}
