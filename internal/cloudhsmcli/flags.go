package cloudhsmcli

import (
	"errors"
	"flag"
	"fmt"
	"strings"
)

// CloudHSM CLI's flags are clap's (Rust): --name value, --name=value, and
// flags taking several space-separated values (Multi, expandMulti in
// filter.go). Here: clap's error texts, required flags, and the splitting
// of interactive lines into words.

// isMulti reports whether fs's flag called name takes several values.
func isMulti(fs *flag.FlagSet, name string) bool {
	f := fs.Lookup(name)
	if f == nil {
		return false
	}
	_, ok := f.Value.(*multiValue)
	return ok
}

// parseErr turns the flag package's parse errors into clap's wording,
// which CloudHSM CLI prints (error: unexpected argument '--x' found).
func parseErr(err error) error {
	msg := err.Error()
	switch {
	case strings.HasPrefix(msg, "flag provided but not defined: "):
		name := strings.TrimLeft(strings.TrimPrefix(msg, "flag provided but not defined: "), "-")
		return usageErr{fmt.Sprintf("unexpected argument '--%s' found", name)}
	case strings.HasPrefix(msg, "flag needs an argument: "):
		name := strings.TrimLeft(strings.TrimPrefix(msg, "flag needs an argument: "), "-")
		return usageErr{fmt.Sprintf("a value is required for '--%s <%s>' but none was supplied", name, valueName(name))}
	case strings.HasPrefix(msg, "invalid value "), strings.HasPrefix(msg, "invalid boolean"):
		return usageErr{strings.Replace(msg, " -", " --", 1)}
	}
	return usageErr{msg}
}

// valueName is clap's placeholder for a flag's value: --max-items <MAX_ITEMS>.
func valueName(flagName string) string {
	return strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// required checks that the named string flags were given, with clap's
// message naming the missing ones.
func required(fs *flag.FlagSet, names ...string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var missing []string
	for _, n := range names {
		if !set[n] {
			missing = append(missing, fmt.Sprintf("--%s <%s>", n, valueName(n)))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return usageErr{"the following required arguments were not provided:\n  " + strings.Join(missing, "\n  ")}
}

// splitLine splits an interactive command line into words as a shell
// would for the quoting people type: 'single', "double" (with \" and \\),
// and backslash escapes outside quotes. attr.label="my key" is one word.
func splitLine(line string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated quote (')")
			}
			w.WriteString(line[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			inWord = true
			i++
			for ; i < len(line) && line[i] != '"'; i++ {
				if line[i] == '\\' && i+1 < len(line) && (line[i+1] == '"' || line[i+1] == '\\') {
					i++
				}
				w.WriteByte(line[i])
			}
			if i >= len(line) {
				return nil, errors.New(`unterminated quote (")`)
			}
		case c == '\\' && i+1 < len(line):
			i++
			w.WriteByte(line[i])
			inWord = true
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}
