package store

// FoldName is a user name as stored: its ASCII letters lowered and nothing
// else. strings.ToLower folds some non-ASCII letters to ASCII ones (U+212A
// KELVIN SIGN to 'k', U+0130 to 'i'), so "\u212aey" reached user "key"; a
// user name is [a-z0-9_] (token's checkUserName), and anything else must
// stay as it is so that it names no user. SQLite's lower(), which the
// users table's CHECK uses, is ASCII-only too.
func FoldName(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
