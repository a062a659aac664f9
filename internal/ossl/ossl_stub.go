//go:build !cgo

package ossl

import "errors"

// Cgo is false: this build has no libcrypto path.
const Cgo = false

// Without cgo nothing can be loaded: Available says so and every caller
// stays in Go's crypto.
var errNoCgo = errors.New("ossl: built without cgo")

func Available() error { return errNoCgo }

func Version() string { return "" }

type RSAKey struct{}

func NewRSAKey(n, e, d, p, q, dP, dQ, qInv []byte) (*RSAKey, error) { return nil, errNoCgo }

func (k *RSAKey) Private(out, in []byte) error { return errNoCgo }

type P256Key struct{}

func NewP256Key(d []byte) (*P256Key, error) { return nil, errNoCgo }

func (k *P256Key) Sign(out, digest []byte) error { return errNoCgo }

func (k *P256Key) Handle() uintptr { return 0 }

func StrayFrees() uint64 { return 0 }
