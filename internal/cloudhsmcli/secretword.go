package cloudhsmcli

import (
	"fmt"

	"gohsm/internal/cmdpath"
)

// unexpectedArgument is clap's "unexpected argument '<word>' found", but
// without the word when a --password came before it: a password typed
// with a space ("--password admin pass1") leaves its second half where
// no argument is expected, and CloudHSM CLI would print it back on the
// terminal and in the JSON envelope. gohsm's own CLI has the same rule
// (cmd/gohsm shownWord).
func unexpectedArgument(before []string, word string) error {
	if cmdpath.SecretFlag(before, "password") != "" {
		return usageErr{"unexpected argument found (not shown: it comes after --password and may be part of a password)"}
	}
	return usageErr{fmt.Sprintf("unexpected argument '%s' found", word)}
}
