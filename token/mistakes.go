package token

import (
	"errors"
	"fmt"

	"gohsm/internal/ck"
	"gohsm/token/quorum"
)

// Stable names of the management requests the token refuses because of
// what they ask for (a user that exists, a key already shared), not because
// the token failed. Scripts read them in gohsm's JSON errors ("code"); they
// never change once released (docs/config.md, "Errors for scripts").
const (
	CodeUserExists    = "user_exists"     // creating a user whose name is taken
	CodeNoSuchUser    = "no_such_user"    // naming a user the token does not have
	CodeBadRole       = "bad_role"        // a role name other than crypto-officer/crypto-user
	CodeNotCryptoUser = "not_crypto_user" // sharing with a user who is not a crypto user
	CodeAlreadyShared = "already_shared"  // sharing a key again with the same user
	CodeNotShared     = "not_shared"      // unsharing a key not shared with that user
	CodeShareLimit    = "share_limit"     // sharing a key with more users than the profile allows
	CodeOwnKey        = "own_key"         // sharing or unsharing a key with its owner
	CodeDeleteSelf    = "delete_self"     // an officer deleting itself
	CodeUserOwnsKeys  = "user_owns_keys"  // deleting a user who still owns objects
)

// A Mistake is a management request refused for what it asks. It wraps
// the CKR a Cryptoki caller gets (errors.Is(err, ck.CKR_...) holds) and
// names the kind of mistake in Code. No CKR says "this user exists", so the
// CKR is the nearest one: CKR_ACTION_PROHIBITED where a well-formed request
// conflicts with the token's users and shares (exists, no such user,
// already shared, not shared, own key, share limit), CKR_USER_TYPE_INVALID where a role
// is wrong; never CKR_DEVICE_ERROR, which says the token broke, and not
// CKR_ARGUMENTS_BAD, which stays for malformed input (a bad user name).
type Mistake struct {
	Code   string
	Detail string // lowercase, no package prefix
	RV     ck.RV
}

func (e *Mistake) Error() string { return "token: " + e.Detail + ": " + e.RV.String() }

func (e *Mistake) Unwrap() error { return e.RV }

func mistake(code string, rv ck.RV, format string, args ...any) error {
	return &Mistake{Code: code, Detail: fmt.Sprintf(format, args...), RV: rv}
}

// MistakeCode returns the stable code of a refused request: a Mistake's,
// or a quorum refusal's (quorum.Error.Code, token/quorum/codes.go); ""
// when err is neither.
func MistakeCode(err error) string {
	var m *Mistake
	if errors.As(err, &m) {
		return m.Code
	}
	var q *quorum.Error
	if errors.As(err, &q) {
		return q.Code
	}
	return ""
}

func errUserExists(name string) error {
	return mistake(CodeUserExists, ck.CKR_ACTION_PROHIBITED, "user %q exists", name)
}

func errNoSuchUser(name string) error {
	return mistake(CodeNoSuchUser, ck.CKR_ACTION_PROHIBITED, "no user %q", name)
}

// NoSuchUser is the token's no_such_user mistake, for a tool that looks a
// user up in Users (internal/admin) and finds none.
func NoSuchUser(name string) error { return errNoSuchUser(name) }

// IsConfigError reports whether err is a configuration error (a file
// that cannot be parsed, a value out of range), which C_Initialize answers
// with CKR_GENERAL_ERROR and the CLI with its "config" code.
func IsConfigError(err error) bool { return errors.Is(err, errConfig) }
