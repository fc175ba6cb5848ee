package main

import (
	"io"
	"net/http"
	"strings"
	"time"
)

// Timeouts and limits of the HTTP listener (`vestnik serve` flags of the
// same names override the first four).
const (
	// HTTPReadHeaderTimeout bounds reading a request's header.
	HTTPReadHeaderTimeout = 10 * time.Second
	// HTTPReadTimeout bounds reading a whole request, body included (a
	// slow-body client is cut off). Uploads get UploadTimeout instead.
	HTTPReadTimeout = 60 * time.Second
	// HTTPWriteTimeout bounds a request from the end of its header to the
	// end of the answer. WebSockets are not affected (their connection is
	// handed over with no deadline); downloads get UploadTimeout instead.
	HTTPWriteTimeout = 60 * time.Second
	// HTTPIdleTimeout closes a keep-alive connection that sends no next
	// request.
	HTTPIdleTimeout = 120 * time.Second
	// UploadTimeout bounds one file upload or download (PUT, GET /upload/…)
	// or HR sync (PUT /api/v1/org): 10 MiB at 150 kbit/s.
	UploadTimeout = 10 * time.Minute
	// RefusedBodyDrain is how much of a refused request's body (413, 401,
	// …) is read and thrown away after the answer, within
	// RefusedDrainTimeout, so that a client that sends its whole body
	// before reading gets the answer instead of a reset; past it the
	// connection is closed.
	RefusedBodyDrain    = 16 << 20
	RefusedDrainTimeout = 10 * time.Second
	// fdReserve is how many descriptors `serve` keeps out of
	// --max-connections for the database, files and plain HTTP.
	fdReserve = 128
)

// drainRefused answers an error to a request with a body the way a
// client that writes before reading can receive: with Connection: close,
// and the rest of the body (up to RefusedBodyDrain) read and discarded
// after the answer, before the connection closes. Closing a socket with
// unread input sends a reset, and the client's kernel drops the answer.
func drainRefused(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength == 0 || r.ProtoMajor != 1 {
			h.ServeHTTP(w, r)
			return
		}
		body := r.Body
		rc := http.NewResponseController(w)
		// Reading the body after the answer has started needs full duplex.
		rc.EnableFullDuplex()
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		if sw.status < 400 {
			return
		}
		rc.Flush()
		rc.SetReadDeadline(time.Now().Add(RefusedDrainTimeout))
		io.CopyN(io.Discard, body, RefusedBodyDrain)
	})
}

// statusWriter notes the status of an answer and marks error answers
// Connection: close.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
		if code >= 400 {
			w.Header().Set("Connection", "close")
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// longTransfers gives file uploads and downloads (/upload/…) and HR syncs
// (PUT /api/v1/org: up to 64 MiB, a transaction of up to 5 minutes)
// UploadTimeout to read and write instead of the server-wide timeouts.
func longTransfers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/upload/") || r.Method == http.MethodPut && r.URL.Path == "/api/v1/org" {
			rc := http.NewResponseController(w)
			d := time.Now().Add(UploadTimeout)
			rc.SetReadDeadline(d)
			rc.SetWriteDeadline(d)
		}
		h.ServeHTTP(w, r)
	})
}
