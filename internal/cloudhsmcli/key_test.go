package cloudhsmcli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
)

// TestGoldenKeySession runs the key commands as CloudHSM CLI documents
// them (generate, list with filters and pages, share, unshare,
// set-attribute, delete) in both profiles and checks their JSON against
// testdata, key material normalised. The profiles differ in attribute
// defaults, so each has its own files.
func TestGoldenKeySession(t *testing.T) {
	steps := []step{
		{golden: "key-generate-symmetric-aes", pin: alicePIN, args: []string{"key", "generate-symmetric", "aes", "--label", "aes-1", "--key-length-bytes", "32", "--attributes", "encrypt=true", "decrypt=true", "--share-crypto-users", "bob"}},
		{golden: "key-generate-symmetric-generic-secret", pin: alicePIN, args: []string{"key", "generate-symmetric", "generic-secret", "--label", "hmac-1", "--key-length-bytes", "24", "--attributes", "sign=true", "verify=true", "id=0x0102"}},
		{golden: "key-generate-symmetric-session", pin: alicePIN, args: []string{"key", "generate-symmetric", "aes", "--label", "aes-session", "--key-length-bytes", "16", "--session"}},
		{golden: "key-generate-asymmetric-pair-rsa", pin: alicePIN, args: []string{"key", "generate-asymmetric-pair", "rsa", "--public-label", "rsa-pub", "--private-label", "rsa-priv", "--modulus-size-bits", "2048", "--public-exponent", "65537", "--private-attributes", "sign=true", "--public-attributes", "verify=true"}},
		{golden: "key-generate-asymmetric-pair-ec", pin: alicePIN, args: []string{"key", "generate-asymmetric-pair", "ec", "--public-label", "ec-pub", "--private-label", "ec-priv", "--curve", "secp256r1", "--share-crypto-users", "bob"}},
		{golden: "key-list", pin: alicePIN, args: []string{"key", "list"}},
		{golden: "key-list-page-1", pin: alicePIN, args: []string{"key", "list", "--max-items", "2"}},
		{golden: "key-list-page-2", pin: alicePIN, args: []string{"key", "list", "--max-items", "2", "--starting-token", "2"}},
		{golden: "key-list-page-3", pin: alicePIN, args: []string{"key", "list", "--max-items", "2", "--starting-token", "4"}},
		{golden: "key-list-filter-verbose", pin: alicePIN, args: []string{"key", "list", "--filter", "attr.label=aes-1", "attr.class=secret-key", "--verbose"}},
		{golden: "key-list-bob", pin: bobPIN, args: []string{"key", "list", "-v", "--filter", "attr.key-type=aes"}},
		{golden: "key-unshare", pin: alicePIN, args: []string{"key", "unshare", "--filter", "attr.label=aes-1", "--username", "bob", "--role", "crypto-user"}},
		{golden: "key-list-bob-unshared", pin: bobPIN, args: []string{"key", "list", "--filter", "attr.key-type=aes"}},
		{golden: "key-share", pin: alicePIN, args: []string{"key", "share", "--filter", "attr.label=aes-1", "--username", "bob", "--role", "crypto-user"}},
		{golden: "key-set-attribute", pin: alicePIN, args: []string{"key", "set-attribute", "--filter", "attr.label=aes-1", "--name", "label", "--value", "aes-renamed"}},
		{golden: "key-set-attribute-trusted", role: "admin", pin: adminPIN, args: []string{"key", "set-attribute", "--filter", "key-reference=<rsa-pub>", "--name", "trusted", "--value", "true"}},
		{golden: "key-set-attribute-trusted-by-label", role: "admin", pin: adminPIN, args: []string{"key", "set-attribute", "--filter", "attr.label=ec-pub", "--name", "trusted", "--value", "true"}},
		{golden: "key-list-trusted", pin: alicePIN, args: []string{"key", "list", "--filter", "attr.trusted=true"}},
		{golden: "key-list-admin", role: "admin", pin: adminPIN, args: []string{"key", "list", "--verbose"}},
		{golden: "key-delete", pin: alicePIN, args: []string{"key", "delete", "--filter", "attr.label=hmac-1"}},
		{golden: "key-delete-none", fails: true, pin: alicePIN, args: []string{"key", "delete", "--filter", "attr.label=hmac-1"}},
		{golden: "key-delete-many", fails: true, pin: alicePIN, args: []string{"key", "delete", "--filter", "attr.class=private-key"}},
		{golden: "key-list-end", pin: alicePIN, args: []string{"key", "list", "--max-items", "20"}},
	}
	for _, profile := range []string{"standard", "cloudhsm"} {
		t.Run(profile, func(t *testing.T) {
			e := activatedEnv(t, profile)
			var rsaPub string
			for _, s := range steps {
				role := s.role
				if role == "" {
					role = "crypto-user"
				}
				args := append([]string(nil), s.args...)
				for i, a := range args {
					args[i] = strings.ReplaceAll(a, "<rsa-pub>", rsaPub)
				}
				r := e.run(role, s.pin, "", args...)
				want := 0
				if s.fails {
					want = 1
				}
				require.Equal(t, want, r.code, "%s: %s", strings.Join(args, " "), r.stdout)
				golden(t, s.golden+"-"+profile, r.stdout)
				if s.golden == "key-generate-asymmetric-pair-rsa" {
					var d struct {
						Public struct {
							Reference string `json:"key-reference"`
						} `json:"public_key"`
					}
					_, data := envelope(t, r.stdout)
					require.NoError(t, json.Unmarshal(data, &d))
					rsaPub = d.Public.Reference
				}
			}
		})
	}
}

// TestKeyRoleRefusals: an admin generates, deletes, shares no key and sets
// no attribute but trusted; a crypto user does not set trusted; a user a
// key is shared with does not delete, share or change it; keys are shared
// with crypto users only.
func TestKeyRoleRefusals(t *testing.T) {
	for _, profile := range []string{"standard", "cloudhsm"} {
		t.Run(profile, func(t *testing.T) {
			e := activatedEnv(t, profile)
			e.must("crypto-user", alicePIN, "", "key", "generate-symmetric", "aes", "--label", "a", "--key-length-bytes", "16", "--share-crypto-users", "bob")
			onlyCU := ErrWrongRole.Error() + ": only a logged-in crypto-user may run this command"
			for _, args := range [][]string{
				{"key", "generate-symmetric", "aes", "--label", "x", "--key-length-bytes", "16"},
				{"key", "generate-asymmetric-pair", "ec", "--public-label", "x", "--private-label", "y", "--curve", "secp256r1"},
				{"key", "delete", "--filter", "attr.label=a"},
				{"key", "share", "--filter", "attr.label=a", "--username", "bob", "--role", "crypto-user"},
			} {
				require.Equal(t, onlyCU, errText(t, e.run("admin", adminPIN, "", args...)), strings.Join(args, " "))
			}
			require.Equal(t, ErrWrongRole.Error()+": an admin may set only the trusted attribute",
				errText(t, e.run("admin", adminPIN, "", "key", "set-attribute", "--filter", "key-reference=0x1", "--name", "label", "--value", "x")))
			require.Equal(t, "only an admin may set the trusted attribute",
				errText(t, e.run("crypto-user", alicePIN, "", "key", "set-attribute", "--filter", "attr.label=a", "--name", "trusted", "--value", "true")))
			require.Equal(t, "keys are shared with crypto users only, not with the admin role",
				errText(t, e.run("crypto-user", alicePIN, "", "key", "share", "--filter", "attr.label=a", "--username", "admin", "--role", "admin")))
			for _, args := range [][]string{
				{"key", "delete", "--filter", "attr.label=a"},
				{"key", "unshare", "--filter", "attr.label=a", "--username", "bob", "--role", "crypto-user"},
			} {
				require.Equal(t, rvTexts[ck.CKR_ACTION_PROHIBITED]+`: object 1 belongs to "alice"`,
					errText(t, e.run("crypto-user", bobPIN, "", args...)), strings.Join(args, " "))
			}
			require.Equal(t, rvTexts[ck.CKR_ACTION_PROHIBITED]+`: object 1 belongs to "alice"`,
				errText(t, e.run("crypto-user", bobPIN, "", "key", "set-attribute", "--filter", "attr.label=a", "--name", "label", "--value", "b")))
			// bob owns no key: alice does; deleting her fails until her key is gone.
			require.Equal(t, rvTexts[ck.CKR_ACTION_PROHIBITED]+`: user "alice" owns objects`,
				errText(t, e.run("admin", adminPIN, "", "user", "delete", "--username", "alice", "--role", "crypto-user")))
			e.must("crypto-user", alicePIN, "", "key", "delete", "--filter", "attr.label=a")
			e.must("admin", adminPIN, "", "user", "delete", "--username", "alice", "--role", "crypto-user")
		})
	}
}

// TestKeyListAndGenerateErrors: bad pagination and generation flags are
// usage errors; a failed share undoes the generation.
func TestKeyListAndGenerateErrors(t *testing.T) {
	e := activatedEnv(t, "cloudhsm")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"key", "list", "--max-items", "0"}, "invalid value '0' for '--max-items <MAX_ITEMS>': expected a positive number"},
		{[]string{"key", "list", "--starting-token", "abc"}, "invalid value 'abc' for '--starting-token <STARTING_TOKEN>': not a token from a previous key list"},
		{[]string{"key", "generate-symmetric", "aes", "--label", "x"}, "the following required arguments were not provided:\n  --key-length-bytes <KEY_LENGTH_BYTES>"},
		{[]string{"key", "generate-symmetric", "aes", "--label", "x", "--key-length-bytes", "16", "--attributes", "label=y"}, "attribute 'label' is set by --label; do not give it in the attributes too"},
		{[]string{"key", "generate-symmetric", "des", "--label", "x"}, "unrecognized subcommand 'des'"},
		{[]string{"key", "generate-asymmetric-pair", "ec", "--public-label", "x", "--private-label", "y", "--curve", "p999"}, "invalid value 'p999'"},
	} {
		require.Contains(t, errText(t, e.run("crypto-user", alicePIN, "", tc.args...)), tc.want, strings.Join(tc.args, " "))
	}
	r := e.run("crypto-user", alicePIN, "", "key", "generate-symmetric", "aes", "--label", "x", "--key-length-bytes", "16", "--share-crypto-users", "bob", "nobody")
	require.Contains(t, errText(t, r), "key not kept: sharing it with nobody failed")
	var d struct {
		Total int `json:"total_key_count"`
	}
	require.NoError(t, json.Unmarshal(e.must("crypto-user", alicePIN, "", "key", "list"), &d))
	require.Equal(t, 0, d.Total)
}
