//go:build !linux

package cloudhsmcli

import "os"

// echoOff is not available here: passwords are read as typed.
func echoOff(f *os.File) (restore func(), ok bool) { return nil, false }
