//go:build linux

package cloudhsmcli

import (
	"os"

	"golang.org/x/sys/unix"
)

// echoOff turns off echo on f when f is a terminal, and returns the
// function that turns it back on; ok is false when f is no terminal (a
// pipe or file: tests and scripts), whose lines are read as they are.
//
// x/sys/unix rather than golang.org/x/term: x/sys is already in the
// module graph (modernc.org/sqlite needs it) and two ioctls are all a
// password prompt needs.
func echoOff(f *os.File) (restore func(), ok bool) {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, false
	}
	quiet := *old
	quiet.Lflag &^= unix.ECHO
	quiet.Lflag |= unix.ICANON | unix.ISIG
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
		return nil, false
	}
	return func() { unix.IoctlSetTermios(fd, unix.TCSETS, old) }, true
}
