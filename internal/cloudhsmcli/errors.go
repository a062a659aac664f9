package cloudhsmcli

import (
	"errors"
	"fmt"
	"strings"

	"gohsm/internal/ck"
)

// Errors of the CLI itself (before any token call).
var (
	ErrNotLoggedIn = errors.New("this command requires a login: log in with login --username <USERNAME> --role <ROLE>, or set CLOUDHSM_ROLE and CLOUDHSM_PIN")
	ErrWrongRole   = errors.New("this command is not available to the logged-in user's role")
)

// errOnlyRole refuses a command to the other role, before the token is
// asked: CloudHSM's permission table (cloudhsm-facts §1.1; admins manage
// users, crypto users manage and use keys).
func errOnlyRole(role string) error {
	return fmt.Errorf("%w: only a logged-in %s may run this command", ErrWrongRole, role)
}

// usageErr is a mistake in the command line.
type usageErr struct{ msg string }

func (e usageErr) Error() string { return e.msg }

// fail writes an error's envelope ({"error_code":1,"data":"<text>"}, the
// shape CloudHSM CLI prints) and returns the exit status.
func (c *Context) fail(err error) int {
	writeEnvelope(c.stdout, 1, errorText(err))
	return 1
}

// rvTexts say what a token refusal means to an operator, for the return
// values whose meaning does not depend on the command. The token's own
// message (after these words) names the user or key.
var rvTexts = map[ck.RV]string{
	// The SDK 5 text (the JCE provider's FailedLoginException, which
	// shares the client's error strings).
	ck.CKR_PIN_INCORRECT:                  "Incorrect credentials are passed for this operation: Incorrect authentication credentials",
	ck.CKR_PIN_LOCKED:                     "The user is locked out after too many failed logins: an admin must reset its password with user change-password",
	ck.CKR_USER_NOT_LOGGED_IN:             "The logged-in user may not do this",
	ck.CKR_USER_ALREADY_LOGGED_IN:         "The user is logged in",
	ck.CKR_USER_ANOTHER_ALREADY_LOGGED_IN: "Another user is logged in",
	ck.CKR_ACTION_PROHIBITED:              "Operation not permitted",
	ck.CKR_OBJECT_HANDLE_INVALID:          "Key not found",
	ck.CKR_PIN_LEN_RANGE:                  "Invalid password length",
	ck.CKR_TOKEN_NOT_RECOGNIZED:           "The cluster is not activated: run cluster activate",
}

// errorText is an error's text in the envelope: usage and CLI errors as
// they are; a token error as rvTexts' sentence for its CKR followed by the
// token's detail ("token: " or "profile: " and the CKR name dropped: a script matches
// the sentence, a person reads the detail).
func errorText(err error) string {
	var u usageErr
	if errors.As(err, &u) {
		return u.msg
	}
	if text, ok := quorumText(err); ok { // CloudHSM's words (quorum.go)
		return text
	}
	var re rvError // CloudHSM's words for a CKR (crypto.go)
	if errors.As(err, &re) {
		return re.msg
	}
	var rv ck.RV
	if !errors.As(err, &rv) || !strings.HasSuffix(err.Error(), rv.Error()) {
		// No CKR, or a CLI text that carries one for errors.Is only
		// (crypto.go's rvError).
		return err.Error()
	}
	detail := strings.TrimSuffix(err.Error(), ": "+rv.Error())
	detail = strings.TrimPrefix(detail, "token: ")
	detail = strings.TrimPrefix(detail, "profile: ") // the slot's profile refused (ML-DSA on hsm1)
	text, ok := rvTexts[rv]
	if !ok {
		return fmt.Sprintf("%s (%s)", detail, rv.Error())
	}
	if detail == "" || detail == rv.Error() {
		return text
	}
	return text + ": " + detail
}
