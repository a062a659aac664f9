package pgtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// TCPConnsTo is the established TCP connections to 127.0.0.1:port (the
// client side, from /proc/net/tcp): socket inode -> local port. Tests that
// check which process holds which connection to the server use it with
// SocketsOf.
func TCPConnsTo(port int) (map[uint64]int, error) {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return nil, err
	}
	want := fmt.Sprintf("0100007F:%04X", port)
	out := map[uint64]int{}
	for _, l := range strings.Split(string(b), "\n")[1:] {
		// sl local rem st tx:rx tr:when retrnsmt uid timeout inode
		f := strings.Fields(l)
		if len(f) < 10 || f[2] != want || f[3] != "01" {
			continue
		}
		_, lp, ok := strings.Cut(f[1], ":")
		local, err1 := strconv.ParseUint(lp, 16, 16)
		ino, err2 := strconv.ParseUint(f[9], 10, 64)
		if ok && err1 == nil && err2 == nil && ino != 0 {
			out[ino] = int(local)
		}
	}
	return out, nil
}

// SocketsOf is the inodes among conns (TCPConnsTo's) that process pid has
// open.
func SocketsOf(pid int, conns map[uint64]int) ([]uint64, error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []uint64
	for _, fd := range fds {
		l, err := os.Readlink(filepath.Join(dir, fd.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		n, ok := strings.CutPrefix(l, "socket:[")
		if !ok {
			continue
		}
		ino, err := strconv.ParseUint(strings.TrimSuffix(n, "]"), 10, 64)
		if _, mine := conns[ino]; err == nil && mine {
			out = append(out, ino)
		}
	}
	return out, nil
}
