package mechanisms

import (
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"fmt"

	"gohsm/internal/ck"
)

// AES key wrap (PKCS#11 v3.0 Current Mechanisms, "AES Key Wrap"):
// CKM_AES_KEY_WRAP is RFC 3394 (NIST SP 800-38F KW) and CKM_AES_KEY_WRAP_KWP
// (CKM_AES_KEY_WRAP_PAD in v2.40) RFC 5649 (KWP). Both take an optional
// parameter: the initial value, 8 bytes for KW (default A6A6A6A6A6A6A6A6)
// or the 4-byte constant half of the alternative initial value for KWP
// (default A65959A6). Besides C_WrapKey/C_UnwrapKey they do single-part
// C_Encrypt/C_Decrypt of the same inputs.

var (
	kwDefaultIV  = [8]byte{0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6}
	kwpDefaultIV = [4]byte{0xa6, 0x59, 0x59, 0xa6}
)

// kwParam is the ParamKind of the key wrap rows: an optional IV (NULL
// meaning the RFC's default), hence ParamOptional on the rows.
const kwParam = ParamIV

type keyWrap struct {
	b       cipher.Block
	padded  bool    // KWP
	iv      [8]byte // KW: the IV; KWP: the constant in the first 4 bytes
	encrypt bool
	buf     []byte
}

func (k *keyWrap) what() string {
	if k.padded {
		return "aes-kwp"
	}
	return "aes-kw"
}

func newKeyWrap(key, param any, padded, encrypt bool) (*keyWrap, error) {
	k := &keyWrap{padded: padded, encrypt: encrypt, iv: kwDefaultIV}
	if padded {
		copy(k.iv[:], kwpDefaultIV[:])
	}
	want := 8
	if padded {
		want = 4
	}
	switch iv, ok := param.([]byte); {
	case param == nil || ok && len(iv) == 0:
	case ok && len(iv) == want:
		copy(k.iv[:], iv)
	default:
		return nil, fmt.Errorf("mechanisms: %s: iv %T of %d bytes, want %d or none: %w", k.what(), param, len(iv), want, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	b, err := aesAlg.block(key, k.what())
	if err != nil {
		return nil, err
	}
	k.b = b
	return k, nil
}

// seal wraps p, appending to dst; false when p's length is not allowed
// (KW: whole semiblocks, at least two; KWP: 1 to 2^32-1 bytes).
func (k *keyWrap) seal(dst, p []byte) ([]byte, bool) {
	if !k.padded {
		if len(p)%8 != 0 || len(p) < 16 {
			return dst, false
		}
		dst, out := extend(dst, len(p)+8)
		copy(out[8:], p) // callers pass p not overlapping out (Once unaliases)
		kwW(k.b, k.iv, out)
		return dst, true
	}
	if len(p) == 0 || uint64(len(p)) > 1<<32-1 {
		return dst, false
	}
	n := (len(p) + 7) / 8 * 8
	aiv := k.iv
	binary.BigEndian.PutUint32(aiv[4:], uint32(len(p)))
	dst, out := extend(dst, n+8)
	copy(out[8:], p)
	clear(out[8+len(p):])
	if n == 8 {
		// RFC 5649 §4.1: a single semiblock is one AES block, ECB.
		copy(out, aiv[:])
		k.b.Encrypt(out, out)
		return dst, true
	}
	kwW(k.b, aiv, out)
	return dst, true
}

// open unwraps c, appending the key to dst. lenOK is false when c's length
// cannot be a wrapping, ok false when the integrity check fails.
func (k *keyWrap) open(dst, c []byte) (out []byte, lenOK, ok bool) {
	if len(c)%8 != 0 || len(c) < 16 || !k.padded && len(c) < 24 {
		return dst, false, false
	}
	whole, buf := extend(dst, len(c))
	copy(buf, c)
	var a [8]byte
	if k.padded && len(c) == 16 {
		k.b.Decrypt(buf, buf)
		copy(a[:], buf)
	} else {
		a = kwWInv(k.b, buf)
	}
	r := buf[8:]
	if !k.padded {
		good := subtle.ConstantTimeCompare(a[:], k.iv[:])
		if good != 1 {
			clear(buf)
			return dst, true, false
		}
		copy(buf, r)
		clear(buf[len(r):])
		return whole[:len(dst)+len(r)], true, true
	}
	// RFC 5649 §3: the constant, 8*(n-1) < MLI <= 8*n, zero padding.
	mli := int(binary.BigEndian.Uint32(a[4:]))
	good := subtle.ConstantTimeCompare(a[:4], k.iv[:4])
	if mli <= len(r)-8 || mli > len(r) {
		good = 0
	} else {
		var nz byte
		for _, x := range r[mli:] {
			nz |= x
		}
		good &= subtle.ConstantTimeByteEq(nz, 0)
	}
	if good != 1 {
		clear(buf)
		return dst, true, false
	}
	copy(buf, r[:mli])
	clear(buf[mli:])
	return whole[:len(dst)+mli], true, true
}

// kwW is RFC 3394 §2.2.1 (index form) in place: buf holds a space for A
// followed by the n semiblocks R[1..n]; on return buf is the wrapping.
func kwW(b cipher.Block, iv [8]byte, buf []byte) {
	n := len(buf)/8 - 1
	var blk [16]byte
	copy(blk[:8], iv[:])
	for j := 0; j < 6; j++ {
		for i := 1; i <= n; i++ {
			r := buf[8*i : 8*i+8]
			copy(blk[8:], r)
			b.Encrypt(blk[:], blk[:])
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(blk[:8], binary.BigEndian.Uint64(blk[:8])^t)
			copy(r, blk[8:])
		}
	}
	copy(buf[:8], blk[:8])
	clear(blk[:])
}

// kwWInv is RFC 3394 §2.2.2 in place: buf is the wrapping; on return
// buf[8:] holds R[1..n] and the recovered A is returned.
func kwWInv(b cipher.Block, buf []byte) [8]byte {
	n := len(buf)/8 - 1
	var blk [16]byte
	copy(blk[:8], buf[:8])
	for j := 5; j >= 0; j-- {
		for i := n; i >= 1; i-- {
			r := buf[8*i : 8*i+8]
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(blk[:8], binary.BigEndian.Uint64(blk[:8])^t)
			copy(blk[8:], r)
			b.Decrypt(blk[:], blk[:])
			copy(r, blk[8:])
		}
	}
	var a [8]byte
	copy(a[:], blk[:8])
	clear(blk[:])
	return a
}

func (k *keyWrap) Once(dst, src []byte) ([]byte, error) {
	src = unaliasAny(dst, src, len(src)+8)
	if k.encrypt {
		out, ok := k.seal(dst, src)
		if !ok {
			return dst, fmt.Errorf("mechanisms: %s: %d bytes: %w", k.what(), len(src), ck.CKR_DATA_LEN_RANGE)
		}
		return out, nil
	}
	out, lenOK, ok := k.open(dst, src)
	switch {
	case !lenOK:
		return dst, fmt.Errorf("mechanisms: %s: %d bytes: %w", k.what(), len(src), ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
	case !ok:
		return dst, fmt.Errorf("mechanisms: %s: integrity check: %w", k.what(), ck.CKR_ENCRYPTED_DATA_INVALID)
	}
	return out, nil
}

// Update and Final exist for the interface; the rows are single-part, so
// the token never calls them, but they behave as a buffered Once.
func (k *keyWrap) Update(dst, src []byte) ([]byte, error) {
	k.buf = append(k.buf, src...)
	return dst, nil
}

func (k *keyWrap) Final(dst []byte) ([]byte, error) {
	out, err := k.Once(dst, k.buf)
	clear(k.buf)
	k.buf = k.buf[:0]
	return out, err
}

func (k *keyWrap) MaxOutput(n int, once bool) int {
	if !once && n > 0 {
		return 0
	}
	if !once {
		n = len(k.buf)
	}
	if k.encrypt {
		return (n+7)/8*8 + 8
	}
	return max(n-8, 0)
}

func kwCipher(padded, encrypt bool) func(key, param any) (Cipher, error) {
	return func(key, param any) (Cipher, error) {
		k, err := newKeyWrap(key, param, padded, encrypt)
		if err != nil {
			return nil, err
		}
		return k, nil
	}
}

func kwWrapKey(padded bool) func(key, param any, material []byte) ([]byte, error) {
	return func(key, param any, material []byte) ([]byte, error) {
		k, err := newKeyWrap(key, param, padded, true)
		if err != nil {
			return nil, err
		}
		out, ok := k.seal(nil, material)
		if !ok {
			return nil, fmt.Errorf("mechanisms: %s: key of %d bytes: %w", k.what(), len(material), ck.CKR_KEY_SIZE_RANGE)
		}
		return out, nil
	}
}

func kwUnwrapKey(padded bool) func(key, param any, wrapped []byte) ([]byte, error) {
	return func(key, param any, wrapped []byte) ([]byte, error) {
		k, err := newKeyWrap(key, param, padded, false)
		if err != nil {
			return nil, err
		}
		out, lenOK, ok := k.open(nil, wrapped)
		switch {
		case !lenOK:
			return nil, fmt.Errorf("mechanisms: %s: %d bytes: %w", k.what(), len(wrapped), ck.CKR_WRAPPED_KEY_LEN_RANGE)
		case !ok:
			return nil, fmt.Errorf("mechanisms: %s: integrity check: %w", k.what(), ck.CKR_WRAPPED_KEY_INVALID)
		}
		return out, nil
	}
}
