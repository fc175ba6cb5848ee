package webclient

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"testing"
)

func get(t *testing.T, srv *httptest.Server, path string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	tr := &http.Transport{DisableCompression: true}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func TestServing(t *testing.T) {
	h := New()
	mux := http.NewServeMux()
	h.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	resp, index := get(t, srv, "/", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" || strings.Contains(index, "{{") {
		t.Fatalf("index: %d %q, placeholders left: %v", resp.StatusCode, resp.Header.Get("Cache-Control"), strings.Contains(index, "{{"))
	}
	if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Fatalf("index has no CSP")
	}
	m := regexp.MustCompile(`src="(/s/[0-9a-f]+/js/app\.js)"`).FindStringSubmatch(index)
	if m == nil {
		t.Fatalf("index does not name the versioned app.js: %s", index)
	}
	resp, body := get(t, srv, m[1], nil)
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") || !strings.Contains(body, "import") {
		t.Fatalf("app.js: %d %q %q", resp.StatusCode, resp.Header.Get("Cache-Control"), resp.Header.Get("Content-Type"))
	}
	etag := resp.Header.Get("ETag")
	resp, _ = get(t, srv, m[1], map[string]string{"If-None-Match": etag})
	if resp.StatusCode != http.StatusNotModified {
		t.Fatalf("revalidation: got %d, want 304", resp.StatusCode)
	}
	resp, gz := get(t, srv, m[1], map[string]string{"Accept-Encoding": "gzip"})
	if resp.Header.Get("Content-Encoding") != "gzip" || len(gz) >= len(body) {
		t.Fatalf("gzip: %q, %d >= %d bytes", resp.Header.Get("Content-Encoding"), len(gz), len(body))
	}
	// A module imported relatively resolves under the same version.
	resp, _ = get(t, srv, strings.Replace(m[1], "app.js", "text.js", 1), nil)
	if resp.StatusCode != 200 {
		t.Fatalf("text.js: got %d", resp.StatusCode)
	}
	for _, p := range []string{"/s/x/../../etc/passwd", "/s/" + h.hash + "/nope.js", "/s/" + h.hash + "/index.html"} {
		if resp, _ := get(t, srv, p, nil); resp.StatusCode != 404 {
			t.Fatalf("%s: got %d, want 404", p, resp.StatusCode)
		}
	}
	resp, w := get(t, srv, "/widget.js", nil)
	if resp.StatusCode != 200 || !strings.Contains(w, "/widget/state") {
		t.Fatalf("widget.js: %d", resp.StatusCode)
	}
	resp, icon := get(t, srv, "/favicon.ico", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/svg+xml" || !strings.HasPrefix(icon, "<svg") {
		t.Fatalf("favicon.ico: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// Every module the app imports is preloaded by index.html (no waterfall).
	for _, name := range assetNames(h, "js/") {
		if !strings.Contains(index, `rel="modulepreload" href="`+h.URL(name)+`"`) {
			t.Errorf("index.html does not preload %s", name)
		}
	}
}

// TestColdLoadSize keeps the first load small: everything the app loads
// before history, gzipped, must stay under 150 KB.
func TestColdLoadSize(t *testing.T) {
	h := New()
	total := len(h.index.body)
	for name, a := range h.assets {
		if name == "index.html" || name == "widget.js" {
			continue
		}
		n := len(a.body)
		if a.gz != nil {
			n = len(a.gz)
		}
		total += n
	}
	t.Logf("cold load: %d bytes (gzip)", total)
	if total > 150_000 {
		t.Fatalf("cold load is %d bytes, over the 150 KB budget", total)
	}
}

// assetNames lists the embedded files under dir, sorted.
func assetNames(h *Handler, dir string) []string {
	var out []string
	for name := range h.assets {
		if strings.HasPrefix(name, dir) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}
