// Package cmdpath finds the command a command line names, for gohsm and
// CloudHSM CLI, whose commands are paths of words ("user create").
package cmdpath

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
