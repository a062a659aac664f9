// Package cmdpath finds the command a command line names, for gohsm and
// CloudHSM CLI, whose commands are paths of words ("user create").
package cmdpath

import (
	"slices"
	"strings"
)

// Longest is the index of the longest of n command paths (path(i) is the
// i-th) that begins args, the first of those as long; -1 when none does.
func Longest(args []string, n int, path func(i int) []string) int {
	best := -1
	for i := 0; i < n; i++ {
		p := path(i)
		if len(p) > len(args) || best >= 0 && len(p) <= len(path(best)) {
			continue
		}
		match := true
		for j, w := range p {
			if args[j] != w {
				match = false
				break
			}
		}
		if match {
			best = i
		}
	}
	return best
}

// SecretFlag is the first of the secret flags (names without dashes:
// "pin", "password") that args holds as a flag ("--pin", "-pin",
// "--pin=x"), "" when none. A word after one may be part of the secret
// (a password with a space in it), so an error does not echo that word.
func SecretFlag(args []string, secret ...string) string {
	for _, a := range args {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && slices.Contains(secret, name) {
			return name
		}
	}
	return ""
}
