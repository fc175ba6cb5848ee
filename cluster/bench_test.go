package cluster

import (
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// countHandler signals every stanza it gets, or only counts them once
// count is set (throughput: a channel send per stanza would cost the
// benchmark more than the routing).
type countHandler struct {
	got   chan struct{}
	count atomic.Pointer[atomic.Int64]
}

func (h *countHandler) Stanza(int64, string, int64, string) {
	if n := h.count.Load(); n != nil {
		n.Add(1)
		return
	}
	h.got <- struct{}{}
}
func (h *countHandler) Presence(Session, string)   {}
func (h *countHandler) Kick(int64, string, string) {}
func (h *countHandler) Broadcast(string)           {}

// benchPair starts two embedded nodes (routes over loopback TCP); user 1
// has a session on the second.
func benchPair(b *testing.B) (*Cluster, *Cluster, *countHandler) {
	b.Helper()
	db := pg(b)
	h := &countHandler{got: make(chan struct{}, 1<<20)}
	a := startNode(b, db, Options{}, &countHandler{got: make(chan struct{}, 1<<16)})
	r := startNode(b, db, Options{Inbox: 1 << 20}, h)
	r.Register(Session{UserID: 1, Resource: "r"})
	waitFor(b, "the session to cross", func() bool { return len(a.Sessions(1)) == 1 })
	// Interest in the user's subject has reached a's server too.
	for {
		a.SendUser(1, "", "<warm/>")
		select {
		case <-h.got:
			return a, r, h
		case <-time.After(10 * time.Millisecond):
		}
	}
}

const benchWindow = 20000

var benchStanza = "<message to='u@localhost' type='chat'><body>" + strings.Repeat("x", 200) + "</body></message>"

// BenchmarkCrossNodeLatency sends one stanza at a time from one node to
// another and waits for it: the time from SendUser to the receiving
// node's Handler.
func BenchmarkCrossNodeLatency(b *testing.B) {
	a, _, h := benchPair(b)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		a.SendUser(1, "", benchStanza)
		<-h.got
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1000, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1000, "p99-µs")
}

// benchUsers is how many users BenchmarkCrossNodeThroughputUsers spreads
// its stanzas over.
const benchUsers = 1000

// BenchmarkCrossNodeThroughputUsers is BenchmarkCrossNodeThroughput with
// the stanzas going round-robin to benchUsers users (each with a session on
// the receiving node): consecutive stanzas are on different subjects, so
// none share a NATS message.
func BenchmarkCrossNodeThroughputUsers(b *testing.B) {
	a, r, h := benchPair(b)
	for u := int64(2); u <= benchUsers; u++ {
		r.Register(Session{UserID: u, Resource: "r"})
	}
	waitFor(b, "the sessions to cross", func() bool { return len(a.Sessions(benchUsers)) == 1 })
	for { // the last subscription has reached a's server (and so the others)
		a.SendUser(benchUsers, "", "<warm/>")
		select {
		case <-h.got:
		case <-time.After(10 * time.Millisecond):
			continue
		}
		break
	}
	var got atomic.Int64
	h.count.Store(&got)
	b.ResetTimer()
	t0, cpu0 := time.Now(), cpuTime()
	go func() {
		for i := 0; i < b.N; i++ {
			for int64(i)-got.Load() >= benchWindow {
				time.Sleep(50 * time.Microsecond)
			}
			a.SendUser(int64(i%benchUsers)+1, "", benchStanza)
		}
	}()
	last, lastAt := int64(0), time.Now()
	for n := got.Load(); n < int64(b.N); n = got.Load() {
		if n != last {
			last, lastAt = n, time.Now()
		} else if time.Since(lastAt) > 5*time.Second {
			b.Fatalf("got %d of %d stanzas; sender %+v, receiver %+v", n, b.N, a.Stats(), r.Stats())
		}
		time.Sleep(200 * time.Microsecond)
	}
	b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "stanzas/s")
	b.ReportMetric(float64(b.N)/(cpuTime()-cpu0).Seconds(), "stanzas/cpu-s")
}

// BenchmarkCrossNodeThroughput pipelines b.N stanzas (about 250 bytes)
// from one node to another, at most benchWindow in flight (unbounded, the
// receiving node's NATS server would cut its client as a slow consumer
// once 64 MB wait for it, as it should).
func BenchmarkCrossNodeThroughput(b *testing.B) {
	a, r, h := benchPair(b)
	var got atomic.Int64
	h.count.Store(&got)
	b.ResetTimer()
	t0, cpu0 := time.Now(), cpuTime()
	go func() {
		for i := 0; i < b.N; i++ {
			for int64(i)-got.Load() >= benchWindow {
				time.Sleep(50 * time.Microsecond)
			}
			a.SendUser(1, "", benchStanza)
		}
	}()
	last, lastAt := int64(0), time.Now()
	for n := got.Load(); n < int64(b.N); n = got.Load() {
		if n != last {
			last, lastAt = n, time.Now()
		} else if time.Since(lastAt) > 5*time.Second {
			b.Fatalf("got %d of %d stanzas; sender %+v, receiver %+v", n, b.N, a.Stats(), r.Stats())
		}
		time.Sleep(200 * time.Microsecond)
	}
	b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "stanzas/s")
	// On a shared machine the wall-clock rate is what the process got;
	// the CPU cost per stanza (both nodes) says what a core can carry.
	b.ReportMetric(float64(b.N)/(cpuTime()-cpu0).Seconds(), "stanzas/cpu-s")
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
