//go:build linux

package cloudhsmcli

import (
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"gohsm/internal/termpw"
)

// echoOff turns off echo on f when f is a terminal (termpw.NoEcho), and
// returns the function that turns it back on; ok is false when f is no
// terminal (a pipe or file: tests and scripts), whose lines are read as
// they are. Interrupted meanwhile (Ctrl-C, SIGTERM), the process puts echo
// back before it dies of the signal: a terminal is never left silent.
func echoOff(f *os.File) (restore func(), ok bool) {
	if !termpw.IsTerminal(f) {
		return nil, false
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	on, err := termpw.NoEcho(f)
	if err != nil {
		signal.Stop(sigs)
		return nil, false
	}
	var once sync.Once
	back := func() { once.Do(on) }
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
