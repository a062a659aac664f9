package testenv

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// OpenPTY opens a pseudo-terminal pair without cgo: /dev/ptmx, unlocked
// (TIOCSPTLCK), and the /dev/pts/N it names (TIOCGPTN).
func OpenPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		Missing(t, "no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Fatalf("TIOCSPTLCK: %v", e)
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		t.Fatalf("TIOCGPTN: %v", e)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// WaitEcho waits until the terminal's echo is on (or off): input typed
// before a password prompt turned it off is echoed by the line discipline.
func WaitEcho(t *testing.T, f *os.File, on bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(time.Millisecond) {
		var tm syscall.Termios
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), syscall.TCGETS, uintptr(unsafe.Pointer(&tm))); e != 0 {
			t.Fatalf("TCGETS: %v", e)
		}
		if (tm.Lflag&syscall.ECHO != 0) == on {
			return
		}
	}
	t.Fatalf("echo never turned %v", on)
}

// ReadUntil reads the master side until want shows, for at most 10 s.
func ReadUntil(t *testing.T, m *os.File, want string) string {
	t.Helper()
	var out strings.Builder
	got := make(chan string)
	go func() {
		b := make([]byte, 256)
		for {
			n, err := m.Read(b)
			if n > 0 {
				got <- string(b[:n])
			}
			if err != nil {
				close(got)
				return
			}
		}
	}()
	timeout := time.After(10 * time.Second)
	for !strings.Contains(out.String(), want) {
		select {
		case s, ok := <-got:
			if !ok {
				t.Fatalf("terminal closed; read %q", out.String())
			}
			out.WriteString(s)
		case <-timeout:
			t.Fatalf("no %q from the terminal; read %q", want, out.String())
		}
	}
	return out.String()
}
