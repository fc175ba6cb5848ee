package mam

import (
	"context"
	"sync/atomic"
	"testing"

	"vestnik/migrations/dbtest"
)

// BenchmarkAppendParallel measures group-committed appends from many
// concurrent senders (as the router and REST produce them).
func BenchmarkAppendParallel(b *testing.B) {
	for _, backend := range dbtest.Backends(b) {
		b.Run(backend, func(b *testing.B) {
			s := NewStore(dbtest.Open(b, backend))
			var n atomic.Int64
			b.SetParallelism(32) // senders per GOMAXPROCS
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					m := personal(i%500+1, i%499+2, "Привет, как дела с отчётом по продажам? Meeting at 10.")
					if _, err := s.Append(context.Background(), m); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkAppendSerial is one sender at a time: one transaction each.
func BenchmarkAppendSerial(b *testing.B) {
	for _, backend := range dbtest.Backends(b) {
		b.Run(backend, func(b *testing.B) {
			s := NewStore(dbtest.Open(b, backend))
			for i := 0; i < b.N; i++ {
				if _, err := s.Append(context.Background(), personal(int64(i%500+1), 2, "hello there")); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
