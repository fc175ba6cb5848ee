// Package metrics exposes counters and gauges in the Prometheus text format
// at /metrics. Components keep their own atomic counters and register a
// read function here; nothing on a hot path takes a lock.
package metrics

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Kind is the Prometheus metric type.
type Kind string

const (
	Counter Kind = "counter"
	Gauge   Kind = "gauge"
)

type metric struct {
	name, help string
	kind       Kind
	read       func() float64
}

// Registry holds the metrics of one server.
type Registry struct {
	mu      sync.Mutex
	metrics map[string]metric
	start   time.Time
}

// New returns a registry that already reports process uptime, goroutines
// and Go heap size.
func New() *Registry {
	r := &Registry{metrics: map[string]metric{}, start: time.Now()}
	r.Func("vestnik_uptime_seconds", "Seconds since the server started.", Gauge,
		func() float64 { return time.Since(r.start).Seconds() })
	r.Func("go_goroutines", "Goroutines that currently exist.", Gauge,
		func() float64 { return float64(runtime.NumGoroutine()) })
	return r
}

// Func registers a metric whose value read returns at scrape time. The name
// may carry labels: `vestnik_sessions{door="c2s"}`.
func (r *Registry) Func(name, help string, kind Kind, read func() float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.metrics[name] = metric{name: name, help: help, kind: kind, read: read}
}

// NewCounter registers and returns a counter.
func (r *Registry) NewCounter(name, help string) *atomic.Int64 {
	c := new(atomic.Int64)
	r.Func(name, help, Counter, func() float64 { return float64(c.Load()) })
	return c
}

// WriteTo writes every metric in the text exposition format, sorted by name.
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	r.mu.Lock()
	ms := make([]metric, 0, len(r.metrics))
	for _, m := range r.metrics {
		ms = append(ms, m)
	}
	r.mu.Unlock()
	sort.Slice(ms, func(i, j int) bool { return ms[i].name < ms[j].name })

	var ems runtime.MemStats
	runtime.ReadMemStats(&ems)
	var b strings.Builder
	seen := map[string]bool{}
	for _, m := range ms {
		base, _, _ := strings.Cut(m.name, "{")
		if !seen[base] {
			seen[base] = true
			fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", base, m.help, base, m.kind)
		}
		fmt.Fprintf(&b, "%s %g\n", m.name, m.read())
	}
	fmt.Fprintf(&b, "# HELP go_memstats_heap_inuse_bytes Bytes in in-use heap spans.\n# TYPE go_memstats_heap_inuse_bytes gauge\ngo_memstats_heap_inuse_bytes %d\n", ems.HeapInuse)
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

// ServeHTTP serves the metrics.
func (r *Registry) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	r.WriteTo(w)
}
