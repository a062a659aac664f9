package mechanisms

import (
	"crypto/rsa"
	"errors"
	"fmt"

	"gohsm/internal/ck"
)

// stdErrors maps the standard library's sentinel crypto errors to the CK_RV
// the spec gives for the same condition (PKCS#11 v3.0 base specification,
// "Function-specific return values" and "Return values for functions that
// use a session handle"). Anything not listed is
// CKR_FUNCTION_FAILED.
var stdErrors = []struct {
	err error
	rv  ck.RV
}{
	{rsa.ErrMessageTooLong, ck.CKR_DATA_LEN_RANGE},
	{rsa.ErrDecryption, ck.CKR_ENCRYPTED_DATA_INVALID},
	{rsa.ErrVerification, ck.CKR_SIGNATURE_INVALID},
}

// cryptoErr wraps an error from a standard library crypto call with context
// and the CK_RV it stands for.
func cryptoErr(context string, err error) error {
	rv := ck.CKR_FUNCTION_FAILED
	for _, e := range stdErrors {
		if errors.Is(err, e.err) {
			rv = e.rv
			break
		}
	}
	return fmt.Errorf("mechanisms: %s: %w (%w)", context, rv, err)
}
