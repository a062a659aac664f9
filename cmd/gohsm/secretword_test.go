package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestUsageErrorsHidePasswordWords: a PIN typed with a space ("--pin admin
// officer-pw") leaves "officer-pw" where a command, a subcommand or an
// argument was expected, and the usage error quoted it: part of a password
// on the terminal, in logs and in --json output. A word after --pin or
// --password is now named by where it was, not what it was; without them
// the word is still quoted.
func TestUsageErrorsHidePasswordWords(t *testing.T) {
	c := newCLI(t)
	const secret = "s3cret-pw"
	for _, args := range [][]string{
		{"--pin", "admin", secret},
		{"--pin", "admin", secret, "user", "list"},
		{"-pin=admin:", secret},
		{"--pin", "admin", "key", secret},
		{"user", "list", "--pin", "admin", secret},
		{"user", "create", "--username", "x", "--role", "cu", "--password", "two", secret, "--pin", "admin:officer-pw"},
		{"--json", "--pin", "admin", secret},
	} {
		name := strings.Join(args, " ")
		r := c.run(args...)
		assert.Equal(t, 2, r.code, "%s: %s", name, r.stderr)
		assert.NotContains(t, r.stderr+r.stdout, secret, name)
		assert.Contains(t, r.stderr+r.stdout, "not shown: it comes after --", name)
	}
	// Without a password flag before it the word is quoted, as before.
	r := c.run("frob")
	assert.Contains(t, r.stderr, `unknown command "frob"`)
	r = c.run("--slot", "0", "user", "list", "extra")
	assert.Contains(t, r.stderr, `unexpected argument "extra"`)
}
