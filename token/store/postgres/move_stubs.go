package postgres

import "errors"

// errNotYet fails the methods still stubbed (todo.go); pg-move's methods
// (audit.go, quorum.go, move.go) have replaced the stubs that were here.
var errNotYet = errors.New("store: postgres: not yet implemented")
