package cloudhsmcli

import (
	"bufio"
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzCommandLine: any interactive line, split and run, ends in an
// envelope or help text, never in a panic (exec turns one into "internal
// error", which this target treats as the failure). The configuration does
// not exist, so no command reaches a token: this fuzzes the command table,
// flags, filters and argument checks.
func FuzzCommandLine(f *testing.F) {
	for _, s := range []string{
		"user list",
		`key list --filter attr.label="my key" attr.class=secret-key --max-items 2 --starting-token 2 -v`,
		"login --username admin --role admin --password x",
		"key generate-symmetric aes --label k --key-length-bytes 32 --attributes encrypt=true --share-crypto-users a b",
		"key set-attribute --filter key-reference=0x1 --name trusted --value true",
		"help key",
		"user create --username --role",
		"key list --filter",
		`x "unterminated`,
		"-- --",
	} {
		f.Add(s)
	}
	conf := filepath.Join(f.TempDir(), "no-such.conf")
	f.Fuzz(func(t *testing.T, line string) {
		args, err := splitLine(line)
		if err != nil || len(args) == 0 {
			return
		}
		var out bytes.Buffer
		c := &Context{opts: Options{Config: conf}, stdinFile: strings.NewReader(""), in: bufio.NewReader(strings.NewReader("")),
			stdout: &out, stderr: &bytes.Buffer{}}
		defer c.Close()
		c.exec(args)
		if strings.Contains(out.String(), "internal error") {
			t.Fatalf("%q: %s", line, out.String())
		}
	})
}
