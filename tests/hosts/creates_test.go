package hosts

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/testenv/pgtest"
)

// TestTwoHostsConcurrentCreates: hosts A and B each create 500 token
// objects at once, over 4 sessions each; host C, started afterwards, finds
// exactly the 1,000 with unique handles and each label once, and each of A
// and B reads the other's objects by the handles the other was given.
func TestTwoHostsConcurrentCreates(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t, "creates")
	a, b := newHost(t, "a", dsn), newHost(t, "b", dsn)
	initToken(t, a)
	const n, sessions = 500, 4
	pa, pb := a.start(), b.start()
	for _, p := range []*proc{pa, pb} {
		p.must("open %d", sessions)
		p.must("login user %s", userPIN)
	}
	start := time.Now()
	var wg sync.WaitGroup
	made := map[string]map[string]string{} // host -> handle -> label
	var mu sync.Mutex
	for name, p := range map[string]*proc{"a": pa, "b": pb} {
		p.send("createmany %s %d", name, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := p.read(2 * time.Minute)
			mu.Lock()
			defer mu.Unlock()
			if !r.ok() {
				t.Errorf("host %s: createmany: %s%s", name, r, p.diag())
				return
			}
			made[name] = pairs(t, r.fields)
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	took := time.Since(start)
	t.Logf("2 hosts x %d concurrent C_CreateObject (%d sessions each) in %v: %.0f creates/s",
		n, sessions, took.Round(time.Millisecond), 2*n/took.Seconds())
	require.Len(t, made["a"], n)
	require.Len(t, made["b"], n)
	for h := range made["a"] {
		_, both := made["b"][h]
		require.False(t, both, "handle %s given to both hosts", h)
	}

	// C, started afterwards, sees exactly the 1,000.
	c := newHost(t, "c", dsn)
	pc := c.start()
	pc.must("open 1")
	pc.must("login user %s", userPIN)
	seen := pairs(t, pc.must("list"))
	assert.Len(t, seen, 2*n, "objects host C finds")
	labels := map[string]int{}
	for h, l := range seen {
		labels[l]++
		want, ok := made["a"][h]
		if !ok {
			want = made["b"][h]
		}
		assert.Equal(t, want, l, "handle %s on host C", h)
	}
	for _, name := range []string{"a", "b"} {
		for i := range n {
			assert.Equal(t, 1, labels[fmt.Sprintf("%s-%d", name, i)], "label %s-%d on host C", name, i)
		}
	}

	// A reads B's objects by B's handles, and B A's.
	for _, x := range [][2]string{{"a", "b"}, {"b", "a"}} {
		reader := map[string]*proc{"a": pa, "b": pb}[x[0]]
		hs := sortedKeys(made[x[1]])
		got := reader.must("labels %s", strings.Join(hs, " "))
		require.Len(t, got, len(hs))
		for i, h := range hs {
			assert.Equal(t, made[x[1]][h], got[i], "host %s reads host %s's handle %s", x[0], x[1], h)
		}
	}
	for _, p := range []*proc{pa, pb, pc} {
		p.quit()
	}
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool {
		a, _ := strconv.Atoi(ks[i])
		b, _ := strconv.Atoi(ks[j])
		return a < b
	})
	return ks
}

// deleteBound is the longest a delete on one host may take to be seen by
// a cached handle on another (docs/store-postgres.md: the notification
// latency of the generation check, measured in milliseconds; this bound
// leaves room for a loaded CI machine).
const deleteBound = time.Second

// TestVisibilityAcrossHosts: a create on one host is visible to the
// other's very next call (C_FindObjects by label, C_GetAttributeValue by
// the creator's handle: never CKR_OBJECT_HANDLE_INVALID), 100 times in
// turns; a delete on one host reaches the other, which holds the object in
// its caches and polls it, within deleteBound, 50 times. The delays are
// logged as a distribution.
func TestVisibilityAcrossHosts(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t, "visibility")
	a, b := newHost(t, "a", dsn), newHost(t, "b", dsn)
	initToken(t, a)
	pa, pb := a.start(), b.start()
	for _, p := range []*proc{pa, pb} {
		p.must("open 1")
		p.must("login user %s", userPIN)
	}
	procs := [2]*proc{pa, pb}
	var finds []time.Duration
	for i := range 100 {
		w, r := procs[i%2], procs[1-i%2]
		label := fmt.Sprintf("v-%d", i)
		h := w.must("create %s", label)[0]
		rf := r.do("find %s", label)
		require.True(t, rf.ok(), "host %s's find right after host %s's create: %s%s", r.h.name, w.h.name, rf, r.diag())
		require.Equal(t, []string{h}, rf.fields, "host %s finds %s right after host %s created it as %s", r.h.name, label, w.h.name, h)
		finds = append(finds, rf.elapsed())
		rl := r.do("labels %s", h)
		require.True(t, rl.ok(), "host %s reads handle %s right after host %s created it: %s", r.h.name, h, w.h.name, rl)
		require.Equal(t, []string{label}, rl.fields)
	}
	slices.Sort(finds)
	t.Logf("C_FindObjects* of a new object on the other host: median %v, max %v", percentile(finds, 0.5), finds[len(finds)-1])

	var lags []time.Duration
	for i := range 50 {
		w, r := procs[i%2], procs[1-i%2]
		label := fmt.Sprintf("d-%d", i)
		h := w.must("create %s", label)[0]
		require.Equal(t, []string{label}, r.must("labels %s", h), "host %s caches the object", r.h.name)
		r.send("watchgone %s", h)
		require.Equal(t, "OK 0 WATCHING", r.read(30*time.Second).line)
		// The reader polls; the writer deletes.
		time.Sleep(2 * time.Millisecond)
		returned, err := strconv.ParseInt(w.must("destroy %s", h)[0], 10, 64)
		require.NoError(t, err)
		rw := r.read(time.Minute)
		require.True(t, rw.ok(), "host %s watching %s deleted by host %s: %s%s", r.h.name, h, w.h.name, rw, r.diag())
		seen, err := strconv.ParseInt(rw.fields[0], 10, 64)
		require.NoError(t, err)
		lags = append(lags, time.Duration(seen-returned))
		assert.Empty(t, r.must("find %s", label), "host %s still finds %s after it saw it gone", r.h.name, label)
	}
	slices.Sort(lags)
	t.Logf("delete on one host -> CKR_OBJECT_HANDLE_INVALID on the other (%d deletes): min %v, median %v, p90 %v, p99 %v, max %v",
		len(lags), lags[0], percentile(lags, 0.5), percentile(lags, 0.9), percentile(lags, 0.99), lags[len(lags)-1])
	assert.LessOrEqual(t, lags[len(lags)-1], deleteBound, "a delete took longer than the bound to reach the other host")
	pa.quit()
	pb.quit()
}
