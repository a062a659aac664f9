package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token/store"
)

// TestBigtoken makes two small big tokens (1 and 60 objects) through the
// generator, checks what it stored (the counts, the labels, the keys'
// owner and sealed values, which the probe opens through the module and
// compares with the check value), that a second make reuses them, the
// probe's phases and its output's parse, and a short key generation run
// that leaves the tokens as they were. No timing is asserted.
func TestBigtoken(t *testing.T) {
	lib := gohsmLib(t)
	old := bigtokenConfExtra
	bigtokenConfExtra = "kdf_time = 1\nkdf_memory = 64\nkdf_threads = 1\n"
	t.Cleanup(func() { bigtokenConfExtra = old })
	dir := t.TempDir()
	d0, d60 := filepath.Join(dir, "gohsm-0"), filepath.Join(dir, "gohsm-60")

	r, err := makeBigtoken(lib, d60, 60, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, bigtokenRecord{Version: bigtokenVersion, Objects: 60, Keys: 6, Seconds: r.Seconds}, r)
	_, err = makeBigtoken(lib, d0, 1, io.Discard)
	require.NoError(t, err)
	again, err := makeBigtoken(lib, d60, 60, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, r, again, "reused, not made again")

	st, err := store.Open(filepath.Join(d60, "gohsm", "slot-0"), store.Options{})
	require.NoError(t, err)
	all, err := st.Find(store.Query{Viewer: bigtokenUser})
	require.NoError(t, err)
	assert.Len(t, all, 60)
	keys, err := st.Find(store.Query{Viewer: bigtokenUser, Match: map[ck.AttributeType][]byte{ck.CKA_CLASS: ulong(uint(ck.CKO_SECRET_KEY))}})
	require.NoError(t, err)
	assert.Len(t, keys, 6)
	for _, id := range keys {
		o, err := st.Object(id)
		require.NoError(t, err)
		assert.Equal(t, bigtokenUser, o.Owner)
		assert.Len(t, o.Sealed, 1)
		assert.Contains(t, o.Keys, bigtokenUser)
		assert.Equal(t, o.UniqueID, string(o.Attrs[ck.CKA_UNIQUE_ID]))
	}
	for _, l := range []string{bigtokenFind, bigtokenObjLabel(0), bigtokenObjLabel(58)} {
		ids, err := st.Find(store.Query{Viewer: bigtokenUser, Match: map[ck.AttributeType][]byte{ck.CKA_LABEL: []byte(l)}})
		require.NoError(t, err)
		assert.Len(t, ids, 1, l)
	}
	require.NoError(t, st.Close())

	ph, err := bigtokenProbe(lib, bigtokenConf(d60), bigtokenLabel, bigtokenUser+":"+bigtokenPIN, bigtokenFind, 60)
	require.NoError(t, err)
	assert.Equal(t, 10, ph.found)
	assert.Positive(t, ph.rss)
	_, err = bigtokenProbe(lib, bigtokenConf(d60), bigtokenLabel, bigtokenUser+":"+bigtokenPIN, "no such label", 60)
	assert.ErrorContains(t, err, "0 objects, want 1")

	out := fmt.Sprintf("noise\ninit_ms %.3f login_ms %.3f find_ms %.3f touch_ms %.3f touched %d rss_kib %d\n", 1.5, 2.0, 0.25, 3.0, 10, 2048)
	got, err := parseProbe(out)
	require.NoError(t, err)
	assert.Equal(t, probePhases{init: 1500 * time.Microsecond, login: 2 * time.Millisecond, find: 250 * time.Microsecond,
		touch: 3 * time.Millisecond, found: 10, rss: 2 << 20}, got)
	_, err = parseProbe("init_ms x")
	assert.Error(t, err)

	kg, err := keygenAtSizes(lib, d0, d60, 60, 40*time.Millisecond, 0)
	require.NoError(t, err)
	assert.Positive(t, kg.aes0)
	assert.Positive(t, kg.aesBig)
	assert.Positive(t, kg.ecPair0)
	assert.Positive(t, kg.ecBig)
	// By count (bigtoken-keygen -count): the counters are per key made,
	// and every key's commit wrote its WAL frames.
	var out2 bytes.Buffer
	require.NoError(t, bigtokenKeygenMain([]string{"-lib", lib, "-empty", d0, "-big", d60, "-count", "8"}, &out2, io.Discard))
	assert.Contains(t, out2.String(), "| C_GenerateKey AES-256 | 60 |")
	assert.Contains(t, out2.String(), "big/empty: AES-256 ")
	kg, err = keygenAtSizes(lib, d0, d60, 60, 0, 8)
	require.NoError(t, err)
	for k := range 2 {
		for tok := range 2 {
			assert.GreaterOrEqual(t, kg.io[k][tok].wchar, 4096.0, "kind %d token %d", k, tok)
			assert.Positive(t, kg.io[k][tok].syscw)
		}
	}
	st, err = store.Open(filepath.Join(d60, "gohsm", "slot-0"), store.Options{})
	require.NoError(t, err)
	defer st.Close()
	all, err = st.Find(store.Query{Viewer: bigtokenUser})
	require.NoError(t, err)
	assert.Len(t, all, 60, "the keys generated were destroyed")
}

// TestBigtokenPGModule: with -store and no -lib, bigtoken-make and
// bigtoken-probe load build/libgohsm-pg.so (build/libgohsm.so has no
// PostgreSQL store); a -lib given, or no -store, keeps the flag's value.
func TestBigtokenPGModule(t *testing.T) {
	defer func(s string) { bigtokenStore = s }(bigtokenStore)
	for _, c := range []struct {
		store string
		args  []string
		want  string
	}{
		{"", nil, "build/libgohsm.so"},
		{"postgres://gohsm@127.0.0.1/big", nil, "build/libgohsm-pg.so"},
		{"postgres://gohsm@127.0.0.1/big", []string{"-lib", "build/libgohsm.so"}, "build/libgohsm.so"},
		{"postgres://gohsm@127.0.0.1/big", []string{"-lib", "/opt/x.so"}, "/opt/x.so"},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		lib := fs.String("lib", "build/libgohsm.so", "")
		if err := fs.Parse(c.args); err != nil {
			t.Fatal(err)
		}
		bigtokenStore = c.store
		pgModule(fs, lib)
		if *lib != c.want {
			t.Errorf("store %q, args %q: -lib %q, want %q", c.store, c.args, *lib, c.want)
		}
	}
}
