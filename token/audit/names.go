package audit

import (
	"fmt"
	"strings"
)

// opcodeNames names every opcode gohsm writes, as CloudHSM's audit log
// reference does (UG:cloudhsm-audit-log-reference).
var opcodeNames = map[Opcode]string{
	CN_INIT_TOKEN:                 "CN_INIT_TOKEN",
	CN_CREATE_USER:                "CN_CREATE_USER",
	CN_CREATE_CO:                  "CN_CREATE_CO",
	CN_CHANGE_PSWD:                "CN_CHANGE_PSWD",
	CN_LOGIN:                      "CN_LOGIN",
	CN_LOGOUT:                     "CN_LOGOUT",
	CN_DESTROY_OBJECT:             "CN_DESTROY_OBJECT",
	CN_SHARE_OBJECT:               "CN_SHARE_OBJECT",
	CN_GENERATE_KEY:               "CN_GENERATE_KEY",
	CN_GENERATE_KEY_PAIR:          "CN_GENERATE_KEY_PAIR",
	CN_WRAP_KEY:                   "CN_WRAP_KEY",
	CN_UNWRAP_KEY:                 "CN_UNWRAP_KEY",
	CN_GEN_PSWD_ENC_KEY:           "CN_GEN_PSWD_ENC_KEY",
	CN_NIST_AES_WRAP:              "CN_NIST_AES_WRAP",
	CN_INIT_DONE:                  "CN_INIT_DONE",
	CN_DELETE_USER:                "CN_DELETE_USER",
	CN_EXTRACT_MASKED_OBJECT_USER: "CN_EXTRACT_MASKED_OBJECT_USER",
	CN_INSERT_MASKED_OBJECT_USER:  "CN_INSERT_MASKED_OBJECT_USER",
	CN_CREATE_APPLIANCE_USER:      "CN_CREATE_APPLIANCE_USER",
	CN_CREATE_OBJECT:              "CN_CREATE_OBJECT",
	CN_MODIFY_OBJECT:              "CN_MODIFY_OBJECT",
	CN_TOMBSTONE_OBJECT:           "CN_TOMBSTONE_OBJECT",
	CN_DERIVE_KEY:                 "CN_DERIVE_KEY",
	CN_SET_M_VALUE:                "CN_SET_M_VALUE",
	CN_APPROVE_TOKEN:              "CN_APPROVE_TOKEN",
	CN_DELETE_TOKEN:               "CN_DELETE_TOKEN",
	CN_GET_TOKEN:                  "CN_GET_TOKEN",
	CN_REGISTER_QUORUM_PUBKEY:     "CN_REGISTER_QUORUM_PUBKEY",
	CN_BACKUP_BEGIN:               "CN_BACKUP_BEGIN",
	CN_BACKUP_END:                 "CN_BACKUP_END",
	CN_RESTORE_BEGIN:              "CN_RESTORE_BEGIN",
	CN_RESTORE_END:                "CN_RESTORE_END",
	CN_APP_FINALIZE:               "CN_APP_FINALIZE",
	CN_CLOSE_SESSION:              "CN_CLOSE_SESSION",
	CN_ZEROIZE:                    "CN_ZEROIZE",
	CN_QUOTA_EXCEEDED:             "CN_QUOTA_EXCEEDED",
	GOHSM_HSM_STATE:               "GOHSM_HSM_STATE",
	GOHSM_FAULT_INJECTED:          "GOHSM_FAULT_INJECTED",
	GOHSM_FAULT_PLAN:              "GOHSM_FAULT_PLAN",
	GOHSM_STORE_FAULT:             "GOHSM_STORE_FAULT",
}

// Published reports whether CloudHSM's documentation shows the opcode's
// value (the others are gohsm's numbering, 0x1000 up).
func (o Opcode) Published() bool { return o < 0x1000 }

// String is the opcode's name ("CN_LOGIN"), or "UNKNOWN_OPCODE".
func (o Opcode) String() string {
	if n, ok := opcodeNames[o]; ok {
		return n
	}
	return "UNKNOWN_OPCODE"
}

// ParseOpcode finds an opcode by name ("CN_LOGIN" or "login", any case) or
// by value ("0xd").
func ParseOpcode(s string) (Opcode, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	if !strings.HasPrefix(u, "CN_") && !strings.HasPrefix(u, "GOHSM_") && !strings.HasPrefix(u, "0X") {
		u = "CN_" + u
	}
	for o, n := range opcodeNames {
		if n == u {
			return o, nil
		}
	}
	var v uint16
	if _, err := fmt.Sscanf(strings.ToLower(u), "0x%x", &v); err == nil {
		if _, ok := opcodeNames[Opcode(v)]; ok {
			return Opcode(v), nil
		}
	}
	return 0, fmt.Errorf("audit: unknown opcode %q", s)
}

// Opcodes lists every opcode gohsm writes, by value.
func Opcodes() []Opcode {
	out := make([]Opcode, 0, len(opcodeNames))
	for o := range opcodeNames {
		out = append(out, o)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func (u UserType) String() string {
	switch u {
	case CN_CRYPTO_USER:
		return "CN_CRYPTO_USER"
	case CN_CRYPTO_OFFICER:
		return "CN_CRYPTO_OFFICER"
	case CN_APPLIANCE_USER:
		return "CN_APPLIANCE_USER"
	case CN_CRYPTO_PRE_OFFICER:
		return "CN_CRYPTO_PRE_OFFICER"
	}
	return "CN_UNKNOWN_USER"
}

func (l LogType) String() string {
	switch l {
	case MINIMAL_LOG_ENTRY:
		return "MINIMAL_LOG_ENTRY"
	case MGMT_KEY_DETAILS_LOG:
		return "MGMT_KEY_DETAILS_LOG"
	case MGMT_USER_DETAILS_LOG:
		return "MGMT_USER_DETAILS_LOG"
	}
	return "UNKNOWN_LOG_TYPE"
}

// Response codes and texts. The first three are CloudHSM's as its
// "interpreting audit logs" page shows them (UG-2023:interpreting-audit-
// logs.md); the key ones are key_mgmt_util's texts for the same refusals
// (UG:key_mgmt_util-deleteKey: 0xc6, 0xa8). The rest are gohsm's words
// where CloudHSM publishes none (docs/audit.md lists which is which).
const (
	RespSuccess       = 0
	RespLoginFailure  = 163 // wrong password
	RespNoUser        = 157 // unknown user
	RespKeyDenied     = 0xc6
	RespInvalidHandle = 0xa8
	RespUserLocked    = 0x1000 // gohsm's: the user is locked out
	RespUserInUse     = 0x1001 // gohsm's: the user owns keys or is logged in
	RespQuota         = 0x1002 // gohsm's: a quota was reached
	RespFailure       = 0x1003 // gohsm's: any other refusal
)

var responseTexts = map[int]string{
	RespSuccess:       "HSM Return: SUCCESS",
	RespLoginFailure:  "HSM Error: RET_USER_LOGIN_FAILURE",
	RespNoUser:        "HSM Error: user isn't initialized or user with this name doesn't exist",
	RespKeyDenied:     "HSM Error: Key Access is denied.",
	RespInvalidHandle: "HSM Error: Invalid object handle is passed to this operation",
	RespUserLocked:    "HSM Error: user is locked out after too many failed logins",
	RespUserInUse:     "HSM Error: user owns keys or is logged in",
	RespQuota:         "HSM Error: quota reached",
	RespFailure:       "HSM Error: operation refused",
}

// ResponseText is the text of a response code.
func ResponseText(code int) string {
	if t, ok := responseTexts[code]; ok {
		return t
	}
	return "HSM Error: unknown response"
}

// Respond sets the event's response code and text.
func (e *Event) Respond(code int) {
	e.Code, e.Response = code, ResponseText(code)
}
