// Package metrics is the server's Prometheus registry, served at /metrics
// with github.com/prometheus/client_golang. Components keep their own
// atomic counters and hand over either read functions (Func, NewCounter)
// or a snapshot function read once per scrape (Snapshot); latencies are
// histograms (Histogram, and HTTP by route through Instrument). The Go
// runtime and process collectors are always registered.
package metrics

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Kind is the Prometheus metric type of a read function.
type Kind string

const (
	Counter Kind = "counter"
	Gauge   Kind = "gauge"
)

// Registry holds the metrics of one server.
type Registry struct {
	reg     *prometheus.Registry
	handler http.Handler

	httpOnce sync.Once
	httpDur  *prometheus.HistogramVec
	httpReqs *prometheus.CounterVec
}

// New returns a registry that already reports uptime, the Go runtime
// (goroutines, heap, GC) and the process (CPU, memory, open files).
func New() *Registry {
	r := &Registry{reg: prometheus.NewRegistry()}
	r.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	start := time.Now()
	r.Func("vestnik_uptime_seconds", "Seconds since the server started.", Gauge,
		func() float64 { return time.Since(start).Seconds() })
	r.handler = promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	return r
}

// Func registers a metric whose value read returns at scrape time. The name
// may carry constant labels: `vestnik_sessions{door="c2s"}`.
func (r *Registry) Func(name, help string, kind Kind, read func() float64) {
	base, labels := parseName(name)
	opts := prometheus.Opts{Name: base, Help: help, ConstLabels: labels}
	var c prometheus.Collector
	if kind == Counter {
		c = prometheus.NewCounterFunc(prometheus.CounterOpts(opts), read)
	} else {
		c = prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts), read)
	}
	r.mustRegister(c)
}

// NewCounter registers and returns a counter.
func (r *Registry) NewCounter(name, help string) *atomic.Int64 {
	c := new(atomic.Int64)
	r.Func(name, help, Counter, func() float64 { return float64(c.Load()) })
	return c
}

// Histogram registers a histogram of seconds (buckets: nil for the
// default latency buckets, 0.5 ms to 10 s) with the given label names.
func (r *Registry) Histogram(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	if buckets == nil {
		buckets = LatencyBuckets
	}
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	r.mustRegister(h)
	return h
}

// CounterVec registers a counter with the given label names.
func (r *Registry) CounterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	r.mustRegister(c)
	return c
}

// LatencyBuckets suit request and delivery latencies, in seconds.
var LatencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// mustRegister registers c; the registry itself refuses (panics on) a
// name registered twice with other help or label names.
func (r *Registry) mustRegister(c prometheus.Collector) { r.reg.MustRegister(c) }

// Stat is one figure read from a snapshot of type S.
type Stat[S any] struct {
	Name, Help string
	Kind       Kind
	Read       func(S) float64
}

// LabeledStat is a family of figures read from a snapshot as a map from
// one label's value to the figure.
type LabeledStat[S any] struct {
	Name, Help, Label string
	Kind              Kind
	Read              func(S) map[string]int64
}

// Snapshot registers figures that are read from one fresh snapshot per
// scrape (so a scrape walks a component's state once, whatever the number
// of figures).
func Snapshot[S any](r *Registry, snapshot func() S, stats []Stat[S], labeled ...LabeledStat[S]) {
	c := &snapshotCollector[S]{snapshot: snapshot, stats: stats, labeled: labeled}
	for _, s := range stats {
		c.descs = append(c.descs, prometheus.NewDesc(s.Name, s.Help, nil, nil))
	}
	for _, s := range labeled {
		c.ldescs = append(c.ldescs, prometheus.NewDesc(s.Name, s.Help, []string{s.Label}, nil))
	}
	r.mustRegister(c)
}

type snapshotCollector[S any] struct {
	snapshot func() S
	stats    []Stat[S]
	labeled  []LabeledStat[S]
	descs    []*prometheus.Desc
	ldescs   []*prometheus.Desc
}

func (c *snapshotCollector[S]) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
	for _, d := range c.ldescs {
		ch <- d
	}
}

func (c *snapshotCollector[S]) Collect(ch chan<- prometheus.Metric) {
	s := c.snapshot()
	for i, st := range c.stats {
		ch <- prometheus.MustNewConstMetric(c.descs[i], valueType(st.Kind), st.Read(s))
	}
	for i, st := range c.labeled {
		for label, v := range st.Read(s) {
			ch <- prometheus.MustNewConstMetric(c.ldescs[i], valueType(st.Kind), float64(v), label)
		}
	}
}

func valueType(k Kind) prometheus.ValueType {
	if k == Counter {
		return prometheus.CounterValue
	}
	return prometheus.GaugeValue
}

// ServeHTTP serves the metrics in the Prometheus exposition format.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) { r.handler.ServeHTTP(w, req) }

// Instrument wraps the server's handler: each request's duration goes
// into vestnik_http_request_duration_seconds and its count into
// vestnik_http_requests_total, labelled by the ServeMux pattern that took
// it (a bounded set: unmatched requests count as "none"). WebSocket
// upgrades are long-lived connections, not requests, and are left out.
func (r *Registry) Instrument(next http.Handler) http.Handler {
	r.httpOnce.Do(func() {
		r.httpDur = r.Histogram("vestnik_http_request_duration_seconds", "HTTP request latency by route.", nil, "route")
		r.httpReqs = r.CounterVec("vestnik_http_requests_total", "HTTP requests by route and status class.", "route", "code")
	})
	dur, reqs := r.httpDur, r.httpReqs
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("Upgrade") != "" {
			next.ServeHTTP(w, req)
			return
		}
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, req)
		route := req.Pattern // set by the (innermost) ServeMux on this request
		if route == "" {
			route = "none"
		}
		dur.WithLabelValues(route).Observe(time.Since(start).Seconds())
		reqs.WithLabelValues(route, strconv.Itoa(sw.status/100)+"xx").Inc()
	})
}

// statusWriter remembers the status code; Unwrap lets
// http.ResponseController reach the connection's Flush and deadlines.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// parseName splits `name{a="x",b="y"}` into the name and its labels.
func parseName(s string) (string, prometheus.Labels) {
	base, rest, ok := strings.Cut(s, "{")
	if !ok {
		return s, nil
	}
	labels := prometheus.Labels{}
	for _, kv := range strings.Split(strings.TrimSuffix(rest, "}"), ",") {
		k, v, _ := strings.Cut(kv, "=")
		if uv, err := strconv.Unquote(strings.TrimSpace(v)); err == nil {
			v = uv
		}
		labels[strings.TrimSpace(k)] = v
	}
	return base, labels
}
