package mechanisms

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"

	"gohsm/internal/ck"
)

// Message-based AEAD (PKCS#11 v3.0 base specification, "Message-based
// encryption functions"; Current Mechanisms, CK_GCM_MESSAGE_PARAMS and
// CK_CCM_MESSAGE_PARAMS). One context seals or opens many messages under
// one key; each message brings its IV (nonce), AAD and tag buffer. The
// mechanism parameter of C_MessageEncryptInit itself carries nothing for
// GCM and CCM and is ignored.
//
// On encryption the IV may be generated, keeping its leftmost ulIvFixedBits
// bits from the caller:
//
//	CKG_NO_GENERATE           the IV as given
//	CKG_GENERATE, _RANDOM     the other bits random
//	CKG_GENERATE_COUNTER      the other bits a per-context message counter (0, 1, ...)
//	CKG_GENERATE_COUNTER_XOR  the counter XORed into the other bits of the given IV
//
// and the IV used is written back into MessageParams.IV. On decryption the
// IV is used as given whatever the generator says (the sender generated it).

// errIVExhausted: the counter outgrew the IV's non-fixed bits.
var errIVExhausted = errors.New("iv counter exhausted")

// ivGen generates a message IV in place.
type ivGen struct {
	counter uint64
}

func (g *ivGen) next(iv []byte, fixedBits int, gen ck.ULong, what string) error {
	if fixedBits < 0 || fixedBits > 8*len(iv) {
		return fmt.Errorf("mechanisms: %s: %d fixed bits of a %d-byte iv: %w", what, fixedBits, len(iv), ck.CKR_MECHANISM_PARAM_INVALID)
	}
	free := 8*len(iv) - fixedBits
	if gen != ck.CKG_NO_GENERATE && free == 0 {
		return fmt.Errorf("mechanisms: %s: no iv bits to generate: %w", what, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	var src [256]byte
	s := src[:len(iv)]
	xor := false
	switch gen {
	case ck.CKG_NO_GENERATE:
		return nil
	case ck.CKG_GENERATE, ck.CKG_GENERATE_RANDOM:
		if _, err := rand.Read(s); err != nil {
			return fmt.Errorf("mechanisms: %s: %w (%w)", what, ck.CKR_FUNCTION_FAILED, err)
		}
	case ck.CKG_GENERATE_COUNTER, ck.CKG_GENERATE_COUNTER_XOR:
		if free < 64 && g.counter>>free != 0 {
			return fmt.Errorf("mechanisms: %s: %w: %w", what, errIVExhausted, ck.CKR_FUNCTION_FAILED)
		}
		var c [8]byte
		binary.BigEndian.PutUint64(c[:], g.counter)
		if len(s) >= 8 {
			copy(s[len(s)-8:], c[:])
		} else {
			copy(s, c[8-len(s):])
		}
		g.counter++
		xor = gen == ck.CKG_GENERATE_COUNTER_XOR
	default:
		return fmt.Errorf("mechanisms: %s: iv generator %d: %w", what, gen, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	for i := range iv {
		var mask byte
		switch {
		case 8*(i+1) <= fixedBits:
			continue
		case 8*i >= fixedBits:
			mask = 0xff
		default:
			mask = 0xff >> (fixedBits - 8*i)
		}
		if xor {
			iv[i] ^= s[i] & mask
		} else {
			iv[i] = iv[i]&^mask | s[i]&mask
		}
	}
	clear(s)
	return nil
}

// gcmMessage is a message-based AES-GCM context. The AEAD for 12-byte IVs
// (nearly every caller's) is made once; others are made per message.
type gcmMessage struct {
	b       cipher.Block
	aead12  cipher.AEAD
	encrypt bool
	gen     ivGen
	scratch []byte
}

func aesGCMMessageEncrypt(key, param any) (MessageAEAD, error) { return newGCMMessage(key, true) }
func aesGCMMessageDecrypt(key, param any) (MessageAEAD, error) { return newGCMMessage(key, false) }

func newGCMMessage(key any, encrypt bool) (*gcmMessage, error) {
	b, err := aesAlg.block(key, "aes-gcm message")
	if err != nil {
		return nil, err
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		return nil, cryptoErr("aes-gcm message", err)
	}
	return &gcmMessage{b: b, aead12: a, encrypt: encrypt}, nil
}

func (g *gcmMessage) params(p *MessageParams) (cipher.AEAD, int, error) {
	if p == nil || len(p.IV) < 1 || len(p.IV) > gcmMaxIV || !gcmTagBits(p.TagBits) || len(p.Tag) < p.TagBits/8 {
		return nil, 0, fmt.Errorf("mechanisms: aes-gcm message: parameters: %w", ck.CKR_MECHANISM_PARAM_INVALID)
	}
	if len(p.IV) == 12 {
		return g.aead12, p.TagBits / 8, nil
	}
	a, err := cipher.NewGCMWithNonceSize(g.b, len(p.IV))
	if err != nil {
		return nil, 0, fmt.Errorf("mechanisms: aes-gcm message: %w (%w)", ck.CKR_MECHANISM_PARAM_INVALID, err)
	}
	return a, p.TagBits / 8, nil
}

func (g *gcmMessage) Encrypt(dst []byte, p *MessageParams, aad, plaintext []byte) ([]byte, error) {
	if !g.encrypt {
		return dst, fmt.Errorf("mechanisms: aes-gcm message: decryption context: %w", ck.CKR_OPERATION_NOT_INITIALIZED)
	}
	a, tagLen, err := g.params(p)
	if err != nil {
		return dst, err
	}
	if err := g.gen.next(p.IV, p.IVFixedBits, p.IVGenerator, "aes-gcm message"); err != nil {
		return dst, err
	}
	plaintext = unalias(dst, plaintext, len(plaintext)+gcmFullTag)
	if cap(dst)-len(dst) >= len(plaintext)+gcmFullTag {
		out := a.Seal(dst, p.IV, plaintext, aad)
		copy(p.Tag, out[len(out)-gcmFullTag:][:tagLen])
		return out[:len(out)-gcmFullTag], nil
	}
	out := a.Seal(g.scratch[:0], p.IV, plaintext, aad)
	copy(p.Tag, out[len(out)-gcmFullTag:][:tagLen])
	dst = append(dst, out[:len(out)-gcmFullTag]...)
	g.scratch = out[:0]
	return dst, nil
}

func (g *gcmMessage) Decrypt(dst []byte, p *MessageParams, aad, ciphertext []byte) ([]byte, error) {
	if g.encrypt {
		return dst, fmt.Errorf("mechanisms: aes-gcm message: encryption context: %w", ck.CKR_OPERATION_NOT_INITIALIZED)
	}
	a, tagLen, err := g.params(p)
	if err != nil {
		return dst, err
	}
	// The one-shot AEAD wants ciphertext || tag in one piece: assemble it
	// in the context's scratch space, reused from message to message.
	s := append(append(g.scratch[:0], ciphertext...), p.Tag[:tagLen]...)
	g.scratch = s[:0]
	op := gcm{aead: a, iv: p.IV, aad: aad, tagLen: tagLen}
	n := len(dst)
	dst, err = op.open(dst, s)
	clear(s)
	if err != nil {
		return dst[:n], err
	}
	return dst, nil
}

// ccmMessage is a message-based AES-CCM context.
type ccmMessage struct {
	b       cipher.Block
	encrypt bool
	gen     ivGen
}

func aesCCMMessageEncrypt(key, param any) (MessageAEAD, error) { return newCCMMessage(key, true) }
func aesCCMMessageDecrypt(key, param any) (MessageAEAD, error) { return newCCMMessage(key, false) }

func newCCMMessage(key any, encrypt bool) (*ccmMessage, error) {
	b, err := aesAlg.block(key, "aes-ccm message")
	if err != nil {
		return nil, err
	}
	return &ccmMessage{b: b, encrypt: encrypt}, nil
}

// params checks CK_CCM_MESSAGE_PARAMS: the MAC length is ulMACLen (or,
// when zero, TagBits/8), and ulDataLen must be the message's length.
func (c *ccmMessage) params(p *MessageParams, n int, rv ck.RV) (int, error) {
	if p == nil {
		return 0, fmt.Errorf("mechanisms: aes-ccm message: no parameters: %w", ck.CKR_MECHANISM_PARAM_INVALID)
	}
	macLen := p.MACLen
	if macLen == 0 {
		macLen = p.TagBits / 8
	}
	if err := ccmParamsOK(len(p.IV), macLen, p.DataLen); err != nil {
		return 0, err
	}
	if len(p.Tag) < macLen {
		return 0, fmt.Errorf("mechanisms: aes-ccm message: mac buffer of %d bytes: %w", len(p.Tag), ck.CKR_MECHANISM_PARAM_INVALID)
	}
	if p.DataLen != n {
		return 0, fmt.Errorf("mechanisms: aes-ccm message: %d bytes, ulDataLen %d: %w", n, p.DataLen, rv)
	}
	return macLen, nil
}

func (c *ccmMessage) Encrypt(dst []byte, p *MessageParams, aad, plaintext []byte) ([]byte, error) {
	if !c.encrypt {
		return dst, fmt.Errorf("mechanisms: aes-ccm message: decryption context: %w", ck.CKR_OPERATION_NOT_INITIALIZED)
	}
	macLen, err := c.params(p, len(plaintext), ck.CKR_DATA_LEN_RANGE)
	if err != nil {
		return dst, err
	}
	if err := c.gen.next(p.IV, p.IVFixedBits, p.IVGenerator, "aes-ccm message"); err != nil {
		return dst, err
	}
	plaintext = unalias(dst, plaintext, len(plaintext)+macLen)
	whole, out := extend(dst, len(plaintext)+macLen)
	ccmSeal(c.b, p.IV, aad, plaintext, out)
	copy(p.Tag, out[len(plaintext):])
	clear(out[len(plaintext):])
	return whole[:len(dst)+len(plaintext)], nil
}

func (c *ccmMessage) Decrypt(dst []byte, p *MessageParams, aad, ciphertext []byte) ([]byte, error) {
	if c.encrypt {
		return dst, fmt.Errorf("mechanisms: aes-ccm message: encryption context: %w", ck.CKR_OPERATION_NOT_INITIALIZED)
	}
	macLen, err := c.params(p, len(ciphertext), ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
	if err != nil {
		return dst, err
	}
	ciphertext = unalias(dst, ciphertext, len(ciphertext))
	whole, out := extend(dst, len(ciphertext))
	if !ccmOpen(c.b, p.IV, aad, ciphertext, p.Tag[:macLen], out) {
		return dst, fmt.Errorf("mechanisms: aes-ccm message: %w", ck.CKR_ENCRYPTED_DATA_INVALID)
	}
	return whole, nil
}
