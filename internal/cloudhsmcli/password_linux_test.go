//go:build linux

package cloudhsmcli

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"gohsm/internal/testenv"
)

// TestPasswordNoEcho: typed at a terminal, the password is not echoed
// (the terminal echoes the command line typed before it), and echo is on
// again afterwards.
func TestPasswordNoEcho(t *testing.T) {
	master, slave := testenv.OpenPTY(t)
	var stderr bytes.Buffer
	c := &Context{stdinFile: slave, in: bufio.NewReader(slave), stderr: &stderr}
	testOnlyEchoOff = func() { master.Write([]byte("s3cret-pw\n")) }
	t.Cleanup(func() { testOnlyEchoOff = nil })

	master.Write([]byte("echoed-line\n")) // echo on: comes back
	line, err := c.in.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "echoed-line\n", line)

	pw, err := c.readPassword("Enter password:")
	require.NoError(t, err)
	require.Equal(t, "s3cret-pw", string(pw))
	require.Equal(t, "Enter password:\n", stderr.String())

	tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	require.NoError(t, err)
	require.NotZero(t, tio.Lflag&unix.ECHO, "echo is back on")

	// Everything the terminal echoed to master: the first line only.
	// (A pty master is not pollable by Go's runtime: poll(2) it.)
	var echoed []byte
	buf := make([]byte, 256)
	fd := int(master.Fd())
	for {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, int(200*time.Millisecond/time.Millisecond))
		if n <= 0 || err != nil {
			break
		}
		k, err := unix.Read(fd, buf)
		if k <= 0 || err != nil {
			break
		}
		echoed = append(echoed, buf[:k]...)
	}
	require.Contains(t, string(echoed), "echoed-line")
	require.NotContains(t, string(echoed), "s3cret-pw")
}

// TestPasswordPromptInterrupted: Ctrl-C (SIGINT) at the password prompt
// of the built cloudhsm-cli ends it by the signal with the terminal's echo
// back on, not a shell left typing blind.
func TestPasswordPromptInterrupted(t *testing.T) {
	bin := testenv.Built(t, "GOHSM_CLOUDHSM_CLI", "cloudhsm-cli", "all")
	master, slave := testenv.OpenPTY(t)
	e := newCLIEnv(t, "standard")
	cmd := exec.Command(bin, "interactive")
	cmd.Env = append(os.Environ(), "GOHSM_CONF="+e.conf)
	cmd.Stdin, cmd.Stdout = slave, io.Discard
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill() })
	echo := func() bool {
		tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
		require.NoError(t, err)
		return tio.Lflag&unix.ECHO != 0
	}
	require.True(t, echo())
	master.Write([]byte("login --username admin --role admin\n"))
	r := bufio.NewReader(stderr)
	prompt := make([]byte, len("Enter password:"))
	_, err = io.ReadFull(r, prompt)
	require.NoError(t, err)
	require.Equal(t, "Enter password:", string(prompt))
	deadline := time.Now().Add(5 * time.Second)
	for echo() && time.Now().Before(deadline) { // the prompt is printed just before echo goes off
		time.Sleep(10 * time.Millisecond)
	}
	require.False(t, echo(), "echo off at the prompt")
	require.NoError(t, cmd.Process.Signal(unix.SIGINT))
	err = cmd.Wait()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	ws := ee.Sys().(syscall.WaitStatus)
	require.True(t, ws.Signaled() && ws.Signal() == unix.SIGINT, "ended by SIGINT: %v", err)
	require.True(t, echo(), "echo is back on after the interrupt")
}
