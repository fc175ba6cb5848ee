package webhook

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"vestnik/migrations/dbtest"
	"vestnik/xmppcore/mam"
)

// benchRig is an archive whose changes feed one webhook, and a receiver
// on loopback that records, per delivery, the time from the message's
// archiving (its created_at) to its arrival. VESTNIK_BENCH_PG=1 (with
// VESTNIK_TEST_PG) measures PostgreSQL instead of SQLite.
type benchRig struct {
	archive *mam.Store
	alice   int64
	mu      sync.Mutex
	lat     []time.Duration
	done    chan struct{}
}

func newBenchRig(b *testing.B) *benchRig {
	backend := "sqlite"
	if os.Getenv("VESTNIK_BENCH_PG") != "" {
		backend = "postgres"
	}
	db := dbtest.Open(b, backend)
	r := &benchRig{done: make(chan struct{})}
	r.alice, _ = importDemo(b, db)
	n := b.N
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		now := time.Now()
		var d struct {
			Data struct {
				Message struct {
					CreatedAt time.Time `json:"created_at"`
				} `json:"message"`
			} `json:"data"`
		}
		json.Unmarshal(body, &d)
		r.mu.Lock()
		r.lat = append(r.lat, now.Sub(d.Data.Message.CreatedAt))
		if len(r.lat) == n {
			close(r.done)
		}
		r.mu.Unlock()
	}))
	b.Cleanup(rcv.Close)
	s, err := New(db, Options{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.Create(context.Background(), NewWebhook{URL: rcv.URL, Events: []string{MessageCreated}}); err != nil {
		b.Fatal(err)
	}
	r.archive = mam.NewStoreOptions(db, mam.Options{OnChange: s.ArchiveChange})
	s.Start()
	b.Cleanup(func() { s.Shutdown(context.Background()) })
	return r
}

func (r *benchRig) append(b *testing.B, chat int64) {
	if _, err := r.archive.Append(context.Background(), &mam.Message{Kind: mam.KindGroupchat, FromID: r.alice, ChatID: chat, Body: "bench"}); err != nil {
		b.Error(err)
	}
}

// finish waits for every delivery and reports deliveries per second over
// the run and the latency percentiles.
func (r *benchRig) finish(b *testing.B, start time.Time) {
	select {
	case <-r.done:
	case <-time.After(2 * time.Minute):
		b.Fatal("deliveries did not finish")
	}
	took := time.Since(start)
	b.StopTimer()
	r.mu.Lock()
	defer r.mu.Unlock()
	sort.Slice(r.lat, func(i, j int) bool { return r.lat[i] < r.lat[j] })
	b.ReportMetric(float64(b.N)/took.Seconds(), "deliveries/s")
	b.ReportMetric(float64(r.lat[len(r.lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(r.lat[len(r.lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkDeliveries is throughput: b.N messages in 20 chats appended as
// fast as 20 writers can (-benchtime=2000x); the latency then includes
// the time events wait behind the backlog.
func BenchmarkDeliveries(b *testing.B) {
	r := newBenchRig(b)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	per := (b.N + 19) / 20
	for c := 0; c < 20; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per && c*per+i < b.N; i++ {
				r.append(b, int64(c+1))
			}
		}()
	}
	wg.Wait()
	r.finish(b, start)
}

// BenchmarkDeliveryLatency is the latency of a receiver that keeps up:
// one message every 10 ms (-benchtime=300x).
func BenchmarkDeliveryLatency(b *testing.B) {
	r := newBenchRig(b)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		r.append(b, int64(i%5+1))
		time.Sleep(10 * time.Millisecond)
	}
	r.finish(b, start)
}

// BenchmarkAppend is the archive's cost of outgoing events: appends from
// 20 writers with no webhook, and with one webhook hearing every message
// (its receiver never answers, so every event stays queued) — the extra
// insert in the group-commit transaction.
func BenchmarkAppend(b *testing.B) {
	for _, withHook := range []bool{false, true} {
		name := "no-webhook"
		if withHook {
			name = "one-webhook"
		}
		b.Run(name, func(b *testing.B) {
			db := dbtest.Open(b, "sqlite")
			alice, _ := importDemo(b, db)
			s, err := New(db, Options{MaxQueue: 1 << 30})
			if err != nil {
				b.Fatal(err)
			}
			if withHook {
				if _, err := s.Create(context.Background(), NewWebhook{URL: "http://127.0.0.1:9/", Events: []string{MessageCreated}}); err != nil {
					b.Fatal(err)
				}
			}
			archive := mam.NewStoreOptions(db, mam.Options{OnChange: s.ArchiveChange})
			b.ResetTimer()
			b.SetParallelism(10) // 20 writers on 2 cores
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := archive.Append(context.Background(), &mam.Message{Kind: mam.KindGroupchat, FromID: alice, ChatID: 1, Body: "bench"}); err != nil {
						b.Error(err)
					}
				}
			})
		})
	}
}
