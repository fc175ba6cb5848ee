// Package webclient serves the browser messenger and /widget.js from
// files embedded in the binary. There is no build step: the files under
// static/ are ES modules, CSS and HTML as written.
//
// The whole static tree is served under /s/<hash>/, where hash covers
// every file, so the browser may cache assets forever and module imports
// (relative paths) stay inside one consistent version. index.html, which
// names the current hash, is never cached. Every asset also has an ETag
// and a gzip variant made once at start.
package webclient

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"
)

//go:embed static
var files embed.FS

type asset struct {
	body, gz []byte
	ctype    string
	etag     string
}

// Handler serves GET / (the app), /s/<hash>/… (assets) and /widget.js.
type Handler struct {
	assets map[string]*asset // by path under static/
	hash   string
	index  *asset
}

// New loads and indexes the embedded files.
func New() *Handler {
	h := &Handler{assets: map[string]*asset{}}
	var names []string
	fs.WalkDir(files, "static", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, p)
		}
		return err
	})
	sort.Strings(names)
	tree := sha256.New()
	for _, p := range names {
		b, _ := files.ReadFile(p)
		name := strings.TrimPrefix(p, "static/")
		tree.Write([]byte(name))
		tree.Write(b)
		h.assets[name] = newAsset(name, b)
	}
	h.hash = hex.EncodeToString(tree.Sum(nil))[:12]
	idx := h.assets["index.html"]
	body := idx.body
	for name := range h.assets {
		body = bytes.ReplaceAll(body, []byte("{{"+name+"}}"), []byte(h.URL(name)))
	}
	h.index = newAsset("index.html", body)
	return h
}

func newAsset(name string, b []byte) *asset {
	a := &asset{body: b, ctype: mime.TypeByExtension(path.Ext(name))}
	if a.ctype == "" {
		a.ctype = "application/octet-stream"
	}
	if strings.HasSuffix(name, ".js") || strings.HasSuffix(name, ".mjs") {
		a.ctype = "text/javascript; charset=utf-8"
	}
	sum := sha256.Sum256(b)
	a.etag = `"` + hex.EncodeToString(sum[:8]) + `"`
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write(b)
	zw.Close()
	if buf.Len() < len(b) {
		a.gz = buf.Bytes()
	}
	return a
}

// URL is the versioned address of an embedded file.
func (h *Handler) URL(name string) string { return "/s/" + h.hash + "/" + name }

// Register adds the client's routes to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", h.serveIndex)
	mux.HandleFunc("GET /s/{hash}/{path...}", h.serveAsset)
	// Browsers ask for /favicon.ico on pages without an icon link (error
	// pages, downloads); answer it rather than log a 404 in their console.
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=86400")
		h.write(w, r, h.assets["favicon.svg"])
	})
	mux.HandleFunc("GET /widget.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Header().Set("Access-Control-Allow-Origin", "*")
		h.write(w, r, h.assets["widget.js"])
	})
}

func (h *Handler) serveIndex(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "same-origin")
	h.write(w, r, h.index)
}

func (h *Handler) serveAsset(w http.ResponseWriter, r *http.Request) {
	a := h.assets[r.PathValue("path")]
	if a == nil || r.PathValue("path") == "index.html" {
		http.NotFound(w, r)
		return
	}
	if r.PathValue("hash") == h.hash {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		// An old page asking for an old version: serve the current one, uncached.
		w.Header().Set("Cache-Control", "no-cache")
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	h.write(w, r, a)
}

func (h *Handler) write(w http.ResponseWriter, r *http.Request, a *asset) {
	hd := w.Header()
	hd.Set("Content-Type", a.ctype)
	hd.Set("ETag", a.etag)
	hd.Add("Vary", "Accept-Encoding")
	if inm := r.Header.Get("If-None-Match"); inm != "" && strings.Contains(inm, a.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := a.body
	if a.gz != nil && strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		hd.Set("Content-Encoding", "gzip")
		body = a.gz
	}
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}
