package mechanisms

import (
	"crypto/cipher"
	"crypto/subtle"
	"fmt"

	"gohsm/internal/ck"
)

// CMAC (NIST SP 800-38B; PKCS#11 v3.0 Current Mechanisms "AES-CMAC" and
// "DES3-CMAC"): CKM_*_CMAC gives the full block as MAC, CKM_*_CMAC_GENERAL
// the leftmost ulMacLength bytes (CK_MAC_GENERAL_PARAMS, 1..block size).

type cmac struct {
	b      cipher.Block
	k1, k2 [16]byte
	x      [16]byte // the chaining value
	buf    [16]byte // the pending block, processed only when more follows
	n      int      // bytes in buf
	bs     int
	macLen int
	what   string
}

// cmacRb is the constant R_b of SP 800-38B §5.3 by block size.
func cmacRb(bs int) byte {
	if bs == 8 {
		return 0x1b
	}
	return 0x87
}

func newCMAC(a *blockAlg, key, param any, general bool) (*cmac, error) {
	what := a.name + "-cmac"
	macLen := a.size
	if general {
		what += "-general"
		n, ok := param.(ck.ULong)
		if !ok || n < 1 || n > ck.ULong(a.size) {
			return nil, fmt.Errorf("mechanisms: %s: mac length %v (%T): %w", what, param, param, ck.CKR_MECHANISM_PARAM_INVALID)
		}
		macLen = int(n)
	}
	b, err := a.block(key, what)
	if err != nil {
		return nil, err
	}
	c := &cmac{b: b, bs: a.size, macLen: macLen, what: what}
	// Subkeys (SP 800-38B §6.1): L = E(0^b); K1 = L<<1 ^ (msb ? Rb : 0); K2 likewise from K1.
	var l [16]byte
	b.Encrypt(l[:c.bs], l[:c.bs])
	dbl(c.k1[:c.bs], l[:c.bs])
	dbl(c.k2[:c.bs], c.k1[:c.bs])
	clear(l[:])
	return c, nil
}

// dbl is the doubling of SP 800-38B §6.1 in GF(2^b).
func dbl(dst, src []byte) {
	msb := src[0] >> 7
	for i := 0; i < len(src)-1; i++ {
		dst[i] = src[i]<<1 | src[i+1]>>7
	}
	dst[len(src)-1] = src[len(src)-1]<<1 ^ byte(subtle.ConstantTimeByteEq(msb, 1))*cmacRb(len(src))
}

func (c *cmac) Update(p []byte) error {
	bs := c.bs
	for len(p) > 0 {
		if c.n == bs {
			// A full pending block is not the last: fold it in.
			subtle.XORBytes(c.x[:bs], c.x[:bs], c.buf[:bs])
			c.b.Encrypt(c.x[:bs], c.x[:bs])
			c.n = 0
		}
		k := copy(c.buf[c.n:bs], p)
		c.n += k
		p = p[k:]
	}
	return nil
}

// sum finishes the MAC into mac (full block) without changing the state.
func (c *cmac) sum(mac *[16]byte) {
	bs := c.bs
	last := c.buf
	if c.n == bs {
		subtle.XORBytes(last[:bs], last[:bs], c.k1[:bs])
	} else {
		last[c.n] = 0x80
		clear(last[c.n+1 : bs])
		subtle.XORBytes(last[:bs], last[:bs], c.k2[:bs])
	}
	subtle.XORBytes(mac[:bs], c.x[:bs], last[:bs])
	c.b.Encrypt(mac[:bs], mac[:bs])
	clear(last[:])
}

func (c *cmac) Sign(dst []byte) ([]byte, error) {
	var mac [16]byte
	c.sum(&mac)
	dst = append(dst, mac[:c.macLen]...)
	return dst, nil
}

func (c *cmac) Size() int { return c.macLen }

func (c *cmac) Verify(sig []byte) error {
	if len(sig) != c.macLen {
		return fmt.Errorf("mechanisms: %s: mac of %d bytes, want %d: %w", c.what, len(sig), c.macLen, ck.CKR_SIGNATURE_LEN_RANGE)
	}
	var mac [16]byte
	c.sum(&mac)
	if subtle.ConstantTimeCompare(mac[:c.macLen], sig) != 1 {
		return fmt.Errorf("mechanisms: %s: %w", c.what, ck.CKR_SIGNATURE_INVALID)
	}
	return nil
}

// cmacSigner and cmacVerifier return the row constructors for a family.
func (a *blockAlg) cmacSigner(general bool) func(key, param any) (Signer, error) {
	return func(key, param any) (Signer, error) {
		c, err := newCMAC(a, key, param, general)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
}

func (a *blockAlg) cmacVerifier(general bool) func(key, param any) (Verifier, error) {
	return func(key, param any) (Verifier, error) {
		c, err := newCMAC(a, key, param, general)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
}
