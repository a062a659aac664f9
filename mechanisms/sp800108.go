package mechanisms

import (
	"fmt"

	"gohsm/internal/ck"
)

// prfMAC is one PRF evaluation: the Signer side of an HMAC or CMAC row.
type prfMAC interface {
	Update(p []byte) error
	Sign(dst []byte) ([]byte, error)
	Size() int
}

// kbkdfPRFs are the PRFs of PKCS#11 v3.0 "SP800-108 Pseudo Random
// Functions": the HMACs (hmac.go) and CKM_AES_CMAC / CKM_DES3_CMAC
// (cmac.go). Each returns a fresh MAC keyed with the base key.
func kbkdfPRFs() map[ck.MechanismType]func(key []byte) (prfMAC, error) {
	m := map[ck.MechanismType]func(key []byte) (prfMAC, error){
		ck.CKM_AES_CMAC:  func(key []byte) (prfMAC, error) { return newCMAC(aesAlg, key, nil, false) },
		ck.CKM_DES3_CMAC: func(key []byte) (prfMAC, error) { return newCMAC(des3Alg, key, nil, false) },
	}
	for _, a := range digestAlgs {
		if !a.kbkdf {
			continue
		}
		h := a.hash
		m[a.hmac] = func(key []byte) (prfMAC, error) { return newHMAC(h, key, 0) }
	}
	return m
}

var prfs = kbkdfPRFs()

// kbkdfKeys are the base key types: generic secret, the HMAC key types
// (HMAC PRFs), AES and DES3 (CMAC). Which type suits which PRF is the
// token's check; here a key the PRF cannot take fails when it is keyed.
func kbkdfKeys() []ck.KeyType {
	keys := []ck.KeyType{ck.CKK_GENERIC_SECRET, ck.CKK_AES, ck.CKK_DES3}
	for _, a := range digestAlgs {
		if a.kbkdf {
			keys = append(keys, a.keyType)
		}
	}
	return keys
}

// kbkdfCounter is CKM_SP800_108_COUNTER_KDF (PKCS#11 v3.0 "SP800-108 Key
// Derivation", "Counter Mode KDF"; NIST SP 800-108 §5.1):
//
//	K(i) = PRF(KI, data(i)), i = 1..n, DKM = leftmost L bytes of K(1)||...||K(n)
//
// where data(i) concatenates the CK_PRF_DATA_PARAMs in order: the iteration
// variable (exactly one; the counter i in 8/16/24/32 bits, either
// endianness), byte arrays (non-empty), and at most one DKM length (8..64
// bits, the length in bits of the keys or of the n PRF outputs).
// CK_SP800_108_COUNTER is invalid in counter mode. L is CKA_VALUE_LEN, by
// default the PRF's output length; n may not exceed 2^r-1. Additional
// derived keys are refused when the parameter is decoded.
func kbkdfCounter(base, param any, t DeriveTarget) ([]byte, error) {
	const what = "sp800-108 counter kdf"
	key, err := secretKey(base, what)
	if err != nil {
		return nil, err
	}
	p, ok := param.(*SP800108Params)
	if !ok || p == nil {
		return nil, fmt.Errorf("mechanisms: %s: parameter %T: %w", what, param, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	newPRF, ok := prfs[p.PRF]
	if !ok {
		return nil, fmt.Errorf("mechanisms: %s: prf %v: %w", what, p.PRF, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	var counter, dkm *PRFData
	for i := range p.Data {
		d := &p.Data[i]
		switch d.Type {
		case ck.CK_SP800_108_ITERATION_VARIABLE:
			if counter != nil || d.WidthBits < 8 || d.WidthBits > 32 || d.WidthBits%8 != 0 {
				return nil, fmt.Errorf("mechanisms: %s: iteration variable (%d bits, again: %t): %w", what, d.WidthBits, counter != nil, ck.CKR_MECHANISM_PARAM_INVALID)
			}
			counter = d
		case ck.CK_SP800_108_DKM_LENGTH:
			if dkm != nil || d.WidthBits < 8 || d.WidthBits > 64 || d.WidthBits%8 != 0 ||
				d.DKMMethod != ck.CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS && d.DKMMethod != ck.CK_SP800_108_DKM_LENGTH_SUM_OF_SEGMENTS {
				return nil, fmt.Errorf("mechanisms: %s: dkm length (%d bits, method %d, again: %t): %w", what, d.WidthBits, d.DKMMethod, dkm != nil, ck.CKR_MECHANISM_PARAM_INVALID)
			}
			dkm = d
		case ck.CK_SP800_108_BYTE_ARRAY:
			if len(d.Bytes) == 0 {
				return nil, fmt.Errorf("mechanisms: %s: empty byte array: %w", what, ck.CKR_MECHANISM_PARAM_INVALID)
			}
		default: // CK_SP800_108_COUNTER among them
			return nil, fmt.Errorf("mechanisms: %s: data type %d: %w", what, d.Type, ck.CKR_MECHANISM_PARAM_INVALID)
		}
	}
	if counter == nil {
		return nil, fmt.Errorf("mechanisms: %s: no iteration variable: %w", what, ck.CKR_MECHANISM_PARAM_INVALID)
	}

	mac, err := newPRF(key) // a key the PRF cannot take (AES of 20 bytes) fails here
	if err != nil {
		return nil, err
	}
	h := mac.Size()
	maxBlocks := uint64(1)<<counter.WidthBits - 1
	max := uint64(maxDerivedBytes)
	if maxBlocks*uint64(h) < max {
		max = maxBlocks * uint64(h)
	}
	L, err := deriveLen(what, t, h, int(max))
	if err != nil {
		return nil, err
	}
	n := (L + h - 1) / h
	var dkmValue uint64
	if dkm != nil {
		dkmValue = uint64(L) * 8
		if dkm.DKMMethod == ck.CK_SP800_108_DKM_LENGTH_SUM_OF_SEGMENTS {
			dkmValue = uint64(n*h) * 8
		}
		if dkm.WidthBits < 64 && dkmValue>>dkm.WidthBits != 0 {
			return nil, fmt.Errorf("mechanisms: %s: dkm length %d does not fit %d bits: %w", what, dkmValue, dkm.WidthBits, ck.CKR_TEMPLATE_INCONSISTENT)
		}
	}

	out := make([]byte, 0, n*h)
	var buf [8]byte
	for i := 1; i <= n; i++ {
		if i > 1 {
			if r, ok := mac.(interface{ Reset() }); ok {
				r.Reset() // HMAC: keep the key schedule
			} else if mac, err = newPRF(key); err != nil {
				return nil, err
			}
		}
		for _, d := range p.Data {
			switch d.Type {
			case ck.CK_SP800_108_ITERATION_VARIABLE:
				_ = mac.Update(encodeUint(buf[:], uint64(i), d.WidthBits, d.LittleEndian))
			case ck.CK_SP800_108_DKM_LENGTH:
				_ = mac.Update(encodeUint(buf[:], dkmValue, d.WidthBits, d.LittleEndian))
			case ck.CK_SP800_108_BYTE_ARRAY:
				_ = mac.Update(d.Bytes)
			}
		}
		if out, err = mac.Sign(out); err != nil {
			return nil, err
		}
	}
	clear(out[L:])
	return finishKey(t, out[:L:L]), nil
}

// encodeUint writes the low widthBits of v into buf, big- or little-endian,
// and returns those bytes.
func encodeUint(buf []byte, v uint64, widthBits int, little bool) []byte {
	n := widthBits / 8
	b := buf[:n]
	for j := range n {
		shift := 8 * j
		if little {
			b[j] = byte(v >> shift)
		} else {
			b[n-1-j] = byte(v >> shift)
		}
	}
	return b
}
