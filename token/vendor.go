package token

import (
	"strings"

	"gohsm/internal/ck"
)

// vendorAttr answers gohsm's vendor attributes (include/gohsm.h), which are
// computed rather than stored: the owning crypto user and the users an
// object is shared with (comma-separated).
func vendorAttr(o *Object, t ck.AttributeType) ([]byte, bool) {
	switch t {
	case ck.CKA_GOHSM_OWNER:
		return []byte(o.owner), true
	case ck.CKA_GOHSM_SHARED_USERS:
		return []byte(strings.Join(o.shared, ",")), true
	}
	return nil, false
}
