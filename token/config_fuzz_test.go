package token

import (
	"strings"
	"testing"
)

// FuzzParseConfig: any configuration text parses or fails with errConfig,
// never panics; what parses obeys the documented bounds. Seeds:
// testdata/fuzz/FuzzParseConfig.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		"",
		"token_dir = /tmp/x\nkdf_time = 1\nkdf_memory = 64\nkdf_threads = 1\n[slot 3]\nlabel = t\n",
		"[slot 0]\n[slot 1]\ndir = /a\nprofile = standard\n",
		"[slot 0]\n[slot 0]\n",
		"min_pin_len = 9\nmax_pin_len = 4\n",
		"token_dir =\n",
		"lockout_threshold = 0x10\n# comment\nsync = full # trailing\n",
		"[slot 4294967296]\n",
		"[slot -1]\n",
		"[slot 1\n",
		"log_level = debug\nlog_file = /dev/null\ntoken_group = 0\n",
		"label = " + strings.Repeat("x", 33) + "\n",
		"=\n",
		"store = postgres://u:pw@h:5432/db?sslmode=disable\nstore_timeout = 1s\n[slot 1]\nstore = sqlite\nstore_timeout = 100ms\n",
		"[slot 2]\nstore = postgresql://h/db?password=pw\n",
	} {
		f.Add(s)
	}
	getenv := func(k string) string {
		if k == "HOME" {
			return "/home/fuzz"
		}
		return ""
	}
	f.Fuzz(func(t *testing.T, text string) {
		c, err := parseConfig(text, "fuzz", getenv)
		if err != nil {
			if c != nil {
				t.Fatalf("error %v with a config", err)
			}
			if !strings.HasPrefix(err.Error(), "config: ") {
				t.Fatalf("error without the package prefix: %v", err)
			}
			return
		}
		if c.TokenDir == "" || len(c.Slots) == 0 {
			t.Fatalf("config without a token dir or slot: %+v", c)
		}
		if c.MinPINLen < 1 || c.MinPINLen > c.MaxPINLen || c.MaxPINLen > 255 {
			t.Fatalf("PIN lengths %d..%d", c.MinPINLen, c.MaxPINLen)
		}
		if c.LockoutThreshold < 1 || c.KDF.Validate() != nil {
			t.Fatalf("threshold %d, KDF %+v: %v", c.LockoutThreshold, c.KDF, c.KDF.Validate())
		}
		seen := map[uint64]bool{}
		for _, s := range c.Slots {
			if seen[uint64(s.ID)] || s.ID > 1<<32-1 {
				t.Fatalf("slot id %d repeated or too large", s.ID)
			}
			seen[uint64(s.ID)] = true
			if len(s.Label) > 32 || profileTable[s.Profile] == nil || s.Dir == "" {
				t.Fatalf("slot %+v", s)
			}
			if s.StoreTimeout < MinStoreTimeout || s.StoreTimeout > MaxStoreTimeout ||
				s.Store != StoreSQLite && !strings.HasPrefix(s.Store, "postgres://") && !strings.HasPrefix(s.Store, "postgresql://") {
				t.Fatalf("slot %d: store %q, store_timeout %v", s.ID, RedactURL(s.Store), s.StoreTimeout)
			}
		}
	})
}
