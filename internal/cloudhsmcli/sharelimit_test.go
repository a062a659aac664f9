package cloudhsmcli

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestShareLimit: in cloudhsm a key is shared with at most seven crypto
// users besides its owner (UG:cloudhsm_cli-key-share). Eight users in
// --share-crypto-users fail the command and keep no key; `key share` of
// a key shared with seven answers the token's refusal. Standard has no
// limit.
func TestShareLimit(t *testing.T) {
	for _, prof := range []string{"standard", "cloudhsm"} {
		t.Run(prof, func(t *testing.T) {
			e := activatedEnv(t, prof) // alice and bob
			users := []string{"bob"}
			for i := range 7 {
				u := fmt.Sprintf("cu%d", i)
				e.must("admin", adminPIN, "", "user", "create", "--username", u, "--role", "crypto-user", "--password", "cu-pass123")
				users = append(users, u)
			}
			gen := append([]string{"key", "generate-symmetric", "aes", "--label", "eight", "--key-length-bytes", "16", "--share-crypto-users"}, users...)
			r := e.run("crypto-user", alicePIN, "", gen...)
			if prof == "standard" {
				require.Equal(t, 0, r.code, r.stdout)
				return
			}
			require.Contains(t, errText(t, r), "key not kept: sharing it with cu6 failed")
			var d struct {
				Total int `json:"total_key_count"`
			}
			require.NoError(t, json.Unmarshal(e.must("crypto-user", alicePIN, "", "key", "list"), &d))
			require.Equal(t, 0, d.Total)

			e.must("crypto-user", alicePIN, "", gen[:len(gen)-1]...) // seven
			txt := errText(t, e.run("crypto-user", alicePIN, "", "key", "share", "--filter", "attr.label=eight", "--username", "cu6", "--role", "crypto-user"))
			require.Contains(t, txt, "shared with 7 crypto users, the most a key may be shared with besides its owner")
		})
	}
}
