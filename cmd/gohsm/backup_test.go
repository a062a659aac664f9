package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type backupJSONOut struct {
	Slot        int    `json:"slot"`
	File        string `json:"file"`
	Label       string `json:"label"`
	Serial      string `json:"serial"`
	Created     string `json:"created"`
	TokenFormat int    `json:"token_format"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
}

// TestTokenBackupRestore: `token backup` (an officer's) writes a file that
// `token restore` puts into another configuration's token directory, with
// the same users and keys; restore refuses to replace a token without
// --yes, and refuses a file that is not a backup.
func TestTokenBackupRestore(t *testing.T) {
	c := newCLI(t)
	c.setup()
	c.ok("key", "generate", "ec", "--curve", "P-256", "--label", "k-ec", "--pin", alicePIN)
	c.ok("key", "share", "--label", "k-ec", "--username", "bob", "--pin", alicePIN)
	file := filepath.Join(t.TempDir(), "cli.gohsm-backup")

	c.fails([]string{"token backup", "crypto officer"}, "token", "backup", "--out", file, "--pin", alicePIN)
	r := c.run("token", "backup", "--pin", coPIN)
	assert.Equal(t, 2, r.code, "usage: %s", r.stderr)
	var b backupJSONOut
	c.data(&b, "token", "backup", "--out", file, "--pin", coPIN)
	assert.Equal(t, "cli-test", b.Label)
	assert.Len(t, b.SHA256, 64)
	assert.Positive(t, b.Size)
	assert.Equal(t, file, b.File)

	d := newCLI(t)
	var rb backupJSONOut
	d.data(&rb, "token", "restore", "--from", file)
	assert.Equal(t, b.Serial, rb.Serial)
	assert.Equal(t, b.SHA256, rb.SHA256)
	assert.Equal(t, c.users(), d.users())
	assert.Equal(t, c.keys(alicePIN), d.keys(alicePIN))
	assert.Equal(t, c.keys(bobPIN), d.keys(bobPIN))

	r = d.run("token", "restore", "--from", file)
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "pass --yes")
	junk := filepath.Join(t.TempDir(), "junk")
	require.NoError(t, os.WriteFile(junk, []byte("GOHSM-BACKUP 1\n{}\n"), 0o600))
	d.fails([]string{"CKR_DATA_INVALID", "not a valid gohsm backup"}, "token", "restore", "--from", junk, "--yes")
	d.ok("token", "restore", "--from", file, "--yes")
	assert.Equal(t, c.users(), d.users())
}
