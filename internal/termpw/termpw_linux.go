package termpw

import (
	"syscall"
	"unsafe"
)

func tcget(fd uintptr) (*syscall.Termios, error) {
	var t syscall.Termios
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TCGETS, uintptr(unsafe.Pointer(&t))); e != 0 {
		return nil, e
	}
	return &t, nil
}

func tcset(fd uintptr, t *syscall.Termios) error {
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TCSETS, uintptr(unsafe.Pointer(t))); e != 0 {
		return e
	}
	return nil
}

func isTerminal(fd uintptr) bool {
	_, err := tcget(fd)
	return err == nil
}

// noEcho turns off echo (keeping ECHONL off too, so not even the newline
// shows) and returns the function that restores the terminal's settings.
func noEcho(fd uintptr) (restore func(), err error) {
	old, err := tcget(fd)
	if err != nil {
		return nil, err
	}
	t := *old
	t.Lflag &^= syscall.ECHO | syscall.ECHONL
	t.Lflag |= syscall.ICANON | syscall.ISIG
	if err := tcset(fd, &t); err != nil {
		return nil, err
	}
	return func() { tcset(fd, old) }, nil
}
