package token

import "gohsm/token/store"

// foldName lowers the ASCII letters of a user name and nothing else
// (store.FoldName): strings.ToLower made "\u212aey:pw" log in as user
// "key".
func foldName(s string) string { return store.FoldName(s) }
