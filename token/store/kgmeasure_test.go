//go:build kgmeasure

package store

// Not a test: a measurement of the store's part of a token key generation
// on a token made by `p11bench bigtoken-make`, counted per key (docs/bench.md
// "Key generation at 10^6"). Built only with -tags kgmeasure:
//
//	KG_DIR=<big token>/gohsm/slot-0 KG_TEMPLATE=<a token with keys>/gohsm/slot-0 \
//	    go test -tags kgmeasure ./token/store -run TestKGMeasure -v
//
// It copies the last AES key of KG_TEMPLATE (new unique ID, label "keygen",
// random check value, sealed value and wrapped key of the same sizes) and
// stores KG_N (300) copies in KG_DIR one CreateObjects each, with an audit
// record, as the token layer does; then it prints per key the writes'
// connection's SQLite page cache hits, misses and pages written
// (sqlite3_db_status), /proc/self/io and CPU, and destroys the copies.
// KG_PRAGMA="a=b;c=d" sets PRAGMAs on the writes' connection first, KG_SEQ=1
// makes the unique IDs ascend (as token.uniqueIDGen does; default random),
// KG_WALMAP=1 maps the WAL frames of the last KG_N commits to their b-trees
// (dbstat; run it with KG_PRAGMA=wal_autocheckpoint=0).

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"modernc.org/sqlite"

	"gohsm/internal/ck"
)

func kgIO() map[string]int64 {
	b, _ := os.ReadFile("/proc/self/io")
	m := map[string]int64{}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ": ")
		if ok {
			m[k], _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return m
}

func kgStatus(t *testing.T, s *sqliteStore, reset bool) [4]int {
	var out [4]int
	// One goroutine: the pool lends its one connection, the one the
	// writes run on.
	h, err := s.conns.get()
	if err != nil {
		t.Fatal(err)
	}
	defer s.conns.put(h, false)
	err = h.conn.Raw(func(dc any) error {
		for i, op := range []sqlite.DBStatusOp{sqlite.DBStatusCacheHit, sqlite.DBStatusCacheMiss, sqlite.DBStatusCacheWrite, sqlite.DBStatusCacheUsed} {
			cur, _, err := dc.(sqlite.DBStatus).Status(op, reset)
			if err != nil {
				return err
			}
			out[i] = cur
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var kgSeq, kgBase uint64

func TestKGMeasure(t *testing.T) {
	{
		var x [8]byte
		rand.Read(x[:])
		kgBase = binary.BigEndian.Uint64(x[:])
	}
	dir := os.Getenv("KG_DIR")
	if dir == "" {
		t.Skip("KG_DIR")
	}
	n, _ := strconv.Atoi(os.Getenv("KG_N"))
	if n == 0 {
		n = 300
	}
	// The template: the last key of the template token.
	tmpl, err := Open(os.Getenv("KG_TEMPLATE"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ids, err := tmpl.Find(Query{Match: map[ck.AttributeType][]byte{ck.CKA_CLASS: ulong(uint64(ck.CKO_SECRET_KEY))}, Viewer: "user"})
	if err != nil || len(ids) == 0 {
		t.Fatal(err, len(ids))
	}
	key, err := tmpl.Object(ids[len(ids)-1])
	if err != nil {
		t.Fatal(err)
	}
	tmpl.Close()
	var types []string
	for a := range key.Attrs {
		types = append(types, fmt.Sprintf("%#x", uint64(a)))
	}
	t.Logf("template: %d plain attrs %v, %d sealed, %d keys", len(key.Attrs), types, len(key.Sealed), len(key.Keys))

	st, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := st.(*sqliteStore)
	mk := func() ObjectRecord {
		b := make([]byte, 16)
		rand.Read(b)
		if os.Getenv("KG_SEQ") != "" {
			kgSeq++
			binary.BigEndian.PutUint64(b, kgBase+kgSeq)
		}
		uid := hex.EncodeToString(b)
		o := ObjectRecord{UniqueID: uid, Owner: key.Owner, Private: key.Private,
			Attrs: map[ck.AttributeType][]byte{}, Sealed: map[ck.AttributeType][]byte{}, Keys: map[string][]byte{}}
		for a, v := range key.Attrs {
			o.Attrs[a] = v
		}
		o.Attrs[ck.CKA_UNIQUE_ID] = []byte(uid)
		o.Attrs[ck.CKA_LABEL] = []byte("keygen")
		cv := make([]byte, 3)
		rand.Read(cv)
		if _, ok := o.Attrs[ck.CKA_CHECK_VALUE]; ok {
			o.Attrs[ck.CKA_CHECK_VALUE] = cv
		}
		for a, v := range key.Sealed {
			w := make([]byte, len(v))
			rand.Read(w)
			o.Sealed[a] = w
		}
		for u, v := range key.Keys {
			w := make([]byte, len(v))
			rand.Read(w)
			o.Keys[u] = w
		}
		return o
	}
	if c := os.Getenv("KG_PRAGMA"); c != "" {
		// On the pool's one connection, which the writes then use.
		h, err := s.conns.get()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range strings.Split(c, ";") {
			if _, err := h.conn.ExecContext(context.Background(), "PRAGMA "+p); err != nil {
				t.Fatal(err)
			}
		}
		s.conns.put(h, false)
	}
	var made []int64
	gen := func(k int) {
		for range k {
			if _, err := s.Generation(); err != nil {
				t.Fatal(err)
			}
			rec := make([]byte, 120)
			rand.Read(rec)
			out, _, err := s.Audited(AuditEvent{Record: rec}).CreateObjects([]ObjectRecord{mk()})
			if err != nil {
				t.Fatal(err)
			}
			made = append(made, out[0].ID)
		}
	}
	warm, _ := strconv.Atoi(os.Getenv("KG_WARM"))
	gen(max(warm, 5))
	kgStatus(t, s, true)
	io0 := kgIO()
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	t0 := time.Now()
	gen(n)
	el := time.Since(t0)
	io1 := kgIO()
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	t.Logf("cpu %.3f ms/key (user %.3f sys %.3f)", float64(cpu.Microseconds())/1000/float64(n),
		float64(ru1.Utime.Nano()-ru0.Utime.Nano())/1e6/float64(n), float64(ru1.Stime.Nano()-ru0.Stime.Nano())/1e6/float64(n))
	stt := kgStatus(t, s, false)
	t.Logf("N=%d: %.3f ms/key (timing, loaded); per key: cache hit %.1f miss %.2f write %.1f; cache used %d KiB; rchar %.0f wchar %.0f syscr %.1f syscw %.1f read_bytes %.0f write_bytes %.0f",
		n, float64(el.Microseconds())/1000/float64(n), float64(stt[0])/float64(n), float64(stt[1])/float64(n), float64(stt[2])/float64(n), stt[3]>>10,
		float64(io1["rchar"]-io0["rchar"])/float64(n), float64(io1["wchar"]-io0["wchar"])/float64(n),
		float64(io1["syscr"]-io0["syscr"])/float64(n), float64(io1["syscw"]-io0["syscw"])/float64(n),
		float64(io1["read_bytes"]-io0["read_bytes"])/float64(n), float64(io1["write_bytes"]-io0["write_bytes"])/float64(n))
	if os.Getenv("KG_WALMAP") != "" {
		kgWalMap(t, s, dir, n)
	}
	for _, id := range made {
		if _, err := s.DeleteObject(id); err != nil {
			t.Fatal(err)
		}
	}
}

func TestKGDbstat(t *testing.T) {
	dir := os.Getenv("KG_DIR")
	if dir == "" {
		t.Skip("KG_DIR")
	}
	st, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := st.(*sqliteStore)
	rows, err := s.db.Query(`SELECT name, count(*), max(path) FROM dbstat GROUP BY name ORDER BY 2 DESC`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, path string
		var n int
		rows.Scan(&name, &n, &path)
		t.Logf("%s %d pages, depth path %s", name, n, path)
	}
}

func kgWalMap(t *testing.T, s *sqliteStore, dir string, n int) {
	b, err := os.ReadFile(dir + "/token.db-wal")
	if err != nil {
		t.Fatal(err)
	}
	names := map[uint32]string{}
	rows, err := s.db.Query(`SELECT name, pageno FROM dbstat`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		var pg uint32
		rows.Scan(&name, &pg)
		names[pg] = name
	}
	rows.Close()
	// the last n commits
	const ps = 4096
	type fr struct{ pg, commit uint32 }
	var frames []fr
	for off := 32; off+24+ps <= len(b); off += 24 + ps {
		frames = append(frames, fr{binary.BigEndian.Uint32(b[off:]), binary.BigEndian.Uint32(b[off+4:])})
	}
	// walk back n commits
	cnt := map[string]int{}
	commits := 0
	cur := map[uint32]bool{}
	for i := len(frames) - 1; i >= 0 && commits <= n; i-- {
		if frames[i].commit != 0 {
			commits++
			for pg := range cur {
				cnt[names[pg]]++
			}
			cur = map[uint32]bool{}
			if commits > n {
				break
			}
		}
		cur[frames[i].pg] = true
	}
	t.Logf("frames in WAL %d, commits counted %d", len(frames), commits-1)
	for k, v := range cnt {
		t.Logf("  %-28s %.2f pages/commit", k, float64(v)/float64(commits-1))
	}
}
