package metrics

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func scrape(t *testing.T, r *Registry) string {
	t.Helper()
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

func TestExposition(t *testing.T) {
	r := New()
	c := r.NewCounter("vestnik_messages_total", "Messages stored.")
	c.Add(3)
	r.Func(`vestnik_sessions{door="c2s"}`, "Online sessions.", Gauge, func() float64 { return 2 })
	r.Func(`vestnik_sessions{door="bridge"}`, "Online sessions.", Gauge, func() float64 { return 5 })
	type snap struct {
		conns  int
		closed map[string]int64
	}
	reads := 0
	Snapshot(r, func() snap { reads++; return snap{7, map[string]int64{"normal": 4, "conflict": 0}} },
		[]Stat[snap]{{Name: "vestnik_conns", Help: "Connections.", Kind: Gauge, Read: func(s snap) float64 { return float64(s.conns) }},
			{Name: "vestnik_conns_twice", Help: "Twice.", Kind: Gauge, Read: func(s snap) float64 { return float64(2 * s.conns) }}},
		LabeledStat[snap]{Name: "vestnik_closed_total", Help: "Closed.", Label: "reason", Kind: Counter, Read: func(s snap) map[string]int64 { return s.closed }})
	body := scrape(t, r)
	for _, want := range []string{
		"# TYPE vestnik_messages_total counter\nvestnik_messages_total 3\n",
		"vestnik_sessions{door=\"bridge\"} 5\nvestnik_sessions{door=\"c2s\"} 2\n",
		"vestnik_conns 7\n", "vestnik_conns_twice 14\n",
		"vestnik_closed_total{reason=\"conflict\"} 0\nvestnik_closed_total{reason=\"normal\"} 4\n",
		"# TYPE go_goroutines gauge", "go_memstats_heap_inuse_bytes", "process_open_fds", "go_gc_duration_seconds",
		"vestnik_uptime_seconds",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("exposition lacks %q; got:\n%s", want, body)
		}
	}
	if reads != 1 {
		t.Errorf("snapshot read %d times in one scrape, want 1", reads)
	}
	if n := strings.Count(body, "# TYPE vestnik_sessions "); n != 1 {
		t.Errorf("TYPE line for vestnik_sessions: got %d, want 1", n)
	}
}

// HTTP requests are timed by the mux pattern that took them; upgrades to
// WebSocket are not requests and stay out.
func TestInstrument(t *testing.T) {
	r := New()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, _ *http.Request) {})
	h := r.Instrument(mux)
	for _, p := range []string{"/items/1", "/items/2", "/nothing"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", p, nil))
	}
	up := httptest.NewRequest("GET", "/ws", nil)
	up.Header.Set("Upgrade", "websocket")
	h.ServeHTTP(httptest.NewRecorder(), up)
	body := scrape(t, r)
	for _, want := range []string{
		`vestnik_http_request_duration_seconds_count{route="GET /items/{id}"} 2`,
		`vestnik_http_requests_total{code="4xx",route="GET /items/{id}"} 2`,
		`vestnik_http_requests_total{code="4xx",route="none"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("exposition lacks %q; got:\n%s", want, body)
		}
	}
	if strings.Contains(body, `route="GET /ws"`) {
		t.Errorf("a WebSocket upgrade was timed as a request")
	}
}
