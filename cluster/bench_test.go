package cluster

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"
)

// countHandler signals every stanza it gets.
type countHandler struct{ got chan struct{} }

func (h *countHandler) Stanza(int64, string, string) { h.got <- struct{}{} }
func (h *countHandler) Presence(Session, string)     {}
func (h *countHandler) Kick(int64, string, string)   {}
func (h *countHandler) Broadcast(string)             {}

func benchPair(b *testing.B) (*Cluster, *Cluster, *countHandler) {
	b.Helper()
	d := pgB(b)
	start := func(h Handler) *Cluster {
		c, err := New(d.db, d.url, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Start(context.Background(), h); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Shutdown(context.Background()) })
		return c
	}
	h := &countHandler{got: make(chan struct{}, 1<<16)}
	a := start(&countHandler{got: make(chan struct{}, 1<<16)})
	r := start(h)
	return a, r, h
}

// BenchmarkCrossNodeLatency sends one stanza at a time from one node to
// another and waits for it: the time from Send to the receiver's Handler.
func BenchmarkCrossNodeLatency(b *testing.B) {
	a, r, h := benchPair(b)
	msg := "<message to='u@localhost' type='chat'><body>" + strings.Repeat("x", 200) + "</body></message>"
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		a.Send(r.NodeID(), 1, "", msg)
		<-h.got
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkCrossNodeThroughput pipelines b.N stanzas (about 250 bytes)
// from one node to another.
func BenchmarkCrossNodeThroughput(b *testing.B) {
	a, r, h := benchPair(b)
	msg := "<message to='u@localhost' type='chat'><body>" + strings.Repeat("x", 200) + "</body></message>"
	b.ResetTimer()
	t0 := time.Now()
	go func() {
		for i := 0; i < b.N; i++ {
			for !a.Send(r.NodeID(), 1, "", msg) {
				time.Sleep(100 * time.Microsecond)
			}
		}
	}()
	for i := 0; i < b.N; i++ {
		<-h.got
	}
	b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "stanzas/s")
}

// BenchmarkCrossNodeSpooled pipelines b.N stanzas of 20 kB, each through
// the spool table.
func BenchmarkCrossNodeSpooled(b *testing.B) {
	a, r, h := benchPair(b)
	msg := "<message to='u@localhost' type='chat'><body>" + strings.Repeat("x", 20000) + "</body></message>"
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	go func() {
		for i := 0; i < b.N; i++ {
			for !a.Send(r.NodeID(), 1, "", msg) {
				time.Sleep(100 * time.Microsecond)
			}
		}
	}()
	for i := 0; i < b.N; i++ {
		<-h.got
	}
}
