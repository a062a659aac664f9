package logincache

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func randomEntry(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	rand.Read(b)
	return Describe(Token{Place: "dir:" + t.TempDir(), Serial: fmt.Sprintf("%x", b)}, "user", b, b)
}

// TestSealOpen: an entry opens with its password and description only.
func TestSealOpen(t *testing.T) {
	kek := bytes.Repeat([]byte{7}, KEKSize)
	d := Describe(Token{"dir:/a", "01"}, "user", []byte("salt"), []byte("wrapped"))
	p, err := seal(d, []byte("pw"), kek)
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != payloadSize {
		t.Fatalf("payload of %d bytes, want %d", len(p), payloadSize)
	}
	if got, err := open(d, []byte("pw"), p); err != nil || !bytes.Equal(got, kek) {
		t.Fatalf("open: %x, %v", got, err)
	}
	if _, err := open(d, []byte("pW"), p); err == nil {
		t.Error("opened with another password")
	}
	d2 := Describe(Token{"dir:/a", "01"}, "user", []byte("salt"), []byte("wrapped2"))
	if _, err := open(d2, []byte("pw"), p); err == nil {
		t.Error("opened under another description")
	}
	for _, bad := range [][]byte{nil, p[:len(p)-1], append([]byte{2}, p[1:]...), append(p, 0)} {
		if _, err := open(d, []byte("pw"), bad); err == nil {
			t.Errorf("opened a payload of %d bytes, version %d", len(bad), firstByte(bad))
		}
	}
	if _, err := seal(d, []byte("pw"), kek[:16]); err == nil {
		t.Error("sealed a short KEK")
	}
}

// TestDescribe: every field, and where one ends, changes the description.
func TestDescribe(t *testing.T) {
	base := Describe(Token{"dir:/a", "01"}, "user", []byte("s"), []byte("w"))
	if !strings.HasPrefix(base, Prefix) || len(base) != len(Prefix)+64 {
		t.Fatalf("description %q", base)
	}
	for _, d := range []string{
		Describe(Token{"dir:/b", "01"}, "user", []byte("s"), []byte("w")),
		Describe(Token{"dir:/a", "02"}, "user", []byte("s"), []byte("w")),
		Describe(Token{"dir:/a", "01"}, "users", []byte("s"), []byte("w")),
		Describe(Token{"dir:/a", "01"}, "user", []byte("S"), []byte("w")),
		Describe(Token{"dir:/a", "01"}, "user", []byte("s"), []byte("W")),
		Describe(Token{"dir:/a", "01"}, "user", []byte("sw"), nil), // field boundaries
		Describe(Token{"dir:/a0", "1"}, "user", []byte("s"), []byte("w")),
	} {
		if d == base {
			t.Errorf("%q: the same description for another entry", d)
		}
	}
}

// failing is a keyring every call of which fails with err.
type failing struct {
	err   error
	calls *atomic.Int64
}

func (f failing) Search(string) (int, error)              { f.calls.Add(1); return 0, f.err }
func (f failing) Read(int) ([]byte, error)                { f.calls.Add(1); return nil, f.err }
func (f failing) Add(string, []byte, time.Duration) error { f.calls.Add(1); return f.err }
func (f failing) Invalidate(int) error                    { f.calls.Add(1); return f.err }

// TestUnusableKeyring: every error makes a miss, never a panic, and a nil
// cache (login_cache = off) asks nothing.
func TestUnusableKeyring(t *testing.T) {
	for _, e := range []error{syscall.ENOSYS, syscall.EPERM, syscall.EDQUOT, syscall.EACCES, ErrMiss} {
		var calls atomic.Int64
		var logs atomic.Int64
		c := New(failing{e, &calls}, time.Minute, func(string, ...any) { logs.Add(1) })
		c.Store("d", []byte("pw"), make([]byte, KEKSize))
		if kek := c.Lookup("d", []byte("pw")); kek != nil {
			t.Errorf("%v: a hit", e)
		}
		c.Drop("d")
		if calls.Load() != 3 {
			t.Errorf("%v: %d keyring calls, want 3", e, calls.Load())
		}
		if logs.Load() > 1 {
			t.Errorf("%v: logged %d times", e, logs.Load())
		}
	}
	var c *Cache
	c.Store("d", []byte("pw"), make([]byte, KEKSize))
	if c.Lookup("d", []byte("pw")) != nil {
		t.Error("a nil cache hit")
	}
	c.Drop("d")
}

// requireKernel fails or skips a test that needs the kernel keyring.
func requireKernel(t *testing.T) {
	t.Helper()
	if _, err := Kernel.Search(Prefix + "probe"); err != nil && !errors.Is(err, ErrMiss) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("kernel keyring not usable: %v (CI=true: not skipping)", err)
		}
		t.Skipf("kernel keyring not usable: %v", err)
	}
}

// TestKernelKeyring: an entry stored is found and opens with its
// password; it is a "user" key in @u with exactly the permissions meant
// and an expiry; Drop removes it.
func TestKernelKeyring(t *testing.T) {
	requireKernel(t)
	c := New(Kernel, time.Minute, func(msg string, args ...any) { t.Errorf("logged: %s %v", msg, args) })
	d := randomEntry(t)
	kek := bytes.Repeat([]byte{9}, KEKSize)
	c.Store(d, []byte("pw"), kek)
	t.Cleanup(func() { c.Drop(d) })
	if got := c.Lookup(d, []byte("pw")); !bytes.Equal(got, kek) {
		t.Fatalf("lookup: %x", got)
	}
	if got := c.Lookup(d, []byte("wrong")); got != nil {
		t.Fatal("a hit with a wrong password")
	}
	id, err := Kernel.Search(d)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := unix.KeyctlString(unix.KEYCTL_DESCRIBE, id)
	if err != nil {
		t.Fatal(err)
	}
	// type;uid;gid;perm;description
	f := strings.SplitN(desc, ";", 5)
	if len(f) != 5 || f[0] != "user" || f[1] != strconv.Itoa(os.Getuid()) || f[4] != d {
		t.Errorf("key %q", desc)
	}
	if f[3] != "2f2f0000" {
		t.Errorf("permissions %s, want 2f2f0000 (possessor and uid: view read write search setattr)", f[3])
	}
	// /proc/keys shows the time left (59s) of a key with an expiry,
	// "perm" for one without.
	if left := procKeysTimeout(t, id); left == "perm" || left == "" {
		t.Errorf("the entry's timeout in /proc/keys: %q", left)
	}
	c.Drop(d)
	if _, err := Kernel.Search(d); !errors.Is(err, ErrMiss) {
		t.Errorf("after Drop: %v", err)
	}
}

// procKeysTimeout is the timeout field of key id's line in /proc/keys.
func procKeysTimeout(t *testing.T, id int) string {
	b, err := os.ReadFile("/proc/keys")
	if err != nil {
		t.Skipf("/proc/keys: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 3 && f[0] == fmt.Sprintf("%08x", id) {
			return f[3]
		}
	}
	return ""
}

// TestExpiry: an entry of TTL 1s is gone from the keyring after it
// expired (polled; the bound only turns a kernel that keeps it into a
// failure rather than a hang).
func TestExpiry(t *testing.T) {
	requireKernel(t)
	c := New(Kernel, time.Second, nil)
	d := randomEntry(t)
	c.Store(d, []byte("pw"), make([]byte, KEKSize))
	if c.Lookup(d, []byte("pw")) == nil {
		t.Fatal("no entry")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := Kernel.Search(d)
		if errors.Is(err, ErrMiss) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the entry outlived its TTL of 1s by 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if c.Lookup(d, []byte("pw")) != nil {
		t.Fatal("a hit after the expiry")
	}
}

const otherUIDEnv = "GOHSM_TEST_LOGINCACHE_OTHER"

// TestOtherUIDCannotUseEntry: a process of another uid (nobody, 65534)
// does not find the entry in its user keyring, and is refused reading it
// by its serial (EACCES). It needs root to start that process: CI runs as
// root, so there it fails rather than skips.
func TestOtherUIDCannotUseEntry(t *testing.T) {
	requireKernel(t)
	if os.Getuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root to run a process as another uid (CI=true: not skipping)")
		}
		t.Skip("needs root to run a process as another uid")
	}
	c := New(Kernel, time.Minute, nil)
	d := randomEntry(t)
	c.Store(d, []byte("pw"), make([]byte, KEKSize))
	t.Cleanup(func() { c.Drop(d) })
	id, err := Kernel.Search(d)
	if err != nil {
		t.Fatal(err)
	}
	// The test binary, copied where nobody may run it.
	dir, err := os.MkdirTemp("", "logincache-uid")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bin := filepath.Join(dir, "logincache.test")
	copyFile(t, os.Args[0], bin)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestOtherUIDHelperProcess$", "-test.v")
	cmd.Dir = dir
	cmd.Env = []string{otherUIDEnv + "=" + strconv.Itoa(id) + " " + d, "PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	for _, want := range []string{"uid 65534", "search: " + syscall.ENOKEY.Error(), "read: " + syscall.EACCES.Error()} {
		if !strings.Contains(string(out), want) {
			t.Errorf("helper output lacks %q:\n%s", want, out)
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestOtherUIDHelperProcess is TestOtherUIDCannotUseEntry's process of
// another uid: it searches its user keyring for the entry and reads the
// entry by its serial, printing the errors.
func TestOtherUIDHelperProcess(t *testing.T) {
	v := os.Getenv(otherUIDEnv)
	if v == "" {
		t.Skip("helper process of TestOtherUIDCannotUseEntry")
	}
	idS, d, _ := strings.Cut(v, " ")
	id, _ := strconv.Atoi(idS)
	fmt.Printf("uid %d\n", os.Getuid())
	_, err := unix.KeyctlSearch(unix.KEY_SPEC_USER_KEYRING, "user", d, 0)
	fmt.Printf("search: %v\n", errText(err))
	buf := make([]byte, 256)
	_, err = unix.KeyctlBuffer(unix.KEYCTL_READ, id, buf, 0)
	fmt.Printf("read: %v\n", errText(err))
}

func errText(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}
