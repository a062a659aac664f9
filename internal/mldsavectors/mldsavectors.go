// Package mldsavectors reads the published HashML-DSA vectors kept in
// mechanisms/testdata (its README says where each comes from and how it
// was copied), for the mechanisms tests and for the tests that run the
// same cases through the built library (tests/noble) alike.
package mldsavectors

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"gohsm/internal/testenv"
)

// ACVPCase is one NIST ACVP sigVer case of an external/preHash test
// group, as acvp_hashmldsa_sigver.json carries it: where it comes from,
// and the prompt's fields with expectedResults' testPassed.
type ACVPCase struct {
	Repository          string `json:"repository"`
	Commit              string `json:"commit"`
	Path                string `json:"path"`
	ExpectedResultsPath string `json:"expectedResultsPath"`
	TgID                int    `json:"tgId"`
	TcID                int    `json:"tcId"`
	ParameterSet        string `json:"parameterSet"`
	SignatureInterface  string `json:"signatureInterface"`
	PreHash             string `json:"preHash"`
	HashAlg             string `json:"hashAlg"`
	TestPassed          bool   `json:"testPassed"`
	PK                  string `json:"pk"`
	Message             string `json:"message"`
	Context             string `json:"context"`
	Signature           string `json:"signature"`
}

// BCCase is one deterministic HashML-DSA (SHA-512) signing case of Bouncy
// Castle's test data, as bc_hashmldsa_sha512_sign.json carries it: where
// it comes from, the key's seed ξ, the message, context and SHA-512 of
// the message, the first and last 16 bytes of the public key, and the
// signature (the file's sm).
type BCCase struct {
	Repository   string `json:"repository"`
	Commit       string `json:"commit"`
	Path         string `json:"path"`
	Count        int    `json:"count"`
	ParameterSet string `json:"parameterSet"`
	HashAlg      string `json:"hashAlg"`
	Seed         string `json:"seed"`
	Msg          string `json:"msg"`
	Context      string `json:"context"`
	MessageHash  string `json:"messageHash"`
	PKFirst16    string `json:"pkFirst16"`
	PKLast16     string `json:"pkLast16"`
	SM           string `json:"sm"`
}

// ACVP is every case of acvp_hashmldsa_sigver.json.
func ACVP(t testing.TB) []ACVPCase { return load[ACVPCase](t, "acvp_hashmldsa_sigver.json") }

// BC is every case of bc_hashmldsa_sha512_sign.json.
func BC(t testing.TB) []BCCase { return load[BCCase](t, "bc_hashmldsa_sha512_sign.json") }

// load reads mechanisms/testdata/name's testCases; a missing, unreadable
// or empty file fails the test.
func load[C any](t testing.TB, name string) []C {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "mechanisms", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		TestCases []C `json:"testCases"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(doc.TestCases) == 0 {
		t.Fatalf("%s: no test cases", name)
	}
	return doc.TestCases
}
