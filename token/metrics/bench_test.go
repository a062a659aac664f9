package metrics

import (
	"testing"

	"gohsm/token/cluster"
)

// BenchmarkRecord is Begin + Record with metrics on.
func BenchmarkRecord(b *testing.B) {
	p, err := Open(b.TempDir(), 0o600, On, nil)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		t0, _ := p.Begin()
		p.Record(cluster.ClassSymmetric, t0, nil, false)
	}
}

// BenchmarkRecordParallel is BenchmarkRecord from every P at once: one
// process's calls share its region's counters.
func BenchmarkRecordParallel(b *testing.B) {
	p, err := Open(b.TempDir(), 0o600, On, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			t0, _ := p.Begin()
			p.Record(cluster.ClassSymmetric, t0, nil, false)
		}
	})
}

// BenchmarkBeginOff is Begin with metrics auto and nobody watching.
func BenchmarkBeginOff(b *testing.B) {
	p, err := Open(b.TempDir(), 0o600, Auto, nil)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, ok := p.Begin(); ok {
			b.Fatal("on")
		}
	}
}
