// Package pkcs11 is gohsm's C boundary: the Go half of the Cryptoki ABI.
//
// shim.c owns every C_* symbol, the function lists, the fork guard and the
// functions answered without Go; it forwards the rest to the go_* exports
// here, which take C types only. Each export views or copies its arguments,
// makes one call into package token and turns the result into a CK_RV in
// one place (rv). Panics are recovered into CKR_GENERAL_ERROR: an unrecovered
// panic would kill the host process.
package pkcs11

/*
#cgo CFLAGS: -I${SRCDIR}/../include -O2
#cgo LDFLAGS: -Wl,--wrap=pthread_create
#include <stdlib.h>
#include "pkcs11.h"

void gohsm_signals_runtime_started(void);
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"unsafe"

	"gohsm/internal/ck"
	"gohsm/token"
)

// The runtime's first thread takes its mask from the host's loading
// thread; now that the runtime runs Go code it has one to fix (signals.c).
func init() { C.gohsm_signals_runtime_started() }

var (
	// mod is the initialised module; nil between C_Finalize and C_Initialize.
	mod atomic.Pointer[token.Module]
	// initMu serialises C_Initialize and C_Finalize.
	initMu sync.Mutex
)

// getModule returns the module or CKR_CRYPTOKI_NOT_INITIALIZED (the C shim
// checks first; this covers a race with C_Finalize).
func getModule() (*token.Module, error) {
	m := mod.Load()
	if m == nil {
		return nil, ck.CKR_CRYPTOKI_NOT_INITIALIZED
	}
	return m, nil
}

// rv is the one place a Go error becomes a CK_RV: the ck.RV it wraps, or
// CKR_GENERAL_ERROR for anything else (which is logged: it is a bug or an
// environment failure). A failed call is logged at debug, but the
// device's own failures (the store did not answer or could not write, the
// token could not be read) at warn: the caller sees only the code, and
// the error's text is the one place that says what failed.
func rv(fn string, err error) C.CK_RV {
	if err == nil {
		return C.CKR_OK
	}
	var r ck.RV
	m := mod.Load()
	if errors.As(err, &r) {
		if m != nil && r != ck.CKR_BUFFER_TOO_SMALL {
			level := slog.LevelDebug
			if deviceFailure(r) {
				level = slog.LevelWarn
			}
			m.Logger().Log(context.Background(), level, "gohsm: call failed", "fn", fn, "rv", r.String(), "err", err.Error())
		}
		return C.CK_RV(r)
	}
	if m != nil {
		m.Logger().Error("gohsm: call failed", "fn", fn, "err", err.Error())
	} else {
		fmt.Fprintf(os.Stderr, "gohsm: %s: %v\n", fn, err)
	}
	return C.CKR_GENERAL_ERROR
}

// deviceFailure reports whether r says the device failed the call rather
// than that the call was wrong.
func deviceFailure(r ck.RV) bool {
	switch r {
	case ck.CKR_DEVICE_ERROR, ck.CKR_DEVICE_MEMORY, ck.CKR_DEVICE_REMOVED, ck.CKR_TOKEN_NOT_RECOGNIZED:
		return true
	}
	return false
}

// argRV answers a call the boundary refused before it reached the token
// (a NULL pointer, an unknown mechanism, a malformed parameter, a length
// out of bounds): a session handle that names no session wins over that
// error, as it does over every error the token finds (PKCS #11 leaves the
// order to the library; clients that reconnect test for a stale session
// first, and SoftHSMv2 checks it first too). Only failing calls pay for
// the lookup.
func argRV(fn string, m *token.Module, h C.CK_SESSION_HANDLE, err error) C.CK_RV {
	if serr := m.CheckSession(ck.ULong(h)); serr != nil {
		return rv(fn, serr)
	}
	return rv(fn, err)
}

// recoverRV turns a panic into CKR_GENERAL_ERROR, logging the stack.
func recoverRV(fn string, out *C.CK_RV) {
	if p := recover(); p != nil {
		msg := fmt.Sprintf("gohsm: panic in %s: %v\n%s", fn, p, debug.Stack())
		if m := mod.Load(); m != nil {
			m.Logger().Error(msg)
		} else {
			fmt.Fprintln(os.Stderr, msg)
		}
		*out = C.CKR_GENERAL_ERROR
	}
}

// cGetenv reads the environment through the C library: the Go runtime's
// copy is the environment at process start, and hosts set variables later
// (setenv before C_Initialize).
func cGetenv(name string) string {
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	v := C.getenv(cs)
	if v == nil {
		return ""
	}
	return C.GoString(v)
}

//export go_Initialize
func go_Initialize(config *C.char) (r C.CK_RV) {
	defer recoverRV("C_Initialize", &r)
	initMu.Lock()
	defer initMu.Unlock()
	if mod.Load() != nil {
		return C.CKR_CRYPTOKI_ALREADY_INITIALIZED
	}
	presizeStack() // before token.Open's SQLite calls (stack.go)
	reserved := ""
	if config != nil {
		reserved = C.GoString(config)
	}
	cfg, err := token.LoadConfigEnv(reserved, cGetenv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "gohsm: C_Initialize: %v\n", err)
		if reserved != "" {
			return C.CKR_ARGUMENTS_BAD
		}
		return C.CKR_GENERAL_ERROR
	}
	// The module's heap is small and lives for the host's lifetime; the
	// default GOGC=100 makes the collector run often enough under signing
	// load (ECDSA allocates ~6 KiB an operation) to steal a noticeable
	// share of a 2-core machine. A host's own GOGC still wins.
	if cGetenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	// GOMAXPROCS is raised at the second session (procs.go).
	procsAtInitialize(cGetenv("GOMAXPROCS") != "")
	m, err := token.Open(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "gohsm: C_Initialize: %v\n", err)
		return C.CKR_GENERAL_ERROR
	}
	m.SetCSign(cSignTable()) // C_Sign of CKM_ECDSA on P-256 answered in C (csign.h)
	mod.Store(m)
	return C.CKR_OK
}

//export go_Finalize
func go_Finalize() (r C.CK_RV) {
	defer recoverRV("C_Finalize", &r)
	initMu.Lock()
	defer initMu.Unlock()
	m := mod.Swap(nil)
	if m == nil {
		return C.CKR_CRYPTOKI_NOT_INITIALIZED
	}
	if err := m.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "gohsm: C_Finalize: %v\n", err)
	}
	return C.CKR_OK
}
