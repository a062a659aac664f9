package main

import (
	"bytes"
	"errors"
	"flag"
	"os"

	"gohsm/internal/termpw"
)

// newPassword is where a command that sets a password (user create, user
// change-password) takes it from, first match wins:
//
//	--password -          one line from standard input (a terminal: asked)
//	--password-file FILE  the file's first line
//	--password PASSWORD   the flag itself (visible in ps and shell history)
//	$GOHSM_NEW_PASSWORD
//	a terminal on stdin   asked twice, without echo
//
// Without any of them it is a usage error, never a wait for input.
type newPassword struct {
	flag, file *string
}

func newPasswordFlags(fs *flag.FlagSet, what string) newPassword {
	return newPassword{
		flag: fs.String("password", "", what+" `password` (\"-\": read a line from standard input; default: $GOHSM_NEW_PASSWORD, else asked on the terminal)"),
		file: fs.String("password-file", "", "read "+what+" password from the first line of `file`"),
	}
}

// check reports a usage error (no source, two sources) before the command
// touches the token; get reads the password after the login, so that a
// terminal asks for the PIN first.
func (p newPassword) check(e *env) error {
	switch {
	case *p.flag != "" && *p.file != "":
		return usagef("--password and --password-file: give one")
	case *p.flag != "", *p.file != "", os.Getenv("GOHSM_NEW_PASSWORD") != "", termpw.IsTerminal(e.stdin):
		return nil
	}
	return usagef("needs --password, --password-file, --password - or $GOHSM_NEW_PASSWORD (or a terminal to ask on)")
}

// get returns the password; the caller clears it after use.
func (p newPassword) get(e *env) ([]byte, error) {
	if err := p.check(e); err != nil {
		return nil, err
	}
	switch {
	case *p.flag == "-" && !termpw.IsTerminal(e.stdin):
		// A terminal is asked below, without echo; a pipe is read.
		pw, err := termpw.ReadLine(e.stdin)
		if err != nil {
			return nil, usagef("--password -: no password line on standard input")
		}
		return nonEmpty(pw)
	case *p.file != "":
		b, err := os.ReadFile(*p.file)
		if err != nil {
			return nil, usagef("--password-file: %v", err)
		}
		pw, err := termpw.ReadLine(bytes.NewReader(b))
		clear(b)
		if errors.Is(err, termpw.ErrTooLong) {
			return nil, usagef("--password-file: first line longer than %d bytes", termpw.MaxLen)
		}
		return nonEmpty(pw)
	case *p.flag != "" && *p.flag != "-":
		return []byte(*p.flag), nil
	}
	if pw := os.Getenv("GOHSM_NEW_PASSWORD"); pw != "" && *p.flag != "-" {
		return []byte(pw), nil
	}
	return e.askTwice("New password: ", "Confirm password: ", "password")
}

func nonEmpty(pw []byte) ([]byte, error) {
	if len(pw) == 0 {
		return nil, usagef("empty password")
	}
	return pw, nil
}
