package token

// foldName lowers the ASCII letters of a user name and nothing else.
// strings.ToLower folds some non-ASCII letters to ASCII ones (U+212A KELVIN
// SIGN to 'k', U+0130 to 'i'), which made "\u212aey:pw" log in as user "key":
// a user name is [A-Za-z0-9_] (checkUserName), so anything else must stay as
// it is and be refused.
func foldName(s string) string {
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
