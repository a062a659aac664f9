//go:build !nopostgres

package postgres

import (
	"fmt"
	"testing"

	"gohsm/internal/ck"
	"gohsm/internal/testenv/pgtest"
	"gohsm/token/store"
)

// Benchmarks of the calls on a token's hot paths (keygen, find, read),
// over loopback TCP to the test server:
//
//	go test ./token/store/postgres -run '^$' -bench .
func BenchmarkCreateObject(b *testing.B) {
	s := benchStore(b)
	b.ResetTimer()
	for i := range b.N {
		if _, err := s.CreateObject(testObject(fmt.Sprint("b", i), "alice")); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkObject(b *testing.B) {
	s := benchStore(b)
	o, err := s.CreateObject(testObject("o", "alice"))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := s.Object(o.ID); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFindByID(b *testing.B) {
	s := benchStore(b)
	for i := range 1000 {
		if _, err := s.CreateObject(testObject(fmt.Sprint("f", i), "alice")); err != nil {
			b.Fatal(err)
		}
	}
	q := store.Query{Viewer: "alice", Match: map[ck.AttributeType][]byte{
		ck.CKA_CLASS: {byte(ck.CKO_SECRET_KEY), 0, 0, 0, 0, 0, 0, 0}, ck.CKA_ID: []byte("f500")}}
	b.ResetTimer()
	for range b.N {
		ids, err := s.Find(q)
		if err != nil || len(ids) != 1 {
			b.Fatal(ids, err)
		}
	}
}

func BenchmarkSetTokenLabel(b *testing.B) {
	s := benchStore(b)
	b.ResetTimer()
	for range b.N {
		if err := s.SetTokenLabel("x"); err != nil {
			b.Fatal(err)
		}
	}
}

func benchStore(b *testing.B) store.Store {
	dsn := pgtest.Shared(b).NewDatabase(b, "bench")
	s, err := Open(dsn, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if err := s.InitToken(store.TokenRecord{Label: "t"}, testUser("admin", store.RoleCO)); err != nil {
		b.Fatal(err)
	}
	if err := s.CreateUser(testUser("alice", store.RoleCU)); err != nil {
		b.Fatal(err)
	}
	return s
}
