// Package logincache keeps, per OS user and for a short time, what a
// password login's KDF unlocked, so that the next process logging in with
// the same password skips argon2 (docs/store.md, "The login cache").
//
// An entry lives in the kernel's user keyring (@u) of the process's uid,
// as a key of type "user" readable by that uid only, with an expiry. Its
// description names the token, the user and the user record's salt and
// wrapped key; its payload is the user's password KEK sealed under a key
// derived from the password itself: a hit still needs the right password.
// Every keyring error makes a miss: the cache never fails a login.
package logincache

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"
)

// TTL bounds and default (login_cache_ttl).
const (
	MinTTL     = time.Second
	MaxTTL     = 24 * time.Hour
	DefaultTTL = 5 * time.Minute
)

// Prefix starts every entry's description.
const Prefix = "gohsm:login:v1:"

// info is HKDF's info prefix; the description follows it.
const info = "gohsm login cache v1"

const (
	version  = 1
	saltSize = 16
	// KEKSize is the size of the KEKs the cache holds (store.DeriveKEK's).
	KEKSize = 32
	// payloadSize: version, salt, GCM nonce, sealed KEK and tag.
	payloadSize = 1 + saltSize + 12 + KEKSize + 16
)

// Keyring is where entries live: the kernel's user keyring (Kernel), or a
// test's.
type Keyring interface {
	// Search finds an entry by description: ErrMiss when there is none.
	Search(desc string) (id int, err error)
	// Read returns an entry's payload.
	Read(id int) ([]byte, error)
	// Add stores an entry (replacing one of the same description) that
	// only the process's uid can find and read, and that expires after ttl.
	Add(desc string, payload []byte, ttl time.Duration) error
	// Invalidate drops an entry.
	Invalidate(id int) error
}

// ErrMiss is a Keyring's answer for an entry that is not there (never
// stored, expired or dropped): not worth a log line.
var ErrMiss = errors.New("logincache: no entry")

// Cache is a login cache. A nil *Cache is the cache turned off: it misses
// and stores nothing.
type Cache struct {
	kr  Keyring
	ttl time.Duration
	// logf logs a keyring error (once per process, see logOnce).
	logf func(msg string, args ...any)
}

// New returns a cache over kr whose entries live for ttl; logf receives
// the first keyring error of the process (at Info: the cache is only
// slower without the keyring).
func New(kr Keyring, ttl time.Duration, logf func(msg string, args ...any)) *Cache {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return &Cache{kr: kr, ttl: ttl, logf: logf}
}

// TTL is how long the cache's entries live.
func (c *Cache) TTL() time.Duration { return c.ttl }

// logged makes a keyring error logged once per process: a token used
// under a seccomp profile that forbids keyctl would otherwise log at
// every login.
var logged sync.Once

func (c *Cache) fail(op string, err error) {
	logged.Do(func() {
		c.logf("gohsm: login cache: the kernel keyring is not usable; logins derive every time", "op", op, "err", err)
	})
}

// Token names a token for Describe: where it lives (a slot directory with
// its symbolic links resolved, or a PostgreSQL database's identity) and
// its serial number, which a re-initialisation changes.
type Token struct {
	Place, Serial string
}

// Describe is the description of a user's entry: Prefix and the SHA-256,
// in hex, of the token, the user's name and the user record's salt and
// wrapped key. A password change, reset or re-initialised token gives
// another description, so an entry made before never matches.
func Describe(tok Token, user string, salt, wrapped []byte) string {
	h := sha256.New()
	for _, f := range [][]byte{[]byte(tok.Place), []byte(tok.Serial), []byte(user), salt, wrapped} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		h.Write(n[:])
		h.Write(f)
	}
	return Prefix + hex.EncodeToString(h.Sum(nil))
}

// sealKey derives the key that seals an entry's KEK from the password:
// HKDF-SHA256, the entry's random salt, info naming the entry.
func sealKey(password, salt []byte, desc string) (cipher.AEAD, error) {
	k, err := hkdf.Key(sha256.New, password, salt, info+desc, 32)
	if err != nil {
		return nil, err
	}
	defer clear(k)
	b, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// seal makes an entry's payload.
func seal(desc string, password, kek []byte) ([]byte, error) {
	if len(kek) != KEKSize {
		return nil, fmt.Errorf("logincache: KEK of %d bytes, want %d", len(kek), KEKSize)
	}
	p := make([]byte, 1+saltSize+12, payloadSize)
	p[0] = version
	if _, err := rand.Read(p[1:]); err != nil {
		return nil, err
	}
	g, err := sealKey(password, p[1:1+saltSize], desc)
	if err != nil {
		return nil, err
	}
	return g.Seal(p, p[1+saltSize:1+saltSize+12], kek, []byte(desc)), nil
}

// open returns the KEK an entry's payload holds, or an error when the
// password is not the one it was sealed with (or the payload is not one).
func open(desc string, password, p []byte) ([]byte, error) {
	if len(p) != payloadSize || p[0] != version {
		return nil, fmt.Errorf("logincache: entry of %d bytes, version %d: not an entry of this version", len(p), firstByte(p))
	}
	g, err := sealKey(password, p[1:1+saltSize], desc)
	if err != nil {
		return nil, err
	}
	kek, err := g.Open(nil, p[1+saltSize:1+saltSize+12], p[1+saltSize+12:], []byte(desc))
	if err != nil {
		return nil, fmt.Errorf("logincache: entry does not open with this password")
	}
	return kek, nil
}

func firstByte(p []byte) int {
	if len(p) == 0 {
		return -1
	}
	return int(p[0])
}

// Lookup returns the KEK of the entry desc if there is one and it opens
// with password; nil otherwise (no entry, a wrong password, no keyring).
// The caller clears the KEK after use.
func (c *Cache) Lookup(desc string, password []byte) []byte {
	if c == nil || desc == "" {
		return nil
	}
	id, err := c.kr.Search(desc)
	if err != nil {
		if !errors.Is(err, ErrMiss) {
			c.fail("search", err)
		}
		return nil
	}
	p, err := c.kr.Read(id)
	if err != nil {
		if !errors.Is(err, ErrMiss) {
			c.fail("read", err)
		}
		return nil
	}
	kek, err := open(desc, password, p)
	if err != nil {
		return nil
	}
	return kek
}

// Store records kek, which password derived, under desc for the cache's
// TTL. Errors only make later lookups miss.
func (c *Cache) Store(desc string, password, kek []byte) {
	if c == nil || desc == "" {
		return
	}
	p, err := seal(desc, password, kek)
	if err != nil {
		c.fail("seal", err)
		return
	}
	if err := c.kr.Add(desc, p, c.ttl); err != nil {
		c.fail("add", err)
	}
}

// Drop removes the entry desc if there is one (best effort: the
// descriptions of a changed user or token no longer match anyway).
func (c *Cache) Drop(desc string) {
	if c == nil || desc == "" {
		return
	}
	id, err := c.kr.Search(desc)
	if err != nil {
		return
	}
	if err := c.kr.Invalidate(id); err != nil && !errors.Is(err, ErrMiss) {
		c.fail("invalidate", err)
	}
}
