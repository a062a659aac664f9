package cmdpath

import "testing"

func TestLongest(t *testing.T) {
	paths := [][]string{{"key"}, {"key", "list"}, {"user", "create"}, {"key", "list"}, {"key", "generate-file"}}
	at := func(i int) []string { return paths[i] }
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"key", "list", "--filter", "x"}, 1}, // longest wins; the first of equal length
		{[]string{"key", "lis"}, 0},
		{[]string{"key"}, 0},
		{[]string{"user", "create"}, 2},
		{[]string{"user"}, -1}, // a group alone is no command
		{[]string{"users", "create"}, -1},
		{nil, -1},
	} {
		if got := Longest(c.args, len(paths), at); got != c.want {
			t.Errorf("Longest(%q) = %d, want %d", c.args, got, c.want)
		}
	}
}

func TestSecretFlag(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--slot", "1", "--pin", "admin", "pw"}, "pin"},
		{[]string{"-password=a", "b"}, "password"},
		{[]string{"--json", "pin", "password"}, ""}, // words, not flags
		{[]string{"--pins"}, ""},
		{nil, ""},
	} {
		if got := SecretFlag(c.args, "pin", "password"); got != c.want {
			t.Errorf("SecretFlag(%q) = %q, want %q", c.args, got, c.want)
		}
	}
}
