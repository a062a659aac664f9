package mechanisms

import (
	"fmt"

	"gohsm/internal/ck"
)

// maxBuffered bounds the input a multi-part operation keeps in memory
// because it must see all of it before answering (AES-GCM, Ed25519 and
// Ed25519ctx, raw-input signatures): 1 GiB. The mechanisms' own limits
// are far above it (GCM: 2^39-256 bits), and Go's out-of-memory is fatal
// to the host, so beyond it the token answers CKR_DEVICE_MEMORY ("the
// token does not have sufficient memory"); the operation ends, as after
// any error. Tests lower it.
var maxBuffered = 1 << 30

// buffer appends a part to the operation's buffered input, within
// maxBuffered.
func buffer(buf, part []byte, what string) ([]byte, error) {
	if len(part) > maxBuffered-len(buf) {
		return buf, fmt.Errorf("mechanisms: %s: %d bytes of multi-part input to hold, more than %d: %w",
			what, len(buf)+len(part), maxBuffered, ck.CKR_DEVICE_MEMORY)
	}
	return append(buf, part...), nil
}
