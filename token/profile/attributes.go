package profile

import (
	"gohsm/internal/ck"
	"gohsm/token/attrs"
)

// A profile's Attributes are what it changes in the attribute tables'
// rules for key objects (token/attrs; the tables follow the PKCS#11 spec),
// as an attrs.Policy, whose fields are documented there. The zero value
// changes nothing (standard).

func standardAttributes() attrs.Policy { return attrs.Policy{} }

// cloudhsmUsage are the usage flags CloudHSM defaults to CK_FALSE for
// every key (cloudhsm-facts §2.7: the SDK 5 attribute table's defaults,
// and CloudHSM CLI's "encrypt, decrypt, derive: false"). The SDK 3 table
// showed CKA_SIGN/CKA_VERIFY true for secret keys; SDK 5's says the
// PKCS#11 defaults apply, and AWS's SDK 5 samples set every flag they use,
// so an SDK 5 application passes them and one that relies on a true
// default fails on gohsm as it would risk failing on CloudHSM.
var cloudhsmUsage = []ck.AttributeType{
	ck.CKA_ENCRYPT, ck.CKA_DECRYPT, ck.CKA_SIGN, ck.CKA_VERIFY,
	ck.CKA_WRAP, ck.CKA_UNWRAP, ck.CKA_DERIVE,
}

// cloudhsmAttributes: cloudhsm-facts §2.7 and behaviours 11-13, 23.
func cloudhsmAttributes(Settings) attrs.Policy {
	keyClasses := []ck.ObjectClass{ck.CKO_PUBLIC_KEY, ck.CKO_PRIVATE_KEY, ck.CKO_SECRET_KEY}
	defaults := map[ck.ObjectClass]map[ck.AttributeType]bool{}
	for _, c := range keyClasses {
		defaults[c] = map[ck.AttributeType]bool{}
		for _, a := range cloudhsmUsage {
			defaults[c][a] = false
		}
	}
	// Public keys are private too (the attribute table's default for
	// every key); every crypto user sees them all the same
	// (Identity.PublicKeysSeenByAll, behaviour 9).
	defaults[ck.CKO_PUBLIC_KEY][ck.CKA_PRIVATE] = true
	return attrs.Policy{
		Defaults:   defaults,
		Prototypes: attrs.NewPrototypes(),
		// Note 1 of the attribute table: CKA_PRIVATE and CKA_MODIFIABLE
		// "must be explicitly set only to the default value" (true), for
		// public keys too: pkcs11-tool's key generation, which puts
		// CKA_PRIVATE false in the public template, fails against
		// CloudHSM until --private is given (OpenSC#2747). CKA_DERIVE
		// "must be False for all public keys and cannot be set to True"
		// (UG:modify-attr).
		Fixed: map[ck.ObjectClass]map[ck.AttributeType]bool{
			ck.CKO_PUBLIC_KEY:  {ck.CKA_MODIFIABLE: true, ck.CKA_PRIVATE: true, ck.CKA_DERIVE: false},
			ck.CKO_PRIVATE_KEY: {ck.CKA_MODIFIABLE: true, ck.CKA_PRIVATE: true},
			ck.CKO_SECRET_KEY:  {ck.CKA_MODIFIABLE: true, ck.CKA_PRIVATE: true},
		},
		// Spec attributes of keys that are not in CloudHSM's attribute
		// table (nor in `key list --verbose`): dates, subject, copy and
		// recover flags (SDK 5 has neither function), mechanism lists,
		// the derive template, always-authenticate, public key info and
		// the unique ID.
		Unsupported: []ck.AttributeType{
			ck.CKA_START_DATE, ck.CKA_END_DATE, ck.CKA_SUBJECT, ck.CKA_COPYABLE,
			ck.CKA_SIGN_RECOVER, ck.CKA_VERIFY_RECOVER, ck.CKA_ALLOWED_MECHANISMS,
			ck.CKA_KEY_GEN_MECHANISM, ck.CKA_DERIVE_TEMPLATE, ck.CKA_ALWAYS_AUTHENTICATE,
			ck.CKA_PUBLIC_KEY_INFO, ck.CKA_UNIQUE_ID,
		},
		ForeignInconsistent: true,
		// CKA_LOCAL, CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE are
		// read-only in the tables already; CloudHSM adds the check value.
		ReadOnly: []ck.AttributeType{ck.CKA_CHECK_VALUE},
		// Note 2: CKA_PUBLIC_EXPONENT is mandatory in the RSA public
		// template (the spec lets the token pick one).
		RequiredToGenerate: map[ck.KeyType][]ck.AttributeType{ck.CKK_RSA: {ck.CKA_PUBLIC_EXPONENT}},
		// What `key set-attribute` may change (UG:modify-attr): not
		// CKA_ID, not CKA_EXTRACTABLE; CKA_TRUSTED only by an officer
		// (the token's SetTrusted, never this path).
		Settable: []ck.AttributeType{
			ck.CKA_LABEL, ck.CKA_TOKEN, ck.CKA_ENCRYPT, ck.CKA_DECRYPT, ck.CKA_SIGN, ck.CKA_VERIFY,
			ck.CKA_WRAP, ck.CKA_UNWRAP, ck.CKA_SENSITIVE, ck.CKA_DERIVE, ck.CKA_WRAP_WITH_TRUSTED,
		},
		RaiseOnly: []ck.AttributeType{ck.CKA_TOKEN},
		// The attribute table marks private-key components "S": never
		// read by C_GetAttributeValue, even of a key made with
		// CKA_SENSITIVE false (it can still be wrapped when extractable).
		NeverRevealed: []ck.ObjectClass{ck.CKO_PRIVATE_KEY},
	}
}
