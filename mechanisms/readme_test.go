package mechanisms

import (
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// readmeNote returns the "Notes" bullet of docs/mechanisms.md (once in
// the README) that starts with prefix, joined into one line.
func readmeNote(t *testing.T, prefix string) string {
	t.Helper()
	b, err := os.ReadFile("../docs/mechanisms.md")
	require.NoError(t, err)
	for _, item := range strings.Split(string(b), "\n- ") {
		if strings.HasPrefix(item, prefix) {
			item, _, _ = strings.Cut(item, "\n\n")
			return strings.Join(strings.Fields(item), " ")
		}
	}
	t.Fatalf("docs/mechanisms.md has no note starting %q", prefix)
	return ""
}

// TestReadmeSinglePartList: docs/mechanisms.md names exactly the mechanisms the
// table marks single-part.
func TestReadmeSinglePartList(t *testing.T) {
	note := readmeNote(t, "Single-part mechanisms (")
	list, _, _ := strings.Cut(strings.TrimPrefix(note, "Single-part mechanisms ("), ")")
	var doc, table []string
	for _, n := range strings.Split(list, ",") {
		doc = append(doc, "CKM_"+strings.Trim(strings.TrimSpace(n), "`"))
	}
	for _, m := range All() {
		if m.SinglePart {
			table = append(table, m.Type.String())
		}
	}
	slices.Sort(doc)
	slices.Sort(table)
	require.Equal(t, table, doc, "docs/mechanisms.md's single-part list against the table's SinglePart rows")
}

// TestReadmeGCMTagLengths: docs/mechanisms.md lists exactly the tag lengths
// gcmTagBits accepts.
func TestReadmeGCMTagLengths(t *testing.T) {
	note := readmeNote(t, "AES-GCM takes")
	m := regexp.MustCompile(`tags of ([0-9, or]+) bits`).FindStringSubmatch(note)
	require.NotNil(t, m, "docs/mechanisms.md's AES-GCM note names no tag lengths: %q", note)
	var doc, code []int
	for _, f := range strings.FieldsFunc(m[1], func(r rune) bool { return r == ',' || r == ' ' }) {
		if f == "or" {
			continue
		}
		n, err := strconv.Atoi(f)
		require.NoError(t, err)
		doc = append(doc, n)
	}
	for n := 0; n <= 256; n++ {
		if gcmTagBits(n) {
			code = append(code, n)
		}
	}
	require.Equal(t, code, doc)
}
