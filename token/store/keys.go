package store

import (
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hpke"
	"crypto/sha256"
	"fmt"
)

// Format 2 key hierarchy (docs/store.md, "Secret material at rest"):
//
//   - every crypto user has a key pair (HPKE, DHKEM(X25519), HKDF-SHA256,
//     AES-256-GCM). Its private half, the user secret, is sealed under the
//     user's password KEK and, for the officers' resets, to the escrow's
//     public key;
//   - the escrow is one more key pair; its private half is the secret every
//     crypto officer holds under their own password;
//   - every object with sealed attributes has a random data key; the
//     attributes are sealed under it (Sealer, AAD as in format 1) and the
//     data key is wrapped for the owner (symmetric, under a key derived from
//     the owner's secret) and to each sharee's public key (HPKE).
//
// The v1 token key survives only during the upgrade: Legacy holds a user's
// new secret sealed under it until the user's next login.

// UserSecretSize is the size of a user secret (an X25519 private key).
const UserSecretSize = 32

// Key format of a UserRecord's WrappedKey.
const (
	// KeyV1: WrappedKey is the format-1 token key (before the user's first
	// login after the upgrade).
	KeyV1 = 1
	// KeyV2: WrappedKey is the user's secret (a crypto user's private key,
	// a crypto officer's copy of the escrow's private key).
	KeyV2 = 2
)

var (
	hpkeKEM  = hpke.DHKEM(ecdh.X25519())
	hpkeKDF  = hpke.HKDFSHA256()
	hpkeAEAD = hpke.AES256GCM()
)

// NewUserSecret returns a fresh user secret and its public key.
func NewUserSecret() (secret, public []byte, err error) {
	k, err := hpkeKEM.GenerateKey()
	if err != nil {
		return nil, nil, fmt.Errorf("store: new user key: %w", err)
	}
	secret, err = k.Bytes()
	if err != nil {
		return nil, nil, fmt.Errorf("store: new user key: %w", err)
	}
	return secret, k.PublicKey().Bytes(), nil
}

func userSecretAAD(user string) []byte {
	return append([]byte("gohsm user secret v2\x00"), user...)
}

// WrapUserSecret seals a user secret under the user's password KEK, bound
// to the user name.
func WrapUserSecret(kek, secret []byte, user string) ([]byte, error) {
	g, err := newGCM(kek)
	if err != nil {
		return nil, err
	}
	return seal(g, secret, userSecretAAD(user)), nil
}

// UnwrapUserSecret opens WrapUserSecret's output; any authentication
// failure is ErrWrongPassword.
func UnwrapUserSecret(kek, wrapped []byte, user string) ([]byte, error) {
	g, err := newGCM(kek)
	if err != nil {
		return nil, err
	}
	k, err := open(g, wrapped, userSecretAAD(user))
	if err != nil {
		return nil, fmt.Errorf("store: unwrap key of %q: %w", user, ErrWrongPassword)
	}
	return k, nil
}

func legacyAAD(user string) []byte {
	return append([]byte("gohsm legacy v2\x00"), user...)
}

// SealLegacy seals a user's new secret under the format-1 token key during
// the upgrade, for the user to collect at the next login.
func SealLegacy(tokenKey, secret []byte, user string) ([]byte, error) {
	g, err := newGCM(tokenKey)
	if err != nil {
		return nil, err
	}
	return seal(g, secret, legacyAAD(user)), nil
}

// OpenLegacy opens SealLegacy's output (ErrSealed otherwise).
func OpenLegacy(tokenKey, sealed []byte, user string) ([]byte, error) {
	g, err := newGCM(tokenKey)
	if err != nil {
		return nil, err
	}
	k, err := open(g, sealed, legacyAAD(user))
	if err != nil {
		return nil, fmt.Errorf("store: open upgraded key of %q: %w", user, ErrSealed)
	}
	return k, nil
}

func escrowInfo(user string) []byte {
	return append([]byte("gohsm escrow v2\x00"), user...)
}

func dataKeyInfo(uniqueID, user string) []byte {
	b := append([]byte("gohsm data key v2\x00"), uniqueID...)
	b = append(b, 0)
	return append(b, user...)
}

// sealTo is HPKE single-shot encryption to a public key.
func sealTo(public, info, plain []byte) ([]byte, error) {
	pk, err := hpkeKEM.NewPublicKey(public)
	if err != nil {
		return nil, fmt.Errorf("store: public key: %w", err)
	}
	out, err := hpke.Seal(pk, hpkeKDF, hpkeAEAD, info, plain)
	if err != nil {
		return nil, fmt.Errorf("store: hpke seal: %w", err)
	}
	return out, nil
}

// SealEscrow seals a crypto user's secret to the escrow public key.
func SealEscrow(escrowPublic, secret []byte, user string) ([]byte, error) {
	return sealTo(escrowPublic, escrowInfo(user), secret)
}

// SealDataKey wraps an object's data key to a sharee's public key.
func SealDataKey(public, dataKey []byte, uniqueID, user string) ([]byte, error) {
	return sealTo(public, dataKeyInfo(uniqueID, user), dataKey)
}

// Keyring is what a user secret opens: HPKE messages to its public key, and
// the data keys it wrapped for itself as an owner. It is safe for
// concurrent use.
type Keyring struct {
	priv hpke.PrivateKey
	own  cipher.AEAD
}

// NewKeyring makes the keyring of a user secret.
func NewKeyring(secret []byte) (*Keyring, error) {
	if len(secret) != UserSecretSize {
		return nil, fmt.Errorf("store: user secret is %d bytes, want %d", len(secret), UserSecretSize)
	}
	priv, err := hpkeKEM.NewPrivateKey(secret)
	if err != nil {
		return nil, fmt.Errorf("store: user secret: %w", err)
	}
	ownKey, err := hkdf.Key(sha256.New, secret, nil, "gohsm owner data keys v2", TokenKeySize)
	if err != nil {
		return nil, fmt.Errorf("store: hkdf: %w", err)
	}
	defer clear(ownKey)
	g, err := newGCM(ownKey)
	if err != nil {
		return nil, err
	}
	return &Keyring{priv: priv, own: g}, nil
}

// Public is the keyring's public key.
func (k *Keyring) Public() []byte { return k.priv.PublicKey().Bytes() }

func (k *Keyring) openFrom(info, sealed []byte) ([]byte, error) {
	p, err := hpke.Open(k.priv, hpkeKDF, hpkeAEAD, info, sealed)
	if err != nil {
		return nil, ErrSealed
	}
	return p, nil
}

// OpenEscrow opens a crypto user's secret sealed to the escrow (k is the
// escrow's keyring).
func (k *Keyring) OpenEscrow(sealed []byte, user string) ([]byte, error) {
	p, err := k.openFrom(escrowInfo(user), sealed)
	if err != nil {
		return nil, fmt.Errorf("store: open escrowed key of %q: %w", user, err)
	}
	return p, nil
}

// WrapOwnDataKey wraps a data key for the keyring's own user as the
// object's owner.
func (k *Keyring) WrapOwnDataKey(dataKey []byte, uniqueID, user string) []byte {
	return seal(k.own, dataKey, dataKeyInfo(uniqueID, user))
}

// OpenDataKey opens the copy of an object's data key held by user: the
// owner's own copy (owner true) or a sharee's HPKE copy.
func (k *Keyring) OpenDataKey(wrapped []byte, uniqueID, user string, owner bool) ([]byte, error) {
	var p []byte
	var err error
	if owner {
		p, err = open(k.own, wrapped, dataKeyInfo(uniqueID, user))
	} else {
		p, err = k.openFrom(dataKeyInfo(uniqueID, user), wrapped)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open data key of %q for %q: %w", uniqueID, user, ErrSealed)
	}
	return p, nil
}

// NewDataKey returns a fresh random object data key (the same size and
// source as a token key).
func NewDataKey() []byte { return NewTokenKey() }
