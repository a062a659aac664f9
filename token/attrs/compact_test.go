package attrs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"maps"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
)

// TestBuildAttrsAsBuildWith: an Attrs reads back as the Template
// BuildWith makes from the same input, attribute by attribute, for keys
// made by every creating operation (with their material) and a data
// object, under the tables and the cloudhsm policy.
func TestBuildAttrsAsBuildWith(t *testing.T) {
	aes := bytes.Repeat([]byte{7}, 32)
	type tc struct {
		name        string
		op          Op
		class       ck.ObjectClass
		kt          ck.KeyType
		tmpl, mater Template
	}
	cases := []tc{
		{"generate aes", OpGenerate, ck.CKO_SECRET_KEY, ck.CKK_AES,
			Template{ck.CKA_VALUE_LEN: ULong(32), ck.CKA_LABEL: []byte("k"), ck.CKA_ENCRYPT: Bool(true)},
			Template{ck.CKA_VALUE: aes}},
		{"derive aes (a KEM key)", OpDerive, ck.CKO_SECRET_KEY, ck.CKK_AES,
			Template{ck.CKA_KEY_TYPE: ULong(ck.ULong(ck.CKK_AES)), ck.CKA_ENCRYPT: Bool(true), ck.CKA_SENSITIVE: Bool(false)},
			Template{ck.CKA_VALUE: aes}},
		{"create aes", OpCreate, ck.CKO_SECRET_KEY, ck.CKK_AES,
			Template{ck.CKA_CLASS: ULong(ck.ULong(ck.CKO_SECRET_KEY)), ck.CKA_KEY_TYPE: ULong(ck.ULong(ck.CKK_AES)),
				ck.CKA_VALUE: aes, ck.CKA_DECRYPT: Bool(false), ck.CKA_TOKEN: Bool(true)}, nil},
		{"create data", OpCreate, ck.CKO_DATA, NoKeyType,
			Template{ck.CKA_CLASS: ULong(ck.ULong(ck.CKO_DATA)), ck.CKA_VALUE: []byte("x"), ck.CKA_LABEL: []byte("d")}, nil},
	}
	rk, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	for _, k := range []struct {
		class ck.ObjectClass
		kt    ck.KeyType
		key   any
	}{{ck.CKO_PRIVATE_KEY, ck.CKK_RSA, rk}, {ck.CKO_PUBLIC_KEY, ck.CKK_RSA, &rk.PublicKey},
		{ck.CKO_PRIVATE_KEY, ck.CKK_EC, ek}, {ck.CKO_PUBLIC_KEY, ck.CKK_EC, &ek.PublicKey}} {
		tm, err := TemplateFromKey(k.key)
		require.NoError(t, err)
		tm[ck.CKA_CLASS] = ULong(ck.ULong(k.class))
		tm[ck.CKA_KEY_TYPE] = ULong(ck.ULong(k.kt))
		cases = append(cases, tc{"create " + k.class.String() + " " + k.kt.String(), OpCreate, k.class, k.kt, tm, nil})
	}
	for _, p := range []*Policy{nil, cloudhsmPolicy(t)} {
		for _, c := range cases {
			want, errW := BuildWith(p, c.op, c.class, c.kt, ck.CKM_AES_KEY_GEN, c.tmpl)
			got, errG := BuildAttrs(p, c.op, c.class, c.kt, ck.CKM_AES_KEY_GEN, c.tmpl)
			require.Equal(t, errW, errG, c.name)
			if errW != nil {
				continue
			}
			if c.mater != nil {
				want, errW = WithMaterial(want, c.mater)
				errG = AddMaterialTo(&got, c.mater)
				require.NoError(t, errW, c.name)
				require.NoError(t, errG, c.name)
			}
			requireSame(t, c.name, want, &got)
			require.Less(t, got.OwnLen(), len(want), "%s: every attribute in own", c.name)
		}
	}
}

// requireSame: x reads back exactly as want, by every accessor.
func requireSame(t *testing.T, name string, want Template, x *Attrs) {
	t.Helper()
	require.Equal(t, len(want), x.Len(), name)
	require.Equal(t, want.Types(), x.Types(), name)
	for a, v := range want {
		got, ok := x.Get(a)
		require.True(t, ok, "%s: %s missing", name, a)
		require.Equal(t, v, got, "%s: %s", name, a)
		wb, wok := want.Bool(a)
		gb, gok := x.Bool(a)
		require.Equal(t, [2]bool{wb, wok}, [2]bool{gb, gok}, "%s: %s", name, a)
		wu, wok := want.ULong(a)
		gu, gok := x.ULong(a)
		require.Equal(t, wu, gu, "%s: %s", name, a)
		require.Equal(t, wok, gok, "%s: %s", name, a)
	}
	_, ok := x.Get(ck.CKA_VENDOR_DEFINED)
	require.False(t, ok, name)
	seen := Template{}
	for a, v := range x.All() {
		_, dup := seen[a]
		require.False(t, dup, "%s: %s yielded twice", name, a)
		seen[a] = v
	}
	require.True(t, maps.EqualFunc(want, seen, bytes.Equal), name)
	require.True(t, maps.EqualFunc(want, x.Template(), bytes.Equal), name)
}

// TestAttrsPrototypeNotWritten: two keys built from one prototype share
// it; what is put into one (a value the prototype has, one it lacks) does
// not show in the other, in the prototype, or in a key built afterwards.
func TestAttrsPrototypeNotWritten(t *testing.T) {
	tmpl := Template{ck.CKA_VALUE_LEN: ULong(32), ck.CKA_LABEL: []byte("k")}
	build := func() *Attrs {
		x, err := BuildAttrs(nil, OpGenerate, ck.CKO_SECRET_KEY, ck.CKK_AES, ck.CKM_AES_KEY_GEN, tmpl)
		require.NoError(t, err)
		require.NoError(t, AddMaterialTo(&x, Template{ck.CKA_VALUE: bytes.Repeat([]byte{1}, 32)}))
		return &x
	}
	a, b := build(), build()
	require.True(t, a.SharesBase(b), "keys from one prototype share it")
	s, _ := Lookup(ck.CKO_SECRET_KEY, ck.CKK_AES)
	proto := maps.Clone(s.prototypeOf(nil))
	d0, ok := proto.Bool(ck.CKA_DECRYPT)
	require.True(t, ok)
	a.Put(ck.CKA_DECRYPT, Bool(!d0))
	a.Put(ck.CKA_ID, []byte("a's")) // the prototype has it empty
	a.Put(ck.CKA_UNIQUE_ID, []byte("u1"))
	for _, x := range []*Attrs{b, build()} {
		v, _ := x.Bool(ck.CKA_DECRYPT)
		require.Equal(t, d0, v)
		require.Empty(t, x.Bytes(ck.CKA_ID))
		require.Empty(t, x.Bytes(ck.CKA_UNIQUE_ID))
	}
	require.True(t, maps.EqualFunc(proto, s.prototypeOf(nil), bytes.Equal), "the prototype changed")
	v, _ := a.Bool(ck.CKA_DECRYPT)
	require.Equal(t, !d0, v)
	// Putting the prototype's value back keeps no copy of it.
	n := a.OwnLen()
	a.Put(ck.CKA_DECRYPT, Bool(d0))
	require.Equal(t, n-1, a.OwnLen())
	v, ok = a.Bool(ck.CKA_DECRYPT)
	require.True(t, ok)
	require.Equal(t, d0, v)
}

// TestAttrsPrototypeRace: keys built, completed and read from one
// prototype by several goroutines at once (run with -race: no write may
// reach what they share).
func TestAttrsPrototypeRace(t *testing.T) {
	tmpl := Template{ck.CKA_VALUE_LEN: ULong(32), ck.CKA_ENCRYPT: Bool(true), ck.CKA_SENSITIVE: Bool(true)}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				x, err := BuildAttrs(nil, OpDerive, ck.CKO_SECRET_KEY, ck.CKK_AES, 0, tmpl)
				if err != nil {
					t.Error(err)
					return
				}
				if err := AddMaterialTo(&x, Template{ck.CKA_VALUE: bytes.Repeat([]byte{byte(g)}, 32)}); err != nil {
					t.Error(err)
					return
				}
				x.Put(ck.CKA_LABEL, []byte{byte(g), byte(i)})
				x.Put(ck.CKA_DECRYPT, Bool(i%2 == 0))
				if d, _ := x.Bool(ck.CKA_DECRYPT); d != (i%2 == 0) {
					t.Errorf("goroutine %d: CKA_DECRYPT %v", g, d)
				}
				if l := x.Bytes(ck.CKA_LABEL); !bytes.Equal(l, []byte{byte(g), byte(i)}) {
					t.Errorf("goroutine %d: label %x", g, l)
				}
				_ = x.Template()
				if err := Readable(&x, ck.CKA_VALUE); err == nil {
					t.Errorf("a sensitive derived key's CKA_VALUE is readable")
				}
			}
		}()
	}
	wg.Wait()
}

// TestAttrsIdentity: Identity, which reads nothing, says what CKA_CLASS
// and CKA_KEY_TYPE read for an Attrs over every schema's prototype, and
// declines once either may have been replaced.
func TestAttrsIdentity(t *testing.T) {
	for _, s := range schemas() {
		pr := s.prototypeFor(nil)
		x := Attrs{base: pr.t, pr: pr}
		class, keyType, ok := x.Identity()
		require.True(t, ok, "%s", s)
		c, _ := x.ULong(ck.CKA_CLASS)
		assert.Equal(t, ck.ObjectClass(c), class, "%s", s)
		if k, has := x.ULong(ck.CKA_KEY_TYPE); has {
			assert.Equal(t, ck.KeyType(k), keyType, "%s", s)
		} else {
			assert.Equal(t, NoKeyType, keyType, "%s", s)
		}
		x.set(ck.CKA_KEY_TYPE, ULong(7))
		_, _, ok = x.Identity()
		assert.False(t, ok, "%s: CKA_KEY_TYPE replaced", s)
	}
}
