package attrs

import "gohsm/internal/ck"

// extraSchemas / extraSecrets: schemas and secret attributes added beyond
// the base tables and hmac_keys.go (e.g. the Montgomery key types), so the
// exhaustive counts in the tests stay exact.
var (
	extraSchemas = 0
	extraSecrets []struct {
		class ck.ObjectClass
		kt    ck.KeyType
		a     ck.AttributeType
	}
)
