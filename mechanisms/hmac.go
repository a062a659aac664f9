package mechanisms

import (
	"crypto"
	"crypto/hmac"
	"fmt"
	"hash"
	"io"
	"sync"

	"gohsm/internal/ck"
)

// Generic secret and HMAC key sizes, bytes. The spec sets no bounds for
// CKK_GENERIC_SECRET; HMAC takes any key length (RFC 2104 §3, FIPS 198-1
// §4: keys longer than the hash block are hashed first). 1..1024 bytes covers
// every use we know of (AWS CloudHSM allows 1..800) and keeps a key value
// small enough to hold in one store row.
const (
	secretMinBytes = 1
	secretMaxBytes = 1024
)

// HMAC rows accept CKK_GENERIC_SECRET and their own CKK_<h>_HMAC type
// (PKCS#11 v3.0 added the latter); HKDF rows take CKK_HKDF.
func init() {
	// keys.go (owned by the EC family) maps key types to Go
	// representations; until it lists these, HMAC and HKDF keys are
	// registered here. They are []byte like every secret key.
	for _, a := range digestAlgs {
		if _, ok := keyClasses[a.keyType]; !ok {
			keyClasses[a.keyType] = classSecret
		}
	}
	if _, ok := keyClasses[ck.CKK_HKDF]; !ok {
		keyClasses[ck.CKK_HKDF] = classSecret
	}
}

// generateSecret is CKM_GENERIC_SECRET_KEY_GEN (PKCS#11 v3.0 "Generic secret
// key generation"), CKM_<h>_KEY_GEN ("SHA-256 key generation" etc.) and
// CKM_HKDF_KEY_GEN: CKA_VALUE_LEN random bytes. The guard has checked the
// length against the row.
func generateSecret(r io.Reader, p KeyGenParams) (any, error) {
	k := make([]byte, p.ValueLen)
	if _, err := io.ReadFull(r, k); err != nil {
		return nil, fmt.Errorf("mechanisms: secret key gen: %w (%w)", ck.CKR_FUNCTION_FAILED, err)
	}
	return k, nil
}

// hmacOp is one HMAC signing or verification (PKCS#11 v3.0 "SHA-256-HMAC",
// "General-length SHA-256-HMAC", ...): the MAC is the first n bytes of
// HMAC(key, data) (RFC 2104 §5, truncation to the leftmost bits).
type hmacOp struct {
	mac  hash.Hash
	n    int
	sum  [64]byte  // the full MAC, computed here so Sign appends exactly n bytes
	pool *hmacPool // where the operation goes back when it is over (prepared keys)
	done bool      // released: the MAC was computed
}

// hmacPool is an HMAC row's Prepare state: keyed HMAC instances of one key,
// reused across operations (Reset brings one back to "keyed, no data"),
// which saves the two key-block hashes and the allocations of hmac.New on
// every C_SignInit. A pool, not one instance, because sessions use a key
// concurrently.
type hmacPool struct {
	h    crypto.Hash
	key  []byte
	pool sync.Pool
}

// get returns a keyed operation of output length n from the pool.
func (p *hmacPool) get(n int) *hmacOp {
	if o, ok := p.pool.Get().(*hmacOp); ok {
		o.mac.Reset()
		o.n, o.done = n, false
		return o
	}
	return &hmacOp{mac: hmac.New(p.h.New, p.key), n: n, pool: p}
}

// release hands a pooled operation (a prepared key's) back once the MAC
// is computed: it is done, and a later use by the same holder is refused
// until the pool hands it out again (the token never makes one). An
// operation of an unprepared key stays usable after Reset (SP 800-108
// reuses one across blocks).
func (h *hmacOp) release() {
	if h.pool != nil {
		h.done = true
		h.pool.pool.Put(h)
	}
}

// prepareHMAC is the HMAC rows' Prepare.
func prepareHMAC(h crypto.Hash) func(key any) (any, error) {
	return func(key any) (any, error) {
		k, ok := key.([]byte)
		if !ok {
			return nil, fmt.Errorf("mechanisms: hmac with %T: %w", key, ck.CKR_KEY_TYPE_INCONSISTENT)
		}
		return &hmacPool{h: h, key: k}, nil
	}
}

// errHMACDone: the operation was used after it ended (a caller bug).
var errHMACDone = fmt.Errorf("mechanisms: hmac: operation already ended: %w", ck.CKR_OPERATION_NOT_INITIALIZED)

func (h *hmacOp) Update(p []byte) error {
	if h.done {
		return errHMACDone
	}
	h.mac.Write(p) // never fails
	return nil
}

func (h *hmacOp) Size() int { return h.n }

func (h *hmacOp) Sign(dst []byte) ([]byte, error) {
	if h.done {
		return dst, errHMACDone
	}
	dst = append(dst, h.mac.Sum(h.sum[:0])[:h.n]...)
	h.release()
	return dst, nil
}

// Verify compares in constant time (hmac.Equal); a MAC of the wrong length
// is CKR_SIGNATURE_LEN_RANGE (PKCS#11 v3.0 C_Verify).
func (h *hmacOp) Verify(sig []byte) error {
	if len(sig) != h.n {
		return fmt.Errorf("mechanisms: hmac: mac of %d bytes, want %d: %w", len(sig), h.n, ck.CKR_SIGNATURE_LEN_RANGE)
	}
	if h.done {
		return errHMACDone
	}
	ok := hmac.Equal(h.mac.Sum(h.sum[:0])[:h.n], sig)
	h.release()
	if !ok {
		return fmt.Errorf("mechanisms: hmac: %w", ck.CKR_SIGNATURE_INVALID)
	}
	return nil
}

// Reset returns the operation to its state right after the constructor
// (same key, same length, no data), for SP 800-108, which MACs block after
// block with one key: it saves the key schedule (two hash blocks) and the
// allocations of a new HMAC. Not for an operation of a prepared key, which
// goes back to its pool when it ends.
func (h *hmacOp) Reset() { h.mac.Reset() }

// newHMAC sets up an HMAC over hash h with output length n (0: full).
func newHMAC(h crypto.Hash, key any, n int) (*hmacOp, error) {
	if n == 0 {
		n = h.Size()
	}
	if pk, ok := key.(*Prepared); ok {
		if p, ok := pk.State.(*hmacPool); ok && p.h == h {
			return p.get(n), nil
		}
		key = pk.Key
	}
	k, ok := key.([]byte)
	if !ok {
		return nil, fmt.Errorf("mechanisms: hmac with %T: %w", key, ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	return &hmacOp{mac: hmac.New(h.New, k), n: n}, nil
}

// hmacGeneralLen reads CK_MAC_GENERAL_PARAMS: the MAC length in bytes,
// 1..hash size (PKCS#11 v3.0 "General-length SHA-256-HMAC": "in the range
// 1-32").
func hmacGeneralLen(h crypto.Hash, param any) (int, error) {
	n, ok := param.(ck.ULong)
	if !ok {
		return 0, fmt.Errorf("mechanisms: hmac general: parameter %T: %w", param, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	if n < 1 || n > ck.ULong(h.Size()) {
		return 0, fmt.Errorf("mechanisms: hmac general: length %d not in 1..%d: %w", n, h.Size(), ck.CKR_MECHANISM_PARAM_INVALID)
	}
	return int(n), nil
}

func hmacRows() []Mechanism {
	rows := []Mechanism{{
		Type: ck.CKM_GENERIC_SECRET_KEY_GEN, InfoBits: true,
		KeyTypes:    []ck.KeyType{ck.CKK_GENERIC_SECRET},
		MinKeySize:  secretMinBytes,
		MaxKeySize:  secretMaxBytes,
		GenerateKey: generateSecret,
	}}
	for _, a := range digestAlgs {
		h := a.hash
		keys := []ck.KeyType{ck.CKK_GENERIC_SECRET, a.keyType}
		rows = append(rows,
			Mechanism{
				Type: a.hmac, KeyTypes: keys, MinKeySize: secretMinBytes, MaxKeySize: secretMaxBytes,
				Prepare: prepareHMAC(h),
				Sign:    func(key, _ any) (Signer, error) { return newHMAC(h, key, 0) },
				Verify:  func(key, _ any) (Verifier, error) { return newHMAC(h, key, 0) },
			},
			Mechanism{
				Type: a.hmacGeneral, KeyTypes: keys, MinKeySize: secretMinBytes, MaxKeySize: secretMaxBytes,
				Param: ParamULong, Prepare: prepareHMAC(h),
				Sign: func(key, param any) (Signer, error) {
					n, err := hmacGeneralLen(h, param)
					if err != nil {
						return nil, err
					}
					return newHMAC(h, key, n)
				},
				Verify: func(key, param any) (Verifier, error) {
					n, err := hmacGeneralLen(h, param)
					if err != nil {
						return nil, err
					}
					return newHMAC(h, key, n)
				},
			},
			Mechanism{
				Type: a.keyGen, KeyTypes: []ck.KeyType{a.keyType},
				MinKeySize: secretMinBytes, MaxKeySize: secretMaxBytes,
				GenerateKey: generateSecret,
			},
		)
	}
	return rows
}
