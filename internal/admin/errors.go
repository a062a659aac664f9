package admin

import (
	"errors"
	"fmt"
	"strings"

	"gohsm/internal/ck"
	"gohsm/token"
)

// Stable error codes of admin's own (docs/cli.md, "Errors for scripts").
// A Cryptoki error's code is its CKR name, a token.Mistake's its Code.
const (
	CodeAmbiguousKey = "ambiguous_key" // a label names several keys
	CodeBadRequest   = "bad_request"   // a request's field is invalid (the CLI reports it as a usage error)
	CodeNotFound     = "not_found"     // a named thing does not exist (an audit stream)
	CodeNoCluster    = "no_cluster"    // a cluster command on a slot without an emulated cluster
	CodeNoSuchHSM    = "no_such_hsm"   // an HSM index the cluster does not have
	CodeError        = "error"         // anything else
)

// Error is an error with a stable code for scripts and the console,
// wrapping the Cryptoki error behind it when there is one (Err).
type Error struct {
	Code, Msg string
	Err       error
}

func (e *Error) Error() string { return e.Msg }

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with code and a formatted message.
func Errorf(code, format string, args ...any) error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// InputError is an invalid field of a request (a spec's bits, curve, id):
// the CLI words it as a usage error about flag --Field, the console as
// 400 bad_request. It wraps CKR_ARGUMENTS_BAD.
type InputError struct {
	Field string // the field or flag name, without dashes: "bits", "id"
	Msg   string // what is wrong, after the field's name: "100: want 128, 192 or 256" (or ": ...")
}

func (e *InputError) Error() string { return joinField(e.Field, e.Msg) }

// FlagText is the error worded for the command line: the field as its
// flag (--key-type for key_type).
func (e *InputError) FlagText() string {
	return joinField("--"+strings.ReplaceAll(e.Field, "_", "-"), e.Msg)
}

func joinField(field, msg string) string {
	if strings.HasPrefix(msg, ":") {
		return field + msg
	}
	return field + " " + msg
}

func (e *InputError) Unwrap() error { return ck.CKR_ARGUMENTS_BAD }

func inputf(field, format string, args ...any) error {
	return &InputError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the CKR name in err (if any) and its stable code: a
// token.Mistake's code (a user that exists, a key already shared: the CKR
// alone would not say which), else an *Error's code, else bad_request for
// an *InputError, else the CKR name, else "error".
func ErrorCode(err error) (ckr, code string) {
	var rv ck.RV
	if errors.As(err, &rv) {
		ckr = rv.String()
	}
	var ae *Error
	var ie *InputError
	switch {
	case token.MistakeCode(err) != "":
		return ckr, token.MistakeCode(err)
	case errors.As(err, &ae):
		return ckr, ae.Code
	case errors.As(err, &ie):
		return ckr, CodeBadRequest
	case ckr != "":
		return ckr, ckr
	}
	return "", CodeError
}
