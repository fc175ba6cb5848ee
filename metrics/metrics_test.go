package metrics

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestExposition(t *testing.T) {
	r := New()
	c := r.NewCounter("vestnik_messages_total", "Messages stored.")
	c.Add(3)
	r.Func(`vestnik_sessions{door="c2s"}`, "Online sessions.", Gauge, func() float64 { return 2 })
	r.Func(`vestnik_sessions{door="bridge"}`, "Online sessions.", Gauge, func() float64 { return 5 })
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		"# TYPE vestnik_messages_total counter\nvestnik_messages_total 3\n",
		"vestnik_sessions{door=\"bridge\"} 5\nvestnik_sessions{door=\"c2s\"} 2\n",
		"# TYPE go_goroutines gauge",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("exposition lacks %q; got:\n%s", want, body)
		}
	}
	if n := strings.Count(body, "# TYPE vestnik_sessions "); n != 1 {
		t.Errorf("TYPE line for vestnik_sessions: got %d, want 1", n)
	}
}
