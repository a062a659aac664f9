// Package termpw reads passwords: from a terminal without echoing them,
// or one line from a file or a pipe. The gohsm CLI and CloudHSM CLI ask
// for passwords this way rather than take them only as flags, which other
// users see in ps and shells keep in their history.
package termpw

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// MaxLen bounds what a password line may hold: a longer line is an error,
// never read on without end.
const MaxLen = 4096

// ErrTooLong is a line longer than MaxLen.
var ErrTooLong = errors.New("termpw: line too long")

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool { return f != nil && isTerminal(f.Fd()) }

// NoEcho turns off echo on the terminal f and returns the function that
// turns it back on; f no terminal, it is an error.
func NoEcho(f *os.File) (restore func(), err error) { return noEcho(f.Fd()) }

// Read writes prompt to w and reads one line from the terminal f with
// echo off (restored afterwards, also on error), then ends the prompt's
// line on w, since the user's Enter was not echoed either.
func Read(f *os.File, w io.Writer, prompt string) ([]byte, error) {
	fmt.Fprint(w, prompt)
	restore, err := noEcho(f.Fd())
	if err != nil {
		return nil, fmt.Errorf("termpw: terminal: %w", err)
	}
	line, err := ReadLine(f)
	restore()
	fmt.Fprintln(w)
	return line, err
}

// ReadLine reads one line from r a byte at a time (nothing after the line
// is consumed, so a second prompt reads the next line), without its "\n"
// or "\r\n". End of input after some bytes ends the line; with none it is
// io.ErrUnexpectedEOF.
func ReadLine(r io.Reader) ([]byte, error) {
	var buf bytes.Buffer
	b := make([]byte, 1)
	for {
		n, err := r.Read(b)
		if n == 1 {
			if b[0] == '\n' {
				break
			}
			if buf.Len() >= MaxLen {
				clear(buf.Bytes())
				return nil, ErrTooLong
			}
			buf.WriteByte(b[0])
			continue
		}
		if err == io.EOF {
			if buf.Len() == 0 {
				return nil, io.ErrUnexpectedEOF
			}
			break
		}
		if err != nil {
			clear(buf.Bytes())
			return nil, err
		}
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\r")), nil
}
