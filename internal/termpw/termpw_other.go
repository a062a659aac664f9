//go:build !linux

package termpw

import "errors"

func isTerminal(fd uintptr) bool { return false }

func noEcho(fd uintptr) (func(), error) { return nil, errors.New("not supported on this system") }
