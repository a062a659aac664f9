package tools

import (
	"fmt"
	"gohsm/internal/testenv"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReadmeCloudHSM runs docs/clients.md's "gohsm as a CloudHSM stand-in"
// (the README's until it moved there) as a reader would paste it: its configuration (with a temporary token
// directory and cheap password hashing added) and its shell blocks in
// order, in bash with -e, the gohsm CLI on $PATH and the module built here.
// The lines the README marks with `!` (refused, as CloudHSM refuses them)
// must fail; everything else must succeed.
func TestReadmeCloudHSM(t *testing.T) {
	lib, cli := library(t), testenv.CLI(t)
	tool(t, "pkcs11-tool")
	bash := tool(t, "bash")
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "docs", "clients.md"))
	require.NoError(t, err)
	section := string(b)
	start := strings.Index(section, "\n## gohsm as a CloudHSM stand-in\n")
	require.GreaterOrEqual(t, start, 0, "docs/clients.md has no section \"gohsm as a CloudHSM stand-in\"")
	section = section[start+1:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	blocks := regexp.MustCompile("(?s)```(ini|sh)\n(.*?)```").FindAllStringSubmatch(section, -1)
	var ini, sh []string
	for _, m := range blocks {
		if m[1] == "ini" {
			ini = append(ini, m[2])
		} else {
			sh = append(sh, m[2])
		}
	}
	require.Len(t, ini, 1, "one configuration block")
	require.GreaterOrEqual(t, len(sh), 2, "the users block and the pkcs11-tool block")

	dir := t.TempDir()
	conf := filepath.Join(dir, "gohsm.conf")
	tokenDir := filepath.Join(dir, "token")
	require.NoError(t, os.Mkdir(tokenDir, 0o700))
	paths := strings.NewReplacer(
		"/etc/gohsm/gohsm.conf", conf,
		"/var/lib/gohsm", tokenDir,
		"/usr/local/lib/x86_64-linux-gnu/pkcs11/libgohsm.so", lib)
	config := paths.Replace(ini[0])
	require.Contains(t, config, "token_dir = "+tokenDir+"\n")
	config = strings.Replace(config, "token_dir = "+tokenDir+"\n",
		"token_dir = "+tokenDir+"\nlog_level = error\nkdf_time = 1\nkdf_memory = 64\nkdf_threads = 1\nlogin_cache = off\n", 1)
	require.NoError(t, os.WriteFile(conf, []byte(config), 0o600))
	// bash -e does not stop on a negated command that succeeds: each `!`
	// line becomes an explicit check.
	var lines []string
	for _, line := range strings.Split(paths.Replace(strings.Join(sh, "\n")), "\n") {
		if cmd, refused := strings.CutPrefix(line, "! "); refused {
			line = fmt.Sprintf("if %s; then echo 'README: accepted, should be refused: %s' >&2; exit 1; fi",
				cmd, strings.ReplaceAll(cmd, "'", ""))
		}
		lines = append(lines, line)
	}
	script := "set -euxo pipefail\n" + strings.Join(lines, "\n")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "readme.sh"), []byte(script), 0o600))

	e := &env{t: t, dir: dir, conf: conf}
	r := e.run(bash, "-c", fmt.Sprintf("PATH=%s:$PATH; . ./readme.sh", filepath.Dir(cli)))
	if r.err != nil {
		t.Fatalf("FAIL the README's commands: %v\n%s\n--- script\n%s", r.err, r, script)
	}
	// set -x shows each command; every `!` line ran and failed as it should.
	for _, line := range lines {
		if strings.HasPrefix(line, "if ") {
			t.Logf("refused as in the README: %s", line)
		}
	}
	t.Logf("PASS the README's CloudHSM commands (%d blocks)", len(sh))
}
