//go:build linux

package cloudhsmcli

import (
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// echoOff turns off echo on f when f is a terminal, and returns the
// function that turns it back on; ok is false when f is no terminal (a
// pipe or file: tests and scripts), whose lines are read as they are.
// Interrupted meanwhile (Ctrl-C, SIGTERM), the process puts echo back
// before it dies of the signal: a terminal is never left silent.
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
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
		signal.Stop(sigs)
		return nil, false
	}
	var once sync.Once
	back := func() { once.Do(func() { unix.IoctlSetTermios(fd, unix.TCSETS, old) }) }
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-sigs:
			back()
			signal.Stop(sigs)
			// Die of the signal as if it had not been caught.
			signal.Reset(sig)
			unix.Kill(os.Getpid(), sig.(syscall.Signal))
		case <-done:
		}
	}()
	return func() {
		back()
		signal.Stop(sigs)
		close(done)
	}, true
}
