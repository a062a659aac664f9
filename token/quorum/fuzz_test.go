package quorum

import (
	"encoding/json"
	"testing"
)

// FuzzQuorumFiles: token files, registration files and public keys come
// from operators' hands; whatever they hold, parsing never panics, and
// what parses keeps the rules (approval data 1..245 bytes, signatures
// decoded, one per approver).
func FuzzQuorumFiles(f *testing.F) {
	tf, _ := json.Marshal(NewTokenFile([]byte("approval data")))
	rf := NewRegistrationFile([]byte("registration"))
	rf.Tokens[0].Signed = "AAAA"
	rb, _ := json.Marshal(rf)
	for _, s := range [][]byte{tf, rb, []byte(`{"signatures":[{"username":"a","signature":"AAAA"},{"username":"A","signature":"AAAA"}]}`),
		[]byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"), []byte("{"), nil} {
		f.Add(s)
	}
	keys := map[string][]byte{"a": {1, 2, 3}}
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := ParseTokenFile(b); err == nil {
			if len(s.Approval) == 0 || len(s.Approval) > MaxApprovalData {
				t.Fatalf("approval data of %d bytes accepted", len(s.Approval))
			}
			Approvers(s, keys)
		}
		if a, _, err := ParseRegistrationFile(b); err == nil && (len(a) == 0 || len(a) > MaxApprovalData) {
			t.Fatalf("registration approval data of %d bytes accepted", len(a))
		}
		if pub, der, err := ParsePublicKey(b); err == nil && (pub.N.BitLen() != KeyBits || len(der) == 0) {
			t.Fatalf("a %d-bit key accepted", pub.N.BitLen())
		}
	})
}
