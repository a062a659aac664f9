package clients

// Real clients against a slot with profile = cloudhsm, each doing what an
// AWS CloudHSM (Client SDK 5) application does, and the same run on a
// standard slot: where CloudHSM answers differently, the cloudhsm run sees
// CloudHSM's answer and the standard run the specification's. The tests
// are named TestCloudHSM<Client>; docs/cloudhsm.md "Real clients" lists
// what each proves.

import (
	"bytes"
	"testing"
)

// profiles are the two runs of every scenario here.
var profiles = []string{"cloudhsm", "standard"}

// newProfileHSM is newHSM with the slot's profile set: a cloudhsm slot is
// set up as a CloudHSM cluster is, through the CLI (token init makes the
// first officer, who creates the crypto user "user").
func newProfileHSM(t *testing.T, label, profile string) *hsm {
	t.Helper()
	return newHSMWith(t, label, "profile = "+profile+"\n")
}

// setenv points this process's C_Initialize at h's token.
func (h *hsm) setenv(t *testing.T) {
	for _, kv := range h.Env {
		k, v, _ := bytes.Cut([]byte(kv), []byte("="))
		t.Setenv(string(k), string(v))
	}
}
