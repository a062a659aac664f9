//go:build !linux

package logincache

import (
	"errors"
	"time"
)

// Kernel is the kernel keyring, which only Linux has: elsewhere every
// lookup misses.
var Kernel Keyring = none{}

var errNoKeyring = errors.New("logincache: no kernel keyring on this system")

type none struct{}

func (none) Search(string) (int, error)              { return 0, errNoKeyring }
func (none) Read(int) ([]byte, error)                { return nil, errNoKeyring }
func (none) Add(string, []byte, time.Duration) error { return errNoKeyring }
func (none) Invalidate(int) error                    { return errNoKeyring }
