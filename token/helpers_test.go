package token

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/mechanisms"
)

func gcmParamsValue() *mechanisms.GCMParams {
	return &mechanisms.GCMParams{IV: make([]byte, 12), TagBits: 128}
}

// scanDir reports whether any file under dir contains secret, and whether
// any contains marker.
func scanDir(t *testing.T, dir string, secret, marker []byte) (foundSecret, foundMarker bool) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		foundSecret = foundSecret || bytes.Contains(b, secret)
		foundMarker = foundMarker || bytes.Contains(b, marker)
		return nil
	})
	require.NoError(t, err)
	return
}
