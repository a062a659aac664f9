package operator

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// The JSON shapes of the AWS CloudHSM user guide's command pages (Client
// SDK 5, CloudHSM CLI). Each output is decoded into its shape with
// unknown fields refused, so a field gohsm adds, renames or drops fails
// the test, not only a changed value. The page each shape comes from is
// named on it.

// envelope is every command's output: {"error_code": 0|1, "data": ...}
// (cloudhsm_cli-reference, every command page's example).
type envelope struct {
	ErrorCode *int            `json:"error_code"`
	Data      json.RawMessage `json:"data"`
}

// userResult is user create / user change-quorum token-sign register
// (cloudhsm_cli-user-create, cloudhsm_cli-user-chqm-token-reg).
type userResult struct {
	Username string `json:"username"`
	Role     string `json:"role"`
}

// strategy is an entry of a user's mfa or quorum list
// (cloudhsm_cli-user-list; cloudhsm_cli-user-chqm-token-reg shows
// {"strategy": "token-sign", "status": "enabled"} after a registration).
type strategy struct {
	Strategy string `json:"strategy"`
	Status   string `json:"status"`
}

// userList is user list (cloudhsm_cli-user-list).
type userList struct {
	Users []struct {
		Username        string     `json:"username"`
		Role            string     `json:"role"`
		Locked          string     `json:"locked"` // "true"/"false", a string on the page
		MFA             []strategy `json:"mfa"`
		Quorum          []strategy `json:"quorum"`
		ClusterCoverage string     `json:"cluster-coverage"`
	} `json:"users"`
}

// coverage is a key owner or shared user (cloudhsm_cli-key-list,
// cloudhsm_cli-key-generate-symmetric-aes).
type coverage struct {
	Username    string `json:"username"`
	KeyCoverage string `json:"key-coverage"`
}

// keyInfo is a key's "key-info" (cloudhsm_cli-key-generate-symmetric-aes,
// cloudhsm_cli-key-list --verbose).
type keyInfo struct {
	KeyOwners       []coverage `json:"key-owners"`
	SharedUsers     []coverage `json:"shared-users"`
	KeyQuorumValues struct {
		Manage int `json:"manage-key-quorum-value"`
		Use    int `json:"use-key-quorum-value"`
	} `json:"key-quorum-values"`
	ClusterCoverage string `json:"cluster-coverage"`
}

// keyJSON is one key: key-reference, key-info and attributes (the
// attributes are CloudHSM CLI's attribute names; checked by name below).
type keyJSON struct {
	KeyReference string         `json:"key-reference"`
	KeyInfo      *keyInfo       `json:"key-info"`
	Attributes   map[string]any `json:"attributes"`
}

// generatedKey is key generate-symmetric (cloudhsm_cli-key-generate-symmetric-aes).
type generatedKey struct {
	Key keyJSON `json:"key"`
}

// generatedPair is key generate-asymmetric-pair
// (cloudhsm_cli-key-generate-asymmetric-pair-ec).
type generatedPair struct {
	PublicKey  keyJSON `json:"public_key"`
	PrivateKey keyJSON `json:"private_key"`
}

// keyList is key list (cloudhsm_cli-key-list); next_token only while
// more keys remain.
type keyList struct {
	MatchedKeys      []keyJSON `json:"matched_keys"`
	TotalKeyCount    int       `json:"total_key_count"`
	ReturnedKeyCount int       `json:"returned_key_count"`
	NextToken        *string   `json:"next_token"`
}

// message is key share's and crypto verify's {"message": "..."}
// (cloudhsm_cli-key-share, cloudhsm_cli-crypto-verify-ecdsa).
type message struct {
	Message string `json:"message"`
}

// signature is crypto sign (cloudhsm_cli-crypto-sign-ecdsa).
type signature struct {
	KeyReference string `json:"key-reference"`
	Signature    string `json:"signature"`
}

// tokenPath is quorum token-sign generate (quorum-auth-chsm-cli-admin and
// -first-time show "path").
type tokenPath struct {
	Path string `json:"path"`
}

// quorumValues is quorum token-sign list-quorum-values
// (cloudhsm_cli-qm-token-list-qm: user and quorum; cluster on hsm2m).
type quorumValues struct {
	User    int  `json:"user"`
	Quorum  int  `json:"quorum"`
	Cluster *int `json:"cluster"`
}

// count is a number in quorum token-sign list. The AWS pages disagree:
// cloudhsm_cli-qm-token-list prints plain numbers, quorum-auth-chsm-cli-admin
// {"value": N}; either is accepted (gohsm prints the latter).
type count int

func (c *count) UnmarshalJSON(b []byte) error {
	var n int
	if err := json.Unmarshal(b, &n); err == nil {
		*c = count(n)
		return nil
	}
	var v struct {
		Value *int `json:"value"`
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&v); err != nil || v.Value == nil {
		return fmt.Errorf("want a number or {\"value\": N}, got %s", b)
	}
	*c = count(*v.Value)
	return nil
}

// tokenList is quorum token-sign list (cloudhsm_cli-qm-token-list).
type tokenList struct {
	Tokens []struct {
		Username          string `json:"username"`
		Service           string `json:"service"`
		ApprovalsRequired count  `json:"approvals-required"`
		NumberOfApprovals count  `json:"number-of-approvals"`
		TokenTimeout      count  `json:"token-timeout-seconds"`
		ClusterCoverage   string `json:"cluster-coverage"`
	} `json:"tokens"`
}

// gohsm's own commands (not CloudHSM's): their shapes are docs/backup.md's
// and docs/audit.md's.

// backupResult is gohsm --json token backup / token restore.
type backupResult struct {
	Created     string `json:"created"`
	File        string `json:"file"`
	Label       string `json:"label"`
	Serial      string `json:"serial"`
	SHA256      string `json:"sha256"`
	Size        int64  `json:"size"`
	Slot        int    `json:"slot"`
	TokenFormat int    `json:"token_format"`
}

// auditVerify is gohsm --json audit verify.
type auditVerify struct {
	Streams []struct {
		Stream    string `json:"stream"`
		First     uint64 `json:"first"`
		Last      uint64 `json:"last"`
		Records   int    `json:"records"`
		Archived  int    `json:"archived"`
		Unchecked bool   `json:"unchecked_before_first"`
		Anchors   int    `json:"anchors"`
	} `json:"streams"`
	Verified bool `json:"verified"`
}

// auditLine is one line of gohsm audit show --json.
type auditLine struct {
	Stream  string `json:"stream"`
	Seq     uint64 `json:"seq"`
	Opcode  string `json:"opcode"`
	LogType string `json:"log_type"`
	Event   struct {
		TimeUS    int64  `json:"time_us"`
		UserName  string `json:"user_name"`
		Actor     string `json:"actor"`
		KeyHandle uint64 `json:"key_handle"`
		Response  int    `json:"response_code"`
		Detail    string `json:"detail"`
	} `json:"event"`
	Record string `json:"record"`
	MAC    string `json:"mac"`
}

// strict decodes b into v, refusing unknown fields and trailing data.
func strict(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return fmt.Errorf("trailing data after the JSON value")
	}
	return nil
}
