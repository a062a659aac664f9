package termpw

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"gohsm/internal/testenv"

	"github.com/stretchr/testify/require"
)

func TestReadLine(t *testing.T) {
	r := strings.NewReader("first\r\nsecond\nlast")
	for _, want := range []string{"first", "second", "last"} {
		got, err := ReadLine(r)
		require.NoError(t, err)
		require.Equal(t, want, string(got))
	}
	_, err := ReadLine(r)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	_, err = ReadLine(strings.NewReader(strings.Repeat("x", MaxLen+1) + "\n"))
	require.True(t, errors.Is(err, ErrTooLong), "a line without end is refused, not read on: %v", err)
	require.False(t, IsTerminal(nil))
}

// TestReadDoesNotEcho types a password on a pseudo-terminal while Read
// reads it: nothing of it comes back on the terminal's output, and echo is
// back on afterwards (a line typed then is echoed). Without noEcho the
// password shows on the master side.
func TestReadDoesNotEcho(t *testing.T) {
	master, slave := testenv.OpenPTY(t)
	require.True(t, IsTerminal(slave))
	var prompt bytes.Buffer
	type res struct {
		pw  []byte
		err error
	}
	done := make(chan res, 1)
	go func() {
		pw, err := Read(slave, &prompt, "Password: ")
		done <- res{pw, err}
	}()
	testenv.WaitEcho(t, slave, false)
	_, err := master.Write([]byte("s3cret-pw\n"))
	require.NoError(t, err)
	r := <-done
	require.NoError(t, r.err)
	require.Equal(t, "s3cret-pw", string(r.pw))
	require.Equal(t, "Password: \n", prompt.String())
	testenv.WaitEcho(t, slave, true)
	_, err = master.Write([]byte("marker\n"))
	require.NoError(t, err)
	out := testenv.ReadUntil(t, master, "marker")
	require.NotContains(t, out, "s3cret", "the password was echoed")
}
