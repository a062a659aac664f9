package token

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPackagedConfigShowsTheDefaults: packaging/gohsm.conf shows each
// setting commented out; the values it shows must be the defaults, except
// the settings whose comment says they are examples (token_dir, whose
// default depends on the user; token_group and log_file, which have
// none). Uncommented, the file parses to the embedded default.
func TestPackagedConfigShowsTheDefaults(t *testing.T) {
	b, err := os.ReadFile("../packaging/gohsm.conf")
	require.NoError(t, err)
	examples := map[string]bool{"token_dir": true, "token_group": true, "log_file": true}
	setting := regexp.MustCompile(`^#\s*([a-z_]+)\s*=`)
	var text []string
	shown := 0
	for _, l := range strings.Split(string(b), "\n") {
		if l == "#[slot 0]" || strings.HasPrefix(l, "#[slot") {
			text = append(text, strings.TrimPrefix(l, "#"))
			continue
		}
		m := setting.FindStringSubmatch(l)
		if m == nil || examples[m[1]] {
			continue
		}
		text = append(text, strings.TrimPrefix(l, "#"))
		shown++
	}
	require.Greater(t, shown, 5, "no commented settings found in packaging/gohsm.conf")
	got, err := parseConfig(strings.Join(text, "\n")+"\n", "packaging/gohsm.conf", func(string) string { return "" })
	require.NoError(t, err, "packaging/gohsm.conf's settings, uncommented:\n%s", strings.Join(text, "\n"))
	// Set or not, the values are the same; the flags say only which were set.
	got.setLockout, got.setMinPIN, got.setMaxPIN = false, false, false
	want := defaultConfig(func(string) string { return "" })
	want.Source = got.Source
	want.fillSlotDirs()
	require.Equal(t, want, got, "packaging/gohsm.conf shows values that are not the defaults")
}
