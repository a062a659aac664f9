package attrs

import (
	"bytes"
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
)

// secretAttrs is a secret key of keyType built as the token builds a
// derived or encapsulated key: BuildAttrs, then its value.
func secretAttrs(t testing.TB, keyType ck.KeyType, tmpl Template, value []byte) Attrs {
	t.Helper()
	x, err := BuildAttrs(nil, OpDerive, ck.CKO_SECRET_KEY, keyType, ck.CKM_ML_KEM, tmpl)
	require.NoError(t, err)
	require.NoError(t, AddMaterialTo(&x, Template{ck.CKA_VALUE: value}))
	return x
}

// TestLazyCheckValueReaders: a built secret key's CKA_CHECK_VALUE, computed
// on its first read, is what CheckValue gives for its value (the bytes the
// map-built template holds), and every reader sees it once: Get, Has,
// All, Types, Len, Template, and a new Attrs made from the Template.
func TestLazyCheckValueReaders(t *testing.T) {
	for _, c := range []struct {
		keyType ck.KeyType
		n       int
	}{{ck.CKK_AES, 16}, {ck.CKK_AES, 32}, {ck.CKK_DES3, 24}, {ck.CKK_GENERIC_SECRET, 20}} {
		value := bytes.Repeat([]byte{0x5c}, c.n)
		tmpl := Template{ck.CKA_KEY_TYPE: ULong(ck.ULong(c.keyType)), ck.CKA_ENCRYPT: Bool(true)}
		if c.keyType == ck.CKK_GENERIC_SECRET {
			tmpl = Template{ck.CKA_KEY_TYPE: ULong(ck.ULong(c.keyType)), ck.CKA_SIGN: Bool(true)}
		}
		want := CheckValue(c.keyType, value)
		require.Len(t, want, 3)
		m, err := BuildWith(nil, OpDerive, ck.CKO_SECRET_KEY, c.keyType, ck.CKM_ML_KEM, tmpl)
		require.NoError(t, err)
		m, err = AddMaterial(m, Template{ck.CKA_VALUE: value})
		require.NoError(t, err)
		require.Equal(t, want, m[ck.CKA_CHECK_VALUE], "the map's")

		x := secretAttrs(t, c.keyType, tmpl, value)
		require.NotNil(t, x.check, "%v: not lazy", c.keyType)
		for _, v := range x.own {
			require.NotEqual(t, ck.CKA_CHECK_VALUE, v.Type, "own and lazy both")
		}
		y := x // a copy of the Attrs shares the one computed value
		got, ok := x.Get(ck.CKA_CHECK_VALUE)
		require.True(t, ok)
		require.Equal(t, want, got)
		require.True(t, y.Has(ck.CKA_CHECK_VALUE))
		require.Equal(t, want, y.Bytes(ck.CKA_CHECK_VALUE))

		n := 0
		for a, v := range x.All() {
			if a == ck.CKA_CHECK_VALUE {
				n++
				require.Equal(t, want, v)
			}
		}
		require.Equal(t, 1, n, "All yields CKA_CHECK_VALUE once")
		tm := x.Template()
		require.Equal(t, m, tm, "%v: the Attrs' attributes are the map's", c.keyType)
		require.Equal(t, len(tm), x.Len())
		require.Equal(t, m.Types(), x.Types())
		z := FromTemplate(tm)
		require.Equal(t, want, z.Bytes(ck.CKA_CHECK_VALUE))
	}
}

// TestLazyCheckValueConcurrentFirstRead: readers racing to the first read
// (run with -race) all get the same bytes, computed once.
func TestLazyCheckValueConcurrentFirstRead(t *testing.T) {
	value := bytes.Repeat([]byte{7}, 32)
	x := secretAttrs(t, ck.CKK_AES, Template{ck.CKA_KEY_TYPE: ULong(ck.ULong(ck.CKK_AES))}, value)
	const n = 16
	got := make([][]byte, n)
	var start, wg sync.WaitGroup
	start.Add(1)
	for i := range n {
		wg.Go(func() {
			start.Wait()
			switch i % 3 {
			case 0:
				got[i] = x.Bytes(ck.CKA_CHECK_VALUE)
			case 1:
				got[i] = x.Template()[ck.CKA_CHECK_VALUE]
			default:
				for a, v := range x.All() {
					if a == ck.CKA_CHECK_VALUE {
						got[i] = v
					}
				}
			}
		})
	}
	start.Done()
	wg.Wait()
	want := CheckValue(ck.CKK_AES, value)
	for i := range got {
		require.Equal(t, want, got[i], "reader %d", i)
		require.Same(t, &got[0][0], &got[i][0], "reader %d has another computation's bytes", i)
	}
}

// TestLazyCheckValueGiven: a CKA_CHECK_VALUE given in the template is still
// checked against the value when the key is built (CKR_ATTRIBUTE_VALUE_INVALID
// when it differs) and kept as given.
func TestLazyCheckValueGiven(t *testing.T) {
	value := bytes.Repeat([]byte{9}, 32)
	want := CheckValue(ck.CKK_AES, value)
	for _, c := range []struct {
		given []byte
		ok    bool
	}{{want, true}, {[]byte{1, 2, 3}, false}} {
		tmpl := Template{ck.CKA_KEY_TYPE: ULong(ck.ULong(ck.CKK_AES)), ck.CKA_CHECK_VALUE: c.given}
		x, err := BuildAttrs(nil, OpDerive, ck.CKO_SECRET_KEY, ck.CKK_AES, ck.CKM_ML_KEM, tmpl)
		if err != nil {
			// The table refuses a given check value for this operation:
			// nothing to compare.
			t.Skipf("CKA_CHECK_VALUE not accepted in a derive template: %v", err)
		}
		err = AddMaterialTo(&x, Template{ck.CKA_VALUE: value})
		if !c.ok {
			require.ErrorIs(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
			continue
		}
		require.NoError(t, err)
		require.Nil(t, x.check)
		require.Equal(t, want, x.Bytes(ck.CKA_CHECK_VALUE))
	}
}

// TestLazyCheckValueMaterialized: replacing CKA_VALUE of an Attrs being
// built keeps the check value of the value it was completed with, as when
// it was computed at once.
func TestLazyCheckValueMaterialized(t *testing.T) {
	v1, v2 := bytes.Repeat([]byte{1}, 16), bytes.Repeat([]byte{2}, 16)
	x := secretAttrs(t, ck.CKK_AES, Template{ck.CKA_KEY_TYPE: ULong(ck.ULong(ck.CKK_AES))}, v1)
	x.Put(ck.CKA_VALUE, v2)
	require.Nil(t, x.check)
	require.Equal(t, CheckValue(ck.CKK_AES, v1), x.Bytes(ck.CKA_CHECK_VALUE))
	require.Equal(t, v2, x.Bytes(ck.CKA_VALUE))
	x.Put(ck.CKA_CHECK_VALUE, []byte{4, 5, 6})
	require.Equal(t, []byte{4, 5, 6}, x.Bytes(ck.CKA_CHECK_VALUE))
}

// TestLazyCheckValueNoKeySchedule: completing an AES key with its value
// no longer makes an AES key schedule (a 512-byte allocation) that nobody
// may read: under 256 bytes per key (568 before, with the schedule).
func TestLazyCheckValueNoKeySchedule(t *testing.T) {
	value := bytes.Repeat([]byte{3}, 32)
	tmpl := Template{ck.CKA_KEY_TYPE: ULong(ck.ULong(ck.CKK_AES)), ck.CKA_ENCRYPT: Bool(true)}
	material := Template{ck.CKA_VALUE: value}
	const n = 2000
	xs := make([]Attrs, n)
	for i := range xs {
		x, err := BuildAttrs(nil, OpDerive, ck.CKO_SECRET_KEY, ck.CKK_AES, ck.CKM_ML_KEM, tmpl)
		require.NoError(t, err)
		xs[i] = x
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range xs {
		if err := AddMaterialTo(&xs[i], material); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	perKey := float64(after.TotalAlloc-before.TotalAlloc) / n
	t.Logf("%.0f bytes per completed AES key", perKey)
	require.Less(t, perKey, 256.0, "bytes allocated per completed AES key")
}
