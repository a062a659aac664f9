package pkcs11

/*
#include "fds.h"
*/
import "C"

import "gohsm/token/store/postgres"

// The PostgreSQL store's sockets are registered with fds.c, whose fork
// handler closes them in a forked child (docs/fork.md, "PostgreSQL
// connections"). Set at load, before any store opens.
func init() { postgres.SetConnHook(trackConn) }

func trackConn(fd uintptr, opened bool) {
	if opened {
		C.gohsm_fds_opened(C.int(fd))
		return
	}
	C.gohsm_fds_closing(C.int(fd))
}

// trackedConns is the number of descriptors registered now, and how many
// could not be (tests).
func trackedConns() (n int, unregistered uint64) {
	return int(C.gohsm_fds_count()), uint64(C.gohsm_fds_unregistered())
}
