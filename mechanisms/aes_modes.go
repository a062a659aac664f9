package mechanisms

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"fmt"
	"slices"

	"gohsm/internal/ck"
)

// The classic block cipher modes (PKCS#11 v3.0 Current Mechanisms, "AES-ECB",
// "AES-CBC", "AES-CBC with PKCS padding" and the same three for DES3),
// written once over cipher.Block for AES and DES3 alike.

// blockMode is ECB, CBC or CBC with PKCS #7 padding.
type blockMode int

const (
	modeECB blockMode = iota
	modeCBC
	modeCBCPad
)

// newBlockFunc makes the block cipher of a family from a secret key.
type newBlockFunc func(key []byte) (cipher.Block, error)

// blockAlg is one block cipher family: its name for messages, its
// constructor and block size.
type blockAlg struct {
	name     string
	newBlock newBlockFunc
	size     int
}

var (
	aesAlg = &blockAlg{name: "aes", newBlock: aes.NewCipher, size: aes.BlockSize}
)

// secretKey returns a secret key's bytes.
func secretKey(key any, what string) ([]byte, error) {
	k, ok := unprepared(key).([]byte)
	if !ok {
		return nil, fmt.Errorf("mechanisms: %s with %T: %w", what, key, ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	return k, nil
}

// block makes the family's cipher from a key; a length the cipher refuses
// is CKR_KEY_SIZE_RANGE.
func (a *blockAlg) block(key any, what string) (cipher.Block, error) {
	if p, ok := key.(*Prepared); ok {
		if ps, ok := p.State.(*preparedBlock); ok && ps.alg == a {
			return ps.block, nil
		}
	}
	k, err := secretKey(key, what)
	if err != nil {
		return nil, err
	}
	b, err := a.newBlock(k)
	if err != nil {
		return nil, fmt.Errorf("mechanisms: %s: key of %d bytes: %w", what, len(k), ck.CKR_KEY_SIZE_RANGE)
	}
	return b, nil
}

// ivParam checks a ParamIV of exactly one block.
func (a *blockAlg) ivParam(param any, what string) ([]byte, error) {
	iv, ok := param.([]byte)
	if !ok || len(iv) != a.size {
		return nil, fmt.Errorf("mechanisms: %s: iv %T of %d bytes, want %d: %w", what, param, len(iv), a.size, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	return iv, nil
}

func (m blockMode) suffix() string {
	switch m {
	case modeECB:
		return "ecb"
	case modeCBC:
		return "cbc"
	}
	return "cbc-pad"
}

// blockCipher is one ECB / CBC / CBC-PAD operation. Multi-part input is
// processed a whole block at a time; the partial block waits in buf.
// Decryption with padding also holds back the last whole block until Final,
// since only then is it known to be the padded one.
type blockCipher struct {
	b       cipher.Block
	cbc     cipher.BlockMode // CBC modes: keeps the chaining value across calls
	mode    blockMode
	encrypt bool
	bs      int
	buf     []byte
	what    string
}

func (a *blockAlg) newCipher(key, param any, mode blockMode, encrypt bool) (*blockCipher, error) {
	what := a.name + "-" + mode.suffix()
	b, err := a.block(key, what)
	if err != nil {
		return nil, err
	}
	c := &blockCipher{b: b, mode: mode, encrypt: encrypt, bs: a.size, what: what}
	if mode != modeECB {
		iv, err := a.ivParam(param, what)
		if err != nil {
			return nil, err
		}
		if encrypt {
			c.cbc = cipher.NewCBCEncrypter(b, iv)
		} else {
			c.cbc = cipher.NewCBCDecrypter(b, iv)
		}
	}
	return c, nil
}

// ctor returns the row constructor for a mode and direction.
func (a *blockAlg) ctor(mode blockMode, encrypt bool) func(key, param any) (Cipher, error) {
	return func(key, param any) (Cipher, error) {
		c, err := a.newCipher(key, param, mode, encrypt)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
}

func (c *blockCipher) lenErr() ck.RV {
	if c.encrypt {
		return ck.CKR_DATA_LEN_RANGE
	}
	return ck.CKR_ENCRYPTED_DATA_LEN_RANGE
}

// crypt appends the encryption or decryption of whole blocks src to dst.
// src must not overlap the appended bytes other than exactly (see unalias).
func (c *blockCipher) crypt(dst, src []byte) []byte {
	dst, out := extend(dst, len(src))
	if len(src) == 0 {
		return dst
	}
	if c.cbc != nil {
		c.cbc.CryptBlocks(out, src)
		return dst
	}
	for i := 0; i < len(src); i += c.bs {
		if c.encrypt {
			c.b.Encrypt(out[i:i+c.bs], src[i:i+c.bs])
		} else {
			c.b.Decrypt(out[i:i+c.bs], src[i:i+c.bs])
		}
	}
	return dst
}

// extend extends dst by n bytes, returning the whole and the new part
// (the same as grow in ecdsa.go, kept separate so the families do not
// depend on each other's files).
func extend(dst []byte, n int) (whole, tail []byte) {
	dst = slices.Grow(dst, n)
	whole = dst[:len(dst)+n]
	return whole, whole[len(dst):]
}

func (c *blockCipher) Once(dst, src []byte) ([]byte, error) {
	n := len(src)
	switch {
	case c.mode != modeCBCPad || !c.encrypt:
		if n%c.bs != 0 || c.mode == modeCBCPad && n == 0 {
			return dst, fmt.Errorf("mechanisms: %s: %d bytes, not whole blocks: %w", c.what, n, c.lenErr())
		}
	}
	if c.mode != modeCBCPad {
		return c.crypt(dst, unalias(dst, src, n)), nil
	}
	if c.encrypt {
		full := n / c.bs * c.bs
		src = unalias(dst, src, full+c.bs)
		dst = c.crypt(dst, src[:full])
		var last [aes.BlockSize]byte
		pad(last[:c.bs], src[full:])
		dst = c.crypt(dst, last[:c.bs])
		clear(last[:])
		return dst, nil
	}
	src = unalias(dst, src, n-c.bs)
	start := len(dst)
	dst = c.crypt(dst, src[:n-c.bs])
	out, err := c.unpadLast(dst, src[n-c.bs:])
	if err != nil {
		clear(dst[start:])
		return dst[:start], err
	}
	return out, nil
}

// pad writes rest followed by PKCS #7 padding into the block blk.
func pad(blk, rest []byte) {
	copy(blk, rest)
	p := byte(len(blk) - len(rest))
	for i := len(rest); i < len(blk); i++ {
		blk[i] = p
	}
}

// unpadLast decrypts the final block and appends it without its padding.
func (c *blockCipher) unpadLast(dst, blk []byte) ([]byte, error) {
	var last [aes.BlockSize]byte
	c.crypt(last[:0], blk)
	n, ok := unpadLen(last[:c.bs])
	if !ok {
		clear(last[:])
		return dst, fmt.Errorf("mechanisms: %s: bad padding: %w", c.what, ck.CKR_ENCRYPTED_DATA_INVALID)
	}
	dst = append(dst, last[:n]...)
	clear(last[:])
	return dst, nil
}

// unpadLen checks the PKCS #7 padding of a final block in constant time
// and returns how many bytes of it are data.
func unpadLen(blk []byte) (int, bool) {
	p := blk[len(blk)-1]
	good := subtle.ConstantTimeLessOrEq(1, int(p)) & subtle.ConstantTimeLessOrEq(int(p), len(blk))
	for i := range blk {
		inPad := subtle.ConstantTimeLessOrEq(len(blk)-int(p), i)
		eq := subtle.ConstantTimeByteEq(blk[i], p)
		good &= eq | (inPad ^ 1)
	}
	return len(blk) - int(p), good == 1
}

func (c *blockCipher) Update(dst, src []byte) ([]byte, error) {
	total := len(c.buf) + len(src)
	n := total / c.bs * c.bs
	if c.mode == modeCBCPad && !c.encrypt && n == total && n > 0 {
		n -= c.bs // the last block may be the padded one
	}
	if n == 0 {
		c.buf = append(c.buf, src...)
		return dst, nil
	}
	if len(c.buf) > 0 {
		// Output runs len(c.buf) bytes ahead of src: even exact
		// aliasing would overwrite input not yet read.
		src = unaliasAny(dst, src, n)
		k := c.bs - len(c.buf)
		c.buf = append(c.buf, src[:k]...)
		dst = c.crypt(dst, c.buf)
		src, n = src[k:], n-c.bs
	} else {
		src = unalias(dst, src, n)
	}
	dst = c.crypt(dst, src[:n])
	clear(c.buf)
	c.buf = append(c.buf[:0], src[n:]...)
	return dst, nil
}

func (c *blockCipher) Final(dst []byte) ([]byte, error) {
	defer func() { clear(c.buf); c.buf = c.buf[:0] }()
	switch {
	case c.mode != modeCBCPad:
		if len(c.buf) != 0 {
			return dst, fmt.Errorf("mechanisms: %s: %d bytes left over: %w", c.what, len(c.buf), c.lenErr())
		}
		return dst, nil
	case c.encrypt:
		var last [aes.BlockSize]byte
		pad(last[:c.bs], c.buf)
		dst = c.crypt(dst, last[:c.bs])
		clear(last[:])
		return dst, nil
	}
	if len(c.buf) != c.bs {
		return dst, fmt.Errorf("mechanisms: %s: %d bytes left over: %w", c.what, len(c.buf), c.lenErr())
	}
	return c.unpadLast(dst, c.buf)
}

func (c *blockCipher) MaxOutput(n int, once bool) int {
	switch {
	case once && c.mode == modeCBCPad && c.encrypt:
		return n/c.bs*c.bs + c.bs
	case once:
		return n
	case n > 0:
		return (len(c.buf) + n) / c.bs * c.bs
	case c.mode == modeCBCPad:
		return c.bs
	}
	return 0
}

// Wrapping with the unauthenticated modes (PKCS#11 v3.0 "AES-ECB", "AES-CBC"):
// ECB and CBC pad the key's value with zero bytes to whole blocks, and
// unwrapping returns the zero-padded value, which the token truncates to
// the length the key type or CKA_VALUE_LEN says. CBC-PAD uses its padding.

func (a *blockAlg) wrapper(mode blockMode) func(key, param any, material []byte) ([]byte, error) {
	return func(key, param any, material []byte) ([]byte, error) {
		c, err := a.newCipher(key, param, mode, true)
		if err != nil {
			return nil, err
		}
		if mode == modeCBCPad {
			return c.Once(nil, material)
		}
		if len(material) == 0 {
			return nil, fmt.Errorf("mechanisms: %s: empty key: %w", c.what, ck.CKR_KEY_SIZE_RANGE)
		}
		padded := make([]byte, (len(material)+a.size-1)/a.size*a.size)
		copy(padded, material)
		out := c.crypt(nil, padded)
		clear(padded)
		return out, nil
	}
}

func (a *blockAlg) unwrapper(mode blockMode) func(key, param any, wrapped []byte) ([]byte, error) {
	return func(key, param any, wrapped []byte) ([]byte, error) {
		c, err := a.newCipher(key, param, mode, false)
		if err != nil {
			return nil, err
		}
		if len(wrapped) == 0 || len(wrapped)%a.size != 0 {
			return nil, fmt.Errorf("mechanisms: %s: wrapped key of %d bytes: %w", c.what, len(wrapped), ck.CKR_WRAPPED_KEY_LEN_RANGE)
		}
		out, err := c.Once(nil, wrapped)
		if err != nil {
			return nil, fmt.Errorf("mechanisms: %s: %w", c.what, ck.CKR_WRAPPED_KEY_INVALID)
		}
		return out, nil
	}
}

// unaliasAny is unalias for output that does not line up with src: any
// overlap at all makes a copy.
func unaliasAny(dst, src []byte, n int) []byte {
	if len(src) == 0 || n <= 0 || cap(dst)-len(dst) < n || !overlap(dst[len(dst):len(dst)+n], src) {
		return src
	}
	return bytes.Clone(src)
}

// preparedBlock is a block cipher key's precomputation: the key schedule,
// and for AES the GCM instance for the usual 12-byte IV (cipher.AEAD
// values are safe for concurrent use and keep no per-message state).
type preparedBlock struct {
	alg   *blockAlg
	block cipher.Block
	gcm12 cipher.AEAD
}

// prepare is the rows' Prepare: it runs the key schedule once per key.
func (a *blockAlg) prepare(key any) (any, error) {
	b, err := a.block(key, a.name)
	if err != nil {
		return nil, err
	}
	ps := &preparedBlock{alg: a, block: b}
	if a == aesAlg {
		if ps.gcm12, err = cipher.NewGCM(b); err != nil {
			return nil, fmt.Errorf("mechanisms: aes-gcm: %w (%w)", ck.CKR_GENERAL_ERROR, err)
		}
	}
	return ps, nil
}
