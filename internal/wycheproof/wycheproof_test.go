package wycheproof

import "testing"

func TestLoad(t *testing.T) {
	f := Load(t, "aes_gcm_test.json")
	if f.Algorithm != "AES-GCM" || f.NumberOfTests < 100 {
		t.Fatalf("unexpected file: %s with %d tests", f.Algorithm, f.NumberOfTests)
	}
	n := 0
	for _, g := range f.Groups {
		if Int(t, g.Fields, "keySize") == 0 {
			t.Fatalf("group without keySize")
		}
		for _, c := range g.Tests {
			n++
			if c.ID == 0 || c.Result == "" || Hex(t, c.Fields, "key") == nil && Str(t, c.Fields, "key") != "" {
				t.Fatalf("case %d: bad decode", c.ID)
			}
		}
	}
	if n != f.NumberOfTests {
		t.Fatalf("decoded %d cases, file says %d", n, f.NumberOfTests)
	}
}
