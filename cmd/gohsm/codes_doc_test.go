package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// stringConsts returns the string constants of file whose names start
// with prefix.
func stringConsts(t *testing.T, file, prefix string) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	require.NoError(t, err)
	out := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok {
			return true
		}
		for i, name := range vs.Names {
			if !strings.HasPrefix(name.Name, prefix) || i >= len(vs.Values) {
				continue
			}
			if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				v, err := strconv.Unquote(lit.Value)
				require.NoError(t, err)
				out[name.Name] = v
			}
		}
		return true
	})
	return out
}

// TestErrorCodesDocumented: every stable error code (token's Mistake
// codes, the quorum refusals' codes, the CLI's and admin's own) has a row in docs/cli.md's table, and every row
// names a code that exists, so the table is what scripts may rely on.
func TestErrorCodesDocumented(t *testing.T) {
	codes := stringConsts(t, filepath.Join("..", "..", "token", "mistakes.go"), "Code")
	for k, v := range stringConsts(t, filepath.Join("..", "..", "token", "quorum", "codes.go"), "Code") {
		codes["quorum."+k] = v
	}
	for k, v := range stringConsts(t, "main.go", "code") {
		codes[k] = v
	}
	for k, v := range stringConsts(t, filepath.Join("..", "..", "internal", "admin", "errors.go"), "Code") {
		codes["admin."+k] = v // the codes the CLI and the console share
	}
	require.GreaterOrEqual(t, len(codes), 15)
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "cli.md"))
	require.NoError(t, err)
	rows := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\|").FindAllStringSubmatch(string(b), -1) {
		rows[m[1]] = true
	}
	known := map[string]bool{}
	for name, c := range codes {
		known[c] = true
		require.True(t, rows[c], "%s = %q has no row in docs/cli.md's error table", name, c)
	}
	for r := range rows {
		require.True(t, known[r], "docs/cli.md documents code %q, which no constant defines", r)
	}
}
