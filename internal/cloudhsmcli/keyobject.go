package cloudhsmcli

import (
	"errors"
	"strings"

	"gohsm/internal/ck"
)

// keyObject is one key as CloudHSM CLI prints it in "key" and
// "matched_keys": its reference, who owns and shares it, and its
// attributes (the shape of the key list --verbose example in "Filter keys
// using CloudHSM CLI",
// https://docs.aws.amazon.com/cloudhsm/latest/userguide/manage-keys-cloudhsm-cli-filtering.html).
type keyObject struct {
	Reference  string          `json:"key-reference"`
	Info       keyInfo         `json:"key-info"`
	Attributes AttributeObject `json:"attributes"`
}

type keyInfo struct {
	Owners      []keyUser      `json:"key-owners"`
	SharedUsers []keyUser      `json:"shared-users"`
	Quorum      keyQuorumValue `json:"key-quorum-values"`
	Coverage    string         `json:"cluster-coverage"`
}

type keyUser struct {
	Username string `json:"username"`
	Coverage string `json:"key-coverage"`
}

// keyQuorumValue is a key's quorum values (0: none; quorum.go).
type keyQuorumValue struct {
	Manage int `json:"manage-key-quorum-value"`
	Use    int `json:"use-key-quorum-value"`
}

// describeKey builds a key's keyObject (one HSM: coverage is "full", or
// "session" for a session key, as the generate-symmetric --session
// example shows).
func (c *Context) describeKey(obj ck.ULong) (*keyObject, error) {
	m, h, err := c.moduleSession()
	if err != nil {
		return nil, err
	}
	res, err := m.GetAttributeValue(h, obj, []ck.AttributeType{ck.CKA_GOHSM_OWNER, ck.CKA_GOHSM_SHARED_USERS, ck.CKA_TOKEN})
	if err != nil {
		return nil, err
	}
	if res[0].Err != nil || res[1].Err != nil {
		return nil, errors.Join(res[0].Err, res[1].Err)
	}
	k := &keyObject{Reference: KeyReference(obj),
		Info: keyInfo{Owners: []keyUser{}, SharedUsers: []keyUser{}, Coverage: coverage(res[2])}}
	if o := string(res[0].Value); o != "" {
		k.Info.Owners = append(k.Info.Owners, keyUser{o, "full"})
	}
	if sh := string(res[1].Value); sh != "" {
		for _, u := range strings.Split(sh, ",") {
			k.Info.SharedUsers = append(k.Info.SharedUsers, keyUser{u, "full"})
		}
	}
	if k.Info.Quorum.Use, k.Info.Quorum.Manage, err = m.KeyQuorumValues(h, obj); err != nil {
		return nil, err
	}
	if k.Attributes, err = c.KeyAttributes(obj); err != nil {
		return nil, err
	}
	return k, nil
}
