package main

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gohsm console prints one line naming its address, serves there, and
// returns 0 on SIGTERM.
func TestConsoleCommand(t *testing.T) {
	c := newCLI(t)
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"--config", c.conf, "console", "--listen", "127.0.0.1:0"}, pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	require.NoError(t, err)
	go io.Copy(io.Discard, pr)
	require.True(t, strings.HasPrefix(line, "gohsm console: listening on http://127.0.0.1:"), line)
	url := strings.TrimSpace(strings.TrimPrefix(line, "gohsm console: listening on "))
	resp, err := http.Get(url + "api/v1/slots")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	require.NoError(t, syscall.Kill(syscall.Getpid(), syscall.SIGTERM))
	select {
	case code := <-done:
		assert.Equal(t, exitOK, code)
	case <-time.After(10 * time.Second):
		t.Fatal("gohsm console did not stop on SIGTERM")
	}
}

// Beyond loopback without TLS, or half a TLS pair, is a usage error.
func TestConsoleListenPolicy(t *testing.T) {
	c := newCLI(t)
	for _, args := range [][]string{
		{"console", "--listen", "0.0.0.0:0"},
		{"console", "--listen", ":8611"},
		{"console", "--tls-cert", "c.pem"},
		{"console", "--session-idle", "0s"},
	} {
		r := c.run(args...)
		assert.Equal(t, exitUsage, r.code, "%v: %s", args, r.stderr)
		assert.Contains(t, r.stderr, "usage: gohsm console", "%v", args)
	}
	r := c.run("console", "--listen", "0.0.0.0:0")
	assert.Contains(t, r.stderr, "--tls-cert")
}
