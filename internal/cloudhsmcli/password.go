package cloudhsmcli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// testOnlyEchoOff, when set, is called once echo is off on a terminal
// (the pty test types the password only then).
var testOnlyEchoOff func()

// readPassword prompts on stderr and reads one line from stdin: with echo
// off when stdin is a terminal (CloudHSM CLI's "Enter password:"), as it
// comes otherwise (a script or test feeding stdin).
func (c *Context) readPassword(prompt string) ([]byte, error) {
	fmt.Fprint(c.stderr, prompt)
	if f, ok := c.stdinFile.(*os.File); ok {
		if restore, ok := echoOff(f); ok {
			defer restore()
			if testOnlyEchoOff != nil {
				testOnlyEchoOff()
			}
		}
	}
	line, err := c.in.ReadString('\n')
	fmt.Fprintln(c.stderr) // the newline typed was not echoed
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("no password given (end of input)")
		}
		return nil, err
	}
	return []byte(strings.TrimRight(line, "\r\n")), nil
}

// newPassword reads a new password twice, as CloudHSM CLI asks for it
// ("Enter password:", "Confirm password:"), unless --password gave it.
func (c *Context) newPassword(flagValue string) ([]byte, error) {
	if flagValue != "" {
		return []byte(flagValue), nil
	}
	p, err := c.readPassword("Enter password:")
	if err != nil {
		return nil, err
	}
	q, err := c.readPassword("Confirm password:")
	if err != nil {
		return nil, err
	}
	if string(p) != string(q) {
		return nil, errors.New("Passwords do not match")
	}
	return p, nil
}
