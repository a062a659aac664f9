package token

import (
	"strings"
	"testing"
	"time"
)

// TestConfigStore: store and store_timeout per slot and as the top-level
// default; bad values are config errors that never show a password.
func TestConfigStore(t *testing.T) {
	const pg = "postgres://gohsm:s3cret@db.example:5433/tokens?sslmode=disable"
	c, err := ParseConfig("token_dir = /tmp/x\nstore_timeout = 2s\n[slot 0]\n[slot 1]\nstore = "+pg+"\nstore_timeout = 750ms\n[slot 2]\nstore = sqlite\n", "test")
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		store   string
		timeout time.Duration
		pg      bool
	}{{StoreSQLite, 2 * time.Second, false}, {pg, 750 * time.Millisecond, true}, {StoreSQLite, 2 * time.Second, false}}
	for i, w := range want {
		sc := c.Slots[i]
		if sc.Store != w.store || sc.StoreTimeout != w.timeout || sc.Postgres() != w.pg {
			t.Errorf("slot %d: store %q timeout %v postgres %v, want %+v", sc.ID, sc.Store, sc.StoreTimeout, sc.Postgres(), w)
		}
	}

	// The top-level store is every slot's default; a slot may go back to sqlite.
	c, err = ParseConfig("token_dir = /tmp/x\nstore = "+pg+"\n[slot 0]\n[slot 1]\nstore = sqlite\n", "test")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Slots[0].Postgres() || c.Slots[1].Postgres() || c.Slots[0].StoreTimeout != DefaultStoreTimeout {
		t.Errorf("slots %+v", c.Slots)
	}
	if d := DefaultConfig().Slots[0]; d.Store != StoreSQLite || d.StoreTimeout != DefaultStoreTimeout {
		t.Errorf("default slot: store %q timeout %v", d.Store, d.StoreTimeout)
	}

	for _, tc := range []struct{ text, want string }{
		{"store = mysql://u:s3cret@h/db", "want sqlite or a postgres:// URL"},
		{"store = s3cret", "want sqlite or a postgres:// URL"},
		{"[slot 0]\nstore = postgres://u:s3cret@h:notaport/db", "store: "},
		{"[slot 0]\nstore = postgres://u:s3cret@h/db?sslmode=bogus", "store: "},
		{"store = postgres://h/db?password=s3cret&sslmode=bogus", "store: "},
		{"store_timeout = 5", `store_timeout = "5": want a Go duration from 100ms to 5m0s`},
		{"store_timeout = 50ms", "want a Go duration"},
		{"[slot 0]\nstore_timeout = 6m", "want a Go duration"},
		{"[slot 0]\nstore_timeout = -1s", "want a Go duration"},
	} {
		_, err := ParseConfig("token_dir = /tmp/x\n"+tc.text+"\n", "test")
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "config: ") {
			t.Errorf("%q: %v, want an error with %q", tc.text, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%q: the error shows the password: %v", tc.text, err)
		}
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"sqlite":                     "sqlite",
		"postgres://gohsm@db/tokens": "postgres://gohsm@db/tokens",
		"postgres://gohsm:s3cret@db/tokens?sslmode=require":       "postgres://gohsm:xxxxx@db/tokens?sslmode=require",
		"postgresql://db/tokens?password=s3cret&user=gohsm":       "postgresql://db/tokens?password=xxxxx&user=gohsm",
		"postgres://u:s3cret@h1:5432,h2:5432/db":                  "postgres://u:xxxxx@h1:5432,h2:5432/db",
		"postgres://u:s3cret@h/db%zz":                             "postgres://(unparsable URL, not shown)",
		"postgres://u:p%40ss@db/tokens":                           "postgres://u:xxxxx@db/tokens",
		"postgres://u@db/tokens?sslkey=/k.pem&sslpassword=s3cret": "postgres://u@db/tokens?sslkey=%2Fk.pem&sslpassword=xxxxx",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
	if got := redactIn("cannot parse postgres://u:p%40ss@h and p@ss", "postgres://u:p%40ss@h"); strings.Contains(got, "p@ss") || strings.Contains(got, "p%40ss") {
		t.Errorf("redactIn left the password: %s", got)
	}
	if got := redactIn("dial: postgres://u@h/db?sslpassword=k3yp4ss", "postgres://u@h/db?sslpassword=k3yp4ss"); strings.Contains(got, "k3yp4ss") {
		t.Errorf("redactIn left the key's passphrase: %s", got)
	}
	// pgx masks up to the first '@' of a password that holds a raw one.
	if err := checkStore("postgres://u:p@w9f3a@db/tokens?sslmode=bogus"); err == nil || strings.Contains(err.Error(), "w9f3a") {
		t.Errorf("checkStore's error shows the password's end: %v", err)
	}
}
