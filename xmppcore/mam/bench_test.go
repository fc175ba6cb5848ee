package mam

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

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

// benchArchive is a small generated archive (20,000 messages: users 1-50,
// chat 1 with everyone) for the read benchmarks; the 1M-message figures
// come from cmd/vestnik-archivegen.
func benchArchive(b *testing.B, backend string) *Store {
	b.Helper()
	db := dbtest.Open(b, backend)
	s := NewStore(db)
	words := []string{"отчёт", "продажи", "встреча", "клиент", "договор", "report", "meeting", "budget", "сообщение", "проект"}
	msgs := make([]Message, 20000)
	t0 := time.Now().Add(-24 * time.Hour)
	for i := range msgs {
		body := words[i%len(words)] + " " + words[(i/7)%len(words)] + " номер " + strconv.Itoa(i)
		if i%3 == 0 {
			msgs[i] = Message{Kind: KindGroupchat, FromID: int64(i%50 + 1), ChatID: 1, Body: body, CreatedAt: t0}
		} else {
			msgs[i] = Message{Kind: KindChat, FromID: int64(i%50 + 1), ToID: int64(i%7 + 1), Body: body, CreatedAt: t0}
		}
	}
	if err := s.Bulk(context.Background(), msgs); err != nil {
		b.Fatal(err)
	}
	for u := 1; u <= 50; u++ {
		if _, err := db.Exec(db.Rebind(`INSERT INTO chat_periods (chat_id, user_id, from_id) VALUES (1, ?, 1)`), u); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

func BenchmarkQueryLatestPage(b *testing.B) {
	for _, backend := range dbtest.Backends(b) {
		b.Run(backend, func(b *testing.B) {
			s := benchArchive(b, backend)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.Query(context.Background(), Query{Viewer: 1, With: 2, Limit: 50, Reverse: true}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSearch(b *testing.B) {
	for _, backend := range dbtest.Backends(b) {
		b.Run(backend, func(b *testing.B) {
			s := benchArchive(b, backend)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.Search(context.Background(), 1, "отчёты", SearchOptions{Limit: 20}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
