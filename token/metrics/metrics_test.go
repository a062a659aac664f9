package metrics

import (
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/token/cluster"
)

// A child process (the test binary run again) publishes in the directory
// GOHSM_METRICS_CHILD names: "dir goroutines calls-each", then exits.
func TestMain(m *testing.M) {
	if spec := os.Getenv("GOHSM_METRICS_CHILD"); spec != "" {
		f := strings.Fields(spec)
		g, _ := strconv.Atoi(f[1])
		n, _ := strconv.Atoi(f[2])
		p, err := Open(f[0], 0o600, On, nil)
		if err != nil || p.Region() < 0 {
			fmt.Fprintln(os.Stderr, "child: open:", err, p.Region())
			os.Exit(3)
		}
		record(p, g, n)
		fmt.Println(p.Region())
		os.Exit(0)
	}
	os.Exit(m.Run())
}

var errTest = errors.New("test: failed")

// record makes g goroutines each record n calls: every call an ec-sign,
// every 4th failed, every 8th throttled, every 2nd also an hmac.
func record(p *Process, g, n int) {
	var wg sync.WaitGroup
	for range g {
		wg.Go(func() {
			for i := range n {
				t0, ok := p.Begin()
				if !ok {
					panic("metrics off")
				}
				var err error
				if i%4 == 0 {
					err = errTest
				}
				p.Record(cluster.ClassECSign, t0, err, i%8 == 0)
				if i%2 == 0 {
					p.Record(cluster.ClassHMAC, t0, nil, false)
				}
			}
		})
	}
	wg.Wait()
}

func child(t *testing.T, dir string, g, n int) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("GOHSM_METRICS_CHILD=%s %d %d", dir, g, n))
	cmd.Stderr = os.Stderr
	return cmd
}

func sumBuckets(t Totals) uint64 {
	var n uint64
	for _, b := range t.Buckets {
		n += b
	}
	return n
}

// Goroutines of this process and of three others adding at once give exact
// sums.
func TestSumsExactAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	p, err := Open(dir, 0o600, On, nil)
	require.NoError(t, err)
	require.Equal(t, 0, p.Region())
	const g, n, kids = 8, 2000, 3
	var cmds []*exec.Cmd
	for range kids {
		c := child(t, dir, g, n)
		require.NoError(t, c.Start())
		cmds = append(cmds, c)
	}
	record(p, g, n)
	for _, c := range cmds {
		require.NoError(t, c.Wait())
	}
	fi, err := os.Stat(filepath.Join(dir, fileName))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	assert.Equal(t, fileSize, fi.Size())

	r, err := OpenReader(dir)
	require.NoError(t, err)
	s := r.Sample()
	total := uint64((kids + 1) * g * n)
	ec := s.Classes[cluster.ClassECSign]
	assert.Equal(t, total, ec.Calls)
	assert.Equal(t, total/4, ec.Failed)
	assert.Equal(t, total/8, ec.Throttled)
	assert.Equal(t, total, sumBuckets(ec))
	hm := s.Classes[cluster.ClassHMAC]
	assert.Equal(t, total/2, hm.Calls)
	assert.Zero(t, hm.Failed)
	assert.Equal(t, total/2, sumBuckets(hm))
	assert.Zero(t, s.Classes[cluster.ClassRSASign].Calls)
}

// A dead process's region is claimed by the next process, which adds to
// its sums: the totals only grow, and the table does not fill up.
func TestDeadRegionReclaimed(t *testing.T) {
	dir := t.TempDir()
	r, err := OpenReader(dir)
	require.NoError(t, err)
	var prev uint64
	for i := range 3 {
		out, err := child(t, dir, 2, 100).Output()
		require.NoError(t, err)
		assert.Equal(t, "0", strings.TrimSpace(string(out)), "run %d: the dead child's region is reused", i)
		s := r.Sample()
		got := s.Classes[cluster.ClassECSign].Calls
		assert.Equal(t, uint64(200*(i+1)), got)
		assert.Greater(t, got, prev)
		prev = got
	}
	// This process is alive: a child takes the next region.
	p, err := Open(dir, 0o600, On, nil)
	require.NoError(t, err)
	assert.Equal(t, 0, p.Region())
	c := child(t, dir, 1, 10)
	out, err := c.Output()
	require.NoError(t, err)
	assert.Equal(t, "1", strings.TrimSpace(string(out)))
	assert.Equal(t, []int{os.Getpid(), c.Process.Pid}, r.Owners())
	// Opening again in this process keeps its region.
	p2, err := Open(dir, 0o600, Auto, nil)
	require.NoError(t, err)
	assert.Equal(t, 0, p2.Region())
}

// A full table of live owners: the process publishes nothing and says so
// once; its calls are not failed.
func TestFullTableLoggedOnce(t *testing.T) {
	dir := t.TempDir()
	m, err := openFile(dir, 0o600, nil)
	require.NoError(t, err)
	my, _ := thisProcess()
	for r := range Regions {
		o := regionOff(r)
		*m.u64(o + ownPID), *m.u64(o + ownStarted), *m.u64(o + ownBoot), *m.u64(o + ownNS) = my.pid, my.started, my.boot, my.ns
	}
	var logs []string
	log := func(msg string, _ ...any) { logs = append(logs, msg) }
	for range 2 {
		p, err := Open(dir, 0o600, On, log)
		require.NoError(t, err)
		assert.Equal(t, -1, p.Region())
		_, ok := p.Begin()
		assert.False(t, ok)
	}
	assert.Len(t, logs, 1)
}

// The lease turns auto on and off; on is on without it; off opens nothing.
func TestLease(t *testing.T) {
	dir := t.TempDir()
	auto, err := Open(dir, 0o600, Auto, nil)
	require.NoError(t, err)
	on, err := Open(dir, 0o600, On, nil)
	require.NoError(t, err)
	off, err := Open(dir, 0o600, Off, nil)
	require.NoError(t, err)
	assert.Nil(t, off)
	_, ok := off.Begin()
	assert.False(t, ok)
	r, err := OpenReader(dir)
	require.NoError(t, err)

	_, ok = auto.Begin()
	assert.False(t, ok, "nobody watches")
	_, ok = on.Begin()
	assert.True(t, ok)

	r.Watch(time.Now().Add(5 * time.Second))
	assert.True(t, r.Watching())
	t0, ok := auto.Begin()
	require.True(t, ok, "a console watches")
	auto.Record(cluster.ClassRandom, t0, nil, false)
	assert.Equal(t, uint64(1), r.Sample().Classes[cluster.ClassRandom].Calls)

	r.Watch(time.Now().Add(-time.Millisecond))
	assert.False(t, r.Watching())
	_, ok = auto.Begin()
	assert.False(t, ok, "the lease ran out")
	assert.Zero(t, atomic.LoadInt64(auto.lease), "an expired lease is cleared: one load again")
	_, ok = on.Begin()
	assert.True(t, ok)
}

func TestParseMode(t *testing.T) {
	for _, s := range []string{"auto", "on", "off"} {
		m, err := ParseMode(s)
		require.NoError(t, err)
		assert.Equal(t, s, m.String())
	}
	_, err := ParseMode("yes")
	assert.ErrorContains(t, err, `"yes" is not auto, on or off`)
}

// Every latency falls in the bucket whose bounds hold it; buckets tile
// 0 .. 2^34 ns; each is at most 1/8 of its lower bound wide (from 1 µs).
func TestBuckets(t *testing.T) {
	var prevHi uint64
	for i := range NumBuckets {
		lo, hi := bucketBounds(i)
		require.Equal(t, prevHi, lo, "bucket %d", i)
		require.Greater(t, hi, lo)
		if lo >= 1024 {
			require.LessOrEqual(t, (hi-lo)*8, lo, "bucket %d", i)
		}
		for _, v := range []uint64{lo, (lo + hi) / 2, hi - 1} {
			require.Equal(t, i, bucketOf(v), "value %d", v)
		}
		prevHi = hi
	}
	assert.Equal(t, uint64(1)<<34, prevHi)
	assert.Less(t, bucketOf(uint64(10*time.Second)), NumBuckets-1, "10 s has a bucket of its own")
	assert.Equal(t, NumBuckets-1, bucketOf(math.MaxUint64))
}

// Percentiles of known distributions come within a bucket's resolution.
func TestPercentiles(t *testing.T) {
	dists := map[string][]uint64{}
	var uni, exp, bimodal []uint64
	for i := range 10000 {
		uni = append(uni, uint64(1000+i*100)) // 1 µs .. 1 ms
		exp = append(exp, uint64(50000*-math.Log(1-float64(i)/10000)+1500))
		if i%10 == 0 {
			bimodal = append(bimodal, 5_000_000+uint64(i))
		} else {
			bimodal = append(bimodal, 40_000+uint64(i))
		}
	}
	dists["uniform"], dists["exponential"], dists["bimodal"] = uni, exp, bimodal
	for name, vals := range dists {
		t.Run(name, func(t *testing.T) {
			t0 := time.Unix(100, 0)
			prev := Sample{Time: t0}
			cur := Sample{Time: t0.Add(2 * time.Second)}
			// prev already holds other calls: only the difference counts.
			prev.Classes[cluster.ClassECSign].Calls = 7
			prev.Classes[cluster.ClassECSign].Buckets[bucketOf(3_000_000_000)] = 7
			cur.Classes[cluster.ClassECSign] = prev.Classes[cluster.ClassECSign]
			for _, v := range vals {
				c := &cur.Classes[cluster.ClassECSign]
				c.Calls++
				c.Buckets[bucketOf(v)]++
			}
			rt := RatesOf(prev, cur)
			require.Contains(t, rt.Classes, "ec-sign")
			assert.NotContains(t, rt.Classes, "hmac")
			got := rt.Classes["ec-sign"]
			assert.InDelta(t, float64(len(vals))/2, got.Ops, 1e-9)
			sorted := slices.Clone(vals)
			slices.Sort(sorted)
			for q, p := range map[float64]float64{0.50: got.P50US, 0.95: got.P95US, 0.99: got.P99US} {
				exact := float64(sorted[int(math.Ceil(q*float64(len(sorted))))-1]) / 1000
				assert.InEpsilon(t, exact, p, 0.0625, "p%g", q*100)
			}
		})
	}
}

// A counter lower than before (the file was rebuilt) counts from zero.
func TestRatesAfterRebuild(t *testing.T) {
	t0 := time.Unix(100, 0)
	prev, cur := Sample{Time: t0}, Sample{Time: t0.Add(time.Second)}
	prev.Classes[cluster.ClassHMAC].Calls = 1000
	cur.Classes[cluster.ClassHMAC].Calls = 10
	cur.Classes[cluster.ClassHMAC].Failed = 1
	cur.Classes[cluster.ClassHMAC].Buckets[bucketOf(2000)] = 10
	got := RatesOf(prev, cur).Classes["hmac"]
	assert.Equal(t, 10.0, got.Ops)
	assert.Equal(t, 1.0, got.Failed)
	assert.Empty(t, RatesOf(cur, cur).Classes, "no time, no rates")
	assert.Equal(t, []string{"rsa-sign", "rsa-verify", "ec-sign", "ec-verify", "symmetric", "hmac", "keygen", "random", "manage", "cert-read", "cert-write"}, ClassNames())
}

// A damaged or foreign file is rebuilt, not a crash: before any process
// mapped it, and under a process that has.
func TestDamagedFileRebuilt(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, fileName)
	require.NoError(t, os.WriteFile(path, []byte("not a metrics file"), 0o600))
	var logs []string
	log := func(msg string, args ...any) { logs = append(logs, fmt.Sprint(msg, args)) }
	p, err := Open(dir, 0o600, On, log)
	require.NoError(t, err)
	require.Len(t, logs, 1)
	assert.Contains(t, logs[0], "18 bytes")
	t0, _ := p.Begin()
	p.Record(cluster.ClassManage, t0, nil, false)

	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("GARBAGE!"), 0)
	require.NoError(t, err)
	f.Close()
	p, err = Open(dir, 0o600, On, log)
	require.NoError(t, err)
	require.Len(t, logs, 2)
	assert.Contains(t, logs[1], "bad magic")
	assert.Equal(t, 0, p.Region(), "the rebuild freed every region: claimed again")
	r, err := OpenReader(dir)
	require.NoError(t, err)
	assert.Zero(t, r.Sample().Classes[cluster.ClassManage].Calls, "counters start again")
}

// Any header bytes: Open rebuilds or accepts, never panics, and leaves a
// file whose header is ours.
func FuzzHeader(f *testing.F) {
	good := make([]byte, 128)
	m, err := openFile(f.TempDir(), 0o600, nil)
	require.NoError(f, err)
	copy(good, m.mem[:128])
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte("GOHSMMT\x00\x02\x00\x00\x00"))
	bad := slices.Clone(good)
	bad[offRegions] = 7
	f.Add(bad)
	dir := f.TempDir()
	path := filepath.Join(dir, fileName)
	f.Fuzz(func(t *testing.T, hdr []byte) {
		if len(hdr) > 128 {
			hdr = hdr[:128]
		}
		if _, err := os.Stat(path); err == nil {
			fh, err := os.OpenFile(path, os.O_RDWR, 0)
			require.NoError(t, err)
			_, err = fh.WriteAt(hdr, 0)
			require.NoError(t, err)
			fh.Close()
		}
		p, err := Open(dir, 0o600, Auto, nil)
		require.NoError(t, err)
		assert.Equal(t, "", p.m.headerProblem(fileSize))
		assert.GreaterOrEqual(t, p.Region(), 0)
		r, err := OpenReader(dir)
		require.NoError(t, err)
		r.Sample()
	})
}
