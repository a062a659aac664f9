package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/crypto/argon2"

	"gohsm/internal/ck"
)

// Secret material at rest: the password KDF, AES-256-GCM sealing and the
// per-attribute Sealer. Format 1 sealed every attribute under one token key
// that each user's password unwrapped (WrapTokenKey, UnwrapTokenKey: still
// read, to upgrade format-1 tokens); format 2 seals each object under its
// own data key (keys.go; docs/store.md has the threat model).

// TokenKeySize is the size of the token key and of every KEK (AES-256).
const TokenKeySize = 32

// DefaultKDF is the argon2id cost for new passwords: RFC 9106's second
// recommended option (t=3, 64 MiB; section 4 asks for t=3 when only 64 MiB
// can be spent) with two lanes for our two-core target. One derivation
// measured 92-217 ms on the 2-core build machine under load (t=1: 34-157
// ms); the cost is paid once per C_Login and per password change. The
// module's configuration defaults to it (token.DefaultConfig).
// Tests use a cheap setting (Time 1, Memory 64 KiB).
var DefaultKDF = KDFParams{Time: 3, Memory: 64 * 1024, Threads: 2}

// Bounds on argon2id parameters, from the configuration or read from a user
// record: argon2 allocates Memory KiB and runs Time passes over it before it
// returns, while the caller holds the slot's lock, so a record with
// kdf_memory = 2^32-1 would crash the host (out of memory) and one with
// kdf_time = 2^32-1 would never return. MaxKDFCost bounds Time x Memory:
// 1 GiB-pass is t=1 at 1 GiB or t=16 at 64 MiB, about 2.5 s on the build
// machine; DefaultKDF costs 192 MiB-passes.
const (
	MaxKDFTime    = 16
	MaxKDFMemory  = 1 << 20 // KiB: 1 GiB
	MaxKDFThreads = 64
	MaxKDFCost    = 1 << 20 // Time x Memory, KiB-passes
)

// Validate reports parameters argon2 cannot run with (it would panic) or
// that exceed the bounds above.
func (p KDFParams) Validate() error {
	if p.Time < 1 || p.Time > MaxKDFTime || p.Threads < 1 || p.Threads > MaxKDFThreads ||
		p.Memory < 8*uint32(p.Threads) || p.Memory > MaxKDFMemory ||
		uint64(p.Time)*uint64(p.Memory) > MaxKDFCost {
		return fmt.Errorf("store: argon2id t=%d m=%d KiB p=%d: %w", p.Time, p.Memory, p.Threads, ErrKDFParams)
	}
	return nil
}

// ErrKDFParams: argon2id parameters out of bounds (KDFParams.Validate).
var ErrKDFParams = errors.New("store: argon2id parameters out of bounds (t 1..16, p 1..64, m 8 KiB per lane to 1 GiB, t x m at most 1 GiB)")

// NewTokenKey returns a fresh random token key.
func NewTokenKey() []byte {
	k := make([]byte, TokenKeySize)
	if _, err := rand.Read(k); err != nil {
		// crypto/rand.Read never returns an error on supported platforms.
		panic("store: crypto/rand: " + err.Error())
	}
	return k
}

// NewSalt returns a fresh 16-byte KDF salt.
func NewSalt() []byte {
	s := make([]byte, 16)
	if _, err := rand.Read(s); err != nil {
		panic("store: crypto/rand: " + err.Error())
	}
	return s
}

// DeriveKEK derives the key that wraps the token key for one user. Callers
// check p with Validate first: argon2 panics on parameters it cannot run
// with, and runs as long and as large as it is told.
func DeriveKEK(password, salt []byte, p KDFParams) []byte {
	return argon2.IDKey(password, salt, p.Time, p.Memory, p.Threads, TokenKeySize)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != TokenKeySize {
		return nil, fmt.Errorf("store: key is %d bytes, want %d", len(key), TokenKeySize)
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("store: aes: %w", err)
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		return nil, fmt.Errorf("store: gcm: %w", err)
	}
	return g, nil
}

// seal returns nonce || ciphertext || tag with a random 12-byte nonce.
// Random nonces are safe here: a token key seals far fewer than the 2^32
// messages NIST SP 800-38D allows per key with random nonces.
func seal(g cipher.AEAD, plain, aad []byte) []byte {
	out := make([]byte, g.NonceSize(), g.NonceSize()+len(plain)+g.Overhead())
	if _, err := rand.Read(out); err != nil {
		panic("store: crypto/rand: " + err.Error())
	}
	return g.Seal(out, out, plain, aad)
}

var errShort = errors.New("store: sealed value too short")

func open(g cipher.AEAD, sealed, aad []byte) ([]byte, error) {
	if len(sealed) < g.NonceSize()+g.Overhead() {
		return nil, errShort
	}
	n := g.NonceSize()
	return g.Open(nil, sealed[:n], sealed[n:], aad)
}

func tokenKeyAAD(user string) []byte {
	return append([]byte("gohsm token key v1\x00"), user...)
}

// WrapTokenKey seals tokenKey under kek for user. The user name is in the
// AAD so a wrapped key copied onto another user's record does not open.
func WrapTokenKey(kek, tokenKey []byte, user string) ([]byte, error) {
	g, err := newGCM(kek)
	if err != nil {
		return nil, err
	}
	return seal(g, tokenKey, tokenKeyAAD(user)), nil
}

// UnwrapTokenKey opens a wrapped token key; any authentication failure
// (wrong password, other user's record, tampering) is ErrWrongPassword.
func UnwrapTokenKey(kek, wrapped []byte, user string) ([]byte, error) {
	g, err := newGCM(kek)
	if err != nil {
		return nil, err
	}
	k, err := open(g, wrapped, tokenKeyAAD(user))
	if err != nil {
		return nil, fmt.Errorf("store: unwrap token key for %q: %w", user, ErrWrongPassword)
	}
	return k, nil
}

// Sealer seals and opens attribute values under one token key. It holds the
// AES-GCM instance so each call costs one GCM operation and no key schedule.
// It is safe for concurrent use.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer returns a Sealer for tokenKey.
func NewSealer(tokenKey []byte) (*Sealer, error) {
	g, err := newGCM(tokenKey)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: g}, nil
}

// attrAAD binds a sealed value to its object and attribute: the fixed-size
// type comes first so the variable-length unique ID cannot be shifted into it.
func attrAAD(uniqueID string, t ck.AttributeType) []byte {
	aad := make([]byte, 0, 16+8+len(uniqueID))
	aad = append(aad, "gohsm attr v1\x00"...)
	aad = binary.BigEndian.AppendUint64(aad, uint64(t))
	return append(aad, uniqueID...)
}

// Seal encrypts the value of attribute t of the object uniqueID.
func (s *Sealer) Seal(uniqueID string, t ck.AttributeType, plain []byte) []byte {
	return seal(s.aead, plain, attrAAD(uniqueID, t))
}

// Open decrypts a value sealed for (uniqueID, t); anything else is ErrSealed.
func (s *Sealer) Open(uniqueID string, t ck.AttributeType, sealed []byte) ([]byte, error) {
	p, err := open(s.aead, sealed, attrAAD(uniqueID, t))
	if err != nil {
		return nil, fmt.Errorf("store: open attribute %#x of %q: %w", uint64(t), uniqueID, ErrSealed)
	}
	return p, nil
}

// SealAttr is Sealer.Seal for a one-off call.
func SealAttr(tokenKey []byte, uniqueID string, t ck.AttributeType, plain []byte) ([]byte, error) {
	s, err := NewSealer(tokenKey)
	if err != nil {
		return nil, err
	}
	return s.Seal(uniqueID, t, plain), nil
}

// OpenAttr is Sealer.Open for a one-off call.
func OpenAttr(tokenKey []byte, uniqueID string, t ck.AttributeType, sealed []byte) ([]byte, error) {
	s, err := NewSealer(tokenKey)
	if err != nil {
		return nil, err
	}
	return s.Open(uniqueID, t, sealed)
}
