package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"gohsm/internal/admin"
	"gohsm/internal/ck"
	"gohsm/token"
)

// The console's own error codes (D2); a token error's code is its
// mistake's code or its CKR name, as in the CLI's --json errors.
const (
	codeBadRequest       = "bad_request"
	codeNotFound         = "not_found"
	codeCSRF             = "csrf"
	codeSessionExpired   = "session_expired"
	codeNotLoggedIn      = "not_logged_in"
	codeMethodNotAllowed = "method_not_allowed"
	codeTooManySessions  = "too_many_sessions"
	codeNoCluster        = admin.CodeNoCluster
	codeNoSuchHSM        = admin.CodeNoSuchHSM
	codeBadPlan          = "bad_plan"
	codeNotInitialized   = "token_not_initialized"
	codeInternal         = "internal"
	codeError            = "error"
)

// apiError is an error the console answers with its own status and code,
// wrapping the Cryptoki error behind it when there is one.
type apiError struct {
	status int
	code   string
	msg    string
	err    error
}

func (e *apiError) Error() string { return e.msg }
func (e *apiError) Unwrap() error { return e.err }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, codeBadRequest, format, args...)
}

// errorBody is the JSON of every error response.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	CKR     string `json:"ckr"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// statusByCode is the status of the stable codes that decide it
// themselves: the console's, the CLI's and the token's mistakes (a
// mistake's CKR, CKR_ACTION_PROHIBITED mostly, would not tell a
// conflict from a refusal).
var statusByCode = map[string]int{
	codeBadRequest:       http.StatusBadRequest,
	codeNotFound:         http.StatusNotFound,
	codeCSRF:             http.StatusForbidden,
	codeSessionExpired:   http.StatusUnauthorized,
	codeNotLoggedIn:      http.StatusUnauthorized,
	codeMethodNotAllowed: http.StatusMethodNotAllowed,
	codeTooManySessions:  http.StatusTooManyRequests,
	codeNoCluster:        http.StatusNotFound,
	codeNoSuchHSM:        http.StatusNotFound,
	codeBadPlan:          http.StatusBadRequest,
	codeNotInitialized:   http.StatusConflict,
	"store_unreachable":  http.StatusServiceUnavailable,

	admin.CodeAmbiguousKey: http.StatusConflict,

	token.CodeUserExists:    http.StatusConflict,
	token.CodeNoSuchUser:    http.StatusNotFound,
	token.CodeBadRole:       http.StatusBadRequest,
	token.CodeNotCryptoUser: http.StatusBadRequest,
	token.CodeAlreadyShared: http.StatusConflict,
	token.CodeNotShared:     http.StatusConflict,
	token.CodeShareLimit:    http.StatusConflict,
	token.CodeOwnKey:        http.StatusBadRequest,
	token.CodeDeleteSelf:    http.StatusForbidden,
	token.CodeUserOwnsKeys:  http.StatusConflict,
}

// statusByCKR is the status of a Cryptoki error (D2's table): 400 bad
// input, 401 wrong password, 403 refused, 404 no such object, 409 a
// conflict with another login, 503 the store or HSM failed.
var statusByCKR = map[ck.RV]int{
	ck.CKR_ARGUMENTS_BAD:                  http.StatusBadRequest,
	ck.CKR_ATTRIBUTE_VALUE_INVALID:        http.StatusBadRequest,
	ck.CKR_ATTRIBUTE_TYPE_INVALID:         http.StatusBadRequest,
	ck.CKR_TEMPLATE_INCOMPLETE:            http.StatusBadRequest,
	ck.CKR_TEMPLATE_INCONSISTENT:          http.StatusBadRequest,
	ck.CKR_KEY_SIZE_RANGE:                 http.StatusBadRequest,
	ck.CKR_DOMAIN_PARAMS_INVALID:          http.StatusBadRequest,
	ck.CKR_CURVE_NOT_SUPPORTED:            http.StatusBadRequest,
	ck.CKR_MECHANISM_INVALID:              http.StatusBadRequest,
	ck.CKR_DATA_INVALID:                   http.StatusBadRequest,
	ck.CKR_PIN_INVALID:                    http.StatusBadRequest,
	ck.CKR_PIN_LEN_RANGE:                  http.StatusBadRequest,
	ck.CKR_USER_TYPE_INVALID:              http.StatusBadRequest,
	ck.CKR_PIN_INCORRECT:                  http.StatusUnauthorized,
	ck.CKR_SESSION_HANDLE_INVALID:         http.StatusUnauthorized,
	ck.CKR_SESSION_CLOSED:                 http.StatusUnauthorized,
	ck.CKR_PIN_LOCKED:                     http.StatusForbidden,
	ck.CKR_PIN_EXPIRED:                    http.StatusForbidden,
	ck.CKR_ACTION_PROHIBITED:              http.StatusForbidden,
	ck.CKR_KEY_FUNCTION_NOT_PERMITTED:     http.StatusForbidden,
	ck.CKR_ATTRIBUTE_SENSITIVE:            http.StatusForbidden,
	ck.CKR_ATTRIBUTE_READ_ONLY:            http.StatusForbidden,
	ck.CKR_TOKEN_WRITE_PROTECTED:          http.StatusForbidden,
	ck.CKR_USER_NOT_LOGGED_IN:             http.StatusForbidden, // with a session: the wrong role
	ck.CKR_OBJECT_HANDLE_INVALID:          http.StatusNotFound,
	ck.CKR_KEY_HANDLE_INVALID:             http.StatusNotFound,
	ck.CKR_SLOT_ID_INVALID:                http.StatusNotFound,
	ck.CKR_SESSION_EXISTS:                 http.StatusConflict,
	ck.CKR_USER_ALREADY_LOGGED_IN:         http.StatusConflict,
	ck.CKR_USER_ANOTHER_ALREADY_LOGGED_IN: http.StatusConflict,
	ck.CKR_SESSION_COUNT:                  http.StatusConflict,
	ck.CKR_DEVICE_ERROR:                   http.StatusServiceUnavailable,
	ck.CKR_DEVICE_MEMORY:                  http.StatusServiceUnavailable,
	ck.CKR_DEVICE_REMOVED:                 http.StatusServiceUnavailable,
	ck.CKR_TOKEN_NOT_PRESENT:              http.StatusServiceUnavailable,
	ck.CKR_TOKEN_NOT_RECOGNIZED:           http.StatusServiceUnavailable,
	ck.CKR_GENERAL_ERROR:                  http.StatusServiceUnavailable,
}

// classify returns err's status, CKR name and stable code: the
// console's own errors say theirs; others are named by admin.ErrorCode
// (the CLI's mapping) and given a status by their code, else their CKR.
func classify(err error) (status int, ckr, code string) {
	var rv ck.RV
	errors.As(err, &rv)
	var ae *apiError
	if errors.As(err, &ae) {
		if rv != 0 {
			ckr = rv.String()
		}
		code = ae.code
		if ae.status != 0 {
			return ae.status, ckr, code
		}
	} else if token.IsConfigError(err) {
		// The configuration changed under the console (a login opens it
		// anew): the service is unavailable until it is mended.
		return http.StatusServiceUnavailable, "", "config"
	} else {
		ckr, code = admin.ErrorCode(err)
	}
	if s, ok := statusByCode[code]; ok {
		return s, ckr, code
	}
	if strings.HasPrefix(code, "quorum_") {
		// A quorum refusal: the operation needs (other) approvals.
		return http.StatusConflict, ckr, code
	}
	if s, ok := statusByCKR[rv]; ok && ckr != "" {
		return s, ckr, code
	}
	if ckr != "" {
		// Any other refusal of the token's is a request it will not do.
		return http.StatusBadRequest, ckr, code
	}
	return http.StatusInternalServerError, ckr, codeInternal
}

// message words err for the response: the token's detail without its
// package prefix.
func message(err error) string {
	return strings.TrimPrefix(err.Error(), "token: ")
}

// writeError answers err as D2 says. A 500 is a bug in the console: it is
// logged (the tests hunt for them).
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, ckr, code := classify(err)
	if status == http.StatusInternalServerError {
		s.log.Error("console: internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, status, errorBody{errorDetail{CKR: ckr, Code: code, Message: message(err)}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"ckr":"","code":"internal","message":"console: response not encodable"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
	w.Write([]byte("\n"))
}
