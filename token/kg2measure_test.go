//go:build kg2measure

package token

// Not a test: token key generation at 1 and 2 concurrent sessions, as
// p11bench's keygen-*-token rows run it below the C boundary (each session
// on its own locked OS thread; with KG_DESTROY=1, batches of 20 keys, then
// their destroys, untimed; a session's rate is its own keys over its own
// timed time). docs/bench.md "Token keygen with two sessions". Built only
// with -tags kg2measure; count syscalls with strace -f -c:
//
//	go test -c -tags kg2measure -o token.test ./token
//	KG_KIND=aes|ec KG_N=2000 KG_PLAN=12 KG_DESTROY=1 strace -f -c ./token.test -test.run TestKG2Measure

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token/attrs"
	"gohsm/token/store"
)

// timingStore times each CreateObjects (the store write, under s.mu).
type timingStore struct {
	store.Store
	hold  atomic.Int64
	n     atomic.Int64
	enter func()
}

func (c *timingStore) Audited(ev ...store.AuditEvent) store.Store {
	return timingView{Store: c.Store.Audited(ev...), c: c}
}

type timingView struct {
	store.Store
	c *timingStore
}

func (v timingView) CreateObjects(objs []store.ObjectRecord, quotas ...store.Quota) ([]store.ObjectRecord, store.Commit, error) {
	t0 := time.Now()
	out, c, err := v.Store.CreateObjects(objs, quotas...)
	v.c.hold.Add(int64(time.Since(t0)))
	v.c.n.Add(1)
	return out, c, err
}

func TestKG2Measure(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("KG_N"))
	if n == 0 {
		n = 1000
	}
	kind := os.Getenv("KG_KIND")
	m, _ := newToken(t)
	s, err := m.Slot(3)
	require.NoError(t, err)
	ts := &timingStore{Store: s.st}
	s.mu.Lock()
	s.st = ts
	s.mu.Unlock()
	pub := attrs.Template{ck.CKA_TOKEN: attrs.Bool(true), ck.CKA_EC_PARAMS: p256Params, ck.CKA_VERIFY: attrs.Bool(true), ck.CKA_LABEL: []byte("gen")}
	priv := attrs.Template{ck.CKA_TOKEN: attrs.Bool(true), ck.CKA_PRIVATE: attrs.Bool(true), ck.CKA_SENSITIVE: attrs.Bool(true), ck.CKA_SIGN: attrs.Bool(true), ck.CKA_LABEL: []byte("gen")}
	aes := attrs.Template{ck.CKA_TOKEN: attrs.Bool(true), ck.CKA_VALUE_LEN: attrs.ULong(32), ck.CKA_PRIVATE: attrs.Bool(true), ck.CKA_SENSITIVE: attrs.Bool(true), ck.CKA_ENCRYPT: attrs.Bool(true), ck.CKA_LABEL: []byte("gen")}
	var hs []ck.ULong
	for i := 0; i < 2; i++ {
		h := openRW(t, m)
		if i == 0 {
			require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
		}
		hs = append(hs, h)
	}
	one := func(h ck.ULong) []ck.ULong {
		if kind == "aes" {
			k, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, aes)
			if err != nil {
				panic(err)
			}
			return []ck.ULong{k}
		}
		a, b, err := m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN}, pub, priv)
		if err != nil {
			panic(err)
		}
		return []ck.ULong{a, b}
	}
	plan := []int{1, 2, 1, 2}
	if v := os.Getenv("KG_PLAN"); v != "" {
		plan = nil
		for _, c := range v {
			plan = append(plan, int(c-'0'))
		}
	}
	for _, sessions := range plan {
		ts.hold.Store(0)
		ts.n.Store(0)
		var ru0, ru1 syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
		var lat []time.Duration
		var mu, rateMu sync.Mutex
		var rate float64
		t0 := time.Now()
		var wg sync.WaitGroup
		for g := 0; g < sessions; g++ {
			wg.Add(1)
			go func(h ck.ULong) {
				defer wg.Done()
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				var my []time.Duration
				var timed time.Duration
				for i := 0; i < n/sessions; {
					var made []ck.ULong
					for j := 0; j < 20 && i < n/sessions; j, i = j+1, i+1 {
						a := time.Now()
						made = append(made, one(h)...)
						my = append(my, time.Since(a))
						timed += my[len(my)-1]
					}
					if os.Getenv("KG_DESTROY") != "" {
						for _, o := range made {
							if err := m.DestroyObject(h, o); err != nil {
								panic(err)
							}
						}
					}
				}
				rateMu.Lock()
				rate += float64(len(my)) / timed.Seconds()
				rateMu.Unlock()
				mu.Lock()
				lat = append(lat, my...)
				mu.Unlock()
			}(hs[g])
		}
		wg.Wait()
		el := time.Since(t0)
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		k := float64(len(lat))
		cpu := float64(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) / 1e3 / k
		fmt.Printf("%s sessions=%d: bench-style rate %.0f ops/s (sum of own ops/own timed); wall %.0f ops/s; cpu %.0f us/key (user %.0f sys %.0f); write hold %.0f us/key (%d writes); p50 %v p99 %v max %v; vcsw %.2f ivcsw %.2f /key\n",
			kind, sessions, rate, k/el.Seconds(), cpu,
			float64(ru1.Utime.Nano()-ru0.Utime.Nano())/1e3/k, float64(ru1.Stime.Nano()-ru0.Stime.Nano())/1e3/k,
			float64(ts.hold.Load())/1e3/k, ts.n.Load(), lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1],
			float64(ru1.Nvcsw-ru0.Nvcsw)/k, float64(ru1.Nivcsw-ru0.Nivcsw)/k)
	}
}
