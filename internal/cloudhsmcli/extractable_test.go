package cloudhsmcli

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFilterPublicKeyExtractable: key list shows a public key as
// extractable (TestRenderPublicKeyExtractable), so --filter
// attr.extractable=true finds it too, though the token's public key has
// no CKA_EXTRACTABLE to search by; attr.extractable=false does not.
func TestFilterPublicKeyExtractable(t *testing.T) {
	for _, prof := range []string{"standard", "cloudhsm"} {
		t.Run(prof, func(t *testing.T) {
			e := activatedEnv(t, prof)
			e.must("crypto-user", alicePIN, "", "key", "generate-asymmetric-pair", "ec", "--public-label", "pub", "--private-label", "priv",
				"--curve", "secp256r1", "--public-attributes", "verify=true", "--private-attributes", "sign=true", "extractable=false")
			count := func(filter ...string) int {
				var d struct {
					Total int `json:"total_key_count"`
				}
				require.NoError(t, json.Unmarshal(e.must("crypto-user", alicePIN, "", append([]string{"key", "list", "--filter"}, filter...)...), &d))
				return d.Total
			}
			require.Equal(t, 1, count("attr.extractable=true"), "the public key")
			require.Equal(t, 1, count("attr.extractable=true", "attr.label=pub"))
			require.Equal(t, 1, count("attr.extractable=false"), "the private key")
			require.Equal(t, 0, count("attr.extractable=false", "attr.label=pub"))
		})
	}
}
