package pkcs11

/*
#include "pkcs11.h"
*/
import "C"

import (
	"gohsm/internal/ck"
	"gohsm/token/profile"
)

// refused answers a function the slot's profile does not have
// (token.Module.Unsupported) before any argument is looked at: CloudHSM
// answers CKR_FUNCTION_NOT_SUPPORTED whatever they are. ok is false when
// the call goes on (including when the library is not initialised: the
// call's own path says so).
func refused(fn string, h C.CK_SESSION_HANDLE, f profile.Function) (r C.CK_RV, ok bool) {
	m, err := getModule()
	if err != nil {
		return 0, false
	}
	if err := m.Unsupported(ck.ULong(h), f); err != nil {
		return rv(fn, err), true
	}
	return 0, false
}
