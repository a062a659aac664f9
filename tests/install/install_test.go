// Package install checks `make install` and `make uninstall` into a
// staging directory (DESTDIR): the files a Debian system expects, and
// nothing left behind.
package install

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func makeTarget(t *testing.T, dest string, target string) string {
	t.Helper()
	cmd := exec.Command("make", "-C", "../..", target, "DESTDIR="+dest, "PREFIX=/usr", "MULTIARCH=x86_64-linux-gnu")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "make %s: %s", target, out)
	return string(out)
}

func files(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if !info.IsDir() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, rel)
		}
		return nil
	})
	require.NoError(t, err)
	return out
}

// TestInstallUninstall: both libraries go to the PKCS#11 directory, the
// default one (built without the PostgreSQL store) as libgohsm.so and the
// full one as libgohsm-pg.so, and the p11-kit module file names the
// default one.
func TestInstallUninstall(t *testing.T) {
	for _, lib := range []string{"libgohsm.so", "libgohsm-pg.so"} {
		if _, err := os.Stat("../../build/" + lib); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("build/%s missing: make test builds it", lib)
			}
			t.Skipf("build/%s missing: run make all", lib)
		}
	}
	dest := t.TempDir()
	makeTarget(t, dest, "install")
	got := files(t, dest)
	require.ElementsMatch(t, []string{
		"usr/lib/x86_64-linux-gnu/pkcs11/libgohsm.so",
		"usr/lib/x86_64-linux-gnu/pkcs11/libgohsm-pg.so",
		"usr/share/p11-kit/modules/gohsm.module",
		"usr/bin/gohsm",
		"usr/bin/cloudhsm-cli",
		"etc/gohsm/gohsm.conf",
	}, got)
	mod, err := os.ReadFile(filepath.Join(dest, "usr/share/p11-kit/modules/gohsm.module"))
	require.NoError(t, err)
	require.Equal(t, "module: /usr/lib/x86_64-linux-gnu/pkcs11/libgohsm.so\n", string(mod), "the module file names the installed path, not the staging one")
	// Each installed library is its build, and only the -pg one holds
	// the PostgreSQL client (its functions' names are in the file).
	for lib, pgx := range map[string]bool{"libgohsm.so": false, "libgohsm-pg.so": true} {
		built, err := os.ReadFile("../../build/" + lib)
		require.NoError(t, err)
		inst, err := os.ReadFile(filepath.Join(dest, "usr/lib/x86_64-linux-gnu/pkcs11", lib))
		require.NoError(t, err)
		require.True(t, bytes.Equal(built, inst), "installed %s differs from build/%s", lib, lib)
		require.Equal(t, pgx, bytes.Contains(inst, []byte("github.com/jackc/pgx/v5/pgconn.")), "%s holds pgx", lib)
	}
	st, err := os.Stat(filepath.Join(dest, "usr/bin/gohsm"))
	require.NoError(t, err)
	require.NotZero(t, st.Mode()&0o111, "the CLI is executable")

	// A configuration the administrator changed survives reinstall and uninstall.
	conf := filepath.Join(dest, "etc/gohsm/gohsm.conf")
	require.NoError(t, os.WriteFile(conf, []byte("token_dir = /srv/hsm\n"), 0o644))
	makeTarget(t, dest, "install")
	b, err := os.ReadFile(conf)
	require.NoError(t, err)
	require.Equal(t, "token_dir = /srv/hsm\n", string(b))
	makeTarget(t, dest, "uninstall")
	require.Equal(t, []string{"etc/gohsm/gohsm.conf"}, files(t, dest))

	// An untouched default configuration goes with uninstall.
	require.NoError(t, os.Remove(conf))
	makeTarget(t, dest, "install")
	makeTarget(t, dest, "uninstall")
	left := files(t, dest)
	require.Empty(t, left, "left behind: %s", strings.Join(left, ", "))
}
