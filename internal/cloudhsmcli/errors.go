package cloudhsmcli

import (
	"errors"
	"fmt"
)

// Errors of the CLI itself (before any token call).
var (
	ErrNotLoggedIn = errors.New("this command requires a login")
	ErrWrongRole   = errors.New("this command is not available to the logged-in user's role")
)

// usageErr is a mistake in the command line.
type usageErr struct{ msg string }

func (e usageErr) Error() string { return e.msg }

// fail writes an error's envelope ({"error_code":1,"data":"<text>"}, the
// shape CloudHSM CLI prints) and returns the exit status.
func (c *Context) fail(err error) int {
	if text, ok := quorumText(err); ok { // quorum.go
		writeEnvelope(c.stdout, 1, text)
		return 1
	}
	writeEnvelope(c.stdout, 1, fmt.Sprint(err))
	return 1
}
