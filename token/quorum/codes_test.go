package quorum

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRefusalsHaveCodes: every quorum refusal this package makes carries
// a stable code (scripts read it in gohsm's --json errors), wrapped or not.
func TestRefusalsHaveCodes(t *testing.T) {
	_, errService := ParseService("nope", false)
	_, errCluster := ParseService(string(Cluster), false)
	_, errLockout := Lockout(3, 2)
	_, errParse := ParseTokenFile([]byte("{"))
	cases := map[string]struct {
		err  error
		code string
	}{
		"approval required": {ErrApprovalRequired, CodeApprovalRequired},
		"quorum failed":     {ErrQuorumFailed, CodeApprovalRequired},
		"expired":           {ErrExpired, CodeTokenExpired},
		"unknown":           {ErrUnknown, CodeTokenUnknown},
		"not yours":         {ErrNotYours, CodeTokenNotYours},
		"too few":           {ErrTooFew, CodeTooFewApprovals},
		"bad token":         {ErrBadToken, CodeBadTokenFile},
		"bad key":           {ErrBadKey, CodeBadPublicKey},
		"bad signature":     {ErrBadSig, CodeBadSignature},
		"unregistered":      {ErrUnregistered, CodeUnregistered},
		"service":           {errService, CodeBadService},
		"cluster":           {errCluster, CodeBadService},
		"range":             {CheckValue(9), CodeBadValue},
		"user over quorum":  {CheckValues(map[Service]int{User: 3, Quorum: 2}), CodeBadValue},
		"lockout":           {errLockout, CodeLockout},
		"malformed file":    {errParse, CodeBadTokenFile},
	}
	for name, c := range cases {
		var e *Error
		require.True(t, errors.As(c.err, &e), "%s: %v", name, c.err)
		require.Equal(t, c.code, e.Code, name)
	}
}
