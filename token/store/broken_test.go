package store_test

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/testenv"
	"gohsm/token/store"
	"gohsm/token/store/storetest"
)

// brokenEnv names the promise TestBrokenBackend's stores break.
const brokenEnv = "GOHSM_STORETEST_BROKEN"

// broken is a SQLite store that breaks one promise of store.Store. The
// views Audited returns are the SQLite store's own: the suite's tests of
// the broken promises call the store itself.
type broken struct {
	store.Store
	how string

	mu      sync.Mutex
	cache   map[int64]*store.ObjectRecord
	deleted int64
}

// CreateObject, with "reuse-ids", hands out the handle of the object
// deleted last.
func (b *broken) CreateObject(o store.ObjectRecord) (store.ObjectRecord, error) {
	got, err := b.Store.CreateObject(o)
	if b.how == "reuse-ids" && err == nil && b.deleted != 0 {
		got.ID, b.deleted = b.deleted, 0
	}
	return got, err
}

func (b *broken) DeleteObject(id int64) (store.Commit, error) {
	c, err := b.Store.DeleteObject(id)
	if err == nil {
		b.deleted = id
	}
	return c, err
}

func (b *broken) Audit(events ...store.AuditEvent) error {
	if b.how == "drop-audit" {
		return nil // appends nothing, says it did
	}
	return b.Store.Audit(events...)
}

func (b *broken) CreateObjects(objs []store.ObjectRecord, quotas ...store.Quota) ([]store.ObjectRecord, store.Commit, error) {
	if b.how == "no-quota" {
		quotas = nil
	}
	return b.Store.CreateObjects(objs, quotas...)
}

func (b *broken) BeginLogin(name string, threshold int) error {
	err := b.Store.BeginLogin(name, threshold)
	if b.how == "ignore-lock" && errors.Is(err, store.ErrLocked) {
		return nil
	}
	return err
}

func (b *broken) Generation() (uint64, error) {
	if b.how == "fixed-generation" {
		return 1, nil
	}
	return b.Store.Generation()
}

// Object, with "cache-objects", keeps what it read and never asks again:
// a cache not checked against the store.
func (b *broken) Object(id int64) (*store.ObjectRecord, error) {
	if b.how != "cache-objects" {
		return b.Store.Object(id)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if o, ok := b.cache[id]; ok {
		return o, nil
	}
	o, err := b.Store.Object(id)
	if err == nil {
		b.cache[id] = o
	}
	return o, err
}

type brokenBackend struct {
	sqliteBackend
	how string
}

func (bb *brokenBackend) Open(t *testing.T) store.Store {
	return &broken{Store: bb.sqliteBackend.Open(t), how: bb.how, cache: map[int64]*store.ObjectRecord{}}
}

func (bb *brokenBackend) Reopen(t *testing.T, s store.Store) store.Store {
	return &broken{Store: bb.sqliteBackend.Reopen(t, s.(*broken).Store), how: bb.how, cache: map[int64]*store.ObjectRecord{}}
}

// TestBrokenBackend runs the suite against a store broken as brokenEnv
// says; TestSuiteCatchesBrokenStores runs it in a child and expects it
// to fail. Without brokenEnv it has nothing to do.
func TestBrokenBackend(t *testing.T) {
	how := os.Getenv(brokenEnv)
	if how == "" {
		t.Skip("run by TestSuiteCatchesBrokenStores")
	}
	storetest.Run(t, &brokenBackend{how: how})
}

// TestSuiteCatchesBrokenStores: a store that breaks a promise fails the
// suite's tests of that promise, and only fails what the breakage
// touches (Users, which none touches, passes: the suite is not failing
// everything).
//
// Not under the race detector: it tests the conformance suite, not a
// store (six children run the suite against deliberately broken stores),
// and took 101 s of the package's 282 s there (load 16); the suite
// itself runs under the detector in TestConformance, and this test runs
// in the CGO-free pass of tests/run.sh.
func TestSuiteCatchesBrokenStores(t *testing.T) {
	if testenv.Race {
		t.Skip("tests the conformance suite, which runs under the detector in TestConformance; 101 s here; runs in the CGO-free pass")
	}
	for how, fails := range map[string][]string{
		"drop-audit":       {"AuditChain", "AuditStreamsAndRange"},
		"no-quota":         {"Quota"},
		"ignore-lock":      {"LoginCounting", "LockoutAcrossOpenings", "ConcurrentWrongPasswords"},
		"fixed-generation": {"Generation", "CommitAlone"},
		"cache-objects":    {"ObjectsAcrossOpenings"},
		"reuse-ids":        {"Objects"},
	} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenBackend$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), brokenEnv+"="+how)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit, "the suite passed a store that breaks %s:\n%s", how, out)
			for _, name := range fails {
				assert.Contains(t, string(out), "--- FAIL: TestBrokenBackend/"+name+" ", "%s is not caught by %s", how, name)
			}
			assert.Contains(t, string(out), "--- PASS: TestBrokenBackend/Users ", "a breakage of %s fails only what it touches", how)
			if t.Failed() {
				t.Logf("child output:\n%s", lastLines(string(out), 60))
			}
		})
	}
}

func lastLines(s string, n int) string {
	l := strings.Split(s, "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
