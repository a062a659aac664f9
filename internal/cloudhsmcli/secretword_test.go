package cloudhsmcli

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestUnexpectedArgumentAfterPassword: a password typed with a space
// ("--password admin pass1") left "pass1" as an unexpected argument, and
// the error quoted it in the JSON envelope. After --password the word is
// not shown; elsewhere it still is, in clap's words.
func TestUnexpectedArgumentAfterPassword(t *testing.T) {
	e := activatedEnv(t, "standard")
	const secret = "s3cret-half"
	for _, args := range [][]string{
		{"user", "create", "--username", "carol", "--role", "crypto-user", "--password", "carol", secret},
		{"user", "change-password", "--username", "bob", "--role", "crypto-user", "--password=bob", secret},
	} {
		r := e.run("admin", adminPIN, "", args...)
		txt := errText(t, r)
		require.NotContains(t, r.stdout+r.stderr, secret)
		require.Equal(t, "unexpected argument found (not shown: it comes after --password and may be part of a password)", txt)
	}
	require.Equal(t, "unexpected argument 'extra' found", errText(t, e.run("admin", adminPIN, "", "user", "list", "extra")))
}
