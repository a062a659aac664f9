package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/internal/testenv"
	"gohsm/token"
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
	conf, err := os.ReadFile(c.conf)
	require.NoError(t, err)
	c.fails([]string{"CKR_ARGUMENTS_BAD", "is not a gohsm backup; refusing to replace it"}, "token", "backup", "--out", c.conf, "--pin", coPIN)
	after, err := os.ReadFile(c.conf)
	require.NoError(t, err)
	require.Equal(t, conf, after, "the configuration file is kept")
	c.fails([]string{"CKR_ARGUMENTS_BAD", "no such file or directory"}, "token", "backup", "--out", filepath.Join(t.TempDir(), "no", "dir"), "--pin", coPIN)
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

	// The audit chain verifies on both tokens, and the restored one ends
	// with the restore.
	assert.Contains(t, c.ok("audit", "verify"), "records verified")
	assert.Contains(t, d.ok("audit", "verify"), "records verified")
	shown := d.ok("audit", "show")
	assert.Contains(t, shown, "CN_RESTORE_BEGIN")
	assert.Contains(t, shown, "CN_RESTORE_END")
	assert.Contains(t, c.ok("audit", "show"), "CN_BACKUP_END")
}

// TestBackupWhileKeysAreCreated: build/gohsm processes keep generating key
// pairs while this process takes a backup; the backup restores into
// another token that holds every pair generated before the backup began,
// and each restored private key signs what its restored public key
// verifies.
func TestBackupWhileKeysAreCreated(t *testing.T) {
	bin := testenv.CLI(t)
	c := newCLI(t)
	c.setup()
	type pair struct{ pub, priv uint64 }
	var mu sync.Mutex
	var made []pair
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			cmd := exec.Command(bin, "--config", c.conf, "--json", "key", "generate", "ec", "--curve", "P-256", "--label", "bg", "--pin", alicePIN)
			out, err := cmd.Output()
			if err != nil {
				done <- err
				return
			}
			var r struct {
				Data struct {
					Pub  keyJSON `json:"public_key"`
					Priv keyJSON `json:"private_key"`
				}
			}
			if err := json.Unmarshal(out, &r); err != nil {
				done <- err
				return
			}
			mu.Lock()
			made = append(made, pair{r.Data.Pub.Handle, r.Data.Priv.Handle})
			mu.Unlock()
		}
	}()
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(made) }
	waitFor := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); count() < n; time.Sleep(10 * time.Millisecond) {
			select {
			case err := <-done:
				t.Fatalf("the key generating processes stopped: %v", err)
			default:
			}
			require.True(t, time.Now().Before(deadline), "the key generating processes made %d pairs", count())
		}
	}
	waitFor(3)
	mu.Lock()
	before := append([]pair(nil), made...)
	mu.Unlock()
	file := filepath.Join(t.TempDir(), "busy.gohsm-backup")
	c.ok("token", "backup", "--out", file, "--pin", coPIN)
	waitFor(len(before) + 2) // the generators went on during and after it
	close(stop)
	require.NoError(t, <-done)

	d := newCLI(t)
	d.ok("token", "restore", "--from", file)
	restored := d.keys(alicePIN)
	for _, p := range before {
		assert.Contains(t, restored, p.pub, "a pair generated before the backup began is in it")
		assert.Contains(t, restored, p.priv)
	}
	cfg, err := token.LoadConfig(d.conf)
	require.NoError(t, err)
	m, err := token.Open(cfg)
	require.NoError(t, err)
	defer m.Close()
	h, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	require.NoError(t, err)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(alicePIN)))
	pairs := 0
	for _, p := range made {
		if _, ok := restored[p.priv]; !ok {
			continue
		}
		require.Contains(t, restored, p.pub, "both halves of a pair, or neither")
		msg := []byte("restored")
		require.NoError(t, m.SignInit(h, token.Mechanism{Type: ck.CKM_ECDSA}, ck.ULong(p.priv)))
		sig := make([]byte, 64)
		n, err := m.Sign(h, msg, token.Out{Buf: sig})
		require.NoError(t, err)
		require.NoError(t, m.VerifyInit(h, token.Mechanism{Type: ck.CKM_ECDSA}, ck.ULong(p.pub)))
		require.NoError(t, m.Verify(h, msg, sig[:n]))
		pairs++
	}
	assert.GreaterOrEqual(t, pairs, len(before))
	t.Logf("%d pairs before the backup, %d in it, %d made in all", len(before), pairs, len(made))
}
