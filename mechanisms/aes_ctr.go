package mechanisms

import (
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"math"

	"gohsm/internal/ck"
)

// CKM_AES_CTR (PKCS#11 v3.0 Current Mechanisms, "AES-CTR"; NIST SP 800-38A
// §6.5): the low ulCounterBits bits of the counter block are incremented
// once per block. The standard counter increments all 128 bits, which is
// the same as long as the counter field never wraps; a message that would
// wrap it is refused, since that would repeat key stream.

type ctrCipher struct {
	stream  cipher.Stream
	left    uint64 // bytes that may still be processed; math.MaxUint64 means no practical limit
	encrypt bool
}

func aesCTREncrypt(key, param any) (Cipher, error) { return newCTR(key, param, true) }
func aesCTRDecrypt(key, param any) (Cipher, error) { return newCTR(key, param, false) }

func newCTR(key, param any, encrypt bool) (Cipher, error) {
	p, ok := param.(*CTRParams)
	if !ok || p == nil || p.CounterBits < 1 || p.CounterBits > 128 {
		return nil, fmt.Errorf("mechanisms: aes-ctr: parameter %T: %w", param, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	b, err := aesAlg.block(key, "aes-ctr")
	if err != nil {
		return nil, err
	}
	return &ctrCipher{stream: cipher.NewCTR(b, p.CB[:]), left: ctrBytesLeft(p), encrypt: encrypt}, nil
}

// ctrBytesLeft is how many bytes the counter field allows before it wraps:
// 16 * (2^bits - counter).
func ctrBytesLeft(p *CTRParams) uint64 {
	lo := binary.BigEndian.Uint64(p.CB[8:])
	hi := binary.BigEndian.Uint64(p.CB[:8])
	var blocks uint64 // 2^bits - counter, saturated at 2^60 (then no limit)
	switch {
	case p.CounterBits < 64:
		blocks = 1<<p.CounterBits - lo&(1<<p.CounterBits-1)
	case p.CounterBits == 64:
		if lo == 0 {
			return math.MaxUint64
		}
		blocks = -lo // 2^64 - lo
	default:
		// Any zero bit among the counter's bits above the low 64 leaves
		// at least 2^64 blocks.
		mask := uint64(math.MaxUint64)
		if p.CounterBits < 128 {
			mask = 1<<(p.CounterBits-64) - 1
		}
		if hi&mask != mask || lo == 0 {
			return math.MaxUint64
		}
		blocks = -lo
	}
	if blocks >= 1<<60 {
		return math.MaxUint64
	}
	return blocks * 16
}

func (c *ctrCipher) take(n int) error {
	if c.left == math.MaxUint64 {
		return nil
	}
	if uint64(n) > c.left {
		rv := ck.CKR_DATA_LEN_RANGE
		if !c.encrypt {
			rv = ck.CKR_ENCRYPTED_DATA_LEN_RANGE
		}
		return fmt.Errorf("mechanisms: aes-ctr: %d bytes would wrap the counter: %w", n, rv)
	}
	c.left -= uint64(n)
	return nil
}

func (c *ctrCipher) Once(dst, src []byte) ([]byte, error) { return c.Update(dst, src) }

func (c *ctrCipher) Update(dst, src []byte) ([]byte, error) {
	if err := c.take(len(src)); err != nil {
		return dst, err
	}
	src = unalias(dst, src, len(src))
	dst, out := extend(dst, len(src))
	c.stream.XORKeyStream(out, src)
	return dst, nil
}

func (c *ctrCipher) Final(dst []byte) ([]byte, error) { return dst, nil }

func (c *ctrCipher) MaxOutput(n int, once bool) int { return n }
