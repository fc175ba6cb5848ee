package webclient

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestWidgetBrowser runs e2e/widget.mjs: /widget.js on a portal page of
// another site (http://localhost:<port>, while Vestnik is at
// http://127.0.0.1:<port>, so no cookie of Vestnik reaches it), signed in
// through the portal's one-time login link, in real Chromium against the
// real `vestnik serve` and a slixmpp client. Then it measures what a widget
// connection costs the server in memory.
func TestWidgetBrowser(t *testing.T) {
	node := needBrowser(t, true, "playwright-core/package.json")

	// The portal: another origin (and another site) with one page that
	// includes the widget, and the endpoint the widget asks for a login
	// link (the portal's backend calls Vestnik's REST API with its token).
	portalLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	portal := "http://localhost:" + strconv.Itoa(portalLn.Addr().(*net.TCPAddr).Port)
	httpAt := freeAddr(t)
	base := "http://" + httpAt
	var token string     // set once the server is up, before the portal is used
	const employee = "2" // Иван Иванов (ivanov) of the demo company
	pmux := http.NewServeMux()
	pmux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="ru"><meta charset="utf-8"><title>Портал</title><h1>Портал компании</h1>
<script src="%s/widget.js" data-login-endpoint="/vestnik-login" async></script>`, base)
	})
	pmux.HandleFunc("POST /vestnik-login", func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequest("POST", base+"/api/v1/users/"+employee+"/login-token", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	})
	// A small GC target keeps the heap close to what is live, for the
	// memory figure below.
	s := serve(t, httpAt, "portal", []string{"GOGC=20"}, "--widget-origins", portal, "--max-connections-per-ip", "-1")
	token = s.token // before the portal serves (its handlers read it)
	psrv := &http.Server{Handler: pmux}
	go psrv.Serve(portalLn)
	defer psrv.Close()
	runNode(t, node, "e2e/widget.mjs", "widget e2e", 2*time.Minute,
		"VESTNIK_URL="+base, "PORTAL_URL="+portal, "VESTNIK_C2S="+s.c2sAt, "VESTNIK_TOKEN="+token)
	widgetMemory(t, base, portal, token, employee)
}

// widgetMemory opens n widget connections (hello said) from this process
// and reads the server's heap and goroutine stacks from /metrics before
// and after: the server's memory per widget connection.
func widgetMemory(t *testing.T, base, portal, token, employee string) {
	const n = 200
	req, _ := http.NewRequest("POST", base+"/api/v1/users/"+employee+"/login-token", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var link struct{ URL string }
	json.NewDecoder(resp.Body).Decode(&link)
	resp.Body.Close()
	req, _ = http.NewRequest("POST", base+"/widget/session", strings.NewReader(fmt.Sprintf(`{"login":%q}`, link.URL)))
	req.Header.Set("Origin", portal)
	req.Header.Set("Content-Type", "application/json")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var cred struct{ Token string }
	json.NewDecoder(resp.Body).Decode(&cred)
	resp.Body.Close()
	if cred.Token == "" {
		t.Fatalf("widget session: %d", resp.StatusCode)
	}
	before := serverMemory(t, base)
	hdr := http.Header{"Origin": {portal}}
	d := websocket.Dialer{Subprotocols: []string{"vestnik.widget", "vestnik.token." + cred.Token}, HandshakeTimeout: 10 * time.Second}
	var conns []*websocket.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	ws := "ws" + strings.TrimPrefix(base, "http") + "/ws"
	for i := 0; i < n; i++ {
		c, _, err := d.Dial(ws, hdr)
		if err != nil {
			t.Fatalf("widget %d: %v", i, err)
		}
		conns = append(conns, c)
		acked := make(chan struct{})
		go func() { // read everything (presence of the others), like a widget
			var f map[string]any
			for c.ReadJSON(&f) == nil {
				if f["type"] == "ack" && f["id"] == "h" {
					close(acked)
				}
				f = nil
			}
		}()
		c.WriteJSON(map[string]any{"type": "hello", "id": "h", "last_id": 0})
		select {
		case <-acked:
		case <-time.After(10 * time.Second):
			t.Fatalf("widget %d: no hello ack", i)
		}
	}
	after := serverMemory(t, base)
	if got := metric(t, base, "vestnik_bridge_connections"); got < n {
		t.Fatalf("bridge connections: got %v, want >= %d", got, n)
	}
	per := (after - before) / n
	line := fmt.Sprintf("METRICS widget_connection_server_bytes=%.0f connections=%d heap_and_stacks_before=%.0f after=%.0f", per, n, before, after)
	t.Log(line)
	fmt.Fprintln(os.Stderr, "widget e2e", line)
}

// serverMemory is the server's heap in use plus goroutine stacks, the
// least of a few readings a moment apart (garbage not yet collected
// only adds).
func serverMemory(t *testing.T, base string) float64 {
	best := -1.0
	for i := 0; i < 5; i++ {
		time.Sleep(400 * time.Millisecond)
		v := metric(t, base, "go_memstats_heap_inuse_bytes") + metric(t, base, "go_memstats_stack_inuse_bytes")
		if best < 0 || v < best {
			best = v
		}
	}
	return best
}

func metric(t *testing.T, base, name string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", name, err)
			}
			return f
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}
