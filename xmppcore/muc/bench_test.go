package muc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"vestnik/api"
	"vestnik/migrations/dbtest"
	"vestnik/roster"
	"vestnik/xmppcore"
	"vestnik/xmppcore/muc"
)

// countSink is the cheapest session: it counts deliveries.
type countSink struct{ n *atomic.Int64 }

func (s countSink) Deliver(*xmppcore.Element) bool { s.n.Add(1); return true }
func (s countSink) Close(string)                   {}

// importStaff adds n employees (logins e1…en, portal ids 1001…) in one
// department and returns their user ids.
func importStaff(b testing.TB, w *world, n int) []int64 {
	b.Helper()
	ctx := context.Background()
	snap := map[string]any{"departments": []map[string]any{{"id": "d1", "name": "Staff"}}}
	var emps []map[string]any
	for i := 1; i <= n; i++ {
		emps = append(emps, map[string]any{"id": fmt.Sprint(1000 + i), "login": fmt.Sprintf("e%d", i), "name": fmt.Sprintf("Employee %d", i), "departments": []string{"d1"}})
	}
	snap["employees"] = emps
	body, _ := json.Marshal(snap)
	s, err := roster.ParseJSON(bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := w.users.Import(ctx, s, false); err != nil {
		b.Fatal(err)
	}
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = w.user(b, fmt.Sprintf("e%d", i+1)).ID
	}
	return ids
}

// BenchmarkFanout posts to a chat of 1,000 members, all online and joined
// (sessions attached through the Sink API, as the bridge attaches): each
// message is archived, then delivered to 1,000 sessions.
func BenchmarkFanout(b *testing.B) {
	for _, backend := range dbtest.Backends(b) {
		b.Run(backend, func(b *testing.B) {
			ctx := context.Background()
			w := newWorld(b, dbtest.Open(b, backend))
			const members = 1000
			ids := importStaff(b, w, members)
			c, err := w.chats.Create(ctx, 0, muc.NewChat{Title: "all hands", Type: muc.TypeClosed, OwnerID: ids[0], Members: ids[1:]})
			if err != nil {
				b.Fatal(err)
			}
			var delivered atomic.Int64
			for i, id := range ids {
				sess, err := w.srv.Attach(ctx, id, "bench", countSink{&delivered})
				if err != nil {
					b.Fatal(err)
				}
				p := xmppcore.NewElement(xmppcore.NSClient, "presence", "to", fmt.Sprintf("%s/e%d", w.chats.RoomJID(c), i+1))
				p.AddChild(xmppcore.NewElement(muc.NSMUC, "x"))
				if err := sess.Handle(ctx, p); err != nil {
					b.Fatal(err)
				}
			}
			if n := len(w.chats.Occupants(c.ID)); n != members {
				b.Fatalf("%d occupants", n)
			}
			delivered.Store(0)
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if _, err := w.chats.PostMessage(ctx, c.ID, ids[i%members], "hello everyone", false); err != nil {
					b.Fatal(err)
				}
			}
			el := time.Since(start)
			b.StopTimer()
			if got := delivered.Load(); got != int64(b.N*members) {
				b.Fatalf("delivered %d, want %d", got, b.N*members)
			}
			b.ReportMetric(float64(b.N*members)/el.Seconds(), "deliveries/s")
		})
	}
}

// BenchmarkRESTPost measures POST /api/v1/chats/{id}/messages over HTTP
// with parallel clients (GOMAXPROCS×4 goroutines) against a chat of 10
// members: each request is authenticated, validated, archived (durably)
// and answered 201.
func BenchmarkRESTPost(b *testing.B) {
	for _, backend := range dbtest.Backends(b) {
		b.Run(backend, func(b *testing.B) {
			ctx := context.Background()
			w := newWorld(b, dbtest.Open(b, backend))
			ids := importStaff(b, w, 10)
			c, err := w.chats.Create(ctx, 0, muc.NewChat{Title: "bots", Type: muc.TypeClosed, OwnerID: ids[0], Members: ids[1:]})
			if err != nil {
				b.Fatal(err)
			}
			token, _ := w.users.CreateToken(ctx, "bench")
			a := api.New(w.users, w.chats, w.srv, api.Options{Rate: -1})
			mux := http.NewServeMux()
			mux.Handle(api.Prefix+"/", a.Handler())
			hs := httptest.NewServer(mux)
			defer hs.Close()
			tr := &http.Transport{MaxIdleConnsPerHost: 256}
			client := &http.Client{Transport: tr}
			url := fmt.Sprintf("%s/api/v1/chats/%d/messages", hs.URL, c.ID)
			body := []byte(`{"from_user_id":"1001","message":"build 1234 passed"}`)
			var failed atomic.Int64
			b.SetParallelism(4)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+token)
					resp, err := client.Do(req)
					if err != nil {
						failed.Add(1)
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 201 {
						failed.Add(1)
					}
				}
			})
			el := time.Since(start)
			b.StopTimer()
			if f := failed.Load(); f > 0 {
				b.Fatalf("%d requests failed", f)
			}
			b.ReportMetric(float64(b.N)/el.Seconds(), "posts/s")
		})
	}
}
