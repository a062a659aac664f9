// Package audit is the token's audit log: CloudHSM's management events
// (never crypto operations), one gap-free sequence per stream, each record
// chained to the one before it by an HMAC under a key of the token
// (store.ChainMAC), and the tools that read and verify it (docs/audit.md).
//
// The token writes events through store.Store.Audited, in the transaction
// of the change they record, and store.Store.Audit for refusals.
package audit

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// Opcode is a CloudHSM audit opcode (UG:cloudhsm-audit-log-reference).
// Values from UG-2023:interpreting-audit-logs.md where it shows them; the
// others are not published and gohsm numbers them from 0x1000 up (a log
// reader should match the name, as CloudHSM's documentation does).
type Opcode uint16

// Opcodes gohsm writes.
const (
	CN_INIT_TOKEN                 Opcode = 0x1
	CN_CREATE_USER                Opcode = 0x3 // a crypto user
	CN_CREATE_CO                  Opcode = 0x4
	CN_CHANGE_PSWD                Opcode = 0x9
	CN_LOGIN                      Opcode = 0xd
	CN_LOGOUT                     Opcode = 0xe
	CN_DESTROY_OBJECT             Opcode = 0x11 // a session key
	CN_SHARE_OBJECT               Opcode = 0x12 // share and unshare
	CN_GENERATE_KEY               Opcode = 0x17
	CN_GENERATE_KEY_PAIR          Opcode = 0x19
	CN_WRAP_KEY                   Opcode = 0x1a
	CN_UNWRAP_KEY                 Opcode = 0x1b
	CN_GEN_PSWD_ENC_KEY           Opcode = 0x1d
	CN_NIST_AES_WRAP              Opcode = 0x1e
	CN_INIT_DONE                  Opcode = 0x95
	CN_DELETE_USER                Opcode = 0xa1
	CN_EXTRACT_MASKED_OBJECT_USER Opcode = 0xf0
	CN_INSERT_MASKED_OBJECT_USER  Opcode = 0xf1
	CN_CREATE_APPLIANCE_USER      Opcode = 0xfc
)

// Opcodes whose values CloudHSM does not publish: gohsm's numbering, from
// 0x1000 (docs/audit.md lists them; a reader matches names).
const (
	CN_CREATE_OBJECT    Opcode = 0x1000 + iota
	CN_MODIFY_OBJECT           // attribute change
	CN_TOMBSTONE_OBJECT        // a token key deleted
	CN_DERIVE_KEY
	CN_SET_M_VALUE // quorum value
	CN_APPROVE_TOKEN
	CN_DELETE_TOKEN
	CN_GET_TOKEN
	CN_REGISTER_QUORUM_PUBKEY
	CN_BACKUP_BEGIN
	CN_BACKUP_END
	CN_RESTORE_BEGIN
	CN_RESTORE_END
	CN_APP_FINALIZE
	CN_CLOSE_SESSION
	CN_ZEROIZE
	CN_QUOTA_EXCEEDED // gohsm's own: a quota refusal
	// gohsm's own, for the emulated cluster (token/cluster, docs/cluster.md):
	GOHSM_HSM_STATE      // an emulated HSM went down, came up, was degraded
	GOHSM_FAULT_INJECTED // a fault plan failed a call
	GOHSM_FAULT_PLAN     // a fault plan was loaded or cleared
	GOHSM_STORE_FAULT    // a fault plan dropped or restored the store
)

// UserType is CloudHSM's user type in MGMT_USER_DETAILS_LOG events.
type UserType int

const (
	CN_CRYPTO_USER        UserType = 1
	CN_CRYPTO_OFFICER     UserType = 2
	CN_APPLIANCE_USER     UserType = 5
	CN_CRYPTO_PRE_OFFICER UserType = 6
)

// LogType is CloudHSM's log type.
type LogType int

const (
	MINIMAL_LOG_ENTRY     LogType = 0
	MGMT_KEY_DETAILS_LOG  LogType = 1
	MGMT_USER_DETAILS_LOG LogType = 2
)

// Event is one audit record before the store numbers and chains it.
// Response is CloudHSM's "code:text" pair (0 and "HSM Return: SUCCESS"
// for success, e.g. 163 and "HSM Error: RET_USER_LOGIN_FAILURE").
type Event struct {
	TimeUS    int64    `json:"time_us"`        // UTC, microseconds since 1970
	Reboot    uint32   `json:"reboot_counter"` // the stream's reboot counter
	Opcode    Opcode   `json:"opcode"`
	Session   uint64   `json:"session_handle"`
	Code      int      `json:"response_code"`
	Response  string   `json:"response"`
	LogType   LogType  `json:"log_type"`
	User      string   `json:"user_name,omitempty"` // the user acted on (user events) or acting
	UserType  UserType `json:"user_type,omitempty"`
	Key       uint64   `json:"key_handle,omitempty"`        // secret or private key
	PublicKey uint64   `json:"public_key_handle,omitempty"` // of a pair
	Actor     string   `json:"actor,omitempty"`             // the logged-in user who ran it
	Detail    string   `json:"detail,omitempty"`            // gohsm's own words (a quota, a service)
}

// Encode is the record the store chains: the event as JSON, as
// json.Marshal writes it. An event whose strings are plain ASCII (every
// event the token makes, but for a user name or detail with other bytes)
// is written field by field, without reflection: the queued records of
// session keys are encoded on the flush's goroutine, and json.Marshal was
// most of its time outside SQLite. Any other is json.Marshal's.
func (e Event) Encode() ([]byte, error) {
	if plainJSON(e.Response) && plainJSON(e.User) && plainJSON(e.Actor) && plainJSON(e.Detail) {
		return e.appendJSON(make([]byte, 0, 256)), nil
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("audit: encode: %w", err)
	}
	return b, nil
}

// plainJSON: s is printable ASCII that json.Marshal writes as it is
// (no quote, backslash or HTML character to escape).
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// appendJSON appends e as json.Marshal encodes it, for strings that
// plainJSON accepts: the fields in order, the omitempty ones left out
// when zero.
func (e Event) appendJSON(b []byte) []byte {
	b = append(b, `{"time_us":`...)
	b = strconv.AppendInt(b, e.TimeUS, 10)
	b = append(b, `,"reboot_counter":`...)
	b = strconv.AppendUint(b, uint64(e.Reboot), 10)
	b = append(b, `,"opcode":`...)
	b = strconv.AppendUint(b, uint64(e.Opcode), 10)
	b = append(b, `,"session_handle":`...)
	b = strconv.AppendUint(b, e.Session, 10)
	b = append(b, `,"response_code":`...)
	b = strconv.AppendInt(b, int64(e.Code), 10)
	b = append(b, `,"response":"`...)
	b = append(b, e.Response...)
	b = append(b, `","log_type":`...)
	b = strconv.AppendInt(b, int64(e.LogType), 10)
	if e.User != "" {
		b = append(b, `,"user_name":"`...)
		b = append(b, e.User...)
		b = append(b, '"')
	}
	if e.UserType != 0 {
		b = append(b, `,"user_type":`...)
		b = strconv.AppendInt(b, int64(e.UserType), 10)
	}
	if e.Key != 0 {
		b = append(b, `,"key_handle":`...)
		b = strconv.AppendUint(b, e.Key, 10)
	}
	if e.PublicKey != 0 {
		b = append(b, `,"public_key_handle":`...)
		b = strconv.AppendUint(b, e.PublicKey, 10)
	}
	if e.Actor != "" {
		b = append(b, `,"actor":"`...)
		b = append(b, e.Actor...)
		b = append(b, '"')
	}
	if e.Detail != "" {
		b = append(b, `,"detail":"`...)
		b = append(b, e.Detail...)
		b = append(b, '"')
	}
	return append(b, '}')
}
