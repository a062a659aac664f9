package token

// This file's name sorts before every other test file's: cmd/go hands the
// compiler the package's files first and its test files after, each in
// name order, and init funcs run in that order. So the init below runs
// after the package's own initialisation and before any test file's init,
// and records what the package's initialisation left: TestUniqueIDsLazy
// reads it.
var uniqueIDsAtInit bool

func init() { uniqueIDsAtInit = uniqueIDsStarted.Load() }
