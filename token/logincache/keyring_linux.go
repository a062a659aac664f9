package logincache

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// Kernel is the kernel's user keyring of the process's uid (@u,
// KEY_SPEC_USER_KEYRING): every process of the uid finds its keys, no
// other uid does (keyrings(7)).
var Kernel Keyring = kernel{}

type kernel struct{}

// Permissions of an entry (keyctl_setperm(3)): view, read, write, search
// and setattr for its possessor and for its uid; nothing for its group nor
// for others. Possession alone would not do: a process whose session
// keyring does not link @u (a container's) does not possess @u's keys.
const entryPerm = uint32(permAll<<24 | permAll<<16)

// The permission bits of keyctl_setperm(3), per class (possessor << 24,
// user << 16, group << 8, other).
const (
	permView    = 0x01
	permRead    = 0x02
	permWrite   = 0x04
	permSearch  = 0x08
	permSetattr = 0x20
	permAll     = permView | permRead | permWrite | permSearch | permSetattr
)

// missed reports the errors of a key that is not there or no longer
// usable: absent, expired, revoked or invalidated.
func missed(err error) bool {
	return errors.Is(err, unix.ENOKEY) || errors.Is(err, unix.EKEYEXPIRED) || errors.Is(err, unix.EKEYREVOKED)
}

func (kernel) Search(desc string) (int, error) {
	id, err := unix.KeyctlSearch(unix.KEY_SPEC_USER_KEYRING, "user", desc, 0)
	if missed(err) {
		return 0, ErrMiss
	}
	if err != nil {
		return 0, fmt.Errorf("keyctl search: %w", err)
	}
	return id, nil
}

func (kernel) Read(id int) ([]byte, error) {
	buf := make([]byte, 2*payloadSize)
	n, err := unix.KeyctlBuffer(unix.KEYCTL_READ, id, buf, 0)
	if missed(err) {
		return nil, ErrMiss
	}
	if err != nil {
		return nil, fmt.Errorf("keyctl read: %w", err)
	}
	if n > len(buf) {
		return nil, fmt.Errorf("keyctl read: entry of %d bytes", n) // not ours
	}
	return buf[:n], nil
}

func (kernel) Add(desc string, payload []byte, ttl time.Duration) error {
	id, err := unix.AddKey("user", desc, payload, unix.KEY_SPEC_USER_KEYRING)
	if err != nil {
		return fmt.Errorf("add_key: %w", err)
	}
	// The expiry first: an entry must never outlive its TTL, even when
	// the permissions cannot be set.
	secs := int((ttl + time.Second - 1) / time.Second)
	if _, err := unix.KeyctlInt(unix.KEYCTL_SET_TIMEOUT, id, secs, 0, 0); err != nil {
		kernel{}.Invalidate(id)
		return fmt.Errorf("keyctl set_timeout: %w", err)
	}
	if err := unix.KeyctlSetperm(id, entryPerm); err != nil {
		kernel{}.Invalidate(id)
		return fmt.Errorf("keyctl setperm: %w", err)
	}
	return nil
}

func (kernel) Invalidate(id int) error {
	_, err := unix.KeyctlInt(unix.KEYCTL_INVALIDATE, id, 0, 0, 0)
	if err == nil || missed(err) {
		return nil
	}
	// Kernels before 3.5 lack KEYCTL_INVALIDATE: unlinking from @u
	// leaves the key to the garbage collector.
	if _, uerr := unix.KeyctlInt(unix.KEYCTL_UNLINK, id, unix.KEY_SPEC_USER_KEYRING, 0, 0); uerr == nil || missed(uerr) {
		return nil
	}
	return fmt.Errorf("keyctl invalidate: %w", err)
}
