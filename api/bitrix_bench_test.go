package api

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"vestnik/migrations/dbtest"
	"vestnik/roster"
	"vestnik/xmppcore/mam"
	"vestnik/xmppcore/muc"
)

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkChatPost compares posting to a chat through the Bitrix24
// facade (im.message.add, form-encoded, as PHP sends it) with the native
// POST /api/v1/chats/{id}/messages (JSON), both through httptest on
// loopback with 4×GOMAXPROCS parallel keep-alive clients, rate limit off.
func BenchmarkChatPost(b *testing.B) {
	for _, backend := range dbtest.Backends(b) {
		for _, door := range []string{"native", "bitrix"} {
			b.Run(backend+"/"+door, func(b *testing.B) {
				ctx := context.Background()
				db := dbtest.Open(b, backend)
				users := roster.NewStore(db)
				snap := roster.DemoSnapshot()
				for i := range snap.Employees {
					snap.Employees[i].Password = ""
				}
				if _, err := users.Import(ctx, snap, false); err != nil {
					b.Fatal(err)
				}
				token, _ := users.CreateToken(ctx, "bench")
				archive := mam.NewStore(db)
				srv, msgr := newServer(b, db, users, archive)
				chats := muc.New(muc.NewStore(db), srv, archive, users, muc.Options{Domain: "example.test", MessageRate: -1})
				chats.Register(srv)
				a := New(users, chats, msgr, Options{Rate: -1, Archive: archive})
				owner, _ := users.UserByExtID(ctx, "1")
				member, _ := users.UserByExtID(ctx, "2")
				c, err := chats.Create(ctx, 0, muc.NewChat{Title: "builds", Type: muc.TypeClosed, OwnerID: owner.ID, Members: []int64{member.ID}})
				if err != nil {
					b.Fatal(err)
				}
				mux := http.NewServeMux()
				mux.Handle(Prefix+"/", a.Handler())
				mux.Handle(BitrixPrefix, a.Handler())
				hs := httptest.NewServer(mux)
				defer hs.Close()
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
				url := fmt.Sprintf("%s/api/v1/chats/%d/messages", hs.URL, c.ID)
				body := []byte(`{"from_user_id":"1","message":"build 1234 passed"}`)
				ctype, want := "application/json", 201
				if door == "bitrix" {
					url = fmt.Sprintf("%s/rest/1/%s/im.message.add", hs.URL, token)
					body = []byte(fmt.Sprintf("DIALOG_ID=chat%d&MESSAGE=build+1234+passed", c.ID))
					ctype, want = "application/x-www-form-urlencoded", 200
				}
				var failed atomic.Int64
				b.SetParallelism(4)
				b.ResetTimer()
				start, cpu0 := time.Now(), cpuTime()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
						req.Header.Set("Content-Type", ctype)
						if door == "native" {
							req.Header.Set("Authorization", "Bearer "+token)
						}
						resp, err := client.Do(req)
						if err != nil {
							failed.Add(1)
							continue
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != want {
							failed.Add(1)
						}
					}
				})
				el, cpu := time.Since(start), cpuTime()-cpu0
				b.StopTimer()
				if f := failed.Load(); f > 0 {
					b.Fatalf("%d requests failed", f)
				}
				b.ReportMetric(float64(b.N)/el.Seconds(), "posts/s")
				// CPU per post (server and clients, user+system) varies far
				// less than throughput on a shared machine.
				b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/post")
			})
		}
	}
}
