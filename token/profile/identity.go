package profile

import "gohsm/internal/ck"

// Identity is what the profile decides about users and logins
// (cloudhsm-facts §1.3-1.5; docs/cloudhsm.md "Identity").
type Identity struct {
	// NamedPINOnly: a C_Login PIN must be "name:password"; a bare
	// password is BarePINError. Off, a bare password logs in the role's
	// default user ("admin" / "user"), for clients that know nothing of
	// named users.
	NamedPINOnly bool
	BarePINError ck.RV
	// UnknownUserPINIncorrect: a login naming no crypto user is
	// CKR_PIN_INCORRECT even before any crypto user has a password (the
	// spec's answer there is CKR_USER_PIN_NOT_INITIALIZED, which a
	// CloudHSM cluster, always initialised, never gives).
	UnknownUserPINIncorrect bool
	// NoPasswordChangeWhileLoggedIn: a user logged in anywhere else (any
	// process, the registry in token/store) keeps its password: CloudHSM's
	// "You cannot change the password of a user who is currently logged in"
	// (UG user change-password). Deleting a logged-in user is refused in
	// every profile: its sessions would go on working.
	NoPasswordChangeWhileLoggedIn bool
	// MaxUsers bounds the users of the token (officers and crypto users);
	// 0: no limit. The user past it is QuotaError.
	MaxUsers   int
	QuotaError ck.RV
	// PublicKeysSeenByAll: every crypto user sees every public key, private
	// or not (CloudHSM's key list: "all public keys in the cluster";
	// behaviour 9), and may use it; only its owner may change or delete it.
	// An officer sees them too (an admin's key list; it may set trusted)
	// and uses none.
	PublicKeysSeenByAll bool
	// QuorumCluster: the quorum service "cluster" exists (CloudHSM:
	// "Cluster service is exclusively available on hsm2m.medium",
	// UG:quorum-auth-chsm-cli-service-names); list-quorum-values shows it.
	QuorumCluster bool
}

func standardIdentity() Identity { return Identity{} }

// maxUsers is CloudHSM's "Max users per cluster" (cloudhsm-facts §1.5):
// 1,024 for hsm2m.medium. For hsm1.medium the current quotas page was
// stored with shifted columns (250 in the hsm1 column); the 2023 guide,
// written when hsm1 was the only type, and CloudWatch's HsmUsersMax
// ("Currently this is 1,024") both say 1,024, so both types get 1,024.
var maxUsers = map[string]int{HSM1: 1024, HSM2M: 1024}

func cloudhsmIdentity(s Settings) Identity {
	return Identity{
		NamedPINOnly:                  true,
		BarePINError:                  ck.CKR_PIN_INCORRECT,
		UnknownUserPINIncorrect:       true,
		NoPasswordChangeWhileLoggedIn: true,
		PublicKeysSeenByAll:           true,
		MaxUsers:                      maxUsers[s.HSMType],
		QuorumCluster:                 s.HSMType == HSM2M,
		// The HSM's user table is full: no room on the token.
		QuotaError: ck.CKR_DEVICE_MEMORY,
	}
}
